package tcp

import (
	"fmt"
	"testing"
	"time"
)

// Linux returns queued data before ECONNRESET: Read drains what arrived,
// then reports the reset.
func TestReadBeforeReset(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "ACK|PSH seq=5001 ack=1001 len=10")
	tt.in(21, "RST seq=5011")
	tt.wantState(Closed)
	if tt.c.ReadClosed() || tt.c.Readable() != 10 {
		t.Fatalf("ReadClosed %v Readable %d, want false 10", tt.c.ReadClosed(), tt.c.Readable())
	}
	buf := make([]byte, 100)
	if n, err := tt.c.Read(tt.now, buf); n != 10 || err != nil {
		t.Fatalf("first Read = %d, %v; want 10, nil", n, err)
	}
	if n, err := tt.c.Read(tt.now, buf); n != 0 || err != ErrReset {
		t.Fatalf("second Read = %d, %v; want 0, ErrReset", n, err)
	}
	if !tt.c.ReadClosed() || tt.c.rcv.buf != nil {
		t.Fatal("ring kept after the data was read")
	}
}

// Rings are allocated when data flows and start small; a small ring is
// given back when it drains, so an idle connection holds none, and a
// TIME-WAIT connection holds none at all.
func TestRingsLazyAndFreed(t *testing.T) {
	tt := established(t, nil)
	if tt.c.snd.buf != nil || tt.c.rcv.buf != nil {
		t.Fatal("rings allocated before data")
	}
	tt.write(20, 100)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=100")
	if len(tt.c.snd.buf) != minRing {
		t.Fatalf("send ring %d bytes with data unacknowledged, want %d", len(tt.c.snd.buf), minRing)
	}
	tt.in(30, "ACK|PSH seq=5001 ack=1101 len=100")
	if tt.c.snd.buf != nil || len(tt.c.rcv.buf) != minRing {
		t.Fatalf("rings %d/%d bytes once the data is acknowledged and unread, want 0/%d", len(tt.c.snd.buf), len(tt.c.rcv.buf), minRing)
	}
	if got, _ := tt.read(31); len(got) != 100 {
		t.Fatalf("read %d bytes, want 100", len(got))
	}
	if tt.c.rcv.buf != nil {
		t.Fatal("receive ring kept once it was read")
	}
	tt.in(32, "ACK|PSH seq=5101 ack=1101 len=50") // data again: the ring comes back
	if got, _ := tt.read(32); len(got) != 50 {
		t.Fatalf("read %d bytes after the ring came back, want 50", len(got))
	}
	tt.do(33, tt.c.Close)
	tt.want(33, "FIN|ACK seq=1101 ack=5151")
	tt.in(40, "FIN|ACK seq=5151 ack=1102")
	tt.want(40, "ACK seq=1102 ack=5152")
	tt.wantState(TimeWait)
	if tt.c.snd.buf != nil || tt.c.rcv.buf != nil || tt.c.txq.s != nil || tt.c.ooo != nil {
		t.Fatal("TIME-WAIT connection holds buffers")
	}
}

// SetSendBuf and SetRecvBuf work with data in the rings: growing keeps
// the data, shrinking stops Write until the queue drains below the size.
func TestSetBuffersInUse(t *testing.T) {
	tt := established(t, &Config{SendBuf: 8192})
	tt.in(15, "ACK seq=5001 ack=1001 wnd=1460")
	tt.write(20, 6000)
	tt.want(20, "ACK seq=1001 ack=5001 len=1460")
	tt.c.SetSendBuf(4096)
	if w := tt.c.Writable(); w != 0 {
		t.Fatalf("Writable %d after shrinking below the queue", w)
	}
	tt.c.SetSendBuf(1 << 20)
	if w := tt.c.Writable(); w != 1<<20-6000 {
		t.Fatalf("Writable %d after growing", w)
	}
	tt.write(21, 100000) // the ring grows past its first size
	tt.in(30, "ACK seq=5001 ack=2461 wnd=65535")
	seg := tt.want(30, "ACK seq=2461 ack=5001 len=1460")
	if seg.Payload[0] != byte(1460%256) {
		t.Fatalf("data moved wrongly when the ring grew: %d", seg.Payload[0])
	}
	tt.in(40, "ACK|PSH seq=5001 ack=2461 len=3000")
	tt.c.SetRecvBuf(64 << 10)
	got, _ := tt.read(41)
	if len(got) != 3000 {
		t.Fatalf("read %d after SetRecvBuf", len(got))
	}
}

// RFC 6298 §5.7: after a retransmitted SYN, data starts with RTO 3 s.
func TestRTOAfterSYNRetransmission(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000")
	tt.want(1000, "SYN seq=1000")
	tt.in(1010, "SYN|ACK seq=5000 ack=1001 mss=1460")
	tt.want(1010, "ACK seq=1001 ack=5001")
	tt.write(1020, 100)
	tt.want(1020, "ACK|PSH seq=1001 ack=5001 len=100")
	tt.wantNothing(4019)
	tt.want(4020, "ACK|PSH seq=1001 ack=5001 len=100")
}

// RFC 7323 §5 PAWS: a segment with an older timestamp is acknowledged and
// dropped; RTT samples come from the timestamp echo.
func TestPAWSAndTimestampRTT(t *testing.T) {
	tt, _ := tsEstablished(t, "SYN|ACK seq=5000 ack=1001 mss=1460 sackok ts=100/")
	tt.in(20, "ACK|PSH seq=5001 ack=1001 len=10 ts=200/0")
	tt.in(21, "ACK|PSH seq=5011 ack=1001 len=10 ts=150/0") // old: PAWS
	tt.want(21, "ACK seq=1001 ack=5011")
	if tt.c.Readable() != 10 || tt.c.Stats().DropPAWS != 1 {
		t.Fatalf("Readable %d DropPAWS %d", tt.c.Readable(), tt.c.Stats().DropPAWS)
	}
	tt.write(30, 100)
	d := tt.want(30, "ACK|PSH seq=1001 ack=5011 len=100")
	tt.in(70, "ACK seq=5011 ack=1101 ts=201/"+itoa(int(d.Opts.TSVal)))
	if i := tt.c.Info(); i.RTT >= 40*time.Millisecond || i.RTT <= 10*time.Millisecond || !i.Timestamps || !i.SACK {
		t.Fatalf("Info %+v: want RTT between the handshake's 10 ms and the 40 ms sample", i)
	}
}

// RFC 7661 §4.4 / RFC 5681 §4.1: after idle for more than an RTO the
// congestion window falls back towards the initial window.
func TestCwndAfterIdle(t *testing.T) {
	tt := established(t, nil)
	ms := 20.0
	tt.write(ms, 60000)
	for tt.c.sndUna != tt.c.sndNxt { // slow start: cwnd grows with each ACK
		ms += 10
		tt.in(ms, "ACK seq=5001 ack="+itoa(int(tt.c.sndNxt)))
	}
	tt.out = nil
	grown := tt.c.Info().Cwnd
	if grown <= 10*1460 {
		t.Fatalf("cwnd %d did not grow", grown)
	}
	tt.write(ms+5000, 100)
	if i := tt.c.Info(); i.Cwnd > 10*1460 || i.Ssthresh < grown*3/4 {
		t.Fatalf("after 5 s idle cwnd %d ssthresh %d (was %d)", i.Cwnd, i.Ssthresh, grown)
	}
}

// Receive-window autotuning and send-buffer growth let one flow fill a
// 100 Mbit/s, 10 ms path although both buffers start below its
// bandwidth-delay product (125 kB plus a queue of as much).
func TestAutotuning(t *testing.T) {
	s := newSim(t, 7, lossPath(0), &Config{RecvBuf: 32 << 10, RecvBufMax: 4 << 20, SendBuf: 16 << 10, SendBufMax: 4 << 20}, 1, 2)
	size := int64(16 << 20)
	if raceEnabled {
		size = 4 << 20
	}
	s.ends[0].total = size
	if err := s.run(time.Hour); err != nil {
		t.Fatal(err)
	}
	mbps := float64(size) * 8 / s.lastData.Sub(s.start).Seconds() / 1e6
	snd, rcv := s.ends[0].conn.Stats(), s.ends[1].conn.rcvBuf
	t.Logf("%.1f Mbit/s, receive buffer %d, send buffer %d, retransmits %d", mbps, rcv, s.ends[0].conn.sndBuf, snd.Retransmits)
	if rcv <= 128<<10 || s.ends[0].conn.sndBuf <= 128<<10 || (!raceEnabled && mbps < 70) {
		t.Errorf("buffers did not grow enough: %.1f Mbit/s", mbps)
	}
}

// A small ring given back and taken again holds only what is written
// after: the bytes of its last use never show, and the budget is credited
// and charged for it.
func TestSmallRingReuse(t *testing.T) {
	b := NewBudget(1 << 20)
	var r ring
	for round := range 3 {
		if !r.reserve(b, 10, 0, 1<<20) || len(r.buf) != minRing {
			t.Fatalf("round %d: reserve gave %d bytes", round, len(r.buf))
		}
		if got := b.Used(); got != minRing {
			t.Fatalf("round %d: budget used %d, want %d", round, got, minRing)
		}
		msg := []byte(fmt.Sprintf("round %d", round))
		r.write(msg)
		got := make([]byte, minRing)
		if n := r.read(got); string(got[:n]) != string(msg) {
			t.Fatalf("round %d: read %q, want %q", round, got[:n], msg)
		}
		r.releaseIfSmall(b)
		if r.buf != nil || b.Used() != 0 {
			t.Fatalf("round %d: drained ring kept %d bytes, budget used %d", round, len(r.buf), b.Used())
		}
	}
	// A ring that grew stays.
	r.reserve(b, 2*minRing, 0, 1<<20)
	r.releaseIfSmall(b)
	if len(r.buf) != 2*minRing {
		t.Fatalf("grown ring released: %d bytes", len(r.buf))
	}
}
