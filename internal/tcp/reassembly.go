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
	s    [maxOOO]span
	n    int
	last int // index of the range holding the latest segment (first SACK block, RFC 2018 §4)
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
		l.s[i] = span{start, end}
		l.n++
		l.last = i
		return true
	}
	ns := span{MinSeq(start, l.s[i].start), MaxSeq(end, l.s[j-1].end)}
	l.s[i] = ns
	copy(l.s[i+1:], l.s[j:l.n])
	l.n -= j - i - 1
	l.last = i
	return true
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
		l.n -= k
		l.last = max(l.last-k, 0)
	}
	return rcvNxt
}

// sackBlocks fills o with up to four SACK blocks, the most recently changed
// range first (RFC 2018 §4).
func (l *oooList) sackBlocks(o *Options) {
	o.NumSACK = 0
	if l.n == 0 {
		return
	}
	last := min(l.last, l.n-1)
	o.SACK[0] = SACKBlock{l.s[last].start, l.s[last].end}
	o.NumSACK = 1
	for i := 0; i < l.n && o.NumSACK < len(o.SACK); i++ {
		if i != last {
			o.SACK[o.NumSACK] = SACKBlock{l.s[i].start, l.s[i].end}
			o.NumSACK++
		}
	}
}
