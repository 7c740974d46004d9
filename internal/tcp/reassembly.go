package tcp

// maxOOO bounds the number of disjoint out-of-order ranges a connection
// holds. A segment that would need one more is dropped (the sender will
// retransmit it), as Linux prunes its out-of-order queue under pressure.
const maxOOO = 64

// span is a range of sequence numbers [start, end) received out of order;
// the octets themselves sit in the receive ring at their offset from RCV.NXT.
type span struct{ start, end Seq }

// oooList is the sorted, disjoint, non-adjacent list of out-of-order ranges
// above RCV.NXT (RFC 9293 §3.10.7.4: segments "held for later processing").
// It lives in a fixed array: no allocation per segment.
type oooList struct {
	s     [maxOOO]span
	age   [maxOOO]uint16 // when each range last grew: the order of the SACK blocks (RFC 2018 §4)
	n     int
	clock uint16 // the age of the range that grew last
}

// insert adds [start, end), merging with neighbours. It reports false if the
// list is full and the range touches none of the existing ones.
func (l *oooList) insert(start, end Seq) bool {
	i := 0
	for i < l.n && l.s[i].end.LessThan(start) {
		i++
	}
	// l.s[i] is the first range that ends at or after start.
	j := i
	for j < l.n && l.s[j].start.LessEq(end) {
		j++
	}
	// ranges i..j-1 overlap or touch [start, end)
	if i == j {
		if l.n == maxOOO {
			return false
		}
		copy(l.s[i+1:l.n+1], l.s[i:l.n])
		copy(l.age[i+1:l.n+1], l.age[i:l.n])
		l.s[i] = span{start, end}
		l.n++
		l.touch(i)
		return true
	}
	ns := span{MinSeq(start, l.s[i].start), MaxSeq(end, l.s[j-1].end)}
	l.s[i] = ns
	copy(l.s[i+1:], l.s[j:l.n])
	copy(l.age[i+1:], l.age[j:l.n])
	l.n -= j - i - 1
	l.touch(i)
	return true
}

// held returns the part of [start, end) already held, from its first held
// octet to its last (one block, as Linux reports a D-SACK), and whether
// there is any.
func (l *oooList) held(start, end Seq) (SACKBlock, bool) {
	var b SACKBlock
	found := false
	for i := 0; i < l.n && l.s[i].start.LessThan(end); i++ {
		if l.s[i].end.LessEq(start) {
			continue
		}
		if !found {
			b.Left, found = MaxSeq(start, l.s[i].start), true
		}
		b.Right = MinSeq(end, l.s[i].end)
	}
	return b, found
}

// touch makes range i the newest.
func (l *oooList) touch(i int) {
	l.age[i] = 0
	if l.clock == ^uint16(0) {
		// Renumber the ranges 1..n in the order of their ages, so that
		// the clock runs on without wrapping.
		var rank [maxOOO]uint16
		for a := 0; a < l.n; a++ {
			for b := 0; b < l.n; b++ {
				if l.age[b] <= l.age[a] {
					rank[a]++
				}
			}
		}
		copy(l.age[:l.n], rank[:l.n])
		l.clock = uint16(l.n)
	}
	l.clock++
	l.age[i] = l.clock
}

// advance pops the ranges that start at or before rcvNxt and returns the new
// RCV.NXT: the end of the contiguous data now available.
func (l *oooList) advance(rcvNxt Seq) Seq {
	k := 0
	for k < l.n && l.s[k].start.LessEq(rcvNxt) {
		rcvNxt = MaxSeq(rcvNxt, l.s[k].end)
		k++
	}
	if k > 0 {
		copy(l.s[:], l.s[k:l.n])
		copy(l.age[:], l.age[k:l.n])
		l.n -= k
	}
	return rcvNxt
}

// sackBlocks fills o with up to four SACK blocks (RFC 2018 §4): first the
// range holding the latest segment, then the others, most recently changed
// first, so that those that do not fit are the stalest news.
func (l *oooList) sackBlocks(o *Options) {
	o.NumSACK = 0
	var below uint16 // ages below this are left; 0: none yet chosen
	for o.NumSACK < len(o.SACK) {
		k := -1
		for i := 0; i < l.n; i++ {
			if a := l.age[i]; (below == 0 || a < below) && (k < 0 || a > l.age[k]) {
				k = i
			}
		}
		if k < 0 {
			return
		}
		o.SACK[o.NumSACK] = SACKBlock{l.s[k].start, l.s[k].end}
		o.NumSACK++
		below = l.age[k]
	}
}
