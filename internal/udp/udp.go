// Package udp is the RFC 768 datagram codec: a header view, validation with
// the pseudo-header checksum, and encoding in place behind the IP headroom.
package udp

import (
	"encoding/binary"
	"errors"

	"github.com/gotcpip/netstack/internal/checksum"
)

// HeaderLen is the size of a UDP header.
const HeaderLen = 8

// MaxPayload is the largest payload an IPv4 datagram can carry:
// 65535 - 20 (IPv4 header) - 8.
const MaxPayload = 65507

// Header is a view of a UDP header. Parse validates it; the accessors of a
// parsed header cannot panic.
type Header []byte

// Errors from Parse.
var (
	ErrTruncated   = errors.New("udp: truncated")
	ErrBadLength   = errors.New("udp: length field inconsistent")
	ErrBadChecksum = errors.New("udp: bad checksum")
)

// Parse validates the datagram b given the unfolded pseudo-header sum
// pseudo (checksum.Pseudo with the UDP length): the length field against
// the buffer (bytes past it are IP padding and are cut), and the checksum
// unless it is zero, which RFC 768 defines as "not computed" over IPv4.
// It returns the header and the payload, which aliases b.
func Parse(b []byte, pseudo func(length int) uint32) (Header, []byte, error) {
	if len(b) < HeaderLen {
		return nil, nil, ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n < HeaderLen || n > len(b) {
		return nil, nil, ErrBadLength
	}
	b = b[:n]
	if binary.BigEndian.Uint16(b[6:8]) != 0 && checksum.Checksum(b, pseudo(n)) != 0 {
		return nil, nil, ErrBadChecksum
	}
	return Header(b[:HeaderLen]), b[HeaderLen:], nil
}

// SrcPort returns the source port.
func (h Header) SrcPort() uint16 { return binary.BigEndian.Uint16(h[0:2]) }

// DstPort returns the destination port.
func (h Header) DstPort() uint16 { return binary.BigEndian.Uint16(h[2:4]) }

// Length returns the length field: header plus payload.
func (h Header) Length() int { return int(binary.BigEndian.Uint16(h[4:6])) }

// Encode writes a header for the payload that follows it in b (b holds
// header and payload) with the checksum computed over the pseudo-header sum
// pseudo. A computed checksum of zero is sent as 0xffff (RFC 768).
func Encode(b []byte, src, dst uint16, pseudo uint32) {
	binary.BigEndian.PutUint16(b[0:2], src)
	binary.BigEndian.PutUint16(b[2:4], dst)
	binary.BigEndian.PutUint16(b[4:6], uint16(len(b)))
	b[6], b[7] = 0, 0
	sum := checksum.Checksum(b, pseudo)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:8], sum)
}
