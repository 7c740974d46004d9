package tcp

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// ISN returns an initial sequence number for the connection local↔remote as
// RFC 6528 §3 asks: ISN = M + F(localip, localport, remoteip, remoteport,
// secretkey), where M is a clock ticking every 4 µs and F is SipHash-2-4
// keyed with secret. Connections to different peers get unrelated ISNs; a
// new incarnation of the same 4-tuple gets a higher one, which is what the
// TIME_WAIT reuse rule (RFC 9293 §3.6.1) relies on.
func ISN(secret [16]byte, local, remote netip.AddrPort, now time.Time) Seq {
	m := uint32(now.UnixNano() / 4000)
	return Seq(uint32(TupleHash(secret, local, remote)) + m)
}

// TupleHash is SipHash-2-4, keyed with secret, of the 4-tuple
// local↔remote: the F of RFC 6528's ISNs, and of RFC 6056's port offsets
// (with the local port 0 and a key of their own).
func TupleHash(secret [16]byte, local, remote netip.AddrPort) uint64 {
	var buf [36]byte
	a, b := local.Addr().As16(), remote.Addr().As16()
	copy(buf[0:], a[:])
	copy(buf[16:], b[:])
	binary.BigEndian.PutUint16(buf[32:], local.Port())
	binary.BigEndian.PutUint16(buf[34:], remote.Port())
	k0 := binary.LittleEndian.Uint64(secret[0:])
	k1 := binary.LittleEndian.Uint64(secret[8:])
	return sipHash24(k0, k1, buf[:])
}

// sipHash24 is SipHash-2-4 (Aumasson and Bernstein, 2012).
func sipHash24(k0, k1 uint64, p []byte) uint64 {
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(p)
	for len(p) >= 8 {
		m := binary.LittleEndian.Uint64(p)
		v3 ^= m
		round()
		round()
		v0 ^= m
		p = p[8:]
	}
	last := uint64(n) << 56
	for i := len(p) - 1; i >= 0; i-- {
		last |= uint64(p[i]) << (8 * i)
	}
	v3 ^= last
	round()
	round()
	v0 ^= last
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}
