package tcp

import (
	"testing"
	"time"
)

var ecnCfg = &Config{ECN: true}

// TestECNNegotiation is the handshake matrix of RFC 3168 §6.1.1: only an
// ECN-setup SYN (ECE and CWR) answered by an ECN-setup SYN-ACK (ECE, not
// CWR) turns ECN on, and only with Config.ECN on that side.
func TestECNNegotiation(t *testing.T) {
	t.Run("active", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			cfg    *Config
			syn    string // the SYN we send
			synack string // the peer's answer
			want   bool
		}{
			{"on/ECE", ecnCfg, "SYN|ECE|CWR", "SYN|ACK|ECE", true},
			{"on/plain", ecnCfg, "SYN|ECE|CWR", "SYN|ACK", false},
			{"on/ECE|CWR", ecnCfg, "SYN|ECE|CWR", "SYN|ACK|ECE|CWR", false},
			{"on/CWR", ecnCfg, "SYN|ECE|CWR", "SYN|ACK|CWR", false},
			{"off/ECE", nil, "SYN", "SYN|ACK|ECE", false},
			{"off/plain", nil, "SYN", "SYN|ACK", false},
		} {
			t.Run(c.name, func(t *testing.T) {
				tt := newTranscript(t, c.cfg)
				tt.do(0, tt.c.Connect)
				tt.want(0, c.syn+" seq=1000 ecn=0")
				tt.in(10, c.synack+" seq=5000 ack=1001 mss=1460")
				tt.want(10, "ACK seq=1001 ack=5001 ecn=0")
				tt.wantState(Established)
				if tt.c.ECN() != c.want || tt.c.Info().ECN != c.want {
					t.Fatalf("ECN() = %v, Info().ECN = %v, want %v", tt.c.ECN(), tt.c.Info().ECN, c.want)
				}
				// Data goes out ECN-capable only when ECN is on.
				tt.write(20, 100)
				ecn := NotECT
				if c.want {
					ecn = ECT0
				}
				tt.want(20, "ACK|PSH seq=1001 len=100 ecn="+fmtInt(int(ecn)))
			})
		}
	})
	t.Run("passive", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			cfg    *Config
			syn    string // the peer's SYN
			synack string // our answer
			want   bool
		}{
			{"on/ECE|CWR", ecnCfg, "SYN|ECE|CWR", "SYN|ACK|ECE", true},
			{"on/ECE", ecnCfg, "SYN|ECE", "SYN|ACK", false},
			{"on/CWR", ecnCfg, "SYN|CWR", "SYN|ACK", false},
			{"on/plain", ecnCfg, "SYN", "SYN|ACK", false},
			{"off/ECE|CWR", nil, "SYN|ECE|CWR", "SYN|ACK", false},
		} {
			t.Run(c.name, func(t *testing.T) {
				tt := newListening(t, c.cfg, 8)
				tt.in(0, c.syn+" seq=5000 mss=1460")
				tt.want(0, c.synack+" seq=1000 ack=5001 ecn=0")
				// The SYN-ACK goes again the same way.
				tt.want(1000, c.synack+" seq=1000 ack=5001 ecn=0")
				tt.in(1010, "ACK seq=5001 ack=1001")
				tt.wantState(Established)
				if tt.c.ECN() != c.want {
					t.Fatalf("ECN() = %v, want %v", tt.c.ECN(), c.want)
				}
			})
		}
	})
	t.Run("syn-retransmitted", func(t *testing.T) {
		// RFC 3168 §6.1.1.1: a middlebox may drop an ECN-setup SYN, so
		// the retransmission asks for nothing (Linux's tcp_ecn_fallback);
		// an ECN-setup SYN-ACK to the first still turns ECN on.
		tt := newTranscript(t, ecnCfg)
		tt.do(0, tt.c.Connect)
		tt.want(0, "SYN|ECE|CWR seq=1000")
		tt.want(1000, "SYN seq=1000")
		tt.in(1010, "SYN|ACK|ECE seq=5000 ack=1001 mss=1460")
		tt.want(1010, "ACK seq=1001 ack=5001")
		if !tt.c.ECN() {
			t.Fatal("ECN() = false after an ECN-setup SYN-ACK")
		}
	})
	t.Run("simultaneous", func(t *testing.T) {
		// A simultaneous open negotiates nothing: our SYN-ACK has no ECE.
		tt := newTranscript(t, ecnCfg)
		tt.do(0, tt.c.Connect)
		tt.want(0, "SYN|ECE|CWR seq=1000")
		tt.in(5, "SYN|ECE|CWR seq=5000 mss=1460")
		tt.want(5, "SYN|ACK seq=1000 ack=5001")
		tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460")
		tt.wantState(Established)
		if tt.c.ECN() {
			t.Fatal("ECN() = true after a simultaneous open")
		}
	})
}

// ecnEstablished returns an active open that negotiated ECN: ISS 1000, the
// peer's 5000, MSS 1460, RTT 10 ms.
func ecnEstablished(t *testing.T) *transcript {
	t.Helper()
	tt := newTranscript(t, &Config{ECN: true, NewCC: NewReno})
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN|ECE|CWR seq=1000")
	tt.in(10, "SYN|ACK|ECE seq=5000 ack=1001 mss=1460")
	tt.want(10, "ACK seq=1001 ack=5001 ecn=0")
	tt.wantState(Established)
	return tt
}

// TestECNECTOnNewDataOnly: ECT(0) marks new data only (RFC 3168 §6.1.2);
// pure ACKs (§6.1.4), retransmissions (§6.1.5), window probes (§6.1.6),
// a bare FIN and RSTs go out Not-ECT.
func TestECNECTOnNewDataOnly(t *testing.T) {
	tt := ecnEstablished(t)
	tt.write(20, 1000)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=1000 ecn=2")
	// The RTO (the 200 ms minimum) resends it Not-ECT.
	tt.want(220, "ACK|PSH seq=1001 ack=5001 len=1000 ecn=0")
	tt.in(240, "ACK seq=5001 ack=2001")
	// Data from the peer draws a pure ACK, Not-ECT.
	tt.in(250, "ACK|PSH seq=5001 ack=2001 len=100 ecn=2")
	tt.want(290, "ACK seq=2001 ack=5101 ecn=0")
	// A zero window holds the next data back; the persist timer's probe
	// beyond the window is Not-ECT.
	tt.in(300, "ACK seq=5101 ack=2001 wnd=0")
	tt.write(310, 500)
	tt.wantNothing(310)
	tt.want(510, "ACK seq=2000 ack=5101 ecn=0")
	// The window opens: the data is new, within it, ECT(0); the first
	// new data since the timeout reduced the window carries CWR.
	tt.in(520, "ACK seq=5101 ack=2001 wnd=65535")
	tt.want(520, "ACK|PSH|CWR seq=2001 ack=5101 len=500 ecn=2")
	tt.in(530, "ACK seq=5101 ack=2501")
	// A bare FIN carries no data: Not-ECT; so does the RST of an abort.
	tt.do(540, tt.c.CloseWrite)
	tt.want(540, "FIN|ACK seq=2501 ack=5101 ecn=0")
	tt.do(550, tt.c.Abort)
	tt.want(550, "RST|ACK seq=2502 ecn=0")
}

// TestECNEchoUntilCWR: a CE mark on data makes the receiver ACK at once
// with ECE, and keep ECE on every ACK until a segment with CWR arrives
// (RFC 3168 §6.1.3); a CE on the CWR segment itself starts the echo again.
func TestECNEchoUntilCWR(t *testing.T) {
	tt := ecnEstablished(t)
	tt.in(20, "ACK seq=5001 ack=1001 len=100 ecn=2")
	tt.want(60, "ACK seq=1001 ack=5101")
	tt.in(70, "ACK seq=5101 ack=1001 len=100 ecn=3")
	tt.want(70, "ACK|ECE seq=1001 ack=5201") // at once, not delayed
	tt.in(80, "ACK seq=5201 ack=1001 len=100 ecn=2")
	tt.want(120, "ACK|ECE seq=1001 ack=5301") // still echoing
	// Our own data carries ECE too.
	tt.write(130, 10)
	tt.want(130, "ACK|PSH|ECE seq=1001 ack=5301 len=10 ecn=2")
	tt.in(140, "ACK|CWR seq=5301 ack=1011 len=100 ecn=2")
	tt.want(140, "ACK seq=1011 ack=5401") // CWR ends the echo, ACKed at once
	tt.in(150, "ACK seq=5401 ack=1011 len=100 ecn=2")
	tt.want(190, "ACK seq=1011 ack=5501")
	tt.in(200, "ACK|CWR seq=5501 ack=1011 len=100 ecn=3")
	tt.want(200, "ACK|ECE seq=1011 ack=5601")
	// A pure ACK marked CE (no sender makes one ECN-capable) is not data:
	// not counted, not answered; its CWR ends the echo, as in Linux.
	tt.in(210, "ACK|CWR seq=5601 ack=1011 ecn=3")
	tt.wantNothing(210)
	tt.in(220, "ACK seq=5601 ack=1011 len=100 ecn=2")
	tt.want(260, "ACK seq=1011 ack=5701")
	st := tt.c.Stats()
	if st.CEReceived != 2 {
		t.Fatalf("CEReceived = %d, want 2", st.CEReceived)
	}
}

// TestECNOneReductionPerWindow: ECE reduces cwnd once, as the recovery of
// one loss does, with nothing retransmitted; CWR goes on the first new
// data after it; ECE on ACKs below the CWR segment (the receiver has not
// seen it yet) is ignored; ECE once the CWR segment is acknowledged (a new
// mark) reduces again (RFC 3168 §6.1.2).
func TestECNOneReductionPerWindow(t *testing.T) {
	tt := ecnEstablished(t)
	const mss = 1460
	tt.write(20, 40*mss)
	for i := range 10 { // the initial window
		tt.want(20, "ACK seq="+fmtInt(1001+i*mss)+" len=1460 ecn=2")
	}
	// Slow start: each ACK of two segments opens cwnd by two segments
	// (Reno, ABC L=2) and sends four.
	tt.in(30, "ACK seq=5001 ack="+fmtInt(1001+2*mss))
	for i := range 4 {
		tt.want(30, "ACK seq="+fmtInt(1001+(10+i)*mss)+" len=1460 ecn=2")
	}
	before := tt.c.Info()
	if before.Cwnd != 12*mss {
		t.Fatalf("cwnd %d before ECE, want %d", before.Cwnd, 12*mss)
	}
	// ECE: flight 12 segments, halved to 6 (RFC 5681 eq. 4); the pipe
	// (10 left) is above it: nothing goes, nothing is resent.
	tt.in(31, "ACK|ECE seq=5001 ack="+fmtInt(1001+4*mss))
	tt.wantNothing(31)
	after := tt.c.Info()
	if after.Cwnd != 6*mss || after.Ssthresh != 6*mss {
		t.Fatalf("after ECE: cwnd %d ssthresh %d, want both %d", after.Cwnd, after.Ssthresh, 6*mss)
	}
	// More ECE from the same window: no further reduction; no growth either.
	tt.in(32, "ACK|ECE seq=5001 ack="+fmtInt(1001+6*mss))
	tt.wantNothing(32)
	tt.in(33, "ACK|ECE seq=5001 ack="+fmtInt(1001+8*mss))
	// The pipe is 6 segments: none fits yet. Then one more ACK frees two.
	tt.wantNothing(33)
	tt.in(34, "ACK|ECE seq=5001 ack="+fmtInt(1001+10*mss))
	tt.want(34, "ACK|CWR seq="+fmtInt(1001+14*mss)+" len=1460 ecn=2")
	tt.want(34, "ACK seq="+fmtInt(1001+15*mss)+" len=1460 ecn=2")
	if c := tt.c.Info().Cwnd; c != 6*mss {
		t.Fatalf("cwnd %d while the CWR is out, want %d", c, 6*mss)
	}
	// ECE on an ACK up to the CWR segment: the receiver may not have seen
	// CWR; ignored.
	tt.in(40, "ACK|ECE seq=5001 ack="+fmtInt(1001+14*mss))
	for i := 16; i < 20; i++ { // the pipe is two segments
		tt.want(40, "ACK seq="+fmtInt(1001+i*mss)+" len=1460 ecn=2")
	}
	if n := tt.c.Stats().ECNReductions; n != 1 {
		t.Fatalf("ECNReductions = %d within one window, want 1", n)
	}
	// The CWR segment acknowledged without ECE: the window of the
	// reduction is over.
	tt.in(50, "ACK seq=5001 ack="+fmtInt(1001+16*mss))
	tt.want(50, "ACK seq="+fmtInt(1001+20*mss)+" len=1460 ecn=2")
	tt.want(50, "ACK seq="+fmtInt(1001+21*mss)+" len=1460 ecn=2")
	// A new mark after CWR: ECE beyond the CWR segment reduces again.
	tt.in(60, "ACK|ECE seq=5001 ack="+fmtInt(1001+17*mss))
	tt.wantNothing(60)
	st := tt.c.Stats()
	if st.ECNReductions != 2 || st.ECEReceived != 6 {
		t.Fatalf("ECNReductions %d ECEReceived %d, want 2 and 6", st.ECNReductions, st.ECEReceived)
	}
	if st.Retransmits != 0 || st.FastRetransmits != 0 || st.BytesRetrans != 0 {
		t.Fatalf("ECE caused retransmissions: %+v", st)
	}
	if c := tt.c.Info().Cwnd; c != 3*mss {
		t.Fatalf("cwnd %d after the second reduction, want %d", c, 3*mss)
	}
}

// TestECNLossSendsCWR: a reduction for loss also puts CWR on the next new
// data (RFC 3168 §6.1.2: a reduction for any reason), and ECE during the
// recovery reduces nothing more.
func TestECNLossSendsCWR(t *testing.T) {
	tt := ecnEstablished(t)
	const mss = 1460
	tt.write(20, 4*mss)
	for i := range 3 {
		tt.want(20, "ACK seq="+fmtInt(1001+i*mss)+" len=1460 ecn=2")
	}
	tt.want(20, "ACK|PSH seq="+fmtInt(1001+3*mss)+" len=1460 ecn=2")
	// The first segment is lost; three duplicate ACKs, the last with ECE.
	tt.in(30, "ACK seq=5001 ack=1001")
	tt.in(31, "ACK seq=5001 ack=1001")
	tt.in(32, "ACK|ECE seq=5001 ack=1001")
	tt.want(32, "ACK seq=1001 len=1460 ecn=0") // the fast retransmission: Not-ECT
	tt.write(33, mss)
	tt.want(33, "ACK|PSH|CWR seq="+fmtInt(1001+4*mss)+" len=1460 ecn=2")
	st := tt.c.Stats()
	if st.FastRetransmits != 1 || st.ECNReductions != 0 {
		t.Fatalf("FastRetransmits %d ECNReductions %d, want 1 and 0", st.FastRetransmits, st.ECNReductions)
	}
}

// TestECNOffIgnoresMarks: without ECN negotiated, CE and ECE mean nothing.
func TestECNOffIgnoresMarks(t *testing.T) {
	tt := established(t, nil)
	tt.in(20, "ACK|ECE seq=5001 ack=1001 len=100 ecn=3")
	tt.want(60, "ACK seq=1001 ack=5101 ecn=0")
	if st := tt.c.Stats(); st.CEReceived != 0 || st.ECEReceived != 0 {
		t.Fatalf("counted marks without ECN: %+v", st)
	}
}

// TestSimECNMarks: a transfer each way over a link that marks 1 % of the
// ECN-capable frames CE and loses none completes intact, slower than
// unmarked, with every mark echoed and answered by a reduction and no
// retransmission at all.
func TestSimECNMarks(t *testing.T) {
	size := int64(16 << 20)
	if testing.Short() {
		size = 2 << 20
	}
	imp := simImpair{Delay: 5 * time.Millisecond, Rate: 125e6, Queue: time.Second}
	run := func(mark bool) *sim {
		s := newSim(t, simSeed(7), imp, &Config{ECN: true}, 1, 2)
		var marked [2]int
		if mark {
			s.mark = func(from int, seg *Segment) bool {
				if seg.ECN != ECT0 || s.rnd.IntN(100) != 0 {
					return false
				}
				marked[from]++
				return true
			}
		}
		s.ends[0].total, s.ends[1].total = size, size
		if err := s.run(time.Hour); err != nil {
			t.Fatal(err)
		}
		for i, e := range s.ends {
			if e.recvd != size {
				t.Fatalf("end %d received %d of %d bytes", i, e.recvd, size)
			}
			st := e.conn.Stats()
			if !e.conn.ECN() {
				t.Fatalf("end %d did not negotiate ECN", i)
			}
			if st.Retransmits != 0 || st.Timeouts != 0 || st.TLPs != 0 {
				t.Fatalf("end %d: %d retransmissions, %d timeouts, %d TLPs on a lossless link", i, st.Retransmits, st.Timeouts, st.TLPs)
			}
			if mark && (st.CEReceived != uint64(marked[1-i]) || st.ECEReceived == 0 || st.ECNReductions == 0) {
				t.Fatalf("end %d: CE %d (marked %d), ECE %d, reductions %d", i, st.CEReceived, marked[1-i], st.ECEReceived, st.ECNReductions)
			}
			if !mark && st.ECNReductions != 0 {
				t.Fatalf("end %d: %d reductions without marks", i, st.ECNReductions)
			}
		}
		return s
	}
	plain, marked := run(false), run(true)
	t.Logf("goodput: unmarked %v, 1%% CE %v", plain.lastData.Sub(plain.start), marked.lastData.Sub(marked.start))
}
