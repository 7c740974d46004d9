package ip

import (
	"encoding/binary"
	"net/netip"
)

// RFC 826 ARP for IPv4 over Ethernet.
const (
	ARPLen       = 28
	arpHTEther   = 1
	ARPOpRequest = 1
	ARPOpReply   = 2
)

// ARPPacket is a view of an ARP packet for IPv4 over Ethernet (28 bytes).
type ARPPacket []byte

// Valid reports whether p is a well-formed Ethernet/IPv4 ARP request or
// reply; the accessors below may be used only when it is.
func (p ARPPacket) Valid() bool {
	return len(p) >= ARPLen &&
		binary.BigEndian.Uint16(p[0:2]) == arpHTEther &&
		binary.BigEndian.Uint16(p[2:4]) == EtherTypeIPv4 &&
		p[4] == 6 && p[5] == 4 &&
		(p.Op() == ARPOpRequest || p.Op() == ARPOpReply)
}

// Op returns the operation (request or reply).
func (p ARPPacket) Op() uint16 { return binary.BigEndian.Uint16(p[6:8]) }

// SenderMAC returns the sender hardware address.
func (p ARPPacket) SenderMAC() MAC { return MAC(p[8:14]) }

// SenderIP returns the sender protocol address.
func (p ARPPacket) SenderIP() netip.Addr { return netip.AddrFrom4([4]byte(p[14:18])) }

// TargetMAC returns the target hardware address.
func (p ARPPacket) TargetMAC() MAC { return MAC(p[18:24]) }

// TargetIP returns the target protocol address.
func (p ARPPacket) TargetIP() netip.Addr { return netip.AddrFrom4([4]byte(p[24:28])) }

// Encode writes a complete ARP packet into p[:ARPLen].
func (p ARPPacket) Encode(op uint16, sha MAC, spa netip.Addr, tha MAC, tpa netip.Addr) {
	binary.BigEndian.PutUint16(p[0:2], arpHTEther)
	binary.BigEndian.PutUint16(p[2:4], EtherTypeIPv4)
	p[4], p[5] = 6, 4
	binary.BigEndian.PutUint16(p[6:8], op)
	copy(p[8:14], sha[:])
	s4 := spa.As4()
	copy(p[14:18], s4[:])
	copy(p[18:24], tha[:])
	t4 := tpa.As4()
	copy(p[24:28], t4[:])
}
