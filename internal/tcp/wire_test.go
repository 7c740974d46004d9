package tcp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/gotcpip/netstack/internal/checksum"
)

// Wire behaviour where RFC 9293 leaves a choice or Linux refines it; each
// expectation was checked against Linux.

// RFC 9293 §3.10.7.4 and RFC 6191, as Linux's tcp_timewait_state_process: a
// SYN that ends TIME-WAIT gives the new connection the ISN old SND.NXT +
// 65535 + 2, above everything the old one sent, though the ISN generator
// (here fixed at 1000) would start below it; and the listener answers it
// with a real connection, not a cookie, even with its half-open queue full.
func TestTimeWaitReuseISN(t *testing.T) {
	tt := newListening(t, nil, 1)
	tt.in(0, "SYN seq=5000 mss=1460")
	tt.want(0, "SYN|ACK seq=1000 ack=5001")
	tt.in(10, "ACK seq=5001 ack=1001")
	tt.wantState(Established)
	tt.l.Accepted()
	tt.write(20, 1000)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=1000")
	tt.in(30, "ACK seq=5001 ack=2001")
	tt.do(40, tt.c.Close)
	tt.want(40, "FIN|ACK seq=2001 ack=5001")
	tt.in(50, "FIN|ACK seq=5001 ack=2002")
	tt.want(50, "ACK seq=2002 ack=5002")
	tt.wantState(TimeWait)
	old := tt.c

	// Fill the half-open queue from another port (its SYN takes the
	// generator's ISN): the next fresh SYN gets a cookie.
	other := netip.AddrPortFrom(ttLocal.Addr(), ttLocal.Port()+1)
	syn := parseSpec(t, "SYN seq=7000 mss=1460", true)
	if tt.l.Input(tt.now, &syn, other, EmitFunc(tt.emit)) == nil {
		t.Fatal("SYN from another port: no connection")
	}
	tt.want(50, "SYN|ACK seq=1000 ack=7001")
	third := netip.AddrPortFrom(ttLocal.Addr(), ttLocal.Port()+2)
	syn = parseSpec(t, "SYN seq=8000 mss=1460", true)
	if tt.l.Input(tt.now, &syn, third, EmitFunc(tt.emit)) != nil {
		t.Fatal("SYN over the backlog: a connection, want a cookie")
	}
	tt.want(50, "SYN|ACK ack=8001")

	// The reopening SYN: the TIME-WAIT connection ends, and the shell hands
	// the same segment to the listener.
	tt.advance(60)
	syn = parseSpec(t, "SYN seq=9000 mss=1460", true)
	old.Input(tt.now, &syn)
	if old.State() != Closed || !old.ReopenedBy() {
		t.Fatalf("TIME-WAIT connection: state %v, ReopenedBy %v", old.State(), old.ReopenedBy())
	}
	tt.wantNothing(60)
	tt.c = tt.l.Input(tt.now, &syn, ttLocal, EmitFunc(tt.emit))
	if tt.c == nil {
		t.Fatal("reopening SYN: no connection")
	}
	tt.want(60, "SYN|ACK seq=67539 ack=9001") // 2002 + 65535 + 2
	if !tt.c.iss.GreaterThan(old.sndMax) {
		t.Fatalf("new ISS %d not above the old SND.NXT %d", tt.c.iss, old.sndMax)
	}
	tt.in(70, "ACK seq=9001 ack=67540")
	tt.wantState(Established)
	// The peer's ACK of the old incarnation's data is now far below
	// SND.UNA: a challenge ACK (RFC 5961 §5.2), nothing acknowledged.
	tt.in(80, "ACK seq=9001 ack=2002")
	tt.want(80, "ACK seq=67540 ack=9001")
	if tt.c.sndUna != 67540 {
		t.Fatalf("SND.UNA %d after an old ACK, want 67540", tt.c.sndUna)
	}
}

// As Linux (tcp_rcv_state_process): a listener discards a SYN that also
// carries FIN, keeps no half-open connection for it, and answers the
// proper SYN that follows from the same port. A SYN+FIN ending TIME-WAIT
// reaches the listener the same way and is discarded too; in a
// synchronized state it draws the challenge ACK of any SYN (RFC 5961 §4.2).
func TestSynFinDiscarded(t *testing.T) {
	tt := newListening(t, nil, 8)
	tt.in(0, "SYN|FIN seq=5000 mss=1460")
	tt.wantNothing(0)
	if tt.c != nil || tt.l.HalfOpen() != 0 || tt.l.Stats().DropSynFin != 1 {
		t.Fatalf("SYN+FIN: connection %v, half-open %d, counted %d", tt.c != nil, tt.l.HalfOpen(), tt.l.Stats().DropSynFin)
	}
	tt.in(1000, "SYN seq=6000 mss=1460")
	tt.want(1000, "SYN|ACK seq=1000 ack=6001")
	tt.wantState(SynReceived)
	tt.in(1010, "ACK seq=6001 ack=1001")
	tt.wantState(Established)
	tt.in(1020, "SYN|FIN seq=6001")
	tt.want(1020, "ACK seq=1001 ack=6001") // challenge ACK
	tt.wantState(Established)

	// Into TIME-WAIT, then a SYN+FIN above RCV.NXT.
	tt.l.Accepted()
	tt.do(1030, tt.c.Close)
	tt.want(1030, "FIN|ACK seq=1001 ack=6001")
	tt.in(1040, "FIN|ACK seq=6001 ack=1002")
	tt.want(1040, "ACK seq=1002 ack=6002")
	tt.wantState(TimeWait)
	synfin := parseSpec(t, "SYN|FIN seq=9000", true)
	tt.c.Input(tt.now, &synfin)
	if !tt.c.ReopenedBy() {
		t.Fatal("SYN+FIN above RCV.NXT did not end TIME-WAIT")
	}
	if tt.l.Input(tt.now, &synfin, ttLocal, EmitFunc(tt.emit)) != nil || tt.l.HalfOpen() != 0 {
		t.Fatal("listener took the SYN+FIN from TIME-WAIT")
	}
	tt.wantNothing(1040)
	tt.c = nil
	tt.in(2000, "SYN seq=9000 mss=1460")
	tt.want(2000, "SYN|ACK seq=1000 ack=9001")
}

// As Linux: a data segment whose options hold a bad length is processed, its
// data delivered and acknowledged; decoding stops at the bad option
// (header validation, data offset and checksum, is unchanged).
func TestBadOptionLengthDelivered(t *testing.T) {
	tt := established(t, nil)
	for i, mut := range []func(o []byte){
		func(o []byte) { o[0], o[1] = 8, 40 }, // timestamps, length past the header
		func(o []byte) { o[0], o[1] = 2, 3 },  // MSS of length 3 (skipped), then NOPs
		func(o []byte) { o[0], o[1] = 30, 1 }, // a length below 2
	} {
		seq := 5001 + 100*i
		seg := Segment{SrcPort: ttRemote.Port(), DstPort: ttLocal.Port(), Seq: Seq(seq), Ack: 1001,
			Flags: FlagACK | FlagPSH, Wnd: 65535, Opts: Options{MSS: 1}, Payload: make([]byte, 100)}
		for j := range seg.Payload {
			seg.Payload[j] = byte(i)
		}
		n := seg.HeaderLen() + len(seg.Payload)
		b := make([]byte, n)
		seg.Encode(b, pseudoFor(n))
		opts := b[HeaderMinLen:seg.HeaderLen()]
		opts[2], opts[3] = optNOP, optNOP
		mut(opts)
		Header(b).SetChecksum(0)
		Header(b).SetChecksum(checksum.Checksum(b, pseudoFor(n)))
		got, err := Parse(b, pseudoFor(n))
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		ms := float64(20 + 100*i)
		tt.advance(ms)
		tt.c.Input(tt.now, &got)
		tt.want(ms+40, "ACK seq=1001 ack="+fmtInt(seq+100)) // the delayed ACK
		data, err := tt.read(ms + 50)
		if err != nil || len(data) != 100 || data[0] != byte(i) || data[99] != byte(i) {
			t.Fatalf("segment %d: read %d bytes (%v), want its 100", i, len(data), err)
		}
	}
}

// establishedSACK is established with SACK negotiated.
func establishedSACK(t *testing.T, cfg *Config) *transcript {
	t.Helper()
	return establishedWith(t, cfg, " sackok")
}

// RFC 2018 §4: the first SACK block holds the segment that triggered the
// ACK, the others follow most recently changed first (not in sequence
// order), and when they do not all fit the stalest is left out.
func TestSACKBlockOrder(t *testing.T) {
	tt := establishedSACK(t, nil)
	tt.in(20, "ACK seq=5201 ack=1001 len=100")
	tt.want(20, "ACK seq=1001 ack=5001 sack=5201-5301")
	tt.in(21, "ACK seq=5401 ack=1001 len=100")
	tt.want(21, "ACK seq=1001 ack=5001 sack=5401-5501 sack=5201-5301")
	tt.in(22, "ACK seq=5601 ack=1001 len=100")
	tt.want(22, "ACK seq=1001 ack=5001 sack=5601-5701 sack=5401-5501 sack=5201-5301")
	tt.in(23, "ACK seq=5801 ack=1001 len=100")
	tt.want(23, "ACK seq=1001 ack=5001 sack=5801-5901 sack=5601-5701 sack=5401-5501 sack=5201-5301")
	// The oldest range grows: it goes first, the rest keep their order.
	tt.in(24, "ACK seq=5301 ack=1001 len=50")
	tt.want(24, "ACK seq=1001 ack=5001 sack=5201-5351 sack=5801-5901 sack=5601-5701 sack=5401-5501")
	// A fifth range: four fit, and 5401-5501, unchanged the longest, is left out.
	tt.in(25, "ACK seq=6001 ack=1001 len=100")
	tt.want(25, "ACK seq=1001 ack=5001 sack=6001-6101 sack=5201-5351 sack=5801-5901 sack=5601-5701")
	// Filling the first hole pops 5201-5351: the others, newest first.
	tt.in(26, "ACK seq=5001 ack=1001 len=200")
	tt.want(26, "ACK seq=1001 ack=5351 sack=6001-6101 sack=5801-5901 sack=5601-5701 sack=5401-5501")
}

// The age clock of the out-of-order ranges renumbers itself instead of
// wrapping: a range changed just after the 2^32nd change still counts as
// newer than one changed just before.
func TestSACKOrderClockWraps(t *testing.T) {
	var l oooList
	l.insert(100, 200, oooMin) // A
	l.insert(300, 400, oooMin) // B
	l.insert(500, 600, oooMin) // C
	l.clock = ^uint32(0) - 6   // as after 2^32-7 changes
	for i := 0; i < 5; i++ {
		if i%2 == 0 {
			l.insert(300, 310, oooMin) // a repeat inside B: no growth, but news
		} else {
			l.insert(500, 510, oooMin)
		}
	}
	l.insert(100, 110, oooMin) // A: the last change before the clock would wrap
	if l.clock != ^uint32(0) {
		t.Fatalf("clock %d, want the last before it wraps", l.clock)
	}
	l.insert(300, 310, oooMin) // B: the first after
	var o Options
	l.sackBlocks(&o)
	want := []SACKBlock{{300, 400}, {100, 200}, {500, 600}}
	if o.NumSACK != 3 || !slices.Equal(o.SACK[:3], want) {
		t.Fatalf("blocks %v, want %v", o.SACK[:o.NumSACK], want)
	}
}

// RFC 2883 §4, as Linux's tcp_data_queue: a segment half below RCV.NXT,
// half new, is trimmed and its old half reported in a D-SACK block, the
// first, on the next ACK only.
func TestDSACKPartialDuplicate(t *testing.T) {
	tt := establishedSACK(t, nil)
	tt.in(20, "ACK seq=5001 ack=1001 len=100")
	tt.want(60, "ACK seq=1001 ack=5101 sack=none")
	tt.in(100, "ACK seq=5051 ack=1001 len=100")
	tt.want(140, "ACK seq=1001 ack=5151 sack=5051-5101")
	tt.in(200, "ACK seq=5151 ack=1001 len=100")
	tt.want(240, "ACK seq=1001 ack=5251 sack=none")
	// With data held out of order: the D-SACK block, then the SACK block.
	tt.in(300, "ACK seq=5351 ack=1001 len=100")
	tt.want(300, "ACK seq=1001 ack=5251 sack=5351-5451")
	tt.in(310, "ACK seq=5201 ack=1001 len=100")
	tt.want(310, "ACK seq=1001 ack=5301 sack=5201-5251 sack=5351-5451")
	data, err := tt.read(320)
	if err != nil || len(data) != 300 {
		t.Fatalf("read %d bytes (%v), want 300", len(data), err)
	}
}

// RFC 2883 §4: a segment repeating data held out of order is reported in a
// D-SACK block, first, followed by the SACK block that holds it; a repeat
// in part reports the repeated part; an in-order segment overlapping held
// data reports the overlap.
func TestDSACKOutOfOrderDuplicate(t *testing.T) {
	tt := establishedSACK(t, nil)
	tt.in(20, "ACK seq=5101 ack=1001 len=100")
	tt.want(20, "ACK seq=1001 ack=5001 sack=5101-5201")
	tt.in(21, "ACK seq=5301 ack=1001 len=100")
	tt.want(21, "ACK seq=1001 ack=5001 sack=5301-5401 sack=5101-5201")
	tt.in(22, "ACK seq=5101 ack=1001 len=100")
	tt.want(22, "ACK seq=1001 ack=5001 sack=5101-5201 sack=5101-5201 sack=5301-5401")
	tt.in(23, "ACK seq=5151 ack=1001 len=100")
	tt.want(23, "ACK seq=1001 ack=5001 sack=5151-5201 sack=5101-5251 sack=5301-5401")
	tt.in(24, "ACK seq=5001 ack=1001 len=300")
	tt.want(24, "ACK seq=1001 ack=5401 sack=5101-5251")
	tt.in(25, "ACK seq=5401 ack=1001 len=100")
	tt.want(65, "ACK seq=1001 ack=5501 sack=none")
	data, err := tt.read(70)
	if err != nil || len(data) != 500 {
		t.Fatalf("read %d bytes (%v), want 500", len(data), err)
	}
}

// RFC 9293 §3.8.6.3 and RFC 5681 §4.2: an ACK for at least every second
// full-sized segment, "full-sized" being the peer's sending MSS as Linux's
// rcv_mss estimates it: the largest segment seen, at most the MSS we
// advertised, at least 536.
func TestDelayedAckPeerMSS(t *testing.T) {
	t.Run("1000-byte segments", func(t *testing.T) {
		tt := established(t, nil)
		tt.in(20, "ACK seq=5001 ack=1001 len=1000")
		tt.in(21, "ACK seq=6001 ack=1001 len=1000")
		tt.want(21, "ACK seq=1001 ack=7001")
		tt.in(22, "ACK seq=7001 ack=1001 len=1000")
		tt.want(62, "ACK seq=1001 ack=8001") // one segment: the timer
	})
	t.Run("floor", func(t *testing.T) {
		tt := established(t, nil)
		for i := 0; i < 3; i++ {
			tt.in(float64(20+i), "ACK seq="+fmtInt(5001+300*i)+" ack=1001 len=300")
		}
		tt.wantNothing(22)
		tt.in(23, "ACK seq=5901 ack=1001 len=300") // 1200 bytes: over two of 536
		tt.want(23, "ACK seq=1001 ack=6201")
	})
	t.Run("at most our MSS", func(t *testing.T) {
		tt := established(t, nil)
		tt.in(20, "ACK seq=5001 ack=1001 len=4000") // coalesced by the link
		tt.want(20, "ACK seq=1001 ack=9001")
		tt.in(21, "ACK seq=9001 ack=1001 len=1460")
		tt.in(22, "ACK seq=10461 ack=1001 len=1460")
		tt.want(22, "ACK seq=1001 ack=11921")
	})
}

// RFC 7323 §4.3: TS.Recent takes the TSval of a segment at or below
// Last.ACK.sent only, so a delayed ACK echoes the timestamp of the first
// segment it acknowledges (and the peer's RTT includes the delay), not the
// newest; a segment that fills a hole is echoed at once.
func TestTSRecentLastAckSent(t *testing.T) {
	tt, syn := tsEstablished(t, "SYN|ACK seq=5000 ack=1001 mss=1460 sackok ts=100/")
	ts := func(ms int) int { return int(syn.Opts.TSVal) + ms } // our clock
	ecr := itoa(ts(10))
	tt.in(20, "ACK seq=5001 ack=1001 len=100 ts=200/"+ecr)
	tt.in(25, "ACK seq=5101 ack=1001 len=100 ts=205/"+ecr)
	tt.want(60, "ACK seq=1001 ack=5201 ts="+itoa(ts(60))+"/200")
	tt.in(70, "ACK seq=5201 ack=1001 len=100 ts=210/"+ecr)
	tt.want(110, "ACK seq=1001 ack=5301 ts="+itoa(ts(110))+"/210")
	// Out of order: the ACK at once echoes the last in-order timestamp;
	// the segment that fills the hole is echoed.
	tt.in(120, "ACK seq=5401 ack=1001 len=100 ts=220/"+ecr)
	tt.want(120, "ACK seq=1001 ack=5301 ts="+itoa(ts(120))+"/210")
	tt.in(125, "ACK seq=5301 ack=1001 len=100 ts=225/"+ecr)
	tt.want(125, "ACK seq=1001 ack=5501 ts="+itoa(ts(125))+"/225")
}
