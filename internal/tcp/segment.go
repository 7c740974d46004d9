package tcp

import (
	"fmt"
	"strings"

	"github.com/gotcpip/netstack/internal/checksum"
)

// Segment is the decoded form of a TCP segment that the state machine works
// with. Payload aliases the bytes it was parsed from, or, for
// segments the machine emits, the connection's send ring.
type Segment struct {
	SrcPort, DstPort uint16
	Seq, Ack         Seq
	Flags            Flags
	Wnd              uint16 // raw, unscaled
	Opts             Options
	Payload          []byte
	Retrans          bool  // output only: the data was sent before (not encoded)
	ECN              uint8 // the IP header's ECN field (RFC 3168 §5): as received, or to send (not encoded)

	// Set by Conn.Input on a SYN that ended TIME-WAIT (ReopenedBy): the
	// ISN the listener gives the new connection, as Linux's tcp_tw_isn
	// travels with the skb from the TIME-WAIT socket to the listener.
	twReuse bool
	twISN   Seq
}

// Len returns the sequence space the segment occupies: its payload plus one
// for each of SYN and FIN (RFC 9293 §3.4, SEG.LEN).
func (s *Segment) Len() int {
	n := len(s.Payload)
	if s.Flags&FlagSYN != 0 {
		n++
	}
	if s.Flags&FlagFIN != 0 {
		n++
	}
	return n
}

// End returns the sequence number just past the segment (SEG.SEQ+SEG.LEN).
func (s *Segment) End() Seq { return s.Seq.Add(s.Len()) }

// HeaderLen returns the length of the encoded header with its options.
func (s *Segment) HeaderLen() int { return HeaderMinLen + s.Opts.Len() }

// Parse decodes b, a whole TCP segment (header, options and payload), after
// checking its data offset and its checksum; malformed options do not fail
// it (as in Linux, decoding stops at a bad option length: parseOptions).
// pseudo is the pseudo-header sum, checksum.Pseudo(src, dst, 6, len(b)).
// The returned Payload aliases b. Parse never panics and does not allocate.
func Parse(b []byte, pseudo uint32) (Segment, error) {
	var s Segment
	h := Header(b)
	if err := h.Validate(); err != nil {
		return s, err
	}
	if checksum.Checksum(b, pseudo) != 0 {
		return s, ErrChecksum
	}
	parseOptions(h.Options(), &s.Opts)
	s.SrcPort = h.SrcPort()
	s.DstPort = h.DstPort()
	s.Seq = h.SeqNum()
	s.Ack = h.AckNum()
	s.Flags = h.Flags()
	s.Wnd = h.Window()
	s.Payload = h.Payload()
	return s, nil
}

// Encode writes the segment into b, which must have room for
// HeaderLen()+len(Payload) bytes, and fills in the checksum using pseudo,
// checksum.Pseudo(src, dst, 6, HeaderLen()+len(Payload)). It returns the
// number of bytes written. It does not allocate.
func (s *Segment) Encode(b []byte, pseudo uint32) int {
	hl := s.HeaderLen()
	n := hl + len(s.Payload)
	b = b[:n]
	h := Header(b)
	h.SetSrcPort(s.SrcPort)
	h.SetDstPort(s.DstPort)
	h.SetSeqNum(s.Seq)
	h.SetAckNum(s.Ack)
	h.SetDataOffset(hl)
	h.SetFlags(s.Flags)
	h.SetWindow(s.Wnd)
	h.SetChecksum(0)
	h.SetUrgentPtr(0)
	s.Opts.encode(b[HeaderMinLen:hl])
	copy(b[hl:], s.Payload)
	h.SetChecksum(checksum.Checksum(b, pseudo))
	return n
}

// String formats the segment for logs and test failures, in the notation
// the transcript tests use: "SYN|ACK seq=1 ack=2 wnd=3 len=4 mss=1460".
func (s Segment) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v seq=%d", s.Flags, uint32(s.Seq))
	if s.Flags&FlagACK != 0 {
		fmt.Fprintf(&b, " ack=%d", uint32(s.Ack))
	}
	fmt.Fprintf(&b, " wnd=%d", s.Wnd)
	if len(s.Payload) > 0 {
		fmt.Fprintf(&b, " len=%d", len(s.Payload))
	}
	if s.ECN != 0 {
		fmt.Fprintf(&b, " ecn=%d", s.ECN)
	}
	o := &s.Opts
	if o.MSS != 0 {
		fmt.Fprintf(&b, " mss=%d", o.MSS)
	}
	if o.HasWScale {
		fmt.Fprintf(&b, " ws=%d", o.WScale)
	}
	if o.SACKPermitted {
		b.WriteString(" sackok")
	}
	if o.HasTS {
		fmt.Fprintf(&b, " ts=%d/%d", o.TSVal, o.TSEcr)
	}
	for i := 0; i < o.NumSACK && i < len(o.SACK); i++ {
		fmt.Fprintf(&b, " sack=%d-%d", uint32(o.SACK[i].Left), uint32(o.SACK[i].Right))
	}
	return b.String()
}
