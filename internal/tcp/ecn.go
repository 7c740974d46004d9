package tcp

import "time"

// Explicit Congestion Notification (RFC 3168 §6.1) for TCP: negotiated in
// the handshake when Config.ECN is set, it lets routers mark a packet
// Congestion Experienced (CE) instead of dropping it. The receiver echoes
// a mark with ECE on its ACKs until the sender's CWR says the window was
// reduced; the sender reduces as for one loss per window, without
// retransmitting anything.

// ECN codepoints of the IP header's ECN field (RFC 3168 §5), as
// Segment.ECN holds them.
const (
	NotECT uint8 = 0b00 // not ECN-capable transport
	ECT1   uint8 = 0b01 // ECN-capable transport, ECT(1)
	ECT0   uint8 = 0b10 // ECN-capable transport, ECT(0): what we send
	CE     uint8 = 0b11 // congestion experienced
)

// The bits of Conn.ecn.
const (
	ecnOK     uint8 = 1 << iota // negotiated in the handshake
	ecnEcho                     // receiver: CE seen, ECE on every ACK until CWR arrives
	ecnCWR                      // sender: the window was reduced, CWR goes on the next new data
	ecnCWROut                   // sender: a CWR segment (ending at rare.cwrEnd) is not yet acknowledged
)

// ecnSetupSYN reports whether a SYN's flags ask for ECN: an ECN-setup SYN has
// both ECE and CWR (RFC 3168 §6.1.1).
func ecnSetupSYN(f Flags) bool { return f&(FlagECE|FlagCWR) == FlagECE|FlagCWR }

// ecnSetupSYNACK reports whether a SYN-ACK's flags accept ECN: ECE without
// CWR; one with both set is not an ECN-setup SYN-ACK (RFC 3168 §6.1.1).
func ecnSetupSYNACK(f Flags) bool { return f&(FlagECE|FlagCWR) == FlagECE }

// ECN reports whether the connection negotiated ECN (RFC 3168 §6.1.1).
func (c *Conn) ECN() bool { return c.ecn&ecnOK != 0 }

// synECNFlags returns the ECN flags of our SYN or SYN-ACK: ECE|CWR on a SYN
// when Config.ECN is set, except on a retransmission (RFC 3168 §6.1.1.1,
// as Linux's tcp_ecn_fallback: a middlebox may drop the ECN-setup SYN);
// ECE on the SYN-ACK of a connection that accepted ECN.
func (c *Conn) synECNFlags() Flags {
	switch {
	case c.state == SynSent && c.cfg.ECN && c.retries == 0:
		return FlagECE | FlagCWR
	case c.state == SynReceived && c.ecn&ecnOK != 0:
		return FlagECE
	}
	return 0
}

// markECN sets the ECN fields of a segment sendData built: ECT(0) in the IP
// header on new data (RFC 3168 §6.1.2; not on a retransmission, §6.1.5,
// nor on a window probe beyond the peer's window, §6.1.6), CWR on the
// first new data after a window reduction, and ECE while the receiver
// echoes a mark (§6.1.3). newSeg put ECE on every ACK already.
func (c *Conn) markECN(s *Segment, n int) {
	if c.ecn&ecnOK == 0 || n == 0 || s.Retrans {
		return
	}
	if end := s.Seq.Add(n); end.GreaterThan(c.sndUna.Add(int(c.sndWnd))) {
		return
	}
	s.ECN = ECT0
	if c.ecn&ecnCWR != 0 {
		s.Flags |= FlagCWR
		c.ecn = c.ecn&^ecnCWR | ecnCWROut
		c.rareState().cwrEnd = s.Seq.Add(n)
	}
}

// ecnInput handles the ECN signals of an acceptable segment in a
// synchronized state (RFC 3168 §6.1.3): CWR ends our echo, and CE on data
// starts it again, ACKed at once so that the sender learns of it within
// the round trip (as Linux's quick ACK on CE). A pure ACK is never sent
// ECN-capable (§6.1.4), so CE on one means nothing.
func (c *Conn) ecnInput(seg *Segment) {
	if c.ecn&ecnOK == 0 {
		return
	}
	if seg.Flags&FlagCWR != 0 {
		c.ecn &^= ecnEcho
		if len(seg.Payload) > 0 {
			c.ackNow = true // its cwnd may be small: as Linux, ACK at once
		}
	}
	if len(seg.Payload) > 0 && seg.ECN == CE {
		c.rareStats().CEReceived++
		if c.ecn&ecnEcho == 0 {
			c.ackNow = true
		}
		c.ecn |= ecnEcho
	}
}

// ecnHold reports whether an ACK, before it is processed, must not grow
// cwnd: it carries ECE, or a reduction's CWR is unsent or unacknowledged
// (the window stays as it was reduced for that round trip, as in Linux's
// CWR state). An ACK beyond the CWR segment ends that round trip.
func (c *Conn) ecnHold(seg *Segment) bool {
	if c.ecn&ecnOK == 0 {
		return false
	}
	if c.ecn&ecnCWROut != 0 && seg.Ack.GreaterThan(c.rare.cwrEnd) {
		c.ecn &^= ecnCWROut
	}
	return seg.Flags&FlagECE != 0 || c.ecn&(ecnCWR|ecnCWROut) != 0
}

// ecnAck handles ECE on an ACK after loss detection has seen it, flight
// being the data outstanding before it (RFC 3168 §6.1.2): the congestion
// window is reduced as for one loss, through the recovery path of the
// congestion control but with nothing to retransmit, at most once per
// window: not during loss recovery or after a timeout (which reduced it
// already), nor while the CWR that answers an earlier reduction may not
// have arrived (the peer echoes until it sees CWR).
func (c *Conn) ecnAck(now time.Time, seg *Segment, flight int) {
	if c.ecn&ecnOK == 0 || seg.Flags&FlagECE == 0 {
		return
	}
	c.rareStats().ECEReceived++
	if c.cc == nil || c.ecn&(ecnCWR|ecnCWROut) != 0 || c.inRecovery || c.inLoss || flight == 0 {
		return
	}
	c.cc.OnRecoveryStart(now, flight)
	c.cc.OnRecoveryEnd(now, flight)
	c.ecn |= ecnCWR
	c.rareStats().ECNReductions++
}

// ecnWindowReduced tells the ECN machine that loss recovery or a timeout reduced
// the window: CWR goes on the next new data (RFC 3168 §6.1.2), and ECE is
// ignored until it is acknowledged.
func (c *Conn) ecnWindowReduced() {
	if c.ecn&ecnOK != 0 {
		c.ecn |= ecnCWR
	}
}
