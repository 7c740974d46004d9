package tcp

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The transcript harness: segments in at time t, expected
// segments out, on a virtual clock. Segments are written as
//
//	"SYN|ACK seq=5000 ack=1001 wnd=65535 len=100 mss=1460 ws=7 ts=1/2"
//	"ACK seq=1001 ack=5001 sack=6001-7001 sack=8001-9001" (or sack=none)
//
// For expectations the flags must match exactly and every field named must
// match; fields not named are not checked. For input, unnamed fields are
// zero except wnd, which defaults to 65535.

var (
	ttLocal  = netip.MustParseAddrPort("198.18.0.1:40000")
	ttRemote = netip.MustParseAddrPort("198.18.0.2:80")
	ttT0     = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

const ttISS = 1000 // our ISN in every script; the peer's is 5000 by convention

type ttOut struct {
	ms  float64
	seg Segment
}

type transcript struct {
	t    *testing.T
	now  time.Time
	c    *Conn
	l    *Listener
	out  []ttOut
	ev   Event
	emit func(*Segment)
}

func newTranscript(t *testing.T, cfg *Config) *transcript {
	t.Helper()
	tt := &transcript{t: t, now: ttT0}
	tt.emit = func(s *Segment) {
		cp := *s
		cp.Payload = append([]byte(nil), s.Payload...)
		tt.out = append(tt.out, ttOut{tt.ms(), cp})
	}
	tt.c = NewConn(cfg, ttLocal, ttRemote, ttISS, EmitFunc(tt.emit))
	return tt
}

// newListening returns a transcript whose connection will come from a
// listener on the first SYN (see inL).
func newListening(t *testing.T, cfg *Config, backlog int) *transcript {
	tt := newTranscript(t, cfg)
	tt.c = nil
	tt.l = NewListener(cfg, ttRemote, backlog, fixedRand(1))
	tt.l.ISN = func(_, _ netip.AddrPort, _ time.Time) Seq { return ttISS }
	return tt
}

type fixedRand uint32

func (r fixedRand) Uint32() uint32 { return uint32(r) }

func (tt *transcript) ms() float64 { return float64(tt.now.Sub(ttT0)) / float64(time.Millisecond) }

// advance moves the clock to ms, firing each deadline on the way at its time.
func (tt *transcript) advance(ms float64) {
	tt.t.Helper()
	to := ttT0.Add(time.Duration(ms * float64(time.Millisecond)))
	if to.Before(tt.now) {
		tt.t.Fatalf("transcript goes back in time: %v < %v", ms, tt.ms())
	}
	for tt.c != nil {
		d := tt.c.NextDeadline()
		if d.IsZero() || d.After(to) {
			break
		}
		tt.now = d
		tt.c.Timer(d)
		tt.collect()
	}
	tt.now = to
}

func (tt *transcript) collect() {
	if tt.c != nil {
		tt.ev |= tt.c.TakeEvents()
	}
}

// in delivers a segment at ms.
func (tt *transcript) in(ms float64, spec string) {
	tt.t.Helper()
	tt.advance(ms)
	seg := parseSpec(tt.t, spec, true)
	if tt.c == nil && tt.l != nil {
		tt.c = tt.l.Input(tt.now, &seg, ttLocal, EmitFunc(tt.emit))
		tt.collect()
		return
	}
	tt.c.Input(tt.now, &seg)
	tt.collect()
}

// do runs a user call at ms.
func (tt *transcript) do(ms float64, f func(now time.Time)) {
	tt.t.Helper()
	tt.advance(ms)
	f(tt.now)
	tt.collect()
}

// want expects the next segment out to be sent at ms and to match spec.
func (tt *transcript) want(ms float64, spec string) Segment {
	tt.t.Helper()
	tt.advance(ms)
	if len(tt.out) == 0 {
		tt.t.Fatalf("at %vms: want %q, nothing sent (state %v)", ms, spec, tt.c.State())
	}
	o := tt.out[0]
	tt.out = tt.out[1:]
	if o.ms != ms {
		tt.t.Fatalf("want %q at %vms, got %v at %vms", spec, ms, o.seg, o.ms)
	}
	matchSpec(tt.t, o.seg, spec)
	return o.seg
}

// wantNothing expects no segment out up to ms.
func (tt *transcript) wantNothing(ms float64) {
	tt.t.Helper()
	tt.advance(ms)
	if len(tt.out) > 0 {
		tt.t.Fatalf("want nothing until %vms, got %v at %vms", ms, tt.out[0].seg, tt.out[0].ms)
	}
}

func (tt *transcript) wantState(s State) {
	tt.t.Helper()
	if tt.c == nil || tt.c.State() != s {
		st := Closed
		if tt.c != nil {
			st = tt.c.State()
		}
		tt.t.Fatalf("at %vms: state %v, want %v", tt.ms(), st, s)
	}
}

// wantEvent expects the events e since the last check and clears them.
func (tt *transcript) wantEvent(e Event) {
	tt.t.Helper()
	tt.collect()
	if tt.ev&e != e {
		tt.t.Fatalf("at %vms: events %b, want %b", tt.ms(), tt.ev, e)
	}
	tt.ev = 0
}

func (tt *transcript) wantErr(err error) {
	tt.t.Helper()
	if got := tt.c.Err(); got != err {
		tt.t.Fatalf("at %vms: Err() = %v, want %v", tt.ms(), got, err)
	}
}

// write writes n bytes at ms.
func (tt *transcript) write(ms float64, n int) {
	tt.t.Helper()
	tt.do(ms, func(now time.Time) {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i)
		}
		if k, err := tt.c.Write(now, p); k != n || err != nil {
			tt.t.Fatalf("Write(%d) = %d, %v", n, k, err)
		}
	})
}

// read reads everything available at ms and returns it.
func (tt *transcript) read(ms float64) ([]byte, error) {
	tt.t.Helper()
	var got []byte
	var err error
	tt.do(ms, func(now time.Time) {
		buf := make([]byte, 1<<16)
		for {
			var n int
			n, err = tt.c.Read(now, buf)
			got = append(got, buf[:n]...)
			if n == 0 || err != nil {
				return
			}
		}
	})
	return got, err
}

func parseSpec(t *testing.T, spec string, input bool) Segment {
	t.Helper()
	f := strings.Fields(spec)
	var s Segment
	if input {
		s.SrcPort, s.DstPort = ttRemote.Port(), ttLocal.Port()
		s.Wnd = 65535
	}
	for _, name := range strings.Split(f[0], "|") {
		found := false
		for i, n := range flagNames {
			if n == name {
				s.Flags |= 1 << i
				found = true
			}
		}
		if !found && name != "0" {
			t.Fatalf("bad flag %q in %q", name, spec)
		}
	}
	for _, kv := range f[1:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "sackok":
			s.Opts.SACKPermitted = true
			continue
		case "ts":
			a, b, _ := strings.Cut(v, "/")
			x, _ := strconv.ParseUint(a, 10, 32)
			y, _ := strconv.ParseUint(b, 10, 32)
			s.Opts.HasTS, s.Opts.TSVal, s.Opts.TSEcr = true, uint32(x), uint32(y)
			continue
		case "sack": // sack=L-R, once per block in order; sack=none: no blocks
			if v == "none" {
				continue
			}
			a, b, _ := strings.Cut(v, "-")
			x, err1 := strconv.ParseUint(a, 10, 32)
			y, err2 := strconv.ParseUint(b, 10, 32)
			if err1 != nil || err2 != nil || s.Opts.NumSACK == len(s.Opts.SACK) {
				t.Fatalf("bad field %q in %q", kv, spec)
			}
			s.Opts.SACK[s.Opts.NumSACK] = SACKBlock{Seq(x), Seq(y)}
			s.Opts.NumSACK++
			continue
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			t.Fatalf("bad field %q in %q", kv, spec)
		}
		switch k {
		case "seq":
			s.Seq = Seq(n)
		case "ack":
			s.Ack = Seq(n)
		case "wnd":
			s.Wnd = uint16(n)
		case "len":
			s.Payload = make([]byte, n)
		case "mss":
			s.Opts.MSS = uint16(n)
		case "ws":
			s.Opts.HasWScale, s.Opts.WScale = true, uint8(n)
		case "ecn": // the IP header's ECN field: 2 ECT(0), 3 CE
			s.ECN = uint8(n)
		default:
			t.Fatalf("bad field %q in %q", kv, spec)
		}
	}
	return s
}

func matchSpec(t *testing.T, got Segment, spec string) {
	t.Helper()
	want := parseSpec(t, spec, false)
	bad := got.Flags != want.Flags
	for _, kv := range strings.Fields(spec)[1:] {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "seq":
			bad = bad || got.Seq != want.Seq
		case "ack":
			bad = bad || got.Ack != want.Ack
		case "wnd":
			bad = bad || got.Wnd != want.Wnd
		case "len":
			bad = bad || len(got.Payload) != len(want.Payload)
		case "mss":
			bad = bad || got.Opts.MSS != want.Opts.MSS
		case "ws":
			bad = bad || got.Opts.HasWScale != want.Opts.HasWScale || got.Opts.WScale != want.Opts.WScale
		case "sackok":
			bad = bad || !got.Opts.SACKPermitted
		case "ecn":
			bad = bad || got.ECN != want.ECN
		case "ts":
			bad = bad || got.Opts.HasTS != want.Opts.HasTS || got.Opts.TSVal != want.Opts.TSVal || got.Opts.TSEcr != want.Opts.TSEcr
		case "sack": // the blocks, all of them, in order
			bad = bad || got.Opts.NumSACK != want.Opts.NumSACK ||
				!slices.Equal(got.Opts.SACK[:min(got.Opts.NumSACK, 4)], want.Opts.SACK[:want.Opts.NumSACK])
		}
	}
	if bad {
		t.Fatalf("got %v\nwant %s", got, spec)
	}
}

// established returns a transcript whose connection completed an active
// open at 0–10 ms (RTT 10 ms): our ISS 1000, the peer's 5000, MSS 1460, no
// window scaling, no timestamps.
func established(t *testing.T, cfg *Config) *transcript {
	t.Helper()
	return establishedWith(t, cfg, "")
}

// establishedWith is established with more options on the peer's SYN-ACK
// (" sackok").
func establishedWith(t *testing.T, cfg *Config, opts string) *transcript {
	t.Helper()
	tt := newTranscript(t, cfg)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460"+opts)
	tt.want(10, "ACK seq=1001 ack=5001")
	tt.wantState(Established)
	tt.wantEvent(EvEstablished)
	return tt
}

func (tt *transcript) String() string { return fmt.Sprintf("transcript at %vms", tt.ms()) }

func fmtInt(n int) string { return fmt.Sprint(n) }
