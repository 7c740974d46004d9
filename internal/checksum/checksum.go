// Package checksum computes the Internet checksum of RFC 1071, used by IPv4,
// ICMP, TCP and UDP.
//
// Sums are carried unfolded in a uint32 so that pieces (a pseudo-header, a
// header, a payload) can be added one after another; Fold turns the total into
// the 16-bit one's-complement value that goes on the wire.
package checksum

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Sum adds the bytes of b, taken as big-endian 16-bit words, to initial and
// returns the unfolded sum. An odd trailing byte is padded with zero, as
// RFC 1071 says; so only the last piece of a checksummed region may have an
// odd length.
func Sum(b []byte, initial uint32) uint32 {
	if haveSIMD && len(b) >= simdMin {
		return sumSIMD(b, initial)
	}
	return sumScalar(b, initial)
}

// sumScalar is Sum in portable Go.
func sumScalar(b []byte, initial uint32) uint32 {
	// Add 64-bit big-endian words with end-around carry (RFC 1071 §2(B):
	// the sum may be taken over wider words and folded at the end).
	acc, carry := uint64(initial), uint64(0)
	for len(b) >= 32 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[0:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), carry)
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.BigEndian.Uint64(b), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0])<<8, carry)
	}
	acc, carry = bits.Add64(acc, 0, carry)
	acc += carry
	// Fold 64 → 16 bits; the one's-complement sum is unchanged.
	return uint32(fold(acc))
}

// simdMin is the length from which sumSIMD beats the scalar loop.
const simdMin = 256

// sumSIMD is Sum with the bulk of b added by sumAVX2, as little-endian
// words; their folded sum, byte-swapped, is the big-endian one.
func sumSIMD(b []byte, initial uint32) uint32 {
	var acc uint64
	for len(b) >= 64 {
		n := min(len(b), 1<<20) &^ 63
		acc += sumAVX2(b[:n])
		b = b[n:]
	}
	s := uint64(bits.ReverseBytes16(uint16(fold(acc))))
	return sumScalar(b, uint32(fold(s+uint64(initial))))
}

// fold reduces a 64-bit one's-complement sum to 16 bits.
func fold(acc uint64) uint64 {
	s := (acc >> 32) + (acc & 0xffffffff)
	s = (s >> 32) + (s & 0xffffffff)
	s = (s >> 16) + (s & 0xffff)
	return (s >> 16) + (s & 0xffff)
}

// Fold reduces an unfolded sum to 16 bits and complements it: the value to
// store in a checksum field. A region whose stored checksum is correct folds
// to zero.
func Fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = (sum >> 16) + (sum & 0xffff)
	}
	return ^uint16(sum)
}

// Checksum returns Fold(Sum(b, initial)).
func Checksum(b []byte, initial uint32) uint16 { return Fold(Sum(b, initial)) }

// Pseudo returns the unfolded sum of the TCP/UDP pseudo-header (RFC 9293
// §3.1, RFC 768) for an IPv4 or IPv6 address pair, protocol number and
// transport length (header plus payload).
func Pseudo(src, dst netip.Addr, proto uint8, length int) uint32 {
	var s uint32
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = uint32(a[0])<<8 | uint32(a[1])
		s += uint32(a[2])<<8 | uint32(a[3])
		s += uint32(b[0])<<8 | uint32(b[1])
		s += uint32(b[2])<<8 | uint32(b[3])
	} else {
		a, b := src.As16(), dst.As16()
		for i := 0; i < 16; i += 2 {
			s += uint32(a[i])<<8 | uint32(a[i+1])
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	s += uint32(proto)
	s += uint32(length>>16) + uint32(length&0xffff)
	return s
}

// Update16 adjusts a stored checksum for a 16-bit field that changed from
// old to new (RFC 1624 eqn. 3), without summing the region again.
func Update16(sum, old, new uint16) uint16 {
	s := uint32(^sum) + uint32(^old) + uint32(new)
	s = (s >> 16) + (s & 0xffff)
	s = (s >> 16) + (s & 0xffff)
	return ^uint16(s)
}
