package tcp

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// spans returns the list's ranges without their ages.
func (l *oooList) spans() []span {
	var s []span
	for _, r := range l.ranges() {
		s = append(s, r.span)
	}
	return s
}

// establishedBig is an ESTABLISHED connection with SACK and a receive
// buffer of rcvBuf octets (window scaling on both sides), whose limit on
// out-of-order ranges it checks against want.
func establishedBig(t *testing.T, rcvBuf, want int) *transcript {
	t.Helper()
	tt := establishedWith(t, &Config{RecvBuf: rcvBuf, RecvBufMax: rcvBuf}, " sackok ws=7")
	if got := tt.c.oooLimit(); got != want {
		t.Fatalf("oooLimit() = %d, want %d", got, want)
	}
	return tt
}

// seqData is the payload of [seq, seq+n): each octet the low byte of its
// offset from the peer's first data octet (5001), so data delivered out of
// place shows.
func seqData(seq Seq, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(int(seq.Sub(5001)) + i)
	}
	return p
}

// inData delivers [seq, seq+n) with its seqData payload.
func (tt *transcript) inData(seq Seq, n int) {
	tt.t.Helper()
	seg := Segment{SrcPort: ttRemote.Port(), DstPort: ttLocal.Port(), Seq: seq, Ack: ttISS + 1,
		Flags: FlagACK, Wnd: 65535, Payload: seqData(seq, n)}
	tt.c.Input(tt.now, &seg)
	tt.collect()
	tt.out = tt.out[:0] // the ACKs are not the point here
}

// Five hundred disjoint ranges, each a segment with a hole below it, are
// all held (no DropOOOFull); the SACK blocks stay the newest first; filling
// the holes from the top down delivers nothing until the lowest fills, and
// then everything, in order.
func TestReassemblyManyRanges(t *testing.T) {
	const n, seg = 500, 1000
	tt := establishedBig(t, 2<<20, 2<<20/(2*1460))
	base := Seq(5001)
	for i := 0; i < n; i++ {
		tt.inData(base.Add((2*i+1)*seg), seg) // hole i lies below range i
	}
	if st := tt.c.Stats(); st.OutOfOrder != n || st.DropOOOFull != 0 {
		t.Fatalf("held %d, dropped %d as full; want %d, 0", st.OutOfOrder, st.DropOOOFull, n)
	}
	if tt.c.ooo.n != n {
		t.Fatalf("%d ranges, want %d", tt.c.ooo.n, n)
	}
	var o Options
	tt.c.ooo.sackBlocks(&o)
	for k := 0; k < o.NumSACK; k++ {
		if i := n - 1 - k; o.SACK[k] != (SACKBlock{base.Add((2*i + 1) * seg), base.Add((2*i + 2) * seg)}) {
			t.Fatalf("SACK block %d is %v, want range %d", k, o.SACK[k], i)
		}
	}
	for i := n - 1; i > 0; i-- {
		tt.inData(base.Add(2*i*seg), seg)
	}
	if tt.c.rcvNxt != base || tt.c.ooo.n != 1 {
		t.Fatalf("RCV.NXT %d with %d ranges before the first hole filled", tt.c.rcvNxt, tt.c.ooo.n)
	}
	tt.inData(base, seg)
	if want := base.Add(2 * n * seg); tt.c.rcvNxt != want || tt.c.ooo.n != 0 {
		t.Fatalf("RCV.NXT %d with %d ranges, want %d with none", tt.c.rcvNxt, tt.c.ooo.n, want)
	}
	got, err := tt.read(tt.ms())
	if err != nil || !bytes.Equal(got, seqData(base, 2*n*seg)) {
		t.Fatalf("read %d octets (%v), not the %d sent in order", len(got), err, 2*n*seg)
	}
	if len(tt.c.ooo.buf) != oooInline {
		t.Fatalf("emptied list keeps storage for %d ranges, want %d", len(tt.c.ooo.buf), oooInline)
	}
}

// The list holds at most oooLimit ranges: a peer sending one-octet
// segments with one-octet holes gets that many held, the next disjoint one
// dropped (and counted), while data touching a held range is still taken.
func TestReassemblyBound(t *testing.T) {
	for _, c := range []struct{ rcvBuf, limit int }{
		{64 << 10, oooMin}, // small buffers keep the old fixed bound
		{1 << 20, 359},     // one range per two segments of buffer
		{16 << 20, oooMax}, // large ones the fixed cap
		{100 << 20, oooMax},
	} {
		tt := establishedBig(t, c.rcvBuf, c.limit)
		base := Seq(5001)
		for i := 0; i <= c.limit; i++ {
			tt.inData(base.Add(2*i+1), 1)
		}
		st := tt.c.Stats()
		if st.OutOfOrder != uint64(c.limit) || st.DropOOOFull != 1 || tt.c.ooo.n != c.limit {
			t.Fatalf("buffer %d: held %d in %d ranges, dropped %d as full; want %d, %d, 1",
				c.rcvBuf, st.OutOfOrder, tt.c.ooo.n, st.DropOOOFull, c.limit, c.limit)
		}
		tt.inData(base.Add(2), 1) // joins the first two ranges
		if tt.c.ooo.n != c.limit-1 || tt.c.Stats().DropOOOFull != 1 {
			t.Fatalf("buffer %d: a merging segment was refused", c.rcvBuf)
		}
		if len(tt.c.ooo.buf) > oooMax {
			t.Fatalf("buffer %d: storage for %d ranges, beyond %d", c.rcvBuf, len(tt.c.ooo.buf), oooMax)
		}
	}
}

// The list against a model (a bitmap of held octets): random segments,
// deliveries and fills keep it sorted, disjoint and non-adjacent, equal to
// the model, with the ages distinct and the SACK blocks the newest ranges,
// across growth, front pops, and inserts at either side.
func TestReassemblyModel(t *testing.T) {
	const space = 1 << 16
	rng := uint64(1)
	next := func(n int) int {
		rng = rng*6364136223846793005 + 1442695040888963407
		return int((rng >> 33) % uint64(n))
	}
	var l oooList
	held := make([]bool, space)
	var newest []Seq // a point in each touched range, newest last
	nxt := Seq(0)
	most, emptied := 0, 0
	for step := 0; step < 20000 && int(nxt) < space-4000; step++ {
		switch {
		case next(40) == 0 && l.n > 0: // the hole at RCV.NXT fills
			nxt = l.advance(l.ranges()[0].start)
		case next(200) == 0 && l.n > 0: // data fills up to a random range
			nxt = l.advance(l.ranges()[next(l.n)].start)
		case next(1000) == 0 && l.n > 0: // every hole fills
			nxt = l.advance(l.lastEnd())
			if l.n != 0 || len(l.buf) != oooInline {
				t.Fatalf("filled list holds %d ranges in storage for %d", l.n, len(l.buf))
			}
			emptied++
		default:
			start := int(nxt) + 1 + next(1500)
			end := start + 1 + next(8)
			if l.insert(Seq(start), Seq(end), oooMax) {
				for i := start; i < end; i++ {
					held[i] = true
				}
				newest = append(newest, Seq(start))
			}
		}
		checkModel(t, &l, nxt, held, newest)
		most = max(most, l.n)
	}
	if most < 2*oooInline || emptied == 0 {
		t.Fatalf("the walk reached %d ranges and emptied %d times: too little", most, emptied)
	}
	t.Logf("at most %d ranges, emptied %d times", most, emptied)
}

// checkModel checks l, above nxt, against the bitmap held, and its SACK
// blocks against the touch history newest.
func checkModel(t *testing.T, l *oooList, nxt Seq, held []bool, newest []Seq) {
	t.Helper()
	var want []span
	for i := int(nxt); i < min(len(held), int(nxt)+1600); i++ { // past what the walk sends
		if held[i] && (i == int(nxt) || !held[i-1]) {
			want = append(want, span{Seq(i), Seq(i)})
		}
		if held[i] {
			want[len(want)-1].end = Seq(i + 1)
		}
	}
	if got := l.spans(); !slices.Equal(got, want) {
		t.Fatalf("ranges %v, want %v", got, want)
	}
	// The SACK blocks: the ranges holding the newest touches, distinct.
	var blocks []SACKBlock
	for k := len(newest) - 1; k >= 0 && len(blocks) < min(4, len(want)); k-- {
		for _, s := range want {
			b := SACKBlock{s.start, s.end}
			if s.start.LessEq(newest[k]) && newest[k].LessThan(s.end) && !slices.Contains(blocks, b) {
				blocks = append(blocks, b)
			}
		}
	}
	ages := map[uint32]bool{}
	for _, r := range l.ranges() {
		if ages[r.age] || r.age == 0 {
			t.Fatalf("age %d repeats or is unset", r.age)
		}
		ages[r.age] = true
	}
	var o, byAge Options
	l.sackBlocks(&o)
	l.sackBlocksByAge(&byAge)
	if !slices.Equal(o.SACK[:o.NumSACK], blocks) || !slices.Equal(byAge.SACK[:byAge.NumSACK], blocks) {
		t.Fatalf("SACK blocks %v (by age %v), want %v", o.SACK[:o.NumSACK], byAge.SACK[:byAge.NumSACK], blocks)
	}
}

// A path that loses every other segment of a window, as a full queue that
// frees one slot at a time does, leaves the receiver hundreds of holes at
// once: it holds every segment that arrives, so the sender retransmits
// only what the path lost. (The link has a rate so that an ACK does not
// arrive at the very instant RACK's timer for the segment it covers
// fires, which a path without one would make a tie.)
func TestSimManyHoles(t *testing.T) {
	const isn, from, holes = 0x10000, 4 << 20, 400
	cfg := &Config{RecvBuf: 4 << 20, RecvBufMax: 4 << 20}
	s := newSim(t, 1, simImpair{Delay: 5 * time.Millisecond, Rate: 125e6, Queue: time.Second}, cfg, isn, 0x20000)
	s.ends[0].total = 16 << 20
	dropped, most, storage := 0, 0, 0
	s.drop = func(end int, seg *Segment) bool {
		if rcv := s.ends[1].conn; rcv != nil && rcv.ooo != nil {
			most, storage = max(most, rcv.ooo.n), max(storage, len(rcv.ooo.buf))
		}
		off := int(seg.Seq.Sub(isn + 1))
		if end != 0 || seg.Retrans || len(seg.Payload) == 0 || off < from || dropped == holes || (off/len(seg.Payload))%2 == 0 {
			return false
		}
		dropped++
		return true
	}
	if err := s.run(time.Hour); err != nil || s.ends[1].recvd != s.ends[0].total {
		t.Fatalf("%v (received %d of %d)", err, s.ends[1].recvd, s.ends[0].total)
	}
	snd, rcv := s.ends[0].conn.Stats(), s.ends[1].conn.Stats()
	t.Logf("dropped %d, retransmitted %d; receiver held %d out of order in at most %d ranges (storage for %d), dropped %d as full",
		dropped, snd.Retransmits, rcv.OutOfOrder, most, storage, rcv.DropOOOFull)
	if dropped != holes || most <= oooMin {
		t.Fatalf("the path made %d holes, at most %d at once: not the test's case", dropped, most)
	}
	if rcv.DropOOOFull != 0 || snd.Retransmits != uint64(dropped) {
		t.Errorf("receiver dropped %d segments as full, sender retransmitted %d for %d lost", rcv.DropOOOFull, snd.Retransmits, dropped)
	}
}

// In steady state the list allocates nothing per segment: neither while
// holding a few ranges (inline) nor while holding hundreds, a range added
// at the top and one popped at the bottom each segment, with the SACK
// blocks built for each ACK.
func TestReassemblyNoAllocs(t *testing.T) {
	for _, n := range []int{4, 300} {
		var l oooList
		var o Options
		next := Seq(1000)
		for i := 0; i < n; i++ {
			l.insert(next, next+10, oooMax)
			next += 20
		}
		allocs := testing.AllocsPerRun(2000, func() {
			l.insert(next, next+10, oooMax)
			next += 20
			l.sackBlocks(&o)
			l.advance(l.ranges()[0].start)
		})
		if allocs != 0 || l.n != n {
			t.Errorf("%d ranges: %v allocations a segment (%d ranges after)", n, allocs, l.n)
		}
	}
}

// BenchmarkReassemblyHoles is a loss episode of 1000 holes, every other
// segment lost: each arriving segment makes a range (and an ACK's SACK
// blocks), then the retransmissions fill the holes from the bottom.
func BenchmarkReassemblyHoles(b *testing.B) {
	const holes, mss = 1000, 1448
	var l oooList
	var o Options
	b.ReportAllocs()
	for range b.N {
		base := Seq(1)
		for i := 0; i < holes; i++ {
			start := base.Add((2*i + 1) * mss)
			l.insert(start, start.Add(mss), oooMax)
			l.sackBlocks(&o)
		}
		for i := 0; i < holes; i++ {
			l.advance(base.Add((2*i + 1) * mss))
			l.sackBlocks(&o)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*holes), "ns/segment")
}
