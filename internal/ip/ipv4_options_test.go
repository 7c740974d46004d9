package ip

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

var (
	a4 = addrA.As4()
	b4 = addrB.As4()
	// tsNow is 03:25:07.123 UT: its RFC 791 timestamp is 12307123 ms
	// since midnight.
	tsNow = t0.Add(3*time.Hour + 25*time.Minute + 7123*time.Millisecond)
	ts    = []byte{0x00, 0xbb, 0xca, 0xb3}
)

// cat joins byte strings, for writing option lists.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func zeros(n int) []byte { return make([]byte, n) }

// echoRequest is an ICMP echo request message with its checksum.
func echoRequest(id, seq uint16, data []byte) []byte {
	m := make([]byte, ICMPHeaderLen+len(data))
	m[0] = ICMPEchoRequest
	binary.BigEndian.PutUint16(m[4:6], id)
	binary.BigEndian.PutUint16(m[6:8], seq)
	copy(m[ICMPHeaderLen:], data)
	binary.BigEndian.PutUint16(m[2:4], checksum.Checksum(m, 0))
	return m
}

func TestParseIPv4Options(t *testing.T) {
	cases := []struct {
		name string
		opts []byte // padded to a multiple of 4
		want ipv4Options
		bad  int // offset from the header's start; 0: sound
	}{
		{"nops", []byte{optNOP, optNOP, optNOP, optNOP}, ipv4Options{}, 0},
		{"eol then garbage", []byte{optEOL, 0xff, 0x00, 0x07}, ipv4Options{}, 0},
		{"router alert", []byte{optRA, 4, 0, 0}, ipv4Options{}, 0},
		{"unknown option", []byte{0x88, 4, 0x12, 0x34}, ipv4Options{}, 0},
		{"record route", cat([]byte{optNOP, optRR, 39, 4}, zeros(36)), ipv4Options{rr: 21}, 0},
		{"record route full", cat([]byte{optRR, 7, 8}, b4[:], []byte{0}), ipv4Options{rr: 20}, 0},
		{"timestamp", cat([]byte{optTS, 12, 5, tsOnly}, zeros(8)), ipv4Options{ts: 20}, 0},
		{"timestamp full", cat([]byte{optTS, 8, 9, 0xe0 | tsOnly}, ts), ipv4Options{ts: 20}, 0},
		{"prespecified full, overflow 15", cat([]byte{optTS, 12, 13, 0xf0 | tsPrespec}, a4[:], ts), ipv4Options{ts: 20}, 0},
		{"both", cat([]byte{optRR, 7, 4}, zeros(4), []byte{optTS, 8, 5, tsOnly}, zeros(4), []byte{optEOL}), ipv4Options{rr: 20, ts: 27}, 0},
		{"loose source route", cat([]byte{optLSRR, 7, 4}, b4[:], []byte{optEOL}), ipv4Options{srr: 20}, 0},
		{"strict source route", cat([]byte{optNOP, optSSRR, 7, 4}, b4[:]), ipv4Options{srr: 21}, 0},

		// Linux's ip_options_compile points at the option's type octet
		// for a bad length, at the length for one too short for the
		// kind, at the pointer for a bad pointer, at the flags for an
		// overflow past 15, at the type of a repeated option.
		{"length 0", []byte{0x88, 0, 0, 0}, ipv4Options{}, 20},
		{"length 1", []byte{optNOP, optTS, 1, 0}, ipv4Options{}, 21},
		{"length past header", []byte{0x88, 8, 0, 0}, ipv4Options{}, 20},
		{"no room for length", []byte{optNOP, optNOP, optNOP, optRR}, ipv4Options{}, 23},
		{"record route length 2", []byte{optRR, 2, optNOP, optNOP}, ipv4Options{}, 21},
		{"record route pointer 3", cat([]byte{optRR, 7, 3}, zeros(4), []byte{0}), ipv4Options{}, 22},
		{"record route partial room", cat([]byte{optRR, 7, 5}, zeros(4), []byte{0}), ipv4Options{}, 22},
		{"record route twice", []byte{optRR, 3, 4, optRR, 3, 4, 0, 0}, ipv4Options{}, 23},
		{"timestamp length 3", []byte{optTS, 3, 5, 0}, ipv4Options{}, 21},
		{"timestamp pointer 4", cat([]byte{optTS, 8, 4, tsOnly}, zeros(4)), ipv4Options{}, 22},
		{"timestamp partial room", cat([]byte{optTS, 8, 7, tsOnly}, zeros(4)), ipv4Options{}, 22},
		{"address without room for its time", cat([]byte{optTS, 8, 5, tsAddr}, zeros(4)), ipv4Options{}, 22},
		{"prespecified without room for its time", cat([]byte{optTS, 8, 5, tsPrespec}, a4[:]), ipv4Options{}, 22},
		{"overflow past 15", cat([]byte{optTS, 8, 9, 0xf0 | tsOnly}, ts), ipv4Options{}, 23},
		{"timestamp twice", cat([]byte{optTS, 4, 5, 0, optTS, 4, 5, 0}), ipv4Options{}, 24},
		{"router alert length 2", []byte{optRA, 2, optNOP, optNOP}, ipv4Options{}, 21},
		{"source route pointer 3", cat([]byte{optLSRR, 7, 3}, b4[:], []byte{0}), ipv4Options{}, 22},
		{"two source routes", cat([]byte{optLSRR, 3, 4, optSSRR, 3, 4, 0, 0}), ipv4Options{}, 23},
		{"bad option after a good one", cat([]byte{optRA, 4, 0, 0, 0x88, 9, 0, 0}), ipv4Options{}, 24},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := ipFrame(addrA, ProtoUDP, c.opts, make([]byte, 8))
			hdr, _, err := ParseIPv4(f[EthernetHeaderLen:])
			if err != nil {
				t.Fatal(err)
			}
			o, bad := parseIPv4Options(hdr)
			if bad != c.bad || (bad == 0 && o != c.want) {
				t.Fatalf("got %+v bad %d, want %+v bad %d", o, bad, c.want, c.bad)
			}
		})
	}
}

// paramProblem checks that out is one ICMP parameter problem from A to B
// pointing at ptr and quoting the packet in the frame req.
func paramProblem(t *testing.T, out [][]byte, ptr int, req []byte) {
	t.Helper()
	if len(out) != 1 {
		t.Fatalf("sent %d frames, want a parameter problem", len(out))
	}
	h, pkt, err := ParseIPv4(out[0][EthernetHeaderLen:])
	if err != nil || h.Src() != addrA || h.Dst() != addrB || h.Protocol() != ProtoICMP {
		t.Fatalf("%v: %v→%v proto %d", err, h.Src(), h.Dst(), h.Protocol())
	}
	m := ICMPHeader(pkt[h.HeaderLen():])
	if m.Type() != ICMPParamProblem || m.Code() != 0 || int(m[4]) != ptr || m[5] != 0 || m[6] != 0 || m[7] != 0 || checksum.Checksum(m, 0) != 0 {
		t.Fatalf("got type %d code %d pointer %d, want 12/0/%d: % x", m.Type(), m.Code(), m[4], ptr, m[:8])
	}
	if !bytes.Equal(m[ICMPHeaderLen:], req[EthernetHeaderLen:]) {
		t.Fatalf("quote % x\nwant  % x", m[ICMPHeaderLen:], req[EthernetHeaderLen:])
	}
}

// TestBadOptionsDropped: a request with a malformed option list is not
// answered; a parameter problem points at the offending octet instead
// (RFC 1122 §3.2.1.8; Linux ip_options_compile).
func TestBadOptionsDropped(t *testing.T) {
	cases := []struct {
		name  string
		proto uint8
		opts  []byte
		body  []byte
		ptr   int
	}{
		{"echo, length 0", ProtoICMP, []byte{0x88, 0, 0, 0}, echoRequest(1, 1, []byte("ping")), 20},
		{"echo, length past header", ProtoICMP, []byte{optNOP, 0x88, 8, 0}, echoRequest(1, 1, nil), 21},
		{"echo, record route pointer 3", ProtoICMP, cat([]byte{optRR, 7, 3}, zeros(5)), echoRequest(1, 1, nil), 22},
		{"echo, timestamp overflow past 15", ProtoICMP, cat([]byte{optTS, 8, 9, 0xf1}, ts), echoRequest(1, 1, nil), 23},
		{"syn, length past header", ProtoTCP, []byte{optRA, 8, 0, 0}, synSegment(), 20},
		{"udp, length 1", ProtoUDP, []byte{optNOP, optNOP, 0x44, 1}, make([]byte, 8), 22},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newTestHost(t, prefixA, macA, nil)
			a.neigh.learn(addrB, macB, t0, true)
			answerWithRST(a)
			req := ipFrame(addrA, c.proto, c.opts, c.body)
			a.Input(t0, bytes.Clone(req))
			paramProblem(t, a.take(), c.ptr, req)
			if a.st.IPv4.DropBadOptions != 1 || a.st.ICMP.ParamProblemOut != 1 || a.st.IPv4.Delivered != 0 ||
				len(a.tcp)+len(a.udp) != 0 || a.st.ICMP.EchoRequestsIn != 0 {
				t.Fatalf("stats %+v %+v", a.st.IPv4, a.st.ICMP)
			}
		})
	}
}

// TestParamProblemSuppressed: RFC 1122 §3.2.2 — no parameter problem about
// a datagram to a broadcast address, an ICMP error or a non-first
// fragment, and parameter problems share the ICMP error rate limit; each
// datagram is still dropped and counted.
func TestParamProblemSuppressed(t *testing.T) {
	bad := []byte{0x88, 0, 0, 0}
	unreach := append([]byte{ICMPDestUnreach, CodePortUnreach, 0, 0, 0, 0, 0, 0}, rawIPv4(ProtoUDP, 3, 0, false, make([]byte, 8))[EthernetHeaderLen:]...)
	binary.BigEndian.PutUint16(unreach[2:4], checksum.Checksum(unreach, 0))
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"to broadcast", ipFrame(bcastA, ProtoUDP, bad, make([]byte, 8))},
		{"to limited broadcast", ipFrame(limBcast, ProtoICMP, bad, echoRequest(1, 1, nil))},
		{"icmp error", ipFrame(addrA, ProtoICMP, bad, unreach)},
		{"non-first fragment", ipFragment(addrA, ProtoUDP, bad, 8, false, make([]byte, 8))},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newTestHost(t, prefixA, macA, nil)
			a.neigh.learn(addrB, macB, t0, true)
			a.Input(t0, c.frame)
			if out := a.take(); len(out) != 0 || a.st.IPv4.DropBadOptions != 1 || a.st.ICMP.ParamProblemOut != 0 || len(a.udp) != 0 {
				t.Fatalf("sent %d; stats %+v", len(out), a.st.IPv4)
			}
		})
	}
	t.Run("rate limited", func(t *testing.T) {
		a := newTestHost(t, prefixA, macA, func(c *Config) { c.ICMPBurst = 3; c.ICMPRateLimit = 10 })
		a.neigh.learn(addrB, macB, t0, true)
		for range 10 {
			a.Input(t0, ipFrame(addrA, ProtoUDP, bad, make([]byte, 8)))
		}
		if n := len(a.take()); n != 3 || a.st.ICMP.RateLimited != 7 || a.st.IPv4.DropBadOptions != 10 {
			t.Fatalf("sent %d, limited %d", n, a.st.ICMP.RateLimited)
		}
		a.Input(t0.Add(100*time.Millisecond), ipFrame(addrA, ProtoUDP, bad, make([]byte, 8)))
		if n := len(a.take()); n != 1 {
			t.Fatalf("bucket did not refill: %d", n)
		}
	})
}

// TestSourceRouteDropped: source-routed datagrams are dropped silently,
// as Linux does with accept_source_route=0.
func TestSourceRouteDropped(t *testing.T) {
	for _, typ := range []byte{optLSRR, optSSRR} {
		a := newTestHost(t, prefixA, macA, nil)
		a.neigh.learn(addrB, macB, t0, true)
		a.Input(t0, ipFrame(addrA, ProtoICMP, cat([]byte{typ, 7, 4}, b4[:], []byte{optEOL}), echoRequest(1, 1, nil)))
		a.Input(t0, ipFrame(addrA, ProtoUDP, cat([]byte{optNOP, typ, 7, 8}, a4[:]), make([]byte, 8)))
		if out := a.take(); len(out) != 0 || a.st.IPv4.DropSourceRoute != 2 || a.st.IPv4.DropBadOptions != 0 || len(a.udp) != 0 {
			t.Fatalf("option %d: sent %d; stats %+v", typ, len(out), a.st.IPv4)
		}
	}
}

// TestEchoReplyReturnsOptions: RFC 1122 §3.2.2.6 — the reply returns the
// request's record route and timestamp options, updated as Linux does:
// our address or time recorded for the request's arrival and again for
// the reply's departure while there is room, a full timestamp's overflow
// count raised once, other options left out, EOL padding.
func TestEchoReplyReturnsOptions(t *testing.T) {
	cases := []struct {
		name      string
		opts, out []byte
	}{
		// ping -R: the sender recorded itself; we appear twice.
		{"record route", cat([]byte{optNOP, optRR, 39, 8}, b4[:], zeros(32)),
			cat([]byte{optRR, 39, 16}, b4[:], a4[:], a4[:], zeros(24), []byte{optEOL})},
		{"record route, room for one", cat([]byte{optRR, 11, 8}, b4[:], zeros(4), []byte{optEOL}),
			cat([]byte{optRR, 11, 12}, b4[:], a4[:], []byte{optEOL})},
		{"record route full", cat([]byte{optRR, 11, 12}, b4[:], b4[:], []byte{optEOL}),
			cat([]byte{optRR, 11, 12}, b4[:], b4[:], []byte{optEOL})},
		{"timestamps", cat([]byte{optTS, 16, 5, tsOnly}, zeros(12)),
			cat([]byte{optTS, 16, 13, tsOnly}, ts, ts, zeros(4))},
		{"timestamps and addresses", cat([]byte{optTS, 20, 5, tsAddr}, zeros(16)),
			cat([]byte{optTS, 20, 21, tsAddr}, a4[:], ts, a4[:], ts)},
		{"timestamps full", cat([]byte{optTS, 8, 9, tsOnly}, ts),
			cat([]byte{optTS, 8, 9, 0x10 | tsOnly}, ts)},
		{"addresses full, overflow 2", cat([]byte{optTS, 12, 13, 0x20 | tsAddr}, b4[:], ts),
			cat([]byte{optTS, 12, 13, 0x30 | tsAddr}, b4[:], ts)},
		{"prespecified, ours then another's", cat([]byte{optTS, 20, 5, tsPrespec}, a4[:], zeros(4), b4[:], zeros(4)),
			cat([]byte{optTS, 20, 13, tsPrespec}, a4[:], ts, b4[:], zeros(4))},
		{"prespecified, ours twice", cat([]byte{optTS, 20, 5, tsPrespec}, a4[:], zeros(4), a4[:], zeros(4)),
			cat([]byte{optTS, 20, 21, tsPrespec}, a4[:], ts, a4[:], ts)},
		{"prespecified, another's first", cat([]byte{optTS, 12, 5, tsPrespec}, b4[:], zeros(4)),
			cat([]byte{optTS, 12, 5, tsPrespec}, b4[:], zeros(4))},
		{"unknown flag left alone", cat([]byte{optTS, 8, 5, 2}, zeros(4)),
			cat([]byte{optTS, 8, 5, 2}, zeros(4))},
		// RR goes first whatever the order; router alert is not returned.
		{"mixed", cat([]byte{optNOP, optRA, 4, 0, 0, optTS, 8, 5, tsOnly}, zeros(4), []byte{optRR, 7, 4}, zeros(4)),
			cat([]byte{optRR, 7, 8}, a4[:], []byte{optTS, 8, 9, tsOnly}, ts, []byte{optEOL})},
		{"nothing to return", []byte{optNOP, optRA, 4, 0, 0, optEOL, 0, 0}, nil},
	}
	data := []byte("abcdefghijklmnopqrstuvwxyz0123456789")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newTestHost(t, prefixA, macA, nil)
			a.neigh.learn(addrB, macB, tsNow, true)
			a.Input(tsNow, ipFrame(addrA, ProtoICMP, c.opts, echoRequest(7, 9, data)))
			out := a.take()
			if len(out) != 1 {
				t.Fatalf("sent %d frames; stats %+v", len(out), a.st.IPv4)
			}
			h, pkt, err := ParseIPv4(out[0][EthernetHeaderLen:])
			if err != nil || h.Src() != addrA || h.Dst() != addrB || h.Protocol() != ProtoICMP {
				t.Fatalf("%v: %v→%v", err, h.Src(), h.Dst())
			}
			if got := h[IPv4MinHeaderLen:]; !bytes.Equal(got, c.out) {
				t.Fatalf("options % x\nwant    % x", got, c.out)
			}
			m := ICMPHeader(pkt[h.HeaderLen():])
			if m.Type() != ICMPEchoReply || m.ID() != 7 || m.Seq() != 9 || !bytes.Equal(m[ICMPHeaderLen:], data) || checksum.Checksum(m, 0) != 0 {
				t.Fatalf("bad reply % x", m)
			}
			if EthernetHeader(out[0]).Dst() != macB || a.st.ICMP.EchoRepliesOut != 1 {
				t.Fatal("reply not sent to B")
			}
		})
	}
}

// TestEchoOptionsWithoutRoomNoReply: a pointer that leaves room for part
// of an entry once our arrival is recorded makes Linux's ip_options_echo
// fail, and no reply is sent.
func TestEchoOptionsWithoutRoomNoReply(t *testing.T) {
	for _, opts := range [][]byte{
		cat([]byte{optRR, 11, 5}, zeros(8), []byte{optEOL}),
		cat([]byte{optTS, 14, 5, tsAddr}, zeros(10), []byte{optEOL, optEOL}),
	} {
		a := newTestHost(t, prefixA, macA, nil)
		a.neigh.learn(addrB, macB, tsNow, true)
		a.Input(tsNow, ipFrame(addrA, ProtoICMP, opts, echoRequest(1, 1, nil)))
		if out := a.take(); len(out) != 0 || a.st.ICMP.EchoRequestsIn != 1 || a.st.IPv4.DropBadOptions != 1 || a.st.ICMP.EchoRepliesOut != 0 {
			t.Fatalf("% x: sent %d; stats %+v", opts, len(out), a.st.IPv4)
		}
	}
}

// TestEchoReplyOptionsRoundTrip: a ping with record route between two
// hosts comes back with both addresses recorded, like ping -R between two
// Linux hosts shows (B's own entry is the sender's, made by the test).
func TestEchoReplyOptionsRoundTrip(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	b := newTestHost(t, prefixB, macB, nil)
	a.neigh.learn(addrB, macB, t0, true)
	b.neigh.learn(addrA, macA, t0, true)
	var replyOpts []byte
	a.Input(t0, ipFrame(addrA, ProtoICMP, cat([]byte{optNOP, optRR, 39, 8}, b4[:], zeros(32)), echoRequest(1, 5, []byte("rr"))))
	for _, f := range a.take() {
		h, _, err := ParseIPv4(f[EthernetHeaderLen:])
		if err != nil {
			t.Fatal(err)
		}
		replyOpts = bytes.Clone(h[IPv4MinHeaderLen:])
		b.Input(t0, f)
	}
	if len(b.echoes) != 1 || b.echoes[0] != 5 {
		t.Fatalf("B got replies %v; stats %+v", b.echoes, b.st.IPv4)
	}
	if want := cat([]byte{optRR, 39, 16}, b4[:], a4[:], a4[:], zeros(24), []byte{optEOL}); !bytes.Equal(replyOpts, want) {
		t.Fatalf("options % x", replyOpts)
	}
}

// TestOutputOptionsFragmented: a packet with options larger than the MTU
// (an echo reply to a reassembled request) carries them in its first
// fragment only (RFC 791 §3.1: record route and timestamp are not
// copied), and reassembles.
func TestOutputOptionsFragmented(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	b := newTestHost(t, prefixB, macB, nil)
	a.neigh.learn(addrB, macB, t0, true)
	opts := cat([]byte{optRR, 11, 12}, b4[:], a4[:], []byte{optEOL})
	pkt := make([]byte, Headroom+len(opts)+8+4000)
	copy(pkt[Headroom:], opts)
	for i := range pkt[Headroom+len(opts):] {
		pkt[Headroom+len(opts)+i] = byte(i * 13)
	}
	want := bytes.Clone(pkt[Headroom+len(opts):])
	if err := a.output(t0, pkt, len(opts), ProtoUDP, addrA, addrB, false, 0); err != nil {
		t.Fatal(err)
	}
	frags := a.take()
	if len(frags) != 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	for i, f := range frags {
		h, _, err := ParseIPv4(f[EthernetHeaderLen:])
		if err != nil || len(f) > EthernetHeaderLen+1500 || h.FragOffset()%8 != 0 {
			t.Fatalf("fragment %d: %v, %d bytes at %d", i, err, len(f), h.FragOffset())
		}
		wantHL := IPv4MinHeaderLen
		if i == 0 {
			wantHL += len(opts)
		}
		if h.HeaderLen() != wantHL {
			t.Fatalf("fragment %d header %d bytes, want %d", i, h.HeaderLen(), wantHL)
		}
		b.Input(t0, f)
	}
	if h, _, _ := ParseIPv4(frags[0][EthernetHeaderLen:]); !bytes.Equal(h[IPv4MinHeaderLen:], opts) {
		t.Fatalf("first fragment's options % x", h[IPv4MinHeaderLen:])
	}
	if len(b.udp) != 1 || !bytes.Equal(b.udp[0], want) {
		t.Fatalf("reassembled %d datagrams; stats %+v", len(b.udp), b.st.IPv4)
	}
}

// BenchmarkEchoIngressRecordRoute is BenchmarkEchoIngress for a request
// carrying ping -R's record route option.
func BenchmarkEchoIngressRecordRoute(b *testing.B) {
	var st stats.Stats
	h := New(Config{Addr: prefixA, MAC: macA, MTU: 1500, Ethernet: true, Seed: 1},
		func([]byte) error { return nil }, &st, Handlers{}, nil)
	h.neigh.learn(addrB, macB, tsNow, true)
	req := ipFrame(addrA, ProtoICMP, cat([]byte{optNOP, optRR, 39, 8}, b4[:], zeros(32)), echoRequest(1, 1, make([]byte, 56)))
	frame := make([]byte, len(req))
	b.ReportAllocs()
	for b.Loop() {
		copy(frame, req)
		h.Input(tsNow, frame)
	}
	if st.ICMP.EchoRepliesOut == 0 {
		b.Fatal("no replies")
	}
}
