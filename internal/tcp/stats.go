package tcp

import "sync"

// Stats counts what a connection did, for the shell's statistics and for
// tests: a named counter for every drop.
type Stats struct {
	SegsIn          uint64 // segments given to Input
	SegsOut         uint64 // segments emitted
	Retransmits     uint64 // data or FIN segments sent again
	Timeouts        uint64 // retransmission timer expiries
	FastRetransmits uint64 // fast recoveries entered (SACK/RACK loss or three duplicate ACKs)
	DupAcks         uint64 // duplicate ACKs received
	ChallengeAcks   uint64 // RFC 5961 challenge ACKs sent
	OutOfOrder      uint64 // segments held out of order
	DropUnaccept    uint64 // segments failing the acceptance test
	DropOOOFull     uint64 // out-of-order segments dropped: range list full
	DropWindow      uint64 // segments trimmed at the right window edge
	Probes          uint64 // zero-window and keepalive probes sent
	TLPs            uint64 // tail loss probes sent (RFC 8985 §7)
	Lost            uint64 // segments deemed lost (by RACK, duplicate ACKs or RTO)
	RACKLost        uint64 // of those, by RACK's time rule
	Sacked          uint64 // segments newly SACKed
	DSACKs          uint64 // D-SACK blocks received (RFC 2883)
	DropPAWS        uint64 // segments dropped by PAWS (RFC 7323 §5)
	BytesSent       uint64 // new data sent
	BytesRetrans    uint64 // data sent again
	BytesAcked      uint64 // sequence space acknowledged by the peer
	BytesReceived   uint64 // data received in order

	// Memory pressure: refusals of Config.Budget (budget.go).
	BufferBudgetHits uint64 // a ring not grown for Write or arriving data, a buffer not raised by autotuning
	DropMemory       uint64 // segments trimmed within the window: no ring room for them

	// Path MTU discovery (pmtu.go).
	PMTUAccepted       uint64 // ICMP fragmentation-needed accepted by PathMTUError (RFC 5927: sequence in the window)
	PMTURejected       uint64 // ICMP fragmentation-needed rejected: sequence outside SND.UNA..SND.NXT
	PLPMTUDFallbacks   uint64 // black hole suspected: the MSS fell back (RFC 4821)
	PLPMTUDProbes      uint64 // PLPMTUD probe segments sent
	PLPMTUDProbesAcked uint64 // of those, acknowledged: the MSS grew
	PLPMTUDProbesLost  uint64 // of those, lost: the search range shrank

	// Explicit Congestion Notification (RFC 3168, ecn.go).
	CEReceived    uint64 // data segments that arrived marked CE (congestion experienced)
	ECEReceived   uint64 // ACKs that arrived with ECE (the peer echoes a CE mark)
	ECNReductions uint64 // congestion window reductions for ECE
}

// hotStats are the counters every connection moves; the others (losses,
// drops, probes) are kept in a Stats allocated the first time one of them
// counts, so that a connection that never sees trouble does not carry them.
type hotStats struct {
	SegsIn, SegsOut                      uint64
	BytesSent, BytesAcked, BytesReceived uint64
}

// connRare is what a connection needs only once something unusual
// happens: the rarely moved counters, a congestion control chosen with
// SetCC, a D-SACK block to report. It is allocated on first use.
type connRare struct {
	stats  Stats
	newCC  func(mss int) CongestionControl // SetCC; nil: cfg.NewCC
	dsack  SACKBlock                       // a duplicate to report (RFC 2883)
	pm     pmtuState                       // path MTU and PLPMTUD (pmtu.go)
	cwrEnd Seq                             // the end of the last segment sent with CWR (ecn.go)

	// Receive and send state that few connections ever use, out of the
	// Conn so that it stays small.
	persistAt tick // the zero-window probe's deadline (RFC 9293 §3.8.6.1)
	rcvAnn    Seq  // right edge announced while short of memory (rcvNoMem), below rcvAdv
	rcvFinSeq Seq  // sequence number of a FIN seen out of order (rcvFinWait)
}

// persistAt returns the zero-window probe's deadline; 0: not armed.
func (c *Conn) persistAt() tick {
	if c.rare == nil {
		return 0
	}
	return c.rare.persistAt
}

// setPersist arms the zero-window probe for k, or disarms it (0).
func (c *Conn) setPersist(k tick) {
	if k != 0 || c.rare != nil {
		c.rareState().persistAt = k
	}
}

func (c *Conn) rareState() *connRare {
	if c.rare == nil {
		c.rare = new(connRare)
	}
	return c.rare
}

// rareStats returns the connection's rarely moved counters.
func (c *Conn) rareStats() *Stats { return &c.rareState().stats }

// Stats returns the connection's counters.
func (c *Conn) Stats() Stats {
	var s Stats
	if c.rare != nil {
		s = c.rare.stats
	}
	h := &c.stats
	s.SegsIn, s.SegsOut = h.SegsIn, h.SegsOut
	s.BytesSent, s.BytesAcked, s.BytesReceived = h.BytesSent, h.BytesAcked, h.BytesReceived
	return s
}

// xmit hands a segment from newSegment to the Emitter, and takes
// it back.
func (c *Conn) xmit(s *Segment) {
	c.stats.SegsOut++
	c.out.Emit(s)
	s.Payload = nil
	segPool.Put(s)
}

// Segments to emit come from a pool rather than from each connection (an
// idle connection holds none) or the stack (a pointer passed to emit
// escapes): the established path sends without allocating. The segment
// and a payload copied out of a wrapped send ring are valid only during
// emit, as NewConn documents.
var (
	segPool     = sync.Pool{New: func() any { return new(Segment) }}
	scratchPool = sync.Pool{New: func() any { return new([]byte) }}
)

// newSegment returns a segment for xmit, which returns it to the pool.
func newSegment() *Segment { return segPool.Get().(*Segment) }
