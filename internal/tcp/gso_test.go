package tcp

import (
	"testing"

	"github.com/gotcpip/netstack/internal/checksum"
)

// TestSuperSegment: consecutive segments with the same header fields join
// one super-segment up to MaxSuperSegs, a short one ends it, and anything
// that differs (sequence, ACK, window, flags, timestamps, room) starts a
// new one; Finish merges PSH and leaves the folded pseudo-header sum.
func TestSuperSegment(t *testing.T) {
	payload := make([]byte, 1000)
	seg := func(seq Seq, n int) *Segment {
		return &Segment{Seq: seq, Ack: 77, Flags: FlagACK, Wnd: 500, Payload: payload[:n],
			Opts: Options{HasTS: true, TSVal: 5, TSEcr: 6}}
	}
	var g SuperSegment
	if g.Add(seg(0, 1000), 1<<20) {
		t.Fatal("Add before Start")
	}
	first := seg(1000, 1000)
	if !Coalescible(first) || Coalescible(&Segment{Flags: FlagACK}) || Coalescible(&Segment{Flags: FlagFIN | FlagACK, Payload: payload}) {
		t.Fatal("Coalescible wrong")
	}
	g.Start(first)
	next := Seq(2000)
	for _, bad := range []*Segment{
		seg(next+1, 1000), // a gap
		{Seq: next, Ack: 78, Flags: FlagACK, Wnd: 500, Payload: payload, Opts: first.Opts},
		{Seq: next, Ack: 77, Flags: FlagACK, Wnd: 501, Payload: payload, Opts: first.Opts},
		{Seq: next, Ack: 77, Flags: FlagACK | FlagURG, Wnd: 500, Payload: payload, Opts: first.Opts},
		{Seq: next, Ack: 77, Flags: FlagACK, Wnd: 500, Payload: payload, Opts: Options{HasTS: true, TSVal: 9, TSEcr: 6}},
	} {
		if g.Add(bad, 1<<20) {
			t.Fatalf("joined %+v", bad)
		}
	}
	if g.Add(seg(next, 1000), 999) {
		t.Fatal("joined without room")
	}
	for g.Segs < MaxSuperSegs-1 {
		if !g.Add(seg(next, 1000), 1<<20) {
			t.Fatalf("refused segment %d", g.Segs+1)
		}
		next += 1000
	}
	last := seg(next, 400)
	last.Flags |= FlagPSH
	if !g.Add(last, 1<<20) || g.Segs != MaxSuperSegs || g.GSO != 1000 {
		t.Fatalf("short last segment: %+v", g)
	}
	if g.Add(seg(next+400, 400), 1<<20) {
		t.Fatal("joined past MaxSuperSegs or after a short segment")
	}
	h := make(Header, 32+10000)
	first.Encode(h[:32+1000], 0)
	g.Finish(h, 1234)
	if h.Flags() != FlagACK|FlagPSH || h.Checksum() != ^checksum.Fold(1234+uint32(len(h))) {
		t.Fatalf("flags %v checksum %#x", h.Flags(), h.Checksum())
	}
}
