package tcp

// Seq is a TCP sequence number. Sequence numbers live in a space of 2^32
// and are compared modulo 2^32 (RFC 9293 §3.4): a is "less than" b when the
// signed 32-bit distance b-a is positive, so comparisons stay correct across
// the wrap as long as the two numbers are less than 2^31 apart.
type Seq uint32

// Add returns s advanced by n octets; n may be negative.
func (s Seq) Add(n int) Seq { return s + Seq(uint32(n)) }

// Sub returns the signed distance s-t.
func (s Seq) Sub(t Seq) int32 { return int32(uint32(s - t)) }

// LessThan reports whether s comes before t.
func (s Seq) LessThan(t Seq) bool { return s.Sub(t) < 0 }

// LessEq reports whether s comes before t or equals it.
func (s Seq) LessEq(t Seq) bool { return s.Sub(t) <= 0 }

// GreaterThan reports whether s comes after t.
func (s Seq) GreaterThan(t Seq) bool { return s.Sub(t) > 0 }

// GreaterEq reports whether s comes after t or equals it.
func (s Seq) GreaterEq(t Seq) bool { return s.Sub(t) >= 0 }

// InWindow reports whether start <= s < start+size (modulo 2^32).
func (s Seq) InWindow(start Seq, size uint32) bool { return uint32(s-start) < size }

// InRange reports whether lo <= s < hi (modulo 2^32).
func (s Seq) InRange(lo, hi Seq) bool { return uint32(s-lo) < uint32(hi-lo) }

// MaxSeq returns the later of a and b.
func MaxSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return b
	}
	return a
}

// MinSeq returns the earlier of a and b.
func MinSeq(a, b Seq) Seq {
	if a.LessThan(b) {
		return a
	}
	return b
}
