package tcp

import (
	"io"
	"testing"
	"time"
)

// One transcript per RFC 9293 rule (and the RFCs it leans on).

// RFC 9293 §3.5 figure 7 with a lost SYN: RTO 1 s (RFC 6298 §2.1), then
// the SYN-ACK completes the handshake.
func TestHandshakeLostSYN(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000 mss=1460 ws=7 sackok")
	tt.wantState(SynSent)
	// lost
	tt.want(1000, "SYN seq=1000")
	tt.in(1010, "SYN|ACK seq=5000 ack=1001 mss=1460")
	tt.want(1010, "ACK seq=1001 ack=5001")
	tt.wantState(Established)
	tt.wantEvent(EvEstablished | EvWritable)
	tt.wantNothing(200000)
}

// A lost SYN-ACK seen from the passive side: the listener's child
// retransmits on its RTO, and answers a retransmitted SYN at once.
func TestHandshakeLostSYNACK(t *testing.T) {
	tt := newListening(t, nil, 8)
	tt.in(0, "SYN seq=5000 mss=1460 ws=2")
	tt.want(0, "SYN|ACK seq=1000 ack=5001 mss=1460 ws=7")
	tt.wantState(SynReceived)
	if tt.l.HalfOpen() != 1 {
		t.Fatalf("half-open %d", tt.l.HalfOpen())
	}
	// lost; the peer's SYN is retransmitted first
	tt.in(500, "SYN seq=5000 mss=1460 ws=2")
	tt.want(500, "SYN|ACK seq=1000 ack=5001")
	tt.want(1000, "SYN|ACK seq=1000 ack=5001") // our RTO
	tt.in(1010, "ACK seq=5001 ack=1001 wnd=1000")
	tt.wantState(Established)
	tt.wantEvent(EvEstablished)
	if tt.l.HalfOpen() != 0 || tt.l.Queued() != 1 {
		t.Fatalf("half-open %d queued %d", tt.l.HalfOpen(), tt.l.Queued())
	}
	tt.wantNothing(100000)
	if tt.c.sndWnd != 1000<<2 {
		t.Fatalf("send window %d, want scaled 4000", tt.c.sndWnd)
	}
}

// The dial timeout: SynRetries retransmissions with exponential backoff
// (1+2+4+8+16+32+64 = 127 s as Linux), then ErrTimedOut.
func TestHandshakeDialTimeout(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	for _, ms := range []float64{1000, 3000, 7000, 15000, 31000, 63000} {
		tt.want(ms, "SYN seq=1000")
	}
	tt.wantNothing(126999)
	tt.advance(127000)
	tt.wantState(Closed)
	tt.wantErr(ErrTimedOut)
	tt.wantEvent(EvError | EvClosed)
}

// RFC 9293 §3.10.7.3: a RST acking our SYN refuses the connection.
func TestHandshakeRefused(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	tt.in(5, "RST|ACK seq=0 ack=999") // unacceptable ACK: ignored
	tt.wantNothing(5)
	tt.wantState(SynSent)
	tt.in(10, "RST|ACK seq=0 ack=1001")
	tt.wantState(Closed)
	tt.wantErr(ErrRefused)
	if _, err := tt.c.Write(tt.now, []byte("x")); err != ErrRefused {
		t.Fatalf("Write after refusal: %v", err)
	}
}

// RFC 9293 §3.10.7.3: an unacceptable ACK in SYN-SENT draws <SEQ=SEG.ACK><CTL=RST>.
func TestSynSentBadAck(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	tt.in(10, "SYN|ACK seq=5000 ack=7777")
	tt.want(10, "RST seq=7777")
	tt.wantState(SynSent)
}

// RFC 9293 §3.5 figure 8: simultaneous open.
func TestSimultaneousOpen(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	tt.in(5, "SYN seq=5000 mss=1460")
	tt.want(5, "SYN|ACK seq=1000 ack=5001")
	tt.wantState(SynReceived)
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460")
	tt.wantState(Established)
	tt.wantEvent(EvEstablished)
	tt.wantNothing(10000)
}

// RFC 9293 §3.10.7.1: RST for a segment to a closed port.
func TestRstToClosedPort(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SYN seq=5000", "RST|ACK seq=0 ack=5001"},
		{"ACK seq=5000 ack=77", "RST seq=77"},
		{"ACK|PSH seq=5000 ack=77 len=10", "RST seq=77"},
		{"FIN seq=5000 len=10", "RST|ACK seq=0 ack=5011"},
		{"SYN|FIN seq=5000 len=3", "RST|ACK seq=0 ack=5005"},
	} {
		seg := parseSpec(t, c.in, true)
		r, ok := RstFor(&seg)
		if !ok {
			t.Fatalf("%s: no RST", c.in)
		}
		matchSpec(t, r, c.want)
		if r.SrcPort != seg.DstPort || r.DstPort != seg.SrcPort {
			t.Fatalf("%s: ports not swapped", c.in)
		}
	}
	seg := parseSpec(t, "RST seq=1", true)
	if _, ok := RstFor(&seg); ok {
		t.Fatal("RST answered with RST")
	}
	// A CLOSED Conn answers the same way.
	tt := newTranscript(t, nil)
	tt.in(0, "ACK seq=5000 ack=77")
	tt.want(0, "RST seq=77")
}

// RFC 9293 §3.10.7.2: the listener resets an ACK, drops a RST, and drops
// SYNs beyond its backlog (as Linux).
func TestListenerRules(t *testing.T) {
	tt := newListening(t, nil, 2)
	tt.in(0, "ACK seq=5000 ack=42")
	tt.want(0, "RST seq=42")
	tt.in(0, "RST seq=5000")
	tt.wantNothing(0)
	tt.in(0, "FIN seq=5000")
	tt.wantNothing(0)
	var got []*Conn
	for i := 0; i < 3; i++ {
		seg := parseSpec(t, "SYN seq=5000", true)
		seg.SrcPort = uint16(1000 + i)
		if c := tt.l.Input(tt.now, &seg, ttLocal, EmitFunc(tt.emit)); c != nil {
			got = append(got, c)
		}
	}
	if len(got) != 2 || tt.l.HalfOpen() != 2 {
		t.Fatalf("backlog 2 accepted %d SYNs (half-open %d)", len(got), tt.l.HalfOpen())
	}
	// A half-open child that times out releases its slot.
	got[0].Timer(tt.now.Add(76 * time.Second))
	if got[0].State() != Closed || got[0].Err() != ErrTimedOut || tt.l.HalfOpen() != 1 {
		t.Fatalf("after handshake timeout: %v %v half-open %d", got[0].State(), got[0].Err(), tt.l.HalfOpen())
	}
}

// The handshake timeout of SYN-RECEIVED, with SYN-ACK retransmissions.
func TestSynRcvdTimeout(t *testing.T) {
	tt := newListening(t, &Config{SynRcvdTimeout: 10 * time.Second}, 4)
	tt.in(0, "SYN seq=5000")
	tt.want(0, "SYN|ACK seq=1000 ack=5001")
	tt.want(1000, "SYN|ACK seq=1000 ack=5001")
	tt.want(3000, "SYN|ACK seq=1000 ack=5001")
	tt.want(7000, "SYN|ACK seq=1000 ack=5001")
	tt.wantNothing(10000)
	tt.wantState(Closed)
	tt.wantErr(ErrTimedOut)
	if tt.l.HalfOpen() != 0 {
		t.Fatal("slot not released")
	}
}

// RFC 9293 §3.10.7.4 (SYN-RECEIVED, fifth): an unacceptable ACK draws a RST.
func TestSynRcvdBadAck(t *testing.T) {
	tt := newListening(t, nil, 4)
	tt.in(0, "SYN seq=5000")
	tt.want(0, "SYN|ACK seq=1000 ack=5001")
	tt.in(10, "ACK seq=5001 ack=3000")
	tt.want(10, "RST seq=3000")
	tt.wantState(SynReceived)
}

// RFC 9293 §3.6 figure 12: active close, ESTABLISHED → FIN-WAIT-1 →
// FIN-WAIT-2 → TIME-WAIT → (2·MSL) → CLOSED.
func TestActiveClose(t *testing.T) {
	tt := established(t, nil)
	tt.do(20, tt.c.CloseWrite)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.wantState(FinWait1)
	tt.in(30, "ACK seq=5001 ack=1002")
	tt.wantState(FinWait2)
	tt.in(40, "FIN|ACK seq=5001 ack=1002")
	tt.want(40, "ACK seq=1002 ack=5002")
	tt.wantState(TimeWait)
	// A retransmitted FIN is acked again and restarts the 2·MSL timer.
	tt.in(1040, "FIN|ACK seq=5001 ack=1002")
	tt.want(1040, "ACK seq=1002 ack=5002")
	tt.advance(61039)
	tt.wantState(TimeWait)
	tt.advance(61040)
	tt.wantState(Closed)
	tt.wantEvent(EvClosed)
	tt.wantErr(nil)
}

// RFC 9293 §3.6: passive close, CLOSE-WAIT → LAST-ACK → CLOSED.
func TestPassiveClose(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "FIN|ACK seq=5001 ack=1001")
	tt.want(20, "ACK seq=1001 ack=5002")
	tt.wantState(CloseWait)
	if _, err := tt.read(21); err != io.EOF {
		t.Fatalf("Read after FIN: %v", err)
	}
	tt.write(22, 100) // half-close: we may still send
	tt.want(22, "ACK|PSH seq=1001 ack=5002 len=100")
	tt.do(23, tt.c.Close)
	tt.want(23, "FIN|ACK seq=1101 ack=5002")
	tt.wantState(LastAck)
	tt.in(33, "ACK seq=5002 ack=1102")
	tt.wantState(Closed)
	tt.wantEvent(EvClosed)
}

// RFC 9293 §3.6 figure 13: simultaneous close through CLOSING.
func TestSimultaneousClose(t *testing.T) {
	tt := established(t, nil)
	tt.do(20, tt.c.CloseWrite)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.in(25, "FIN|ACK seq=5001 ack=1001")
	tt.want(25, "ACK seq=1002 ack=5002")
	tt.wantState(Closing)
	tt.in(30, "ACK seq=5002 ack=1002")
	tt.wantState(TimeWait)
	tt.advance(60030)
	tt.wantState(Closed)
}

// FIN-WAIT-1 receiving FIN+ACK of our FIN goes straight to TIME-WAIT.
func TestCloseFinAckTogether(t *testing.T) {
	tt := established(t, nil)
	tt.do(20, tt.c.Close)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.in(30, "FIN|ACK seq=5001 ack=1002")
	tt.want(30, "ACK seq=1002 ack=5002")
	tt.wantState(TimeWait)
}

// FIN-WAIT-2 timeout for a closed socket (Linux tcp_fin_timeout); after
// CloseWrite only (a half-close) FIN-WAIT-2 lasts as long as the peer likes.
func TestFinWait2Timeout(t *testing.T) {
	tt := established(t, &Config{FinWait2Timeout: 30 * time.Second})
	tt.do(20, tt.c.Close)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.in(30, "ACK seq=5001 ack=1002")
	tt.wantState(FinWait2)
	tt.advance(30029)
	tt.wantState(FinWait2)
	tt.advance(30030)
	tt.wantState(Closed)
	tt.wantEvent(EvClosed)

	tt = established(t, &Config{FinWait2Timeout: 30 * time.Second})
	tt.do(20, tt.c.CloseWrite)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.in(30, "ACK seq=5001 ack=1002")
	tt.in(100000, "ACK|PSH seq=5001 ack=1002 len=10") // the peer still sends
	tt.want(100040, "ACK seq=1002 ack=5011")          // delayed ACK
	tt.wantState(FinWait2)
}

// RFC 2525 §2.17 (as Linux): Close with unread data resets.
func TestCloseUnreadResets(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "ACK|PSH seq=5001 ack=1001 len=10")
	tt.do(21, tt.c.Close)
	tt.want(21, "RST|ACK seq=1001 ack=5011")
	tt.wantState(Closed)
}

// RFC 9293 §3.10.5: Abort (SetLinger(0)) sends RST.
func TestAbort(t *testing.T) {
	tt := established(t, nil)
	tt.write(20, 100)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.do(21, tt.c.Abort)
	tt.want(21, "RST|ACK seq=1101 ack=5001")
	tt.wantState(Closed)
	tt.wantNothing(100000)
}

// RFC 9293 §3.6.1 and RFC 6191: a SYN with a higher sequence number ends
// TIME-WAIT and is handed to the listener.
func TestTimeWaitReuse(t *testing.T) {
	tt := established(t, nil)
	tt.do(20, tt.c.Close)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.in(30, "FIN|ACK seq=5001 ack=1002")
	tt.want(30, "ACK seq=1002 ack=5002")
	tt.in(40, "SYN seq=5001") // not higher: an old duplicate, answered with an ACK
	tt.want(40, "ACK seq=1002 ack=5002")
	tt.wantState(TimeWait)
	tt.in(50, "SYN seq=9000")
	tt.wantState(Closed)
	tt.wantEvent(EvClosed)
	if !tt.c.ReopenedBy() {
		t.Fatal("ReopenedBy false")
	}
	tt.wantNothing(50)
}

// RFC 5961 §3.2: a RST in the window but not at RCV.NXT draws a challenge
// ACK; one at RCV.NXT resets; one outside the window is dropped.
func TestChallengeAckRST(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "RST seq=5100")
	tt.want(20, "ACK seq=1001 ack=5001")
	tt.wantState(Established)
	tt.in(30, "RST seq=900000")
	tt.wantNothing(30)
	tt.in(40, "RST seq=5001")
	tt.wantState(Closed)
	tt.wantErr(ErrReset)
	tt.wantEvent(EvError | EvClosed | EvReadable)
	if _, err := tt.c.Read(tt.now, make([]byte, 10)); err != ErrReset {
		t.Fatalf("Read after reset: %v", err)
	}
}

// RFC 5961 §4.2: a SYN in a synchronized state draws a challenge ACK, never
// a reset, whatever its sequence number.
func TestChallengeAckSYN(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "SYN seq=5001")
	tt.want(20, "ACK seq=1001 ack=5001")
	tt.in(30, "SYN seq=123")
	tt.want(30, "ACK seq=1001 ack=5001")
	tt.wantState(Established)
}

// RFC 5961 §5.2 / RFC 9293: an ACK for data never sent is answered and dropped.
func TestAckOfUnsentData(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "ACK|PSH seq=5001 ack=9999 len=10")
	tt.want(20, "ACK seq=1001 ack=5001")
	if tt.c.Readable() != 0 {
		t.Fatal("data of a dropped segment was queued")
	}
}

// RFC 9293 §3.10.7.4 first check: an unacceptable segment draws an ACK.
func TestUnacceptableSegment(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "ACK seq=4000 ack=1001 len=10") // old duplicate
	tt.want(20, "ACK seq=1001 ack=5001")
	tt.in(30, "ACK seq=2000000 ack=1001 len=10") // beyond the window
	tt.want(30, "ACK seq=1001 ack=5001")
}

// RFC 6298: RTO from the handshake sample (10 ms → clamped to MinRTO
// 200 ms), exponential backoff, and failure after Retries.
func TestRetransmitBackoffAndTimeout(t *testing.T) {
	tt := established(t, &Config{Retries: 3})
	tt.write(20, 100)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.want(220, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.want(620, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.want(1420, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.wantNothing(3019)
	tt.wantState(Established)
	tt.advance(3020)
	tt.wantState(Closed)
	tt.wantErr(ErrTimedOut)
	if _, err := tt.c.Write(tt.now, []byte("x")); err != ErrTimedOut {
		t.Fatalf("Write: %v", err)
	}
}

// Karn's rule (RFC 6298 §3): an ACK of retransmitted data yields no RTT
// sample, and the next new ACK resets the backoff.
func TestKarn(t *testing.T) {
	tt := established(t, nil)
	tt.write(20, 100)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.want(220, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.in(500, "ACK seq=5001 ack=1101") // 480 ms after the first send
	if tt.c.rtt.srtt != 10*time.Millisecond {
		t.Fatalf("srtt %v: sampled a retransmission", tt.c.rtt.srtt)
	}
	tt.write(600, 100)
	tt.want(600, "ACK|PSH seq=1101 ack=5001 len=100")
	tt.want(800, "ACK|PSH seq=1101 ack=5001 len=100") // backoff reset: 200 ms again
}

// RFC 5681 §3.2: three duplicate ACKs trigger a fast retransmit; NewReno
// (RFC 6582) retransmits again on a partial ACK.
func TestFastRetransmit(t *testing.T) {
	tt := established(t, nil)
	tt.write(20, 5*1460)
	for i := 0; i < 4; i++ {
		tt.want(20, "ACK seq="+itoa(1001+i*1460)+" ack=5001 len=1460")
	}
	tt.want(20, "ACK|PSH seq=6841 ack=5001 len=1460")
	tt.in(30, "ACK seq=5001 ack=2461") // first segment acked, second lost
	tt.in(31, "ACK seq=5001 ack=2461")
	tt.in(32, "ACK seq=5001 ack=2461")
	tt.wantNothing(32)
	tt.in(33, "ACK seq=5001 ack=2461")
	tt.want(33, "ACK seq=2461 ack=5001 len=1460")
	tt.in(40, "ACK seq=5001 ack=5381") // partial: the fourth is lost too
	tt.want(40, "ACK seq=5381 ack=5001 len=1460")
	tt.in(50, "ACK seq=5001 ack=8301")
	tt.wantNothing(5000)
}

// RFC 9293 §3.8.6.1: zero-window probes with backoff, until the window opens.
func TestZeroWindowProbe(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460 wnd=1000")
	tt.want(10, "ACK seq=1001 ack=5001")
	tt.write(20, 3000)
	tt.want(20, "ACK seq=1001 ack=5001 len=1000")
	tt.in(30, "ACK seq=5001 ack=2001 wnd=0")
	tt.want(230, "ACK seq=2000 ack=5001") // probe: an old sequence number, no data
	tt.in(240, "ACK seq=5001 ack=2001 wnd=0")
	tt.want(630, "ACK seq=2000 ack=5001") // backed off
	tt.in(640, "ACK seq=5001 ack=2001 wnd=0")
	tt.want(1430, "ACK seq=2000 ack=5001")
	tt.in(1440, "ACK seq=5001 ack=2001 wnd=1000") // window update
	tt.want(1440, "ACK seq=2001 ack=5001 len=1000")
	tt.in(1450, "ACK seq=5001 ack=3001 wnd=2000")
	tt.want(1450, "ACK|PSH seq=3001 ack=5001 len=1000")
}

// RFC 9293 §3.8.6.2.2 receiver side: the window shrinks as data waits and
// reopens with a window update when the application reads.
func TestWindowUpdateOnRead(t *testing.T) {
	tt := established(t, &Config{RecvBuf: 4096})
	tt.in(20, "ACK seq=5001 ack=1001 len=1460")
	tt.in(21, "ACK seq=6461 ack=1001 len=1460")
	tt.want(21, "ACK seq=1001 ack=7921 wnd=1176")
	tt.in(22, "ACK seq=7921 ack=1001 len=1176")
	tt.want(62, "ACK seq=1001 ack=9097 wnd=0")
	tt.in(70, "ACK seq=9097 ack=1001 len=1")
	tt.want(70, "ACK seq=1001 ack=9097 wnd=0") // zero window: not acceptable
	got, _ := tt.read(100)
	if len(got) != 4096 {
		t.Fatalf("read %d bytes", len(got))
	}
	tt.want(100, "ACK seq=1001 ack=9097 wnd=4096")
}

// Receiver silly-window avoidance: a small read does not advertise a
// sliver of window (RFC 9293 §3.8.6.2.2).
func TestReceiverSWS(t *testing.T) {
	tt := established(t, &Config{RecvBuf: 4096})
	tt.in(20, "ACK seq=5001 ack=1001 len=1460")
	tt.in(21, "ACK seq=6461 ack=1001 len=1460")
	tt.want(21, "ACK seq=1001 ack=7921 wnd=1176")
	tt.do(30, func(now time.Time) { tt.c.Read(now, make([]byte, 100)) })
	tt.wantNothing(30)
	tt.in(40, "ACK seq=7921 ack=1001 len=100")
	tt.want(80, "ACK seq=1001 ack=8021 wnd=1076") // the 100 bytes read are not offered
}

// Out-of-order data is held in the window, acknowledged at once with the
// old RCV.NXT, and delivered in order when the gap fills; overlaps and
// duplicates are trimmed.
func TestOutOfOrderAndOverlap(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "ACK seq=5101 ack=1001 len=100")
	tt.want(20, "ACK seq=1001 ack=5001")
	tt.in(21, "ACK seq=5301 ack=1001 len=100")
	tt.want(21, "ACK seq=1001 ack=5001")
	tt.in(22, "ACK seq=5051 ack=1001 len=100") // overlaps the first hole and the first block
	tt.want(22, "ACK seq=1001 ack=5001")
	tt.in(23, "ACK seq=5001 ack=1001 len=60") // fills [5001,5061)
	tt.want(23, "ACK seq=1001 ack=5201")
	tt.in(24, "ACK seq=5151 ack=1001 len=200") // overlaps everything, fills to 5401
	tt.want(24, "ACK seq=1001 ack=5401")
	got, _ := tt.read(30)
	if len(got) != 400 {
		t.Fatalf("read %d bytes, want 400", len(got))
	}
}

// RFC 5681 §4.2 / RFC 9293 §3.8.6.3: delayed ACK within 40 ms, an ACK
// for at least every second full-sized segment.
func TestDelayedAck(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "ACK seq=5001 ack=1001 len=1460")
	tt.wantNothing(59)
	tt.want(60, "ACK seq=1001 ack=6461")
	tt.in(100, "ACK seq=6461 ack=1001 len=1460")
	tt.in(101, "ACK seq=7921 ack=1001 len=1460")
	tt.want(101, "ACK seq=1001 ack=9381")
	// A reply piggybacks the ACK.
	tt.in(200, "ACK seq=9381 ack=1001 len=10")
	tt.write(210, 10)
	tt.want(210, "ACK|PSH seq=1001 ack=9391 len=10")
	tt.in(220, "ACK seq=9391 ack=1011")
	tt.wantNothing(1000)
}

// Nagle's algorithm (RFC 896), off by default; with it on, small writes
// wait while data is unacknowledged.
func TestNagle(t *testing.T) {
	tt := established(t, nil)
	tt.write(20, 10)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=10")
	tt.write(21, 10)
	tt.want(21, "ACK|PSH seq=1011 ack=5001 len=10")

	tt = established(t, &Config{Nagle: true})
	tt.write(20, 10)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=10")
	tt.write(21, 10)
	tt.write(22, 10)
	tt.wantNothing(29)
	tt.in(30, "ACK seq=5001 ack=1011")
	tt.want(30, "ACK|PSH seq=1011 ack=5001 len=20")
}

// Keepalive to a dead peer (RFC 9293 §3.8.4, net.KeepAliveConfig fields):
// Idle without input, then Count probes Interval apart, then ErrTimedOut.
func TestKeepaliveDeadPeer(t *testing.T) {
	tt := established(t, &Config{KeepAlive: KeepAlive{Enable: true, Idle: 10 * time.Second, Interval: time.Second, Count: 3}})
	tt.wantNothing(10009)
	tt.want(10010, "ACK seq=1000 ack=5001")
	tt.want(11010, "ACK seq=1000 ack=5001")
	tt.want(12010, "ACK seq=1000 ack=5001")
	tt.wantState(Established)
	tt.advance(13010)
	tt.wantState(Closed)
	tt.wantErr(ErrTimedOut)
}

// Keepalive to a live peer: its answer resets the probe count and the
// idle timer.
func TestKeepaliveLivePeer(t *testing.T) {
	tt := established(t, &Config{KeepAlive: KeepAlive{Enable: true, Idle: 10 * time.Second, Interval: time.Second, Count: 3}})
	tt.want(10010, "ACK seq=1000 ack=5001")
	tt.want(11010, "ACK seq=1000 ack=5001")
	tt.in(11020, "ACK seq=5001 ack=1001")
	tt.wantNothing(21019)
	tt.want(21020, "ACK seq=1000 ack=5001")
}

// Half-close in each direction: CloseWrite keeps reading; CloseRead
// discards input (still acked) and reads EOF, while writing goes on.
func TestHalfClose(t *testing.T) {
	tt := established(t, nil)
	tt.do(20, tt.c.CloseWrite)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.in(30, "ACK|PSH seq=5001 ack=1002 len=10")
	got, err := tt.read(31)
	if len(got) != 10 || err != nil {
		t.Fatalf("read %d %v", len(got), err)
	}
	if _, err := tt.c.Write(tt.now, []byte("x")); err != ErrClosed {
		t.Fatalf("Write after CloseWrite: %v", err)
	}

	tt = established(t, nil)
	tt.do(20, tt.c.CloseRead)
	tt.in(30, "ACK|PSH seq=5001 ack=1001 len=10")
	if _, err := tt.read(31); err != io.EOF {
		t.Fatalf("Read after CloseRead: %v", err)
	}
	tt.write(32, 5)
	tt.want(32, "ACK|PSH seq=1001 ack=5011 len=5")
}

// Data for a fully closed socket resets it (Linux).
func TestDataAfterCloseResets(t *testing.T) {
	tt := established(t, nil)
	tt.do(20, tt.c.Close)
	tt.want(20, "FIN|ACK seq=1001 ack=5001")
	tt.in(30, "ACK|PSH seq=5001 ack=1002 len=10")
	tt.want(30, "RST|ACK seq=1002 ack=5001")
	tt.wantState(Closed)
}

// The FIN follows queued data (RFC 9293 §3.10.4), and is retransmitted
// with it.
func TestFinAfterQueuedData(t *testing.T) {
	tt := established(t, nil)
	tt.in(15, "ACK seq=5001 ack=1001 wnd=1460")
	tt.write(20, 2000)
	tt.want(20, "ACK seq=1001 ack=5001 len=1460")
	tt.do(21, tt.c.CloseWrite)
	tt.wantNothing(21)
	tt.in(30, "ACK seq=5001 ack=2461 wnd=1460")
	tt.want(30, "FIN|ACK|PSH seq=2461 ack=5001 len=540")
	tt.want(230, "FIN|ACK|PSH seq=2461 ack=5001 len=540")
	tt.in(240, "ACK seq=5001 ack=3002")
	tt.wantState(FinWait2)
}

func itoa(n int) string { return fmtInt(n) }

// RFC 2018: with SACK negotiated, ACKs for out-of-order data carry SACK
// blocks, the most recent first (§4).
func TestSACKBlocks(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000 sackok")
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460 sackok")
	tt.want(10, "ACK seq=1001 ack=5001")
	tt.in(20, "ACK seq=5101 ack=1001 len=100")
	s := tt.want(20, "ACK seq=1001 ack=5001")
	if s.Opts.NumSACK != 1 || s.Opts.SACK[0] != (SACKBlock{5101, 5201}) {
		t.Fatalf("SACK blocks %v", s)
	}
	tt.in(21, "ACK seq=5301 ack=1001 len=100")
	s = tt.want(21, "ACK seq=1001 ack=5001")
	if s.Opts.NumSACK != 2 || s.Opts.SACK[0] != (SACKBlock{5301, 5401}) || s.Opts.SACK[1] != (SACKBlock{5101, 5201}) {
		t.Fatalf("SACK blocks %v", s)
	}
	tt.in(22, "ACK seq=5001 ack=1001 len=100")
	s = tt.want(22, "ACK seq=1001 ack=5201")
	if s.Opts.NumSACK != 1 || s.Opts.SACK[0] != (SACKBlock{5301, 5401}) {
		t.Fatalf("SACK blocks %v", s)
	}
}

// Data written in SYN-SENT waits for the handshake and rides on the
// third segment (RFC 9293 §3.10.2: queued until ESTABLISHED).
func TestWriteBeforeEstablished(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	tt.write(1, 100)
	tt.wantNothing(9)
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460")
	tt.want(10, "ACK|PSH seq=1001 ack=5001 len=100")
}

// RFC 7323: timestamps are negotiated in the handshake and the peer's
// TSval is echoed; MSS is reduced by the option's 12 bytes.
func TestTimestamps(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	syn := tt.want(0, "SYN seq=1000")
	if !syn.Opts.HasTS {
		t.Fatal("no timestamps on the SYN")
	}
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460 ts=777/"+itoa(int(syn.Opts.TSVal)))
	a := tt.want(10, "ACK seq=1001 ack=5001")
	if !a.Opts.HasTS || a.Opts.TSEcr != 777 || a.Opts.TSVal != syn.Opts.TSVal+10 {
		t.Fatalf("ACK timestamps %v", a)
	}
	tt.write(20, 3000)
	d := tt.want(20, "ACK seq=1001 ack=5001 len=1448")
	if d.HeaderLen() != 32 {
		t.Fatalf("header %d", d.HeaderLen())
	}
}

// tsEstablished connects with timestamps: synack (ending in "ts=N/") is
// completed with the echo of our SYN's TSVal. It returns our SYN.
func tsEstablished(t *testing.T, synack string) (*transcript, Segment) {
	t.Helper()
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	syn := tt.want(0, "SYN seq=1000")
	tt.in(10, synack+itoa(int(syn.Opts.TSVal)))
	tt.want(10, "ACK seq=1001 ack=5001")
	return tt, syn
}

// Callers read the clock before taking the connection's lock, so a call
// may carry an earlier time than the one before it. TSVal must not go back
// with it, or the peer's PAWS check (RFC 7323 §5.3) drops the segment.
func TestTimestampsNeverGoBack(t *testing.T) {
	tt, syn := tsEstablished(t, "SYN|ACK seq=5000 ack=1001 mss=1460 ts=777/")
	tt.advance(30)
	if _, err := tt.c.Write(tt.now, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := tt.c.Write(tt.now.Add(-5*time.Millisecond), make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	tt.collect()
	a := tt.want(30, "ACK|PSH seq=1001 ack=5001 len=100")
	b := tt.want(30, "ACK|PSH seq=1101 ack=5001 len=100")
	if a.Opts.TSVal != syn.Opts.TSVal+30 || b.Opts.TSVal != a.Opts.TSVal {
		t.Fatalf("TSVal %d then %d, want %d twice", a.Opts.TSVal, b.Opts.TSVal, syn.Opts.TSVal+30)
	}
	if a.Retrans || b.Retrans {
		t.Fatal("new data marked as a retransmission")
	}
	r := tt.want(230, "ACK seq=1001 ack=5001 len=100")
	if !r.Retrans {
		t.Fatal("the RTO's retransmission is not marked Retrans")
	}
}

// The accept queue bound: established children not yet taken count
// against the backlog; Accepted frees a slot.
func TestListenerAcceptQueue(t *testing.T) {
	tt := newListening(t, nil, 1)
	syn := func(port uint16) *Conn {
		s := parseSpec(t, "SYN seq=5000", true)
		s.SrcPort = port
		return tt.l.Input(tt.now, &s, ttLocal, EmitFunc(tt.emit))
	}
	c := syn(1)
	if c == nil || syn(2) != nil {
		t.Fatal("backlog 1: want exactly one half-open child")
	}
	ack := parseSpec(t, "ACK seq=5001 ack=1001", true)
	c.Input(tt.now, &ack)
	if c.State() != Established || tt.l.HalfOpen() != 0 || tt.l.Queued() != 1 {
		t.Fatalf("%v half-open %d queued %d", c.State(), tt.l.HalfOpen(), tt.l.Queued())
	}
	if syn(3) != nil {
		t.Fatal("SYN accepted with a full accept queue")
	}
	tt.l.Accepted()
	if syn(4) == nil {
		t.Fatal("SYN refused after Accepted")
	}
}
