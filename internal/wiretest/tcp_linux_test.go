package wiretest

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// TestCloseByBench: the testbench closes first. The DUT acknowledges the
// FIN, its reader sees EOF, its Close sends a FIN, and once the testbench
// acknowledges that the connection is gone: a later segment draws a RST
// (RFC 9293 §3.6, case 1, and §3.10.7.1).
func TestCloseByBench(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		c.Send(t, Seg{Flags: FIN | ACK})
		c.Expect(t, "ACK of the FIN", func(s *TCP) bool { return s.Flags == ACK && s.Ack == c.SndNxt })
		dc.SetReadDeadline(time.Now().Add(Timeout))
		if n, err := dc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
			t.Fatalf("DUT read after the FIN: %d, %v; want 0, EOF", n, err)
		}
		dc.Close()
		fin := c.Expect(t, "FIN from the DUT", func(s *TCP) bool { return s.Flags&FIN != 0 })
		if fin.Flags&RST != 0 || fin.Ack != c.SndNxt {
			t.Fatalf("DUT's FIN: [%s] ack %d, want FIN-ACK ack %d", FlagString(fin.Flags), fin.Ack, c.SndNxt)
		}
		c.Send(t, Seg{Flags: ACK})
		// LAST-ACK → CLOSED: the connection no longer exists.
		c.Send(t, Seg{Flags: ACK | PSH, Payload: []byte("late")})
		r := c.Expect(t, "RST for a segment after the close", func(s *TCP) bool { return s.Flags&RST != 0 })
		if r.Seq != c.RcvNxt {
			t.Errorf("RST seq %d, want the ACK's ack %d", r.Seq, c.RcvNxt)
		}
	})
}

// TestTimeWaitReACK: the DUT closes first and ends in TIME-WAIT, where a
// retransmission of the testbench's FIN is acknowledged again (RFC 9293
// §3.10.7.4, TIME-WAIT: "The only thing that can arrive in this state is
// a retransmission of the remote FIN. Acknowledge it").
func TestTimeWaitReACK(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		dc.Close()
		c.Expect(t, "FIN from the DUT", Flags(FIN|ACK))
		c.Send(t, Seg{Flags: FIN | ACK})
		finSeq := c.SndNxt - 1
		c.Expect(t, "ACK of the FIN", func(s *TCP) bool { return s.Flags == ACK && s.Ack == c.SndNxt })
		c.Send(t, Seg{Flags: FIN | ACK, Seq: U32(finSeq)})
		a := c.Expect(t, "TIME-WAIT re-ACK of the retransmitted FIN", func(s *TCP) bool { return s.Flags&(ACK|RST) != 0 })
		if a.Flags != ACK || a.Ack != c.SndNxt {
			t.Fatalf("got [%s] ack %d, want ACK ack %d", FlagString(a.Flags), a.Ack, c.SndNxt)
		}
	})
}

// TestRSTClosedPort: a SYN to a port nobody listens on draws RST|ACK
// acknowledging it, and an ACK draws a RST whose sequence number is that
// ACK's acknowledgment (RFC 9293 §3.10.7.1, CLOSED).
func TestRSTClosedPort(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c := h.NewConn(9)
		c.Send(t, Seg{Flags: SYN, Options: c.SynOptions()})
		r := c.Expect(t, "RST for the SYN", func(s *TCP) bool { return true })
		if r.Flags != RST|ACK || r.Seq != 0 || r.Ack != c.ISS+1 || len(r.Payload) != 0 {
			t.Errorf("got [%s] seq %d ack %d len %d, want RST|ACK seq 0 ack %d", FlagString(r.Flags), r.Seq, r.Ack, len(r.Payload), c.ISS+1)
		}
		c2 := h.NewConn(9)
		c2.Send(t, Seg{Flags: ACK, Ack: U32(123456789), Options: []byte{}})
		r = c2.Expect(t, "RST for the ACK", func(s *TCP) bool { return true })
		if r.Flags != RST || r.Seq != 123456789 {
			t.Errorf("got [%s] seq %d, want RST seq 123456789", FlagString(r.Flags), r.Seq)
		}
	})
}

// TestMSSHonoured: after a SYN announcing MSS 536, no segment the DUT
// sends carries more than 536 bytes of data and TCP options together
// (RFC 9293 §3.7.1: the effective send MSS excludes the options); the data
// all arrives.
func TestMSSHonoured(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		l := h.DUT.Listen(t, 80)
		c := h.NewConn(80)
		c.Send(t, Seg{Flags: SYN, Options: Opts(MSSOpt(536), SACKPermOpt(), TSOpt(c.TSNow(), 0), NOPs(1), WSOpt(7))})
		c.Expect(t, "SYN-ACK", Flags(SYN|ACK))
		c.Send(t, Seg{Flags: ACK})
		dc := Accept(t, l)
		data := bytes.Repeat([]byte("0123456789abcdef"), 1000)
		werr := Write(dc, data)
		got := c.ReadData(t, len(data), func(s *TCP) {
			if n := len(s.Payload) + len(s.Options); n > 536 {
				t.Fatalf("segment of %d data + %d option bytes exceeds MSS 536", len(s.Payload), len(s.Options))
			}
		})
		if !bytes.Equal(got, data) {
			t.Fatalf("data differs")
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
	})
}

// TestSynAckRetransmit: a SYN-ACK left unacknowledged is retransmitted
// with the same sequence number, first after the initial RTO of 1 s, then
// after twice that (RFC 6298 §2.1 and §5.5; Linux's TCP_TIMEOUT_INIT).
// Timers fire late on a busy machine, never early, so only lower bounds
// are checked.
func TestSynAckRetransmit(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		h.DUT.Listen(t, 80)
		c := h.NewConn(80)
		c.Send(t, Seg{Flags: SYN, Options: c.SynOptions()})
		var at []time.Time
		var seq uint32
		for i := range 3 {
			f := c.ExpectFrame(t, 10*time.Second, "SYN-ACK", func(s *TCP) bool { return s.Flags == SYN|ACK })
			if i > 0 && f.TCP.Seq != seq {
				t.Fatalf("retransmitted SYN-ACK seq %d, first had %d", f.TCP.Seq, seq)
			}
			seq = f.TCP.Seq
			at = append(at, f.At)
		}
		g1, g2 := at[1].Sub(at[0]), at[2].Sub(at[1])
		t.Logf("SYN-ACK retransmitted after %v, then %v", g1, g2)
		if g1 < 900*time.Millisecond || g2 < 1800*time.Millisecond {
			t.Errorf("retransmissions after %v and %v; want at least 1 s and then 2 s (exponential backoff)", g1, g2)
		}
	})
}

// TestDataRetransmit: data left unacknowledged is sent again with its
// sequence number, each retransmission timeout twice the one before
// (RFC 6298 §5.5). The first resend may be a tail loss probe (RFC 8985
// §7), so the backoff is checked between the later ones.
func TestDataRetransmit(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		seq := c.RcvNxt
		werr := Write(dc, []byte("retransmit me"))
		var at []time.Time
		for range 4 {
			f := c.ExpectFrame(t, 10*time.Second, "data", func(s *TCP) bool { return Data(s) })
			if f.TCP.Seq != seq || string(f.TCP.Payload) != "retransmit me" {
				t.Fatalf("got seq %d %q, want seq %d %q", f.TCP.Seq, f.TCP.Payload, seq, "retransmit me")
			}
			at = append(at, f.At)
		}
		g := []time.Duration{at[1].Sub(at[0]), at[2].Sub(at[1]), at[3].Sub(at[2])}
		t.Logf("sent again after %v", g)
		if g[2] < 3*g[1]/2 || g[2] < 300*time.Millisecond {
			t.Errorf("gaps %v: the last retransmission timeout did not back off", g)
		}
		c.Send(t, Seg{Flags: ACK})
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
	})
}

// TestZeroWindowProbe: while the testbench's window is zero the DUT sends
// no data, only window probes of at most one byte (RFC 9293 §3.8.6.1),
// spaced by a retransmission timeout, not in a storm; when the window
// opens the data flows.
func TestZeroWindowProbe(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		c.Window = 0
		announceWindow(t, c, dc)
		base := c.RcvNxt
		data := bytes.Repeat([]byte("z"), 3000)
		werr := Write(dc, data)
		var got []byte
		var at []time.Time
		for len(at) < 3 {
			next := c.RcvNxt
			f := c.ExpectFrame(t, 10*time.Second, "zero-window probe", func(s *TCP) bool { return true })
			s := f.TCP
			switch {
			case s.Seq == next-1 && len(s.Payload) == 0:
				// Linux's probe: an old sequence number, no data.
			case s.Seq == base && len(s.Payload) == 1:
				// A one-byte probe (RFC 9293 §3.8.6.1).
				if len(got) == 0 {
					got = append(got, s.Payload...)
				}
			default:
				t.Fatalf("DUT sent seq %d len %d into a zero window at %d", s.Seq, len(s.Payload), base)
			}
			at = append(at, f.At)
		}
		t.Logf("probes %v apart", []time.Duration{at[1].Sub(at[0]), at[2].Sub(at[1])})
		for i := 1; i < len(at); i++ {
			if g := at[i].Sub(at[i-1]); g < 150*time.Millisecond {
				t.Errorf("probes only %v apart", g)
			}
		}
		// Open the window: everything not yet acknowledged arrives.
		c.Window = 0xffff
		c.Send(t, Seg{Flags: ACK})
		got = append(got, c.ReadData(t, len(data)-len(got), nil)...)
		if !bytes.Equal(got, data) {
			t.Fatalf("data differs after the window opened")
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
	})
}

// TestSendWindowHonoured: the DUT never sends beyond the window the
// testbench offers (RFC 9293 §3.8.6), here 1024 bytes from the handshake
// on. (A window shrunk later need not be believed: RFC 9293 §3.8.6 and
// Linux's tcp_may_update_window.)
func TestSendWindowHonoured(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		l := h.DUT.Listen(t, 80)
		c := h.NewConn(80)
		c.Send(t, Seg{Flags: SYN, Options: c.SynOptions()})
		c.Expect(t, "SYN-ACK", Flags(SYN|ACK))
		c.Window = 1024 >> c.WScale
		c.Send(t, Seg{Flags: ACK})
		dc := Accept(t, l)
		data := bytes.Repeat([]byte("w"), 10000)
		werr := Write(dc, data)
		got := c.ReadData(t, len(data), func(s *TCP) {
			if end := s.Seq + uint32(len(s.Payload)); SeqLT(c.SndAckSent()+1024, end) {
				t.Fatalf("segment ends at %d, beyond the window's right edge %d", end, c.SndAckSent()+1024)
			}
		})
		if !bytes.Equal(got, data) {
			t.Fatalf("data differs")
		}
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
	})
}

// announceWindow makes sure the DUT has taken in c.Window before the test
// goes on: it sends a byte with it and waits for the DUT to acknowledge
// and read the byte.
func announceWindow(t testing.TB, c *Conn, dc net.Conn) {
	t.Helper()
	c.Send(t, Seg{Flags: ACK | PSH, Payload: []byte("!")})
	c.Expect(t, "ACK of the window update", AckAtLeast(c.SndNxt))
	ReadFull(t, dc, 1)
}

// TestSACKOutOfOrder: data beyond a hole draws a duplicate ACK with a SACK
// block covering it (RFC 2018 §4); filling the hole acknowledges all.
func TestSACKOutOfOrder(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		base := c.SndNxt
		c.Send(t, Seg{Flags: ACK, Seq: U32(base + 1000), Payload: bytes.Repeat([]byte("b"), 1000)})
		a := c.Expect(t, "duplicate ACK with SACK", func(s *TCP) bool { return s.Flags&ACK != 0 })
		want := Block{base + 1000, base + 2000}
		if a.Ack != base || len(a.SACK) == 0 || a.SACK[0] != want {
			t.Fatalf("got ack %d sack %v, want ack %d sack [%v]", a.Ack, a.SACK, base, want)
		}
		c.Send(t, Seg{Flags: ACK, Payload: bytes.Repeat([]byte("a"), 1000)})
		c.Expect(t, "ACK of everything", AckAtLeast(base+2000))
		got := ReadFull(t, dc, 2000)
		if !bytes.Equal(got, append(bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000)...)) {
			t.Fatalf("DUT read %q...", got[:20])
		}
	})
}

// TestPAWS: a segment whose TSval is older than the last one accepted is
// dropped with a duplicate ACK (RFC 7323 §5.3 R1–R3); the same bytes with
// a current TSval are then accepted.
func TestPAWS(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		base := c.SndNxt
		old := c.TSNow() - 100000
		c.Send(t, Seg{Flags: ACK | PSH, Seq: U32(base), Payload: []byte("OLD!"), TSval: &old})
		a := c.Expect(t, "duplicate ACK for the old segment", func(s *TCP) bool { return s.Flags&ACK != 0 })
		if a.Ack != base {
			t.Fatalf("ack %d, want %d: the segment with the old TSval was accepted", a.Ack, base)
		}
		c.Send(t, Seg{Flags: ACK | PSH, Payload: []byte("new!")})
		c.Expect(t, "ACK of the fresh segment", AckAtLeast(base+4))
		if got := ReadFull(t, dc, 4); string(got) != "new!" {
			t.Fatalf("DUT read %q, want %q", got, "new!")
		}
	})
}

// TestChallengeACKForRST: a RST inside the window but not at RCV.NXT draws
// a challenge ACK and leaves the connection open (RFC 5961 §3.2).
func TestChallengeACKForRST(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		c.Send(t, Seg{Flags: RST, Seq: U32(c.SndNxt + 100), Options: []byte{}})
		a := c.Expect(t, "challenge ACK", func(s *TCP) bool { return true })
		if a.Flags != ACK || a.Ack != c.SndNxt {
			t.Fatalf("got [%s] ack %d, want a challenge ACK ack %d", FlagString(a.Flags), a.Ack, c.SndNxt)
		}
		checkAlive(t, c, dc)
	})
}

// TestChallengeACKForSYN: a SYN on an established connection draws a
// challenge ACK and leaves it open (RFC 5961 §4.2).
func TestChallengeACKForSYN(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		c.Send(t, Seg{Flags: SYN, Seq: U32(c.SndNxt + 12345), Options: c.SynOptions()})
		a := c.Expect(t, "challenge ACK", func(s *TCP) bool { return true })
		if a.Flags != ACK || a.Ack != c.SndNxt {
			t.Fatalf("got [%s] ack %d, want a challenge ACK ack %d", FlagString(a.Flags), a.Ack, c.SndNxt)
		}
		checkAlive(t, c, dc)
	})
}

// checkAlive sends data both ways on an established connection.
func checkAlive(t testing.TB, c *Conn, dc net.Conn) {
	t.Helper()
	c.Send(t, Seg{Flags: ACK | PSH, Payload: []byte("ping")})
	if got := ReadFull(t, dc, 4); string(got) != "ping" {
		t.Fatalf("DUT read %q", got)
	}
	if _, err := dc.Write([]byte("pong")); err != nil {
		t.Fatalf("DUT write: %v", err)
	}
	if got := c.ReadData(t, 4, nil); string(got) != "pong" {
		t.Fatalf("testbench read %q", got)
	}
}
