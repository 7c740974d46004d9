package ip

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// seedFrames6 are real IPv6 frames of each kind, addressed to v6A.
func seedFrames6() [][]byte {
	udp := []byte{0, 1, 0, 2, 0, 12, 0xab, 0xcd, 1, 2, 3, 4}
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 8)
	target := append(make([]byte, 4), v6A.AsSlice()...)
	ns := icmp6(v6B, solicitedNode(v6A), ICMPv6NeighSolicit, 0, append(target, 1, 1, 2, 0, 0, 0, 0, 0xb))
	na := icmp6(v6B, v6A, ICMPv6NeighAdvert, 0, append([]byte{0x60, 0, 0, 0}, append(v6B.AsSlice(), 2, 1, 2, 0, 0, 0, 0, 0xb)...))
	rdnss := append([]byte{ndOptRDNSS, 3, 0, 0, 0, 0, 0x0e, 0x10}, netip.MustParseAddr("2001:db8::53").AsSlice()...)
	adv := ra(64, 1800, []byte{ndOptMTU, 1, 0, 0, 0, 0, 0x05, 0x78}, rdnss, prefixOpt(netip.MustParsePrefix("2001:db8:1::/64"), 0xc0, 7200, 3600))
	orig := frame6(macB, macA, v6A, v6B, 64, ProtoUDP, udp)[EthernetHeaderLen:]
	ptb := icmp6(v6B, v6A, ICMPv6PacketTooBig, 0, append([]byte{0, 0, 5, 0}, orig...))
	return [][]byte{
		frame6(macA, macB, v6B, v6A, 64, ProtoUDP, udp),
		frame6(macA, macB, v6B, v6A, 64, ProtoICMPv6, icmp6(v6B, v6A, ICMPv6EchoRequest, 0, []byte{0, 1, 0, 1, 'x'})),
		frame6(macA, macB, v6B, v6A, 64, ProtoDestOpts, append([]byte{ProtoUDP, 0, 0x9e, 4, 0, 0, 0, 0}, udp...)),
		frame6(macA, macB, v6B, v6A, 64, ProtoHopByHop, append([]byte{ProtoRouting, 0, 5, 2, 0, 0, 1, 0}, append([]byte{ProtoUDP, 2, 0, 1, 0, 0, 0, 0}, append(make([]byte, 16), udp...)...)...)),
		fragment6Frame(9, 0, true, data[:32]),
		fragment6Frame(9, 32, false, data[32:]),
		fragment6Frame(9, 0, false, data),
		frame6(multicastMAC(solicitedNode(v6A)), macB, v6B, solicitedNode(v6A), 255, ProtoICMPv6, ns),
		frame6(macA, macB, v6B, v6A, 255, ProtoICMPv6, na),
		frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, adv),
		frame6(macA, macB, v6B, v6A, 64, ProtoICMPv6, ptb),
	}
}

// FuzzParseIPv6 checks the fixed-header parser and the extension chain
// walk: no panic, and what is accepted is consistent.
func FuzzParseIPv6(f *testing.F) {
	for _, s := range seedFrames6() {
		f.Add(s[EthernetHeaderLen:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, pkt, err := ParseIPv6(b)
		if err != nil {
			return
		}
		if len(pkt) != IPv6HeaderLen+h.PayloadLen() || len(pkt) > len(b) {
			t.Fatalf("accepted inconsistent lengths: payload %d buf %d", h.PayloadLen(), len(b))
		}
		if _, at, ok := upperLayer(pkt); ok && (at < IPv6HeaderLen || at > len(pkt)) {
			t.Fatalf("upper layer at %d of %d", at, len(pkt))
		}
	})
}

// FuzzIngress6 feeds a sequence of frames (split on a marker) to one
// dual-stack Host, so reassembly, neighbour, address and router state
// carry between them; memory stays within its bounds.
func FuzzIngress6(f *testing.F) {
	var all []byte
	for _, s := range seedFrames6() {
		all = append(append(all, s...), "||"...)
	}
	f.Add(all, true)
	f.Add(all, false)
	f.Fuzz(func(t *testing.T, b []byte, eth bool) {
		a := newHost6(t, prefixA, v6A, macA, func(c *Config) {
			c.Ethernet = eth
			c.ReassemblyMemory = 32 << 10
			c.NoLinkLocal, c.NoRS, c.DADTransmits = false, false, 1
			c.MaxPrefixes, c.MaxRDNSS, c.MaxRouters, c.NeighCacheSize = 4, 4, 4, 16
		})
		a.Timer(t0)
		feedSequence(t, a, b, eth, 32<<10)
		if n := len(a.Addrs()); n > 2+1+4 {
			t.Fatalf("%d addresses: the bound is 4 SLAAC ones", n)
		}
		if len(a.DNSServers()) > 4 || len(a.Routers()) > 4 {
			t.Fatalf("%d DNS servers, %d routers over the bounds", len(a.DNSServers()), len(a.Routers()))
		}
		for _, out := range a.out {
			if len(out) > EthernetHeaderLen && EthernetHeader(out).Type() == EtherTypeIPv6 {
				if _, _, err := ParseIPv6(out[EthernetHeaderLen:]); err != nil {
					t.Fatalf("sent a bad packet: %v", err)
				}
			}
		}
	})
}

// FuzzNDPOptions checks the NDP option parser, and feeds the options
// behind a valid NS, NA and RA.
func FuzzNDPOptions(f *testing.F) {
	for _, s := range seedFrames6() {
		if _, proto, m := parseSeed6(s); proto == ProtoICMPv6 && len(m) > 24 && (m[0] == ICMPv6NeighSolicit || m[0] == ICMPv6NeighAdvert) {
			f.Add(m[24:])
		} else if proto == ProtoICMPv6 && len(m) > 16 && m[0] == ICMPv6RouterAdvert {
			f.Add(m[16:])
		}
	}
	f.Fuzz(func(t *testing.T, opts []byte) {
		if len(opts) > 1200 {
			return
		}
		if o, ok := parseNDOptions(opts); ok && (len(o.prefixes) > maxNDOptions || len(o.rdnss) > maxNDOptions) {
			t.Fatalf("%d prefixes, %d RDNSS kept", len(o.prefixes), len(o.rdnss))
		}
		a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.MaxPrefixes, c.MaxRDNSS = 2, 2 })
		target := append(make([]byte, 4), v6A.AsSlice()...)
		dst := solicitedNode(v6A)
		a.Input(t0, frame6(multicastMAC(dst), macB, v6B, dst, 255, ProtoICMPv6, icmp6(v6B, dst, ICMPv6NeighSolicit, 0, append(target, opts...))))
		a.Input(t0, frame6(macA, macB, v6B, v6A, 255, ProtoICMPv6, icmp6(v6B, v6A, ICMPv6NeighAdvert, 0, append([]byte{0x20, 0, 0, 0}, append(v6B.AsSlice(), opts...)...))))
		a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, icmp6(llR, allNodes, ICMPv6RouterAdvert, 0, append(make([]byte, 12), opts...))))
		if len(a.DNSServers()) > 2 {
			t.Fatalf("%d DNS servers", len(a.DNSServers()))
		}
	})
}

// FuzzReassembly6 drives the reassembler with fragments described by the
// input, 4 bytes each (id, offset in 8-byte units, length in 8-byte units
// with the M flag in its top bit): no panic, the memory cap holds, and a
// datagram comes out only whole.
func FuzzReassembly6(f *testing.F) {
	f.Add([]byte{1, 0, 0x84, 0, 1, 4, 4, 0})
	f.Add([]byte{1, 0, 0x84, 0, 1, 3, 4, 0, 1, 4, 4, 0})
	f.Add([]byte{2, 0, 0, 8, 2, 0, 0x88, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := newReassembler(16<<10, 30*time.Second, new(stats.IPv4), new(stats.IPv6))
		now := t0
		payload := make([]byte, 127*8)
		for i := range payload {
			payload[i] = byte(i)
		}
		for ; len(b) >= 4; b = b[4:] {
			id, off, n, more := uint32(b[0]), int(b[1])*8, int(b[2]&0x7f)*8, b[2]&0x80 != 0
			buf, boff := r.add6(now, v6B, v6A, id, ProtoUDP, off, payload[:n], !more, payload[:n])
			if m, _ := r.memory(); m > 16<<10 {
				t.Fatalf("memory %d over the cap", m)
			}
			if buf != nil {
				h, pkt, err := ParseIPv6(buf[boff:])
				if err != nil || h.NextHeader() != ProtoUDP || boff < EthernetHeaderLen {
					t.Fatalf("reassembled a bad packet: %v", err)
				}
				if len(pkt)-IPv6HeaderLen > ipv6MaxPayload {
					t.Fatalf("%d-byte payload", len(pkt)-IPv6HeaderLen)
				}
			}
			now = now.Add(time.Duration(b[3]) * time.Second)
			r.expire(now)
		}
	})
}

// parseSeed6 is parse6 for seeds, without a test.
func parseSeed6(f []byte) (IPv6Header, uint8, []byte) {
	hdr, pkt, err := ParseIPv6(f[EthernetHeaderLen:])
	if err != nil {
		return nil, 0, nil
	}
	proto, at, ok := upperLayer(pkt)
	if !ok {
		return nil, 0, nil
	}
	return hdr, proto, pkt[at:]
}
