// Package ip is netstack's network layer: Ethernet II framing, ARP
// (RFC 826), IPv4 (RFC 791) with fragmentation and reassembly, ICMP
// (RFC 792), on-link/gateway routing and demultiplexing to the transports;
// and IPv6 (RFC 8200) with its extension headers, fragmentation and
// reassembly, ICMPv6 (RFC 4443), neighbour discovery (RFC 4861), duplicate
// address detection and SLAAC (RFC 4862), RDNSS (RFC 8106) and MLDv2
// reports (RFC 3810) for the groups it joins.
//
// On an Ethernet link a Host makes a link-local fe80::/64 address unless
// Config.NoLinkLocal is set. Its interface identifier, like those of SLAAC
// addresses, is an RFC 7217 stable-privacy one (see stableAddr), not the
// modified EUI-64 of the MAC: stable on one prefix, revealing nothing
// about the hardware (RFC 7721). IPv6 on a bare-IP link (TUN) uses no
// NDP: its addresses are usable at once and every packet goes out of the
// link.
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
