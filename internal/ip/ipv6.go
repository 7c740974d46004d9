package ip

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// RFC 8200 IPv6.
const (
	IPv6HeaderLen = 40
	// IPv6MinMTU is the smallest link MTU IPv6 allows (RFC 8200 §5), and
	// the floor of a path MTU (RFC 8201 §4).
	IPv6MinMTU = 1280

	ProtoHopByHop  = 0
	ProtoRouting   = 43
	ProtoFragment  = 44
	ProtoICMPv6    = 58
	ProtoNoNext    = 59
	ProtoDestOpts  = 60
	fragHeaderLen  = 8
	ipv6MaxPayload = 65535

	// DefaultHopLimit is Linux's net.ipv6.conf.*.hop_limit.
	DefaultHopLimit = 64
)

// Headroom6 is Headroom for IPv6: a transport sending to an IPv6
// destination builds its message at pkt[Headroom6:] and Output fills the
// Ethernet and IPv6 headers in front of it.
const Headroom6 = EthernetHeaderLen + IPv6HeaderLen

// HeadroomFor returns the headroom Output needs in front of a transport
// message sent to dst: Headroom6 for IPv6, else Headroom.
func HeadroomFor(dst netip.Addr) int {
	if dst.Is6() && !dst.Is4In6() {
		return Headroom6
	}
	return Headroom
}

// IPv6Header is a view of the fixed IPv6 header. ParseIPv6 validates it;
// the accessors of a validated header cannot panic.
type IPv6Header []byte

// Errors returned by ParseIPv6.
var (
	errTruncated6  = errors.New("ipv6: truncated")
	errBadVersion6 = errors.New("ipv6: version is not 6")
	errJumbo       = errors.New("ipv6: payload length 0")
)

// ParseIPv6 validates the fixed header at the start of b (RFC 8200 §3):
// the version and the payload length against the buffer. It returns the
// header and the packet cut to 40 bytes plus its payload length (link-layer
// padding removed). A zero payload length (a jumbogram, RFC 2675) is
// refused: no link we run on carries one.
func ParseIPv6(b []byte) (IPv6Header, []byte, error) {
	if len(b) < IPv6HeaderLen {
		return nil, nil, errTruncated6
	}
	if b[0]>>4 != 6 {
		return nil, nil, errBadVersion6
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n == 0 && len(b) > IPv6HeaderLen && b[6] == ProtoHopByHop {
		return nil, nil, errJumbo
	}
	if IPv6HeaderLen+n > len(b) {
		return nil, nil, errTruncated6
	}
	return IPv6Header(b[:IPv6HeaderLen]), b[:IPv6HeaderLen+n], nil
}

// PayloadLen returns the payload length field.
func (h IPv6Header) PayloadLen() int { return int(binary.BigEndian.Uint16(h[4:6])) }

// NextHeader returns the next header field.
func (h IPv6Header) NextHeader() uint8 { return h[6] }

// ECN returns the ECN field (RFC 3168 §5): the low two bits of the
// traffic class.
func (h IPv6Header) ECN() uint8 { return h[1] >> 4 & 3 }

// HopLimit returns the hop limit.
func (h IPv6Header) HopLimit() uint8 { return h[7] }

// Src returns the source address.
func (h IPv6Header) Src() netip.Addr { return netip.AddrFrom16([16]byte(h[8:24])) }

// Dst returns the destination address.
func (h IPv6Header) Dst() netip.Addr { return netip.AddrFrom16([16]byte(h[24:40])) }

// encodeIPv6 writes a fixed header into b[:40]: traffic class 0, the flow
// label given (20 bits), the payload length, next header and hop limit.
// The ECN field (setECN6) is the caller's to set.
func encodeIPv6(b []byte, payloadLen int, flow uint32, nh, hopLimit uint8, src, dst netip.Addr) {
	binary.BigEndian.PutUint32(b[0:4], 6<<28|flow&0xfffff)
	binary.BigEndian.PutUint16(b[4:6], uint16(payloadLen))
	b[6] = nh
	b[7] = hopLimit
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
}

// setECN6 sets the ECN field of the IPv6 header at b (RFC 3168 §5): the
// low two bits of the traffic class, bits 20 and 21 of the first word.
func setECN6(b []byte, ecn uint8) { b[1] = b[1]&^0x30 | (ecn&3)<<4 }

// flowLabel returns the flow label of a packet from src to dst: a hash of
// the pair and the upper-layer protocol, never 0 (RFC 6437 §3: stateless,
// uniformly distributed), so the packets of one flow share it as Linux's
// auto_flowlabels does for its flows.
func flowLabel(src, dst netip.Addr, proto uint8, key uint64) uint32 {
	s, d := src.As16(), dst.As16()
	x := key ^ uint64(proto)
	for _, b := range [][16]byte{s, d} {
		x ^= binary.BigEndian.Uint64(b[:8])
		x *= 0x9e3779b97f4a7c15
		x ^= binary.BigEndian.Uint64(b[8:])
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 31
	}
	if f := uint32(x) & 0xfffff; f != 0 {
		return f
	}
	return 1
}

// extAction is what processing an extension header decided.
type extAction uint8

const (
	extNext           extAction = iota // go on with the next header
	extDrop                            // discard silently
	extProblem                         // discard and send parameter problem (code, pointer)
	extProblemUnicast                  // the same, but silently when the destination is multicast
)

// ICMPv6 parameter problem codes (RFC 4443 §3.4).
const (
	CodeV6ErroneousHeader = 0
	CodeV6UnknownNext     = 1
	CodeV6UnknownOption   = 2
)

// parseOptions walks the TLV options of a hop-by-hop or destination
// options header ext (its 2-byte prefix included) that starts at offset at
// in the packet (RFC 8200 §4.2). An unknown option is handled by the two
// high bits of its type: skip, discard, discard and send parameter problem
// code 2, or the same only when the destination is not multicast; ptr is
// the error's pointer.
func parseOptions(ext []byte, at int, hopByHop bool) (act extAction, ptr int) {
	for i := 2; i < len(ext); {
		t := ext[i]
		if t == 0 { // Pad1
			i++
			continue
		}
		if i+2 > len(ext) || i+2+int(ext[i+1]) > len(ext) {
			return extDrop, 0 // runs past the header: Linux's ip6_parse_tlv drops it
		}
		l := int(ext[i+1])
		switch {
		case t == 1: // PadN
		case t == 5 && hopByHop && l == 2: // router alert (RFC 2711): MLD uses it; nothing to do for a host
		default:
			switch t >> 6 {
			case 0:
			case 1:
				return extDrop, 0
			case 2:
				return extProblem, at + i
			case 3:
				return extProblemUnicast, at + i
			}
		}
		i += 2 + l
	}
	return extNext, 0
}
