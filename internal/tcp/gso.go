package tcp

import "github.com/gotcpip/netstack/internal/checksum"

// MaxSuperSegs caps the segments of a super-segment, as the kernel's
// gso_max_segs would.
const MaxSuperSegs = 64

// A SuperSegment is a run of consecutive data segments that differ only
// in their sequence numbers and payload, all of the first one's size but
// perhaps the last, encoded as one TCP segment with all their payload for
// a link that cuts it again into the same segments (GSO, TSO). The shell
// builds one per run of the segments a call emits: Start with the first
// segment, Add each next one while it fits, Finish before handing the
// frame to the IP layer.
type SuperSegment struct {
	Segs   int // segments so far
	GSO    int // payload of each segment but the last
	HdrLen int // TCP header length

	last int // payload of the last segment
	next Seq // sequence number the next segment must have
	// Header fields of the first segment, which the rest must share.
	ack          Seq
	tsVal, tsEcr uint32
	wnd          uint16
	flags        Flags
	ecn          uint8
}

// Coalescible reports whether seg may be part of a super-segment at all:
// data without SYN, FIN or RST, and without options that differ from
// segment to segment or that only a handshake carries.
func Coalescible(seg *Segment) bool {
	return len(seg.Payload) > 0 && seg.Flags&(FlagSYN|FlagFIN|FlagRST) == 0 &&
		seg.Opts.NumSACK == 0 && !seg.Opts.HasWScale && seg.Opts.MSS == 0
}

// Start begins a super-segment with seg, which is Coalescible and was
// encoded at the start of the frame.
func (g *SuperSegment) Start(seg *Segment) {
	data := len(seg.Payload)
	*g = SuperSegment{Segs: 1, GSO: data, HdrLen: seg.HeaderLen(), last: data, next: seg.End(),
		ack: seg.Ack, tsVal: seg.Opts.TSVal, tsEcr: seg.Opts.TSEcr, wnd: seg.Wnd, flags: seg.Flags, ecn: seg.ECN}
}

// Add reports whether seg continues the super-segment, room being the
// bytes left in its frame; if so it counts seg, whose payload the caller
// appends to the frame.
func (g *SuperSegment) Add(seg *Segment, room int) bool {
	data := len(seg.Payload)
	if g.Segs == 0 || g.Segs >= MaxSuperSegs || g.last != g.GSO || data > g.GSO || data > room ||
		seg.Seq != g.next || seg.Ack != g.ack || seg.Wnd != g.wnd || seg.ECN != g.ecn ||
		seg.Flags&^FlagPSH != g.flags&^FlagPSH || seg.Opts.TSVal != g.tsVal || seg.Opts.TSEcr != g.tsEcr {
		return false
	}
	g.Segs++
	g.last = data
	g.next = seg.End()
	g.flags |= seg.Flags & FlagPSH
	return true
}

// Finish fixes the header of a super-segment of more than one segment:
// PSH as any of its segments had it, and the checksum field left holding
// the folded pseudo-header sum over the whole segment, for the link to
// finish per cut segment. h is the whole TCP segment; pseudo is the
// pseudo-header sum without the length.
func (g *SuperSegment) Finish(h Header, pseudo uint32) {
	h.SetFlags(g.flags)
	h.SetChecksum(^checksum.Fold(pseudo + uint32(len(h))))
}
