package link

import "encoding/binary"

// FlowHash returns a hash of the flow a frame belongs to: its IP
// addresses, protocol and ports, for a TCP or UDP packet over IPv4 or
// IPv6. frame is an Ethernet frame when ethernet is set (its EtherType is
// checked first), else a bare IP packet. Every packet of one flow hashes
// alike. It reports false for everything else: ARP, ICMP, IPv4 fragments
// (whose later pieces carry no ports), IPv6 packets with extension
// headers, and frames too short to tell; such frames belong to no flow,
// and a caller spreading flows gives them one fixed place, as
// receive-side scaling on a NIC does.
func FlowHash(frame []byte, ethernet bool) (uint32, bool) {
	p := frame
	if ethernet {
		if len(frame) < EthernetHeaderLen {
			return 0, false
		}
		switch binary.BigEndian.Uint16(frame[12:14]) {
		case 0x0800, 0x86dd:
		default:
			return 0, false
		}
		p = frame[EthernetHeaderLen:]
	}
	if len(p) == 0 {
		return 0, false
	}
	switch p[0] >> 4 {
	case 4:
		return flowHash4(p)
	case 6:
		return flowHash6(p)
	}
	return 0, false
}

// flowHash4 hashes an IPv4 TCP or UDP packet that is not a fragment.
func flowHash4(p []byte) (uint32, bool) {
	if len(p) < 20 {
		return 0, false
	}
	ihl := int(p[0]&0x0f) * 4
	proto := p[9]
	frag := binary.BigEndian.Uint16(p[6:8])&0x3fff != 0 // MF, or an offset
	if ihl < 20 || len(p) < ihl+4 || frag || (proto != 6 && proto != 17) {
		return 0, false
	}
	return mixFlow(p[12:20], proto, p[ihl:ihl+4]), true
}

// flowHash6 hashes an IPv6 TCP or UDP packet without extension headers.
func flowHash6(p []byte) (uint32, bool) {
	const hdr = 40
	if len(p) < hdr+4 {
		return 0, false
	}
	proto := p[6]
	if proto != 6 && proto != 17 {
		return 0, false
	}
	return mixFlow(p[8:40], proto, p[hdr:hdr+4]), true
}

// mixFlow is FNV-1a over the addresses, the protocol and the ports, with
// a final avalanche so that flows differing in one port spread over the
// high bits too (callers take the high bits to pick among n).
func mixFlow(addrs []byte, proto byte, ports []byte) uint32 {
	h := uint32(2166136261)
	for _, b := range addrs {
		h = (h ^ uint32(b)) * 16777619
	}
	h = (h ^ uint32(proto)) * 16777619
	for _, b := range ports {
		h = (h ^ uint32(b)) * 16777619
	}
	h ^= h >> 16
	h *= 0x7feb352d
	h ^= h >> 15
	h *= 0x846ca68b
	h ^= h >> 16
	return h
}

// Pick maps a hash onto one of n places, by multiplying rather than
// dividing.
func Pick(hash uint32, n int) int {
	return int(uint64(hash) * uint64(n) >> 32)
}
