package tcp

import (
	"fmt"
	"net/netip"
	"testing"
)

// cookieListening returns a listening transcript with backlog 1 whose
// half-open slot is taken by a SYN from another port, so that the next
// SYN is answered with a cookie.
func cookieListening(t *testing.T, cfg *Config) *transcript {
	t.Helper()
	tt := newListening(t, cfg, 1)
	if c := tt.lin(0, "SYN seq=9000", 1); c == nil || tt.l.HalfOpen() != 1 {
		t.Fatal("filler SYN not accepted")
	}
	tt.want(0, "SYN|ACK seq=1000 ack=9001")
	return tt
}

// lin delivers a segment to the listener from the peer's address with
// source port port (0: the transcript's peer) and returns what Input
// returned.
func (tt *transcript) lin(ms float64, spec string, port uint16) *Conn {
	tt.t.Helper()
	tt.advance(ms)
	seg := parseSpec(tt.t, spec, true)
	remote := ttLocal
	if port != 0 {
		remote = netip.AddrPortFrom(ttLocal.Addr(), port)
	}
	return tt.l.Input(tt.now, &seg, remote, EmitFunc(tt.emit))
}

func (tt *transcript) wantCookieStats(want ListenerStats) {
	tt.t.Helper()
	if got := tt.l.Stats(); got != want {
		tt.t.Fatalf("at %vms: listener stats %+v, want %+v", tt.ms(), got, want)
	}
}

// RFC 4987 §3.6: with the half-open connections at the backlog, a SYN is
// answered statelessly with a cookie SYN-ACK; the ACK that returns it
// creates the connection ESTABLISHED, with the MSS rounded down to the
// cookie's table (1400 → 1300) and the window scale and SACK-permitted
// carried in the low bits of our timestamp, and data flows both ways.
func TestSynCookieTimestamps(t *testing.T) {
	tt := cookieListening(t, nil)
	tt.in(5, "SYN seq=5000 mss=1400 ws=2 sackok ts=100/0")
	sa := tt.want(5, "SYN|ACK ack=5001 mss=1460 ws=7 sackok")
	if tt.c != nil || tt.l.HalfOpen() != 1 || tt.l.Queued() != 0 {
		t.Fatalf("cookie kept state: conn %v half-open %d", tt.c, tt.l.HalfOpen())
	}
	if sa.Seq&3 != 1 || !sa.Opts.HasTS || sa.Opts.TSEcr != 100 || sa.Opts.TSVal&tsOptMask != 2|tsSACKBit {
		t.Fatalf("cookie SYN-ACK %v: want MSS index 1, options 0x12 in TSval", sa)
	}
	tt.wantCookieStats(ListenerStats{CookiesSent: 1})
	tt.wantNothing(3000) // no retransmission: nothing is kept

	iss := sa.Seq
	tt.in(3010, fmt.Sprintf("ACK seq=5001 ack=%d wnd=1000 ts=110/%d len=100", iss+1, sa.Opts.TSVal))
	tt.wantState(Established)
	tt.wantEvent(EvEstablished | EvWritable | EvReadable)
	tt.wantCookieStats(ListenerStats{CookiesSent: 1, CookiesValidated: 1})
	if tt.l.Queued() != 1 || tt.l.HalfOpen() != 1 {
		t.Fatalf("queued %d half-open %d, want 1 and 1", tt.l.Queued(), tt.l.HalfOpen())
	}
	c := tt.c
	if c.mss != 1300-12 || !c.tsOK || !c.sackOK || !c.wsOK || c.sndWScale != 2 || c.rcvWScale != 7 || c.sndWnd != 4000 {
		t.Fatalf("negotiated mss %d ts %v sack %v ws %v %d/%d sndWnd %d", c.mss, c.tsOK, c.sackOK, c.wsOK, c.sndWScale, c.rcvWScale, c.sndWnd)
	}
	if got, err := tt.read(3010); len(got) != 100 || err != nil {
		t.Fatalf("read %d, %v", len(got), err)
	}
	tt.want(3010, "ACK ack=5101") // reading opened the window (maybeWindowUpdate)
	tt.write(3020, 3000)
	d1 := tt.want(3020, fmt.Sprintf("ACK seq=%d ack=5101 len=1288", iss+1))
	if int32(d1.Opts.TSVal-sa.Opts.TSVal) <= 0 || d1.Opts.TSEcr != 110 {
		t.Fatalf("timestamps %d/%d after SYN-ACK TSval %d", d1.Opts.TSVal, d1.Opts.TSEcr, sa.Opts.TSVal)
	}
	tt.want(3020, fmt.Sprintf("ACK seq=%d ack=5101 len=1288", iss+1+1288))
	tt.want(3020, fmt.Sprintf("ACK|PSH seq=%d ack=5101 len=424", iss+1+2576))
	tt.in(3030, fmt.Sprintf("ACK seq=5101 ack=%d wnd=1000 ts=120/%d", iss+3001, d1.Opts.TSVal))
	tt.wantNothing(3100)
	if c.sndUna != iss+3001 || c.Stats().BytesReceived != 100 {
		t.Fatalf("sndUna %d received %d", c.sndUna, c.Stats().BytesReceived)
	}
}

// Without timestamps the cookie carries only the MSS: the SYN-ACK offers
// neither window scaling nor SACK (Linux does the same).
func TestSynCookieNoTimestamps(t *testing.T) {
	tt := cookieListening(t, nil)
	tt.in(5, "SYN seq=5000 mss=1460 ws=2 sackok")
	sa := tt.want(5, "SYN|ACK ack=5001 mss=1460 wnd=65535")
	if sa.Opts.HasWScale || sa.Opts.SACKPermitted || sa.Opts.HasTS || sa.Seq&3 != 3 {
		t.Fatalf("cookie SYN-ACK %v", sa)
	}
	tt.in(20, fmt.Sprintf("ACK seq=5001 ack=%d wnd=1000", sa.Seq+1))
	tt.wantState(Established)
	c := tt.c
	if c.mss != 1460 || c.tsOK || c.sackOK || c.wsOK || c.sndWnd != 1000 {
		t.Fatalf("negotiated mss %d ts %v sack %v ws %v sndWnd %d", c.mss, c.tsOK, c.sackOK, c.wsOK, c.sndWnd)
	}
	tt.in(30, "ACK|PSH seq=5001 ack="+fmtInt(int(sa.Seq+1))+" wnd=1000 len=10")
	tt.want(70, "ACK ack=5011") // delayed ACK
	tt.write(80, 10)
	tt.want(80, fmt.Sprintf("ACK|PSH seq=%d ack=5011 len=10", sa.Seq+1))

	// A peer MSS below the table's smallest rounds to 536; none means 536.
	for _, c := range []struct {
		mss  uint16
		want uint32
	}{{0, 0}, {100, 0}, {536, 0}, {1299, 0}, {1300, 1}, {1459, 2}, {1460, 3}, {9000, 3}} {
		if got := mssIndex(msstabFor(v4peer), c.mss); got != c.want {
			t.Errorf("IPv4: mssIndex(%d) = %d, want %d", c.mss, got, c.want)
		}
	}
	// An IPv6 peer's table is IPv6's (an IPv4-mapped peer is IPv4).
	for _, c := range []struct {
		mss  uint16
		want uint32
	}{{0, 0}, {1220, 0}, {1419, 0}, {1420, 1}, {1440, 2}, {1460, 2}, {8940, 3}, {65495, 3}} {
		if got := mssIndex(msstabFor(v6peer), c.mss); got != c.want {
			t.Errorf("IPv6: mssIndex(%d) = %d, want %d", c.mss, got, c.want)
		}
	}
	if msstabFor(netip.AddrPortFrom(netip.AddrFrom16(v4peer.Addr().As16()), 1)) != &msstab[0] {
		t.Error("an IPv4-mapped peer takes the IPv6 table")
	}
}

var (
	v4peer = netip.MustParseAddrPort("198.18.0.2:40000")
	v6peer = netip.MustParseAddrPort("[fd00::2]:40000")
)

// A forged ACK (a wrong cookie, or the right cookie with other options in
// its timestamp echo) draws a RST, as for any ACK without a connection.
func TestSynCookieForged(t *testing.T) {
	tt := cookieListening(t, nil)
	tt.in(5, "SYN seq=5000 mss=1460 ts=100/0")
	sa := tt.want(5, "SYN|ACK ack=5001")
	for i, spec := range []string{
		fmt.Sprintf("ACK seq=5001 ack=%d ts=110/%d", sa.Seq+1+4, sa.Opts.TSVal),    // wrong hash bits
		fmt.Sprintf("ACK seq=5002 ack=%d ts=110/%d", sa.Seq+1, sa.Opts.TSVal),      // another ISN
		fmt.Sprintf("ACK seq=5001 ack=%d ts=110/%d", sa.Seq+1, sa.Opts.TSVal^0x10), // SACK forged in
		fmt.Sprintf("ACK seq=5001 ack=%d", sa.Seq+1),                               // timestamps dropped
	} {
		if c := tt.lin(10, spec, 0); c != nil {
			t.Fatalf("%s: accepted", spec)
		}
		r := tt.want(10, "RST")
		if r.Seq == 0 {
			t.Fatalf("%s: %v", spec, r)
		}
		tt.wantCookieStats(ListenerStats{CookiesSent: 1, CookiesRejected: uint64(i + 1)})
	}
	if tt.l.Queued() != 0 {
		t.Fatal("forged ACK queued a connection")
	}
	// The genuine ACK still works.
	tt.in(20, fmt.Sprintf("ACK seq=5001 ack=%d ts=110/%d", sa.Seq+1, sa.Opts.TSVal))
	tt.wantState(Established)
}

// A cookie is valid in the 64 s counter it was made in and the next one;
// two counters later it is rejected (ttT0 starts a counter). Three
// counters after the last cookie sent, ACKs are no longer checked at all
// (nor counted): they draw a RST as at any listener.
func TestSynCookieExpiry(t *testing.T) {
	for _, c := range []struct {
		ms       float64
		ok       bool
		rejected uint64
	}{{63999, true, 0}, {64000, true, 0}, {127999, true, 0}, {128000, false, 1}, {191999, false, 1}, {192000, false, 0}} {
		t.Run(fmtInt(int(c.ms)), func(t *testing.T) {
			tt := cookieListening(t, &Config{SynRcvdTimeout: 1 << 62})
			tt.in(0, "SYN seq=5000 mss=1460")
			sa := tt.want(0, "SYN|ACK ack=5001")
			got := tt.lin(c.ms, fmt.Sprintf("ACK seq=5001 ack=%d", sa.Seq+1), 0)
			if (got != nil) != c.ok {
				t.Fatalf("ACK at %vms: conn %v, want valid %v", c.ms, got, c.ok)
			}
			if c.ok {
				tt.wantCookieStats(ListenerStats{CookiesSent: 1, CookiesValidated: 1})
				return
			}
			tt.want(c.ms, fmt.Sprintf("RST seq=%d", sa.Seq+1))
			tt.wantCookieStats(ListenerStats{CookiesSent: 1, CookiesRejected: c.rejected})
		})
	}
}

// The accept queue bounds cookie connections too: a valid cookie that
// finds the queue full is dropped silently (the peer retransmits), and
// completes once the application accepts; SYNs are dropped, not answered,
// while the queue is full. ACKs are checked against cookies only while
// the listener has sent some recently.
func TestSynCookieAcceptQueue(t *testing.T) {
	tt := cookieListening(t, nil)
	var sa [2]Segment
	for i := range sa {
		if tt.lin(1, "SYN seq=5000 mss=1460", uint16(2000+i)) != nil {
			t.Fatal("SYN beyond the backlog made state")
		}
		sa[i] = tt.want(1, "SYN|ACK ack=5001")
	}
	a := tt.lin(10, fmt.Sprintf("ACK seq=5001 ack=%d len=5", sa[0].Seq+1), 2000)
	if a == nil || a.State() != Established || a.TakeEvents()&EvEstablished == 0 || tt.l.Queued() != 1 {
		t.Fatalf("first cookie: %v queued %d", a, tt.l.Queued())
	}
	ack := fmt.Sprintf("ACK seq=5001 ack=%d", sa[1].Seq+1)
	if b := tt.lin(20, ack, 2001); b != nil || tt.l.Queued() != 1 {
		t.Fatalf("accept queue overflowed: queued %d", tt.l.Queued())
	}
	tt.wantNothing(20)
	tt.wantCookieStats(ListenerStats{CookiesSent: 2, CookiesValidated: 2, CookiesDropped: 1})
	if tt.lin(30, "SYN seq=7000", 2002) != nil {
		t.Fatal("SYN with a full accept queue made state")
	}
	tt.wantNothing(30)
	tt.l.Accepted()
	if b := tt.lin(40, ack, 2001); b == nil || b.State() != Established || tt.l.Queued() != 1 {
		t.Fatal("cookie not honoured after Accepted")
	}

	// A listener that never sent a cookie does not check ACKs.
	tt2 := newListening(t, nil, 1)
	if tt2.lin(0, fmt.Sprintf("ACK seq=5001 ack=%d", sa[0].Seq+1), 2000) != nil {
		t.Fatal("cookie accepted by a listener that sent none")
	}
	tt2.want(0, "RST")
	tt2.wantCookieStats(ListenerStats{})
}
