package link

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// ethernet puts an Ethernet header of type typ before pkt.
func ethernet(typ uint16, pkt []byte) []byte {
	f := make([]byte, EthernetHeaderLen, EthernetHeaderLen+len(pkt))
	binary.BigEndian.PutUint16(f[12:], typ)
	return append(f, pkt...)
}

// ipv4Packet returns an IPv4 packet of protocol proto from port sport to
// dport, with the fragment field frag.
func ipv4Packet(proto byte, sport, dport uint16, frag uint16) []byte {
	p := make([]byte, 20+8)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[6:], frag)
	p[9] = proto
	copy(p[12:], []byte{198, 18, 0, 1, 198, 18, 0, 2})
	binary.BigEndian.PutUint16(p[20:], sport)
	binary.BigEndian.PutUint16(p[22:], dport)
	return p
}

// ipv6Packet returns an IPv6 packet with next header nh from port sport
// to dport.
func ipv6Packet(nh byte, sport, dport uint16) []byte {
	p := make([]byte, 40+8)
	p[0] = 0x60
	p[6] = nh
	p[8], p[23] = 0xfd, 1
	p[24], p[39] = 0xfd, 2
	binary.BigEndian.PutUint16(p[40:], sport)
	binary.BigEndian.PutUint16(p[42:], dport)
	return p
}

// TestFlowHash: packets of one flow hash alike, in an Ethernet frame or
// bare; flows that differ only in a port spread over every place Pick
// chooses among; what carries no ports (fragments, ARP, ICMP, IPv6
// extension headers) has no flow.
func TestFlowHash(t *testing.T) {
	h1, ok1 := FlowHash(ipv4Packet(6, 40000, 80, 0), false)
	h2, ok2 := FlowHash(ethernet(0x0800, ipv4Packet(6, 40000, 80, 0x4000)), true) // DF is no fragment
	if !ok1 || !ok2 || h1 != h2 {
		t.Errorf("one TCP flow: %#x %v, %#x %v; want one hash", h1, ok1, h2, ok2)
	}
	used4, used6 := make(map[int]bool), make(map[int]bool)
	for port := range uint16(64) {
		h4, ok4 := FlowHash(ipv4Packet(17, 50000+port, 53, 0), false)
		h6, ok6 := FlowHash(ethernet(0x86dd, ipv6Packet(6, 50000+port, 443)), true)
		if !ok4 || !ok6 {
			t.Fatalf("port %d: IPv4 UDP %v, IPv6 TCP %v; want flows", port, ok4, ok6)
		}
		used4[Pick(h4, 8)], used6[Pick(h6, 8)] = true, true
	}
	if len(used4) != 8 || len(used6) != 8 {
		t.Errorf("64 flows of each family landed on %d and %d of 8 places", len(used4), len(used6))
	}
	for name, f := range map[string][]byte{
		"first fragment":        ethernet(0x0800, ipv4Packet(17, 1, 2, 0x2000)),
		"later fragment":        ethernet(0x0800, ipv4Packet(17, 1, 2, 0x0010)),
		"ICMP":                  ethernet(0x0800, ipv4Packet(1, 0, 0, 0)),
		"IPv6 fragment":         ethernet(0x86dd, ipv6Packet(44, 1, 2)),
		"ICMPv6":                ethernet(0x86dd, ipv6Packet(58, 1, 2)),
		"ARP":                   ethernet(0x0806, make([]byte, 28)),
		"IPv4 behind VLAN":      ethernet(0x8100, ipv4Packet(6, 1, 2, 0)),
		"IPv6 of IPv4 type":     ethernet(0x0800, ipv6Packet(6, 1, 2)[:20]),
		"IPv4 with a short IHL": ethernet(0x0800, append([]byte{0x44}, ipv4Packet(6, 1, 2, 0)[1:]...)),
	} {
		if _, ok := FlowHash(f, true); ok {
			t.Errorf("%s has a flow", name)
		}
	}
}

// TestFlowHashTruncated: frames cut anywhere, or of random bytes, never
// panic, and a frame cut before the end of its ports has no flow.
func TestFlowHashTruncated(t *testing.T) {
	for _, f := range [][]byte{ethernet(0x0800, ipv4Packet(6, 1, 2, 0)), ethernet(0x86dd, ipv6Packet(17, 1, 2))} {
		need := len(f) - 4 // the ports, not the rest of the transport header
		for n := range len(f) + 1 {
			if _, ok := FlowHash(f[:n], true); ok != (n >= need) {
				t.Errorf("%d bytes of %d: flow %v, want %v", n, len(f), ok, n >= need)
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		f := make([]byte, r.IntN(80))
		for i := range f {
			f[i] = byte(r.Uint32())
		}
		FlowHash(f, true)
		FlowHash(f, false)
	}
}
