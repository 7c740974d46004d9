package tcp

// Stats counts what a connection did, for the shell's statistics and for
// tests (STYLE.md §16: a named counter for every drop).
type Stats struct {
	SegsIn          uint64 // segments given to Input
	SegsOut         uint64 // segments emitted
	Retransmits     uint64 // data or FIN segments sent again
	Timeouts        uint64 // retransmission timer expiries
	FastRetransmits uint64 // recoveries entered on three duplicate ACKs
	DupAcks         uint64 // duplicate ACKs received
	ChallengeAcks   uint64 // RFC 5961 challenge ACKs sent
	OutOfOrder      uint64 // segments held out of order
	DropUnaccept    uint64 // segments failing the acceptance test
	DropOOOFull     uint64 // out-of-order segments dropped: range list full
	DropWindow      uint64 // segments trimmed at the right window edge
	Probes          uint64 // zero-window and keepalive probes sent
}

// Stats returns the connection's counters.
func (c *Conn) Stats() Stats { return c.stats }

// xmit hands a segment to the emit function.
func (c *Conn) xmit(s *Segment) {
	c.stats.SegsOut++
	c.emit(s)
}
