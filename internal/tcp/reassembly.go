package tcp

import (
	"cmp"
	"slices"
)

// The out-of-order list grows as holes need, up to a bound the receive
// buffer sets (oooLimit): a segment that would need one more disjoint
// range is dropped (the sender will retransmit it). Linux bounds its
// out-of-order queue only by memory, pruning it under pressure; here the
// octets sit in the receive ring, already bounded by the buffer, and the
// bound is on the bookkeeping.
const (
	// oooInline is how many ranges the list holds in itself, with no
	// second allocation: the usual few holes of a loss episode. The list
	// returns to it whenever it empties, so an idle connection holds no
	// larger one.
	oooInline = 16
	// oooMin is the bound for small receive buffers: the fixed size the
	// list once had.
	oooMin = 64
	// oooMax is the bound for the largest buffers: 4096 ranges, 48 KiB,
	// which a sender of 1460-byte segments reaches only with 12 MB of
	// window out of order.
	oooMax = 4096
)

// oooLimit returns how many disjoint out-of-order ranges the connection
// may hold: one per two full-sized segments of the receive buffer, the
// most a sender of full-sized segments can cause (each range and each hole
// at least one segment), within [oooMin, oooMax]. A peer that sends small
// segments to make more holes is held to the same count, which bounds the
// work per segment as well as the memory (12 bytes per two segments of
// buffer, under 0.5%).
func (c *Conn) oooLimit() int {
	return min(max(int(c.rcvBuf)/(2*max(int(c.rcvMSS), 1)), oooMin), oooMax)
}

// span is a range of sequence numbers [start, end) received out of order;
// the octets themselves sit in the receive ring at their offset from RCV.NXT.
type span struct{ start, end Seq }

// oooRange is a span and its age: when it last grew, the order of the SACK
// blocks (RFC 2018 §4). Ages are distinct, the newest the largest.
type oooRange struct {
	span
	age uint32
}

// oooList is the sorted, disjoint, non-adjacent list of out-of-order ranges
// above RCV.NXT (RFC 9293 §3.10.7.4: segments "held for later processing"),
// buf[head:head+n]. The storage doubles as ranges need it and is kept while
// the list is in use, so there is no allocation per segment; the list pops
// from the front (RCV.NXT reaching a range) by moving head, and inserts by
// moving the shorter side of the ranges. Lookups are binary searches, with
// a fast path for the common case of a range past the last; the SACK
// blocks come from the few ranges that grew last (recent), not a scan.
// The list itself is 272 bytes (an idle connection that once held data
// out of order keeps it; the fixed list was 650). It must not be copied:
// buf may point into it.
type oooList struct {
	buf     []oooRange // inline[:], or heap storage while the list needs more
	head    int
	n       int
	clock   uint32 // the age of the range that grew last
	nRecent int32
	recent  [8]Seq // a point in each of the ranges that grew last, oldest first
	inline  [oooInline]oooRange
}

// ranges returns the list's ranges in order.
func (l *oooList) ranges() []oooRange { return l.buf[l.head : l.head+l.n] }

// lastEnd returns the end of the highest range; the list must not be empty.
func (l *oooList) lastEnd() Seq { return l.buf[l.head+l.n-1].end }

// search returns the index of the first range that ends at or after seq:
// the one seq touches or, if none, the one above it.
func (l *oooList) search(seq Seq) int {
	r := l.ranges()
	if l.n == 0 || r[l.n-1].end.LessThan(seq) {
		return l.n // in order above the rest: the usual case
	}
	lo, hi := 0, l.n-1 // r[hi] ends at or after seq
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m].end.LessThan(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// insert adds [start, end), merging with neighbours. It reports false if the
// list holds limit ranges and [start, end) touches none of them.
func (l *oooList) insert(start, end Seq, limit int) bool {
	i := l.search(start)
	r := l.ranges()
	j := i
	for j < l.n && r[j].start.LessEq(end) {
		j++
	}
	// ranges i..j-1 overlap or touch [start, end)
	if i == j {
		if l.n >= limit {
			return false
		}
		l.insertAt(i, span{start, end})
		l.touch(i)
		return true
	}
	r[i].span = span{MinSeq(start, r[i].start), MaxSeq(end, r[j-1].end)}
	copy(r[i+1:], r[j:])
	l.n -= j - i - 1
	l.touch(i)
	return true
}

// insertAt makes s the range at index i, moving the ranges before i down
// into the free slots below head when there are fewer of them than after
// it, else those from i up.
func (l *oooList) insertAt(i int, s span) {
	if l.head > 0 && i < l.n/2 {
		copy(l.buf[l.head-1:], l.buf[l.head:l.head+i])
		l.head--
	} else {
		if l.head+l.n == len(l.buf) {
			l.makeRoom()
		}
		r := l.buf[l.head : l.head+l.n+1]
		copy(r[i+1:], r[i:l.n])
	}
	l.buf[l.head+i] = oooRange{span: s}
	l.n++
}

// makeRoom frees the slot past the last range: it moves the ranges to the
// start of the storage when a quarter of it lies unused below them (or the
// storage is as large as the list may need), else to storage twice as
// large. Either way the next quarter of the storage's inserts need no move,
// so the cost per insert stays constant.
func (l *oooList) makeRoom() {
	if l.buf == nil {
		l.buf = l.inline[:]
		return
	}
	buf := l.buf
	if l.head < len(buf)/4 && len(buf) < oooMax {
		buf = make([]oooRange, 2*len(buf))
	}
	copy(buf, l.buf[l.head:l.head+l.n])
	l.buf, l.head = buf, 0
}

// held returns the part of [start, end) already held, from its first held
// octet to its last (one block, as Linux reports a D-SACK), and whether
// there is any.
func (l *oooList) held(start, end Seq) (SACKBlock, bool) {
	var b SACKBlock
	found := false
	r := l.ranges()
	for i := l.search(start); i < l.n && r[i].start.LessThan(end); i++ {
		if r[i].end.LessEq(start) {
			continue
		}
		if !found {
			b.Left, found = MaxSeq(start, r[i].start), true
		}
		b.Right = MinSeq(end, r[i].end)
	}
	return b, found
}

// touch makes range i the newest.
func (l *oooList) touch(i int) {
	r := l.ranges()
	r[i].age = 0
	if l.clock == ^uint32(0) {
		l.renumber()
	}
	l.clock++
	r[i].age = l.clock
	l.remember(r[i].span)
}

// remember makes s the newest of the recent ranges, which are those that
// grew last, in the order of their ages: each is a point in its range,
// which stays in it as the range grows, so the ranges are found by binary
// search for the SACK blocks. Points in s are another range's no more
// (it merged into s) or s's own; they go.
func (l *oooList) remember(s span) {
	k := 0
	for _, p := range l.recent[:l.nRecent] {
		if !s.start.LessEq(p) || !p.LessThan(s.end) {
			l.recent[k] = p
			k++
		}
	}
	if k == len(l.recent) {
		copy(l.recent[:], l.recent[1:])
		k--
	}
	l.recent[k] = s.start
	l.nRecent = int32(k + 1)
}

// forget drops the recent points below rcvNxt, whose ranges are popped.
func (l *oooList) forget(rcvNxt Seq) {
	k := 0
	for _, p := range l.recent[:l.nRecent] {
		if rcvNxt.LessEq(p) {
			l.recent[k] = p
			k++
		}
	}
	l.nRecent = int32(k)
}

// renumber gives the ranges the ages 1..n in the order of their ages, so
// that the clock runs on without wrapping. It allocates, once in 2^32
// changes.
func (l *oooList) renumber() {
	r := l.ranges()
	order := make([]int32, len(r))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(r[a].age, r[b].age) })
	for rank, i := range order {
		r[i].age = uint32(rank + 1)
	}
	l.clock = uint32(len(r))
}

// advance pops the ranges that start at or before rcvNxt and returns the new
// RCV.NXT: the end of the contiguous data now available. An emptied list
// gives back storage beyond its inline ranges.
func (l *oooList) advance(rcvNxt Seq) Seq {
	r := l.ranges()
	k := 0
	for k < l.n && r[k].start.LessEq(rcvNxt) {
		rcvNxt = MaxSeq(rcvNxt, r[k].end)
		k++
	}
	if k == 0 {
		return rcvNxt
	}
	l.head += k
	l.n -= k
	l.forget(rcvNxt)
	if l.n == 0 {
		l.head = 0
		if len(l.buf) > oooInline {
			l.buf = l.inline[:]
		}
	}
	return rcvNxt
}

// sackBlocks fills o with up to four SACK blocks (RFC 2018 §4): first the
// range holding the latest segment, then the others, most recently changed
// first, so that those that do not fit are the stalest news. The recent
// ranges give them, unless popped ranges left too few.
func (l *oooList) sackBlocks(o *Options) {
	want := min(l.n, len(o.SACK))
	if int(l.nRecent) < want {
		l.sackBlocksByAge(o)
		return
	}
	r := l.ranges()
	for k := range want {
		x := r[l.search(l.recent[int(l.nRecent)-1-k].Add(1))] // the range holding the point
		o.SACK[k] = SACKBlock{x.start, x.end}
	}
	o.NumSACK = want
}

// sackBlocksByAge is sackBlocks by the ranges' ages: one pass keeps the
// newest four.
func (l *oooList) sackBlocksByAge(o *Options) {
	var top [len(o.SACK)]*oooRange // newest first
	m := 0
	r := l.ranges()
	for i := range r {
		x := &r[i]
		if m == len(top) && x.age < top[m-1].age {
			continue
		}
		k := min(m, len(top)-1)
		m = min(m+1, len(top))
		for ; k > 0 && top[k-1].age < x.age; k-- {
			top[k] = top[k-1]
		}
		top[k] = x
	}
	for k, x := range top[:m] {
		o.SACK[k] = SACKBlock{x.start, x.end}
	}
	o.NumSACK = m
}
