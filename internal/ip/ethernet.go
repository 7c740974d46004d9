// Package ip is netstack's network layer: Ethernet II framing, ARP
// (RFC 826), IPv4 (RFC 791) with fragmentation and reassembly, ICMP
// (RFC 792), on-link/gateway routing and demultiplexing to the transports.
//
// A Host is driven from outside: the link reader calls Input with each frame,
// transports call Output with a packet built behind Headroom bytes, and the
// owner calls Timer when NextDeadline passes. Time is always passed in, so
// tests run on a virtual clock.
package ip

import (
	"encoding/binary"
	"net"
)

// Ethernet II (IEEE 802.3 framing with a type field).
const (
	EthernetHeaderLen = 14
	EtherTypeIPv4     = 0x0800
	EtherTypeARP      = 0x0806
	EtherTypeIPv6     = 0x86dd
)

// MAC is an Ethernet hardware address.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats m as net.HardwareAddr does.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// EthernetHeader is a view of an Ethernet II header. Callers check the
// length (EthernetHeaderLen) once; the accessors then cannot panic.
type EthernetHeader []byte

// Dst returns the destination address.
func (e EthernetHeader) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e EthernetHeader) Src() MAC { return MAC(e[6:12]) }

// Type returns the EtherType.
func (e EthernetHeader) Type() uint16 { return binary.BigEndian.Uint16(e[12:14]) }

// Encode writes a header with the given addresses and type.
func (e EthernetHeader) Encode(dst, src MAC, typ uint16) {
	copy(e[0:6], dst[:])
	copy(e[6:12], src[:])
	binary.BigEndian.PutUint16(e[12:14], typ)
}
