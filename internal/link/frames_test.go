package link

import (
	"encoding/binary"
	"net/netip"

	"github.com/gotcpip/netstack/internal/checksum"
)

// Test frames built by hand, so this package's tests do not depend on the
// codecs under test elsewhere. Addresses are from 198.18.0.0/15.

var (
	testMACA  = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	testMACB  = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	testAddrA = netip.MustParseAddr("198.18.0.1")
	testAddrB = netip.MustParseAddr("198.18.0.2")
)

// testARPRequest returns an Ethernet broadcast ARP request (RFC 826) from
// A asking for B.
func testARPRequest() []byte {
	f := make([]byte, 14+28)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], testMACA[:])
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], testMACA[:])
	copy(a[14:18], testAddrA.AsSlice())
	copy(a[24:28], testAddrB.AsSlice())
	return f
}

// testUDPPacket returns an IPv4 UDP datagram (RFC 791, RFC 768) from A
// port sport to B port 7 carrying payload, with correct checksums.
func testUDPPacket(sport uint16, payload []byte) []byte {
	p := make([]byte, 20+8+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[8] = 64 // TTL
	p[9] = 17 // UDP
	copy(p[12:16], testAddrA.AsSlice())
	copy(p[16:20], testAddrB.AsSlice())
	binary.BigEndian.PutUint16(p[10:], checksum.Checksum(p[:20], 0))
	u := p[20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], 7)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	copy(u[8:], payload)
	binary.BigEndian.PutUint16(u[6:], checksum.Checksum(u, checksum.Pseudo(testAddrA, testAddrB, 17, len(u))))
	return p
}

// testUDPFrame wraps testUDPPacket in an Ethernet II header from A to B.
func testUDPFrame(sport uint16, payload []byte) []byte {
	f := make([]byte, 14, 14+28+len(payload))
	copy(f[0:6], testMACB[:])
	copy(f[6:12], testMACA[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	return append(f, testUDPPacket(sport, payload)...)
}

// rawLink presents a pipe end as a link of bare IP packets, like a TUN.
type rawLink struct{ *PipeEnd }

func (rawLink) Ethernet() bool { return false }
