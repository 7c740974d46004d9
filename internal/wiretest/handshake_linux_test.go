package wiretest

import (
	"testing"
)

// TestHandshakeOptions: a SYN offering MSS, window scale, SACK and
// timestamps draws a SYN-ACK that acknowledges it and offers all four
// back (RFC 9293 §3.5, RFC 7323 §2.2 and §3.2, RFC 2018 §2), echoing the
// SYN's TSval.
func TestHandshakeOptions(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		h.DUT.Listen(t, 80)
		c := h.NewConn(80)
		tsval := c.TSNow()
		c.Send(t, Seg{Flags: SYN, Options: Opts(MSSOpt(1460), SACKPermOpt(), TSOpt(tsval, 0), NOPs(1), WSOpt(7))})
		sa := c.Expect(t, "SYN-ACK", func(s *TCP) bool { return s.Flags&SYN != 0 })
		if sa.Flags != SYN|ACK || sa.Ack != c.ISS+1 {
			t.Fatalf("got [%s] ack %d, want SYN-ACK ack %d", FlagString(sa.Flags), sa.Ack, c.ISS+1)
		}
		if sa.MSS < 536 || sa.MSS > 1460 {
			t.Errorf("SYN-ACK MSS %d, want one that fits the 1500-byte link (536..1460)", sa.MSS)
		}
		if sa.WS < 0 || sa.WS > 14 {
			t.Errorf("SYN-ACK window scale %d, want 0..14", sa.WS)
		}
		if !sa.SACKPerm {
			t.Errorf("SYN-ACK has no SACK-permitted option")
		}
		if !sa.HasTS || sa.TSecr != tsval {
			t.Errorf("SYN-ACK timestamps present %v ecr %d, want ecr %d", sa.HasTS, sa.TSecr, tsval)
		}
		if len(sa.Payload) != 0 {
			t.Errorf("SYN-ACK carries %d bytes", len(sa.Payload))
		}
		// Complete the handshake: the DUT accepts the connection.
		c.Send(t, Seg{Flags: ACK})
	})
}
