package ip

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/gotcpip/netstack/internal/checksum"
)

// RFC 791 IPv4.
const (
	IPv4MinHeaderLen = 20
	IPv4MaxLen       = 65535

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	flagDF     = 0x4000
	flagMF     = 0x2000
	offsetMask = 0x1fff

	// DefaultTTL is Linux's net.ipv4.ip_default_ttl.
	DefaultTTL = 64
)

// Headroom is the space a transport leaves in front of its header when it
// builds a packet for Output: an Ethernet header and an option-less IPv4
// header, filled in place so a frame is built without copying.
const Headroom = EthernetHeaderLen + IPv4MinHeaderLen

// IPv4Header is a view of an IPv4 header. ParseIPv4 validates it; the
// accessors of a validated header cannot panic.
type IPv4Header []byte

// Errors returned by ParseIPv4; each has its own drop counter.
var (
	errTruncated   = errors.New("ipv4: truncated")
	errBadVersion  = errors.New("ipv4: version is not 4")
	errBadIHL      = errors.New("ipv4: header length below 20 bytes")
	errBadLength   = errors.New("ipv4: total length inconsistent")
	errBadChecksum = errors.New("ipv4: bad header checksum")
)

// ParseIPv4 validates the IPv4 packet at the start of b (RFC 791 §3.1;
// RFC 1122 §3.2.1.1–3.2.1.2): the version, the header length against both
// the minimum and the buffer, the total length against the header and the
// buffer, and the header checksum. It returns the header and the packet cut
// to its total length (link-layer padding removed).
func ParseIPv4(b []byte) (IPv4Header, []byte, error) {
	if len(b) < IPv4MinHeaderLen {
		return nil, nil, errTruncated
	}
	if b[0]>>4 != 4 {
		return nil, nil, errBadVersion
	}
	ihl := int(b[0]&0xf) * 4
	if ihl < IPv4MinHeaderLen {
		return nil, nil, errBadIHL
	}
	if ihl > len(b) {
		return nil, nil, errTruncated
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if total < ihl {
		return nil, nil, errBadLength
	}
	if total > len(b) {
		return nil, nil, errTruncated
	}
	if checksum.Checksum(b[:ihl], 0) != 0 {
		return nil, nil, errBadChecksum
	}
	return IPv4Header(b[:ihl]), b[:total], nil
}

// HeaderLen returns the header length in bytes.
func (h IPv4Header) HeaderLen() int { return int(h[0]&0xf) * 4 }

// TotalLen returns the total length field.
func (h IPv4Header) TotalLen() int { return int(binary.BigEndian.Uint16(h[2:4])) }

// ID returns the identification field.
func (h IPv4Header) ID() uint16 { return binary.BigEndian.Uint16(h[4:6]) }

// DF reports whether the don't-fragment flag is set.
func (h IPv4Header) DF() bool { return binary.BigEndian.Uint16(h[6:8])&flagDF != 0 }

// MF reports whether the more-fragments flag is set.
func (h IPv4Header) MF() bool { return binary.BigEndian.Uint16(h[6:8])&flagMF != 0 }

// FragOffset returns the fragment offset in bytes.
func (h IPv4Header) FragOffset() int { return int(binary.BigEndian.Uint16(h[6:8])&offsetMask) * 8 }

// IsFragment reports whether the packet is a fragment (MF set or offset > 0).
func (h IPv4Header) IsFragment() bool {
	return binary.BigEndian.Uint16(h[6:8])&(flagMF|offsetMask) != 0
}

// ECN returns the ECN field (RFC 3168 §5): the low two bits of the type
// of service octet.
func (h IPv4Header) ECN() uint8 { return h[1] & 3 }

// setECN4 sets the ECN field of the IPv4 header at b and updates its
// checksum for the change (RFC 1624 eq. 3).
func setECN4(b []byte, ecn uint8) {
	old := binary.BigEndian.Uint16(b[0:2])
	b[1] = b[1]&^3 | ecn&3
	sum := uint32(^binary.BigEndian.Uint16(b[10:12])) + uint32(^old) + uint32(binary.BigEndian.Uint16(b[0:2]))
	binary.BigEndian.PutUint16(b[10:12], checksum.Fold(sum))
}

// TTL returns the time-to-live.
func (h IPv4Header) TTL() uint8 { return h[8] }

// Protocol returns the protocol number.
func (h IPv4Header) Protocol() uint8 { return h[9] }

// Src returns the source address.
func (h IPv4Header) Src() netip.Addr { return netip.AddrFrom4([4]byte(h[12:16])) }

// Dst returns the destination address.
func (h IPv4Header) Dst() netip.Addr { return netip.AddrFrom4([4]byte(h[16:20])) }

// encodeIPv4 writes an option-less header into b[:20] and its checksum.
func encodeIPv4(b []byte, totalLen int, id uint16, df bool, fragOff int, mf bool, ttl, proto uint8, src, dst netip.Addr) {
	b[0] = 0x45
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:4], uint16(totalLen))
	binary.BigEndian.PutUint16(b[4:6], id)
	ff := uint16(fragOff/8) & offsetMask
	if df {
		ff |= flagDF
	}
	if mf {
		ff |= flagMF
	}
	binary.BigEndian.PutUint16(b[6:8], ff)
	b[8] = ttl
	b[9] = proto
	b[10], b[11] = 0, 0
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:12], checksum.Checksum(b[:20], 0))
}
