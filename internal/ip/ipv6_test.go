package ip

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
)

var (
	v6A  = netip.MustParseAddr("fd00::a")
	v6B  = netip.MustParseAddr("fd00::b")
	llR  = netip.MustParseAddr("fe80::1")
	macR = MAC{0x02, 0, 0, 0, 0, 0x1}
)

// newHost6 is a dual-stack test host with addr/64 and, unless mutate
// changes them, no DAD, no link-local address and no RS.
func newHost6(t testing.TB, v4 netip.Prefix, addr netip.Addr, mac MAC, mutate func(*Config)) *testHost {
	return newTestHost(t, v4, mac, func(c *Config) {
		c.Addrs = []netip.Prefix{netip.PrefixFrom(addr, 64)}
		c.DADTransmits = -1
		if mutate != nil {
			mutate(c)
		}
	})
}

// frame6 builds an Ethernet frame holding an IPv6 packet.
func frame6(dstMAC, srcMAC MAC, src, dst netip.Addr, hop, nh uint8, payload []byte) []byte {
	f := make([]byte, Headroom6+len(payload))
	EthernetHeader(f).Encode(dstMAC, srcMAC, EtherTypeIPv6)
	encodeIPv6(f[EthernetHeaderLen:], len(payload), 0, nh, hop, src, dst)
	copy(f[Headroom6:], payload)
	return f
}

// icmp6 returns an ICMPv6 message with its checksum.
func icmp6(src, dst netip.Addr, typ, code uint8, body []byte) []byte {
	m := append([]byte{typ, code, 0, 0}, body...)
	checksum6(m, 2, ProtoICMPv6, src, dst)
	return m
}

// parse6 returns the IPv6 header and upper-layer message of an Ethernet
// frame, failing the test when it is not IPv6.
func parse6(t *testing.T, f []byte) (IPv6Header, uint8, []byte) {
	t.Helper()
	if EthernetHeader(f).Type() != EtherTypeIPv6 {
		t.Fatalf("frame type %#x, want IPv6", EthernetHeader(f).Type())
	}
	hdr, pkt, err := ParseIPv6(f[EthernetHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	proto, at, ok := upperLayer(pkt)
	if !ok {
		t.Fatal("bad extension chain")
	}
	return hdr, proto, pkt[at:]
}

func udpPacket6(size int) []byte {
	pkt := make([]byte, Headroom6+8+size)
	for i := range pkt[Headroom6:] {
		pkt[Headroom6+i] = byte(i*7 + 1)
	}
	return pkt
}

func TestNDPResolveAndPing6(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	b := newHost6(t, prefixB, v6B, macB, nil)
	if err := a.SendEcho(t0, v6B, 7, 1, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames, want one NS (the echo waits)", len(out))
	}
	hdr, proto, m := parse6(t, out[0])
	if proto != ProtoICMPv6 || m[0] != ICMPv6NeighSolicit || hdr.HopLimit() != 255 || hdr.Dst() != solicitedNode(v6B) || hdr.Src() != v6A {
		t.Fatalf("not an NS to the solicited-node group: %x", out[0])
	}
	if EthernetHeader(out[0]).Dst() != (MAC{0x33, 0x33, 0xff, 0, 0, 0x0b}) {
		t.Fatalf("NS to %v", EthernetHeader(out[0]).Dst())
	}
	b.Input(t0, out[0])
	exchange(t0, a, b)
	if !slices.Equal(a.echoes, []uint16{1}) {
		t.Fatalf("echo replies %v, want [1]; stats %+v %+v", a.echoes, a.st.NDP, b.st.ICMPv6)
	}
	if mac, ok := a.Neighbour(v6B); !ok || mac != macB {
		t.Fatalf("A's entry for B: %v %v", mac, ok)
	}
	if mac, ok := b.Neighbour(v6A); !ok || mac != macA {
		t.Fatalf("B's entry for A (from the NS's source link-layer option): %v %v", mac, ok)
	}
	if b.st.NDP.NAOut != 1 || a.st.NDP.NAIn != 1 || b.st.ICMPv6.EchoRepliesOut != 1 {
		t.Fatalf("NDP %+v / %+v", a.st.NDP, b.st.NDP)
	}
}

func TestNSGoldenBytes(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	a.sendNS(t0, v6B, MAC{}, false, false)
	out := a.take()
	want := []byte{
		0x33, 0x33, 0xff, 0x00, 0x00, 0x0b, 0x02, 0, 0, 0, 0, 0x0a, 0x86, 0xdd, // Ethernet
		0x60, 0, 0, 0, 0, 32, 58, 255, // version, flow 0, length 32, ICMPv6, hop limit 255
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a,
		0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, 0, 0, 0x0b,
		135, 0, 0, 0, 0, 0, 0, 0, // type, code, checksum (below), reserved
		0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b, // target
		1, 1, 0x02, 0, 0, 0, 0, 0x0a, // source link-layer address
	}
	c := checksum.Checksum(want[54:], checksum.Pseudo(v6A, solicitedNode(v6B), ProtoICMPv6, 32))
	binary.BigEndian.PutUint16(want[56:58], c)
	if len(out) != 1 || !bytes.Equal(out[0], want) {
		t.Fatalf("NS\n got %x\nwant %x", out, want)
	}
}

func TestDADThenUsable(t *testing.T) {
	var conflicts []netip.Addr
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.DADTransmits = 0; c.NoLinkLocal = false })
	a.h.DADConflict = func(x netip.Addr) { conflicts = append(conflicts, x) }
	if a.HasAddr(v6A) || len(a.Addrs()) != 1 {
		t.Fatalf("tentative address usable: %v", a.Addrs())
	}
	if d := a.NextDeadline(); d.IsZero() {
		t.Fatal("no deadline to start DAD")
	}
	a.Timer(t0)
	var ns, mld int
	for _, f := range a.take() {
		hdr, proto, m := parse6(t, f)
		switch {
		case proto == ProtoICMPv6 && m[0] == ICMPv6NeighSolicit:
			ns++
			if !hdr.Src().IsUnspecified() || len(m) != 32 || m[24] != ndOptNonce || m[25] != 1 {
				t.Fatalf("DAD NS from %v, %x (want ::, a nonce option only)", hdr.Src(), m)
			}
			// Looped back by the link (RFC 7527): not a conflict.
			a.Input(t0, f)
		case proto == ProtoICMPv6 && m[0] == ICMPv6MLDv2Report:
			mld++
			if hdr.HopLimit() != 1 || hdr.NextHeader() != ProtoHopByHop || hdr.Dst() != allMLDv2 {
				t.Fatalf("MLD report header %x", f[EthernetHeaderLen:Headroom6+8])
			}
			if n := binary.BigEndian.Uint16(m[6:8]); n != 2 {
				t.Fatalf("MLD report with %d records, want 2 (both solicited-node groups)", n)
			}
		}
	}
	if ns != 2 || mld != 1 {
		t.Fatalf("%d DAD NS, %d MLD reports; want 2 and 1", ns, mld)
	}
	if d := a.NextDeadline(); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("deadline %v, want RetransTimer after the NS", d)
	}
	a.Timer(t0.Add(time.Second))
	if !a.HasAddr(v6A) || len(a.Addrs()) != 3 {
		t.Fatalf("after DAD: %v", a.Addrs())
	}
	if s, ok := a.SourceAddr(netip.MustParseAddr("fe80::99")); !ok || !s.IsLinkLocalUnicast() {
		t.Fatalf("source for a link-local destination: %v", s)
	}
	if s, _ := a.SourceAddr(v6B); s != v6A {
		t.Fatalf("source for fd00::b: %v", s)
	}
	if len(conflicts) != 0 || a.st.NDP.DADSucceeded != 2 || a.st.NDP.DADStarted != 2 || a.st.NDP.DADLoopedBack != 2 {
		t.Fatalf("conflicts %v, stats %+v", conflicts, a.st.NDP)
	}
}

func TestDADConflict(t *testing.T) {
	var conflicts []netip.Addr
	owner := newHost6(t, prefixB, v6A, macB, nil) // already uses fd00::a
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.DADTransmits = 2 })
	a.h.DADConflict = func(x netip.Addr) { conflicts = append(conflicts, x) }
	a.Timer(t0)
	exchange(t0, a, owner)
	if !slices.Equal(conflicts, []netip.Addr{v6A}) || !slices.Equal(a.DADFailed(), []netip.Addr{v6A}) {
		t.Fatalf("conflicts %v, DADFailed %v", conflicts, a.DADFailed())
	}
	a.Timer(t0.Add(5 * time.Second))
	if a.HasAddr(v6A) || slices.ContainsFunc(a.Addrs(), func(p netip.Prefix) bool { return p.Addr() == v6A }) {
		t.Fatalf("duplicate in use: %v", a.Addrs())
	}
	if err := a.SendEcho(t0, v6B, 1, 1, nil); err == nil {
		t.Fatal("sent from a duplicate address")
	}
	// A DAD probe from another node for our tentative address is a
	// conflict too (RFC 4862 §5.4.3).
	c := newHost6(t, prefixA, v6B, macA, func(c *Config) { c.DADTransmits = 1 })
	ns := icmp6(netip.IPv6Unspecified(), solicitedNode(v6B), ICMPv6NeighSolicit, 0, append(make([]byte, 4), v6B.AsSlice()...))
	c.Input(t0, frame6(multicastMAC(solicitedNode(v6B)), macB, netip.IPv6Unspecified(), solicitedNode(v6B), 255, ProtoICMPv6, ns))
	if !slices.Equal(c.DADFailed(), []netip.Addr{v6B}) {
		t.Fatalf("DAD NS from another node: DADFailed %v", c.DADFailed())
	}
}

// ra builds a router advertisement from fe80::1.
func ra(hopLimit uint8, routerLife uint16, opts ...[]byte) []byte {
	return raTimers(hopLimit, routerLife, 0, 0, opts...)
}

// raTimers is ra with a Reachable Time and a Retrans Timer, in ms.
func raTimers(hopLimit uint8, routerLife uint16, reachable, retrans uint32, opts ...[]byte) []byte {
	body := make([]byte, 12)
	body[0] = hopLimit
	binary.BigEndian.PutUint16(body[2:4], routerLife)
	binary.BigEndian.PutUint32(body[4:8], reachable)
	binary.BigEndian.PutUint32(body[8:12], retrans)
	body = append(body, 1, 1, 0x02, 0, 0, 0, 0, 0x01) // source link-layer address
	for _, o := range opts {
		body = append(body, o...)
	}
	return icmp6(llR, allNodes, ICMPv6RouterAdvert, 0, body)
}

func prefixOpt(p netip.Prefix, flags uint8, valid, pref uint32) []byte {
	o := make([]byte, 32)
	o[0], o[1], o[2], o[3] = ndOptPrefix, 4, uint8(p.Bits()), flags
	binary.BigEndian.PutUint32(o[4:8], valid)
	binary.BigEndian.PutUint32(o[8:12], pref)
	copy(o[16:], p.Addr().AsSlice())
	return o
}

func TestSLAACFromRA(t *testing.T) {
	dnsCalls := 0
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.NoLinkLocal = false; c.NoRS = false })
	a.h.DNSChanged = func() { dnsCalls++ }
	a.Timer(t0)
	a.Timer(t0.Add(time.Second)) // link-local DAD done: RS goes
	if a.st.NDP.RSOut != 1 {
		t.Fatalf("RS sent %d, want 1", a.st.NDP.RSOut)
	}
	a.take()
	mtu := []byte{ndOptMTU, 1, 0, 0, 0, 0, 0x05, 0x78} // 1400
	rdnss := append([]byte{ndOptRDNSS, 3, 0, 0, 0, 0, 0x0e, 0x10}, netip.MustParseAddr("2001:db8::53").AsSlice()...)
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	a.Input(t0.Add(time.Second), frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6,
		ra(200, 1800, mtu, rdnss, prefixOpt(pfx, 0xc0, 7200, 3600))))
	if got := a.Routers(); !slices.Equal(got, []netip.Addr{llR}) {
		t.Fatalf("routers %v", got)
	}
	if got := a.DNSServers(); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2001:db8::53")}) || dnsCalls != 1 {
		t.Fatalf("DNS %v, %d calls", got, dnsCalls)
	}
	far := netip.MustParseAddr("2001:db8:99::1")
	if got := a.PathMTU(t0, far); got != 1400 {
		t.Fatalf("IPv6 path MTU %d, want the RA's 1400", got)
	}
	if got := a.PathMTU(t0, addrB); got != 1500 {
		t.Fatalf("IPv4 path MTU %d, want the link's", got)
	}
	var slaac netip.Addr
	a.Timer(t0.Add(2 * time.Second)) // DAD NS for the new address
	a.Timer(t0.Add(3 * time.Second)) // DAD over
	for _, p := range a.Addrs() {
		if pfx.Contains(p.Addr()) {
			slaac = p.Addr()
		}
	}
	if !slaac.IsValid() || a.st.NDP.SLAACAddrs != 1 {
		t.Fatalf("no SLAAC address: %v", a.Addrs())
	}
	if slaac != a.stableAddr(pfx, 0) {
		t.Fatalf("SLAAC address %v not the RFC 7217 one of counter 0", slaac)
	}
	if s, ok := a.SourceAddr(far); !ok || s != slaac {
		t.Fatalf("source for a global destination: %v, want %v", s, slaac)
	}
	// A packet off-link goes to the router, with the RA's hop limit.
	a.take()
	if err := a.SendEcho(t0.Add(3*time.Second), far, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	if EthernetHeader(out[0]).Dst() != macR {
		t.Fatalf("off-link packet to %v, want the router's MAC", EthernetHeader(out[0]).Dst())
	}
	if hdr, _, _ := parse6(t, out[0]); hdr.HopLimit() != 200 || hdr.Src() != slaac {
		t.Fatalf("hop limit %d from %v", hdr.HopLimit(), hdr.Src())
	}
	// RFC 4862 §5.5.3 (e): a short valid lifetime does not cut one of
	// more than two hours.
	a.Input(t0.Add(4*time.Second), frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6,
		ra(0, 1800, prefixOpt(pfx, 0xc0, 10, 10))))
	a.Timer(t0.Add(time.Minute))
	if !a.HasAddr(slaac) {
		t.Fatal("a 10 s valid lifetime removed the address (two-hour rule)")
	}
	// Lifetimes run out: the DNS server after 3600 s, the router after
	// 1800 s, the address two hours after the second RA.
	a.Timer(t0.Add(3601 * time.Second))
	if len(a.DNSServers()) != 0 || len(a.Routers()) != 0 || dnsCalls != 2 {
		t.Fatalf("after an hour: DNS %v routers %v calls %d", a.DNSServers(), a.Routers(), dnsCalls)
	}
	a.Timer(t0.Add(2*time.Hour + 5*time.Second))
	if a.HasAddr(slaac) {
		t.Fatal("SLAAC address outlived its valid lifetime")
	}
}

func TestRABounded(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.MaxPrefixes = 2; c.MaxRDNSS = 1; c.DADTransmits = -1 })
	for i := range 10 {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i)}), 64)
		rd := append([]byte{ndOptRDNSS, 3, 0, 0, 0, 0, 0x0e, 0x10}, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}).AsSlice()...)
		a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, ra(0, 0, prefixOpt(p, 0xc0, 7200, 7200), rd)))
	}
	if n := len(a.Addrs()); n != 1+2 {
		t.Fatalf("%d addresses, want the IPv4 one and 2 SLAAC", n)
	}
	if len(a.DNSServers()) != 1 || a.st.NDP.PrefixLimit == 0 || a.st.NDP.RDNSSLimit != 9 {
		t.Fatalf("DNS %v, stats %+v", a.DNSServers(), a.st.NDP)
	}
}

func TestNDPValidityChecks(t *testing.T) {
	target := append(make([]byte, 4), v6A.AsSlice()...)
	sll := []byte{1, 1, 0x02, 0, 0, 0, 0, 0x0b}
	cases := []struct {
		name    string
		src     netip.Addr
		hop     uint8
		code    uint8
		body    []byte
		counter func(a *testHost) uint64
	}{
		{"hop limit 64", v6B, 64, 0, append(target, sll...), func(a *testHost) uint64 { return a.st.NDP.DropBadHopLimit }},
		{"code 1", v6B, 255, 1, append(target, sll...), func(a *testHost) uint64 { return a.st.NDP.DropBadCode }},
		{"zero-length option", v6B, 255, 0, append(target, 1, 0, 0, 0, 0, 0, 0, 0), func(a *testHost) uint64 { return a.st.NDP.DropBadOption }},
		{"option past the end", v6B, 255, 0, append(target, 1, 2, 0, 0, 0, 0, 0, 0), func(a *testHost) uint64 { return a.st.NDP.DropBadOption }},
		{"unspecified source with SLLA", netip.IPv6Unspecified(), 255, 0, append(target, sll...), func(a *testHost) uint64 { return a.st.NDP.DropBadOption }},
		{"short", v6B, 255, 0, target[:12], func(a *testHost) uint64 { return a.st.NDP.DropMalformed }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newHost6(t, prefixA, v6A, macA, nil)
			dst := solicitedNode(v6A)
			a.Input(t0, frame6(multicastMAC(dst), macB, c.src, dst, c.hop, ProtoICMPv6, icmp6(c.src, dst, ICMPv6NeighSolicit, c.code, c.body)))
			if c.counter(a) != 1 || len(a.take()) != 0 {
				t.Fatalf("not dropped: %+v", a.st.NDP)
			}
		})
	}
}

func TestFragments6RoundTrip(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	b := newHost6(t, prefixB, v6B, macB, nil)
	pkt := udpPacket6(4000)
	want := bytes.Clone(pkt[Headroom6:])
	if err := a.Output(t0, pkt, ProtoUDP, v6A, v6B, true); err != nil {
		t.Fatal(err)
	}
	exchange(t0, a, b)
	if len(b.udp) != 1 || !bytes.Equal(b.udp[0], want) {
		t.Fatalf("got %d datagrams", len(b.udp))
	}
	if a.st.IPv6.FragmentsOut != 3 || b.st.IPv6.Reassembled != 1 {
		t.Fatalf("fragments %d, reassembled %d", a.st.IPv6.FragmentsOut, b.st.IPv6.Reassembled)
	}
	// PTB from a router lowers the path MTU (RFC 8201), floor 1280.
	orig := frame6(macB, macA, v6A, v6B, 64, ProtoUDP, want[:64])[EthernetHeaderLen:]
	ptb := func(mtu uint32) []byte {
		body := binary.BigEndian.AppendUint32(nil, mtu)
		return frame6(macA, macB, v6B, v6A, 64, ProtoICMPv6, icmp6(v6B, v6A, ICMPv6PacketTooBig, 0, append(body, orig...)))
	}
	a.Input(t0, ptb(1300))
	if got := a.PathMTU(t0, v6B); got != 1300 {
		t.Fatalf("path MTU %d after PTB 1300", got)
	}
	if len(a.errs) != 1 || !a.errs[0].V6 || a.errs[0].Errno != syscall.EMSGSIZE || a.errs[0].MTU != 1300 || a.errs[0].Proto != ProtoUDP {
		t.Fatalf("errors %+v", a.errs)
	}
	a.Input(t0, ptb(600))
	if got := a.PathMTU(t0, v6B); got != IPv6MinMTU {
		t.Fatalf("path MTU %d after PTB 600, want 1280", got)
	}
	a.take()
	if err := a.Output(t0, udpPacket6(1400), ProtoUDP, v6A, v6B, true); err != nil {
		t.Fatal(err)
	}
	for _, f := range a.take() {
		if len(f)-EthernetHeaderLen > IPv6MinMTU {
			t.Fatalf("fragment of %d bytes over the path MTU", len(f)-EthernetHeaderLen)
		}
	}
}

// TestPTBAboutTCPLeftToTCP: a Packet Too Big quoting a TCP segment reaches
// the error handler with its MTU (floored at 1280) but does not lower the
// path MTU itself: only the engine, once the quoted sequence number proves
// the message names data in flight (RFC 5927), stores it. A PTB quoting
// UDP lowers it at once (TestFragments6RoundTrip).
func TestPTBAboutTCPLeftToTCP(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	seg := make([]byte, 20)
	seg[12] = 5 << 4
	orig := frame6(macB, macA, v6A, v6B, 64, ProtoTCP, seg)[EthernetHeaderLen:]
	body := binary.BigEndian.AppendUint32(nil, 1000)
	a.Input(t0, frame6(macA, macB, v6B, v6A, 64, ProtoICMPv6, icmp6(v6B, v6A, ICMPv6PacketTooBig, 0, append(body, orig...))))
	if len(a.errs) != 1 || a.errs[0].Proto != ProtoTCP || a.errs[0].Errno != syscall.EMSGSIZE || a.errs[0].MTU != IPv6MinMTU {
		t.Fatalf("errors %+v", a.errs)
	}
	if got, link := a.PathMTU(t0, v6B), a.PathMTU(t0, v6A); got != link {
		t.Fatalf("path MTU %d after a PTB about TCP, want the link's %d until TCP vouches for it", got, link)
	}
}

// fragment6Frame builds one fragment of a UDP datagram from B to A.
func fragment6Frame(id uint32, off int, more bool, data []byte) []byte {
	fh := make([]byte, 8)
	fh[0] = ProtoUDP
	fo := uint16(off)
	if more {
		fo |= 1
	}
	binary.BigEndian.PutUint16(fh[2:4], fo)
	binary.BigEndian.PutUint32(fh[4:8], id)
	return frame6(macA, macB, v6B, v6A, 64, ProtoFragment, append(fh, data...))
}

func TestReassembly6Overlaps(t *testing.T) {
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 8)
	a := newHost6(t, prefixA, v6A, macA, nil)
	a.Input(t0, fragment6Frame(1, 0, true, data[:32]))
	a.Input(t0, fragment6Frame(1, 24, false, data[24:])) // overlaps 24..32
	a.Input(t0, fragment6Frame(1, 32, false, data[32:])) // would have completed
	if len(a.udp) != 0 || a.st.IPv6.FragDropOverlap != 1 {
		t.Fatalf("delivered %d, overlap drops %d", len(a.udp), a.st.IPv6.FragDropOverlap)
	}
	// RFC 5722: an exact duplicate drops the datagram too.
	a.Input(t0, fragment6Frame(2, 0, true, data[:32]))
	a.Input(t0, fragment6Frame(2, 0, true, data[:32]))
	a.Input(t0, fragment6Frame(2, 32, false, data[32:]))
	if len(a.udp) != 0 || a.st.IPv6.FragDropOverlap != 2 {
		t.Fatalf("duplicate: delivered %d, overlap drops %d", len(a.udp), a.st.IPv6.FragDropOverlap)
	}
	// Complete, in reverse order.
	a.Input(t0, fragment6Frame(3, 32, false, data[32:]))
	a.Input(t0, fragment6Frame(3, 0, true, data[:32]))
	if len(a.udp) != 1 || !bytes.Equal(a.udp[0], data) {
		t.Fatalf("reassembled %x", a.udp)
	}
	// RFC 6946: an atomic fragment is delivered at once, not queued.
	a.Input(t0, fragment6Frame(3, 0, false, data))
	if len(a.udp) != 2 || a.st.IPv6.AtomicFragments != 1 {
		t.Fatalf("atomic fragment: %d delivered", len(a.udp))
	}
	// A non-last fragment not a multiple of 8: parameter problem at the
	// payload length (RFC 8200 §4.5).
	a.take()
	a.neigh.learn(v6B, macB, t0, true)
	a.Input(t0, fragment6Frame(4, 0, true, data[:30]))
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d answers", len(out))
	}
	if _, _, m := parse6(t, out[0]); m[0] != ICMPv6ParamProblem || m[1] != 0 || binary.BigEndian.Uint32(m[4:8]) != 4 {
		t.Fatalf("answer %x", m[:8])
	}
	// Timeout frees the memory: this one and the remnants of datagrams 1
	// and 2 (their last fragments came after the overlap dropped the rest).
	a.Input(t0, fragment6Frame(5, 0, true, data[:32]))
	a.take()
	a.Timer(t0.Add(31 * time.Second))
	if n, d := a.ReassemblyMemory(); n != 0 || d != 0 || a.st.IPv6.FragDropTimeout != 3 {
		t.Fatalf("held %d bytes in %d datagrams after the timeout; %+v", n, d, a.st.IPv6)
	}
	// Time exceeded (code 1) for the one that had its first fragment (5;
	// the remnants of 1 and 2 did not), quoting it (RFC 8200 §4.5).
	n := 0
	for _, f := range a.take() {
		hdr, _, m := parse6(t, f)
		if m[0] == ICMPv6MLDv2Report {
			continue // the first Timer's
		}
		n++
		if hdr.Dst() != v6B || m[0] != ICMPv6TimeExceeded || m[1] != CodeV6FragReasmTime || m[8+6] != ProtoFragment {
			t.Fatalf("answer %x", m[:16])
		}
	}
	if n != 1 || a.st.ICMPv6.TimeExceededOut != 1 {
		t.Fatalf("%d time exceeded sent, want 1", n)
	}
}

func TestExtensionHeaders(t *testing.T) {
	udp := []byte{0, 1, 0, 2, 0, 12, 0xab, 0xcd, 1, 2, 3, 4}
	cases := []struct {
		name      string
		nh        uint8
		payload   []byte
		delivered bool
		code      int // parameter problem code, -1: none
		ptr       uint32
	}{
		{"dest opts PadN", ProtoDestOpts, append([]byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, udp...), true, -1, 0},
		{"hop-by-hop skip option", ProtoHopByHop, append([]byte{ProtoUDP, 0, 0x1e, 4, 0, 0, 0, 0}, udp...), true, -1, 0},
		{"option discard", ProtoDestOpts, append([]byte{ProtoUDP, 0, 0x5e, 4, 0, 0, 0, 0}, udp...), false, -1, 0},
		{"option discard+ICMP", ProtoDestOpts, append([]byte{ProtoUDP, 0, 0x9e, 4, 0, 0, 0, 0}, udp...), false, 2, 42},
		{"routing type 0", ProtoRouting, append([]byte{ProtoUDP, 2, 0, 1, 0, 0, 0, 0}, append(make([]byte, 16), udp...)...), false, 0, 42},
		{"routing segments left 0", ProtoRouting, append([]byte{ProtoUDP, 0, 4, 0, 0, 0, 0, 0}, udp...), true, -1, 0},
		{"hop-by-hop not first", ProtoDestOpts, append([]byte{ProtoHopByHop, 0, 1, 4, 0, 0, 0, 0}, append([]byte{ProtoUDP, 0, 1, 4, 0, 0, 0, 0}, udp...)...), false, 1, 40},
		{"unknown next header", 253, udp, false, 1, 6},
		{"UDP zero checksum", ProtoUDP, []byte{0, 1, 0, 2, 0, 12, 0, 0, 1, 2, 3, 4}, false, -1, 0},
		{"no next header", ProtoNoNext, nil, false, -1, 0},
		{"option past header", ProtoDestOpts, append([]byte{ProtoUDP, 0, 0x1e, 9, 0, 0, 0, 0}, udp...), false, -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newHost6(t, prefixA, v6A, macA, nil)
			a.neigh.learn(v6B, macB, t0, true)
			a.Input(t0, frame6(macA, macB, v6B, v6A, 64, c.nh, c.payload))
			if got := len(a.udp) == 1; got != c.delivered {
				t.Fatalf("delivered %v, want %v; %+v", got, c.delivered, a.st.IPv6)
			}
			out := a.take()
			if c.code < 0 {
				if len(out) != 0 {
					t.Fatalf("answered: %x", out)
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("%d answers, want a parameter problem", len(out))
			}
			hdr, _, m := parse6(t, out[0])
			if hdr.Dst() != v6B || m[0] != ICMPv6ParamProblem || int(m[1]) != c.code || binary.BigEndian.Uint32(m[4:8]) != c.ptr {
				t.Fatalf("answer to %v: %x", hdr.Dst(), m[:8])
			}
		})
	}
}

func TestPortUnreachable6(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	b := newHost6(t, prefixB, v6B, macB, nil)
	b.noPort = true
	if err := a.Output(t0, udpPacket6(100), ProtoUDP, v6A, v6B, false); err != nil {
		t.Fatal(err)
	}
	exchange(t0, a, b)
	if len(a.errs) != 1 || a.errs[0].Errno != syscall.ECONNREFUSED || !a.errs[0].V6 || a.errs[0].Dst != v6B || a.errs[0].Src != v6A {
		t.Fatalf("errors %+v", a.errs)
	}
	// No error about a multicast destination.
	b.take()
	b.Input(t0, frame6(allNodesMAC, macA, v6A, allNodes, 64, ProtoUDP, udpPacket6(10)[Headroom6:]))
	if len(b.udp) != 2 || len(b.take()) != 0 {
		t.Fatalf("multicast: delivered %d, answered", len(b.udp))
	}
}

func TestEchoToAllNodes(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	req := icmp6(v6B, allNodes, ICMPv6EchoRequest, 0, []byte{0, 9, 0, 1, 'x'})
	a.Input(t0, frame6(allNodesMAC, macB, v6B, allNodes, 64, ProtoICMPv6, req))
	a.Input(t0, frame6(multicastMAC(netip.MustParseAddr("ff02::fb")), macB, v6B, netip.MustParseAddr("ff02::fb"), 64, ProtoICMPv6, req))
	out := a.take()
	// The reply waits for B's resolution: an NS goes out.
	if len(out) != 1 || a.st.ICMPv6.EchoRepliesOut != 1 || a.st.Ethernet.DropMulticast != 1 {
		t.Fatalf("%d frames, %+v %+v", len(out), a.st.ICMPv6, a.st.Ethernet)
	}
}

func TestNUDProbe6(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	b := newHost6(t, prefixB, v6B, macB, nil)
	a.Timer(t0) // its MLD report
	a.take()
	a.SendEcho(t0, v6B, 1, 1, nil)
	exchange(t0, a, b)
	later := t0.Add(31 * time.Second) // STALE
	a.SendEcho(later, v6B, 1, 2, nil)
	if out := a.take(); len(out) != 1 {
		t.Fatalf("%d frames from a STALE entry, want the echo only", len(out))
	} else {
		b.Input(later, out[0])
	}
	b.take()
	a.Timer(later.Add(delayFirstProbe))
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames after DELAY, want a probe", len(out))
	}
	hdr, _, m := parse6(t, out[0])
	if m[0] != ICMPv6NeighSolicit || hdr.Dst() != v6B || EthernetHeader(out[0]).Dst() != macB {
		t.Fatalf("probe %x to %v", m[:1], hdr.Dst())
	}
	b.Input(later, out[0])
	deliverAll(later, b, a)
	if _, st, _ := a.neigh.get(v6B); st != neighReachable {
		t.Fatalf("state %d after the solicited NA, want REACHABLE", st)
	}
	if a.st.NDP.NAIn != 2 {
		t.Fatalf("NAs in %d", a.st.NDP.NAIn)
	}
}

func TestTUNLinkIPv6(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.Ethernet = false; c.DADTransmits = 1 })
	if !a.HasAddr(v6A) {
		t.Fatal("no DAD on a bare-IP link: the address is usable at once")
	}
	req := icmp6(v6B, v6A, ICMPv6EchoRequest, 0, []byte{0, 3, 0, 4, 'p'})
	f := frame6(MAC{}, MAC{}, v6B, v6A, 64, ProtoICMPv6, req)
	a.Input(t0, f)
	out := a.take()
	if len(out) != 1 || out[0][0]>>4 != 6 {
		t.Fatalf("%d packets", len(out))
	}
	hdr, pkt, err := ParseIPv6(out[0])
	if err != nil || hdr.Dst() != v6B || pkt[IPv6HeaderLen] != ICMPv6EchoReply {
		t.Fatalf("reply %x, %v", out[0], err)
	}
	if checksum.Checksum(pkt[IPv6HeaderLen:], checksum.Pseudo(v6A, v6B, ProtoICMPv6, len(pkt)-IPv6HeaderLen)) != 0 {
		t.Fatal("bad reply checksum")
	}
}

func TestTentativeAddressReceivesNothing(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.DADTransmits = 1 })
	a.Input(t0, frame6(macA, macB, v6B, v6A, 64, ProtoUDP, udpPacket6(10)[Headroom6:]))
	if len(a.udp) != 0 || a.st.IPv6.DropTentative != 1 {
		t.Fatalf("delivered to a tentative address: %+v", a.st.IPv6)
	}
	if err := a.Output(t0, udpPacket6(10), ProtoUDP, netip.Addr{}, v6B, false); err == nil {
		t.Fatal("sent from a tentative address")
	}
}

func TestIPv6OnlyHost(t *testing.T) {
	a := newHost6(t, netip.Prefix{}, v6A, macA, nil)
	a.Announce()
	if len(a.take()) != 0 {
		t.Fatal("gratuitous ARP without an IPv4 address")
	}
	if err := a.SendEcho(t0, addrB, 1, 1, nil); err == nil {
		t.Fatal("IPv4 echo sent without an IPv4 address")
	}
	if _, ok := a.SourceAddr(addrB); ok {
		t.Fatal("IPv4 source without an IPv4 address")
	}
	if got := a.Addrs(); len(got) != 1 || got[0].Addr() != v6A {
		t.Fatalf("addresses %v", got)
	}
	var f [minFrame]byte
	EthernetHeader(f[:]).Encode(BroadcastMAC, macB, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, macB, addrB, MAC{}, addrA)
	a.Input(t0, f[:])
	if len(a.take()) != 0 {
		t.Fatal("answered ARP")
	}
}

func TestMultipleIPv4Addrs(t *testing.T) {
	second := netip.MustParsePrefix("198.19.0.1/24")
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Addrs = []netip.Prefix{second} })
	if !a.HasAddr(second.Addr()) || !a.HasAddr(addrA) || a.Addr() != addrA {
		t.Fatalf("addresses %v", a.Addrs())
	}
	if s, _ := a.SourceAddr(netip.MustParseAddr("198.19.0.9")); s != second.Addr() {
		t.Fatalf("source %v for the second subnet", s)
	}
	var f [minFrame]byte
	EthernetHeader(f[:]).Encode(BroadcastMAC, macB, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, macB, netip.MustParseAddr("198.19.0.2"), MAC{}, second.Addr())
	a.Input(t0, f[:])
	out := a.take()
	if len(out) != 1 || ARPPacket(out[0][EthernetHeaderLen:]).SenderIP() != second.Addr() {
		t.Fatal("ARP for the second address not answered from it")
	}
}

func TestSLAACConflictRetries(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.DADTransmits = 1 })
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	a.Timer(t0)
	a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, ra(0, 0, prefixOpt(pfx, 0x40, 7200, 7200))))
	first := a.stableAddr(pfx, 0)
	if st, ok := a.addrState(first); !ok || st != addrTentative {
		t.Fatalf("no tentative SLAAC address")
	}
	// Another node defends it: a NA for the tentative address.
	na := icmp6(llR, allNodes, ICMPv6NeighAdvert, 0, append([]byte{0x20, 0, 0, 0}, append(first.AsSlice(), 2, 1, 2, 0, 0, 0, 0, 1)...))
	a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, na))
	second := a.stableAddr(pfx, 1)
	if !slices.Equal(a.DADFailed(), []netip.Addr{first}) || second == first {
		t.Fatalf("DADFailed %v", a.DADFailed())
	}
	a.Timer(t0)
	a.Timer(t0.Add(time.Second))
	if !a.HasAddr(second) || a.HasAddr(first) {
		t.Fatalf("after the retry: %v", a.Addrs())
	}
}

func TestMLDQueryAnswered(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.NoLinkLocal = false })
	a.Timer(t0)
	a.take()
	q := icmp6(llR, allNodes, ICMPv6MLDQuery, 0, make([]byte, 24))
	query := frame6(allNodesMAC, macR, llR, allNodes, 1, ProtoICMPv6, q)
	a.Input(t0, query)
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames, want one report", len(out))
	}
	if _, _, m := parse6(t, out[0]); m[0] != ICMPv6MLDv2Report || binary.BigEndian.Uint16(m[6:8]) != 2 {
		t.Fatalf("answer %x", m)
	}
	a.Input(t0.Add(500*time.Millisecond), query) // within a second: ignored
	a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 64, ProtoICMPv6, q))
	if len(a.take()) != 0 || a.st.NDP.MLDQueriesIgnored != 2 {
		t.Fatalf("answered a query flood or a bad hop limit: %+v", a.st.NDP)
	}
}

func TestPromiscuous6(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.Promiscuous = true })
	other := netip.MustParseAddr("2001:db8::77")
	a.Input(t0, frame6(macA, macB, v6B, other, 64, ProtoUDP, udpPacket6(10)[Headroom6:]))
	a.Input(t0, frame6(macA, macB, v6B, other, 64, ProtoICMPv6, icmp6(v6B, other, ICMPv6EchoRequest, 0, []byte{0, 1, 0, 1})))
	if len(a.udp) != 1 || a.st.ICMPv6.EchoRequestsIn != 0 || a.st.IPv6.DropNotForUs != 1 {
		t.Fatalf("udp %d, %+v", len(a.udp), a.st.IPv6)
	}
}

func TestSourceAddrAvoidsDeprecated(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.DADTransmits = -1 })
	p1, p2 := netip.MustParsePrefix("2001:db8:1::/64"), netip.MustParsePrefix("2001:db8:2::/64")
	a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, ra(0, 600, prefixOpt(p1, 0x40, 7200, 0), prefixOpt(p2, 0x40, 7200, 7200))))
	dst := netip.MustParseAddr("2001:db8:1::99") // longest match with p1, whose address is deprecated
	if s, ok := a.SourceAddr(dst); !ok || !p2.Contains(s) {
		t.Fatalf("source %v: RFC 6724 rule 3 prefers the preferred address", s)
	}
	if s, _ := a.SourceAddr(a.stableAddr(p1, 0)); s != a.stableAddr(p1, 0) {
		t.Fatalf("source for our own deprecated address %v: rule 1 picks it", s)
	}
}

func TestNSFloodBounded(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.NeighCacheSize = 8 })
	dst := solicitedNode(v6A)
	for i := range 200 {
		src := netip.AddrFrom16([16]byte{0xfd, 14: byte(i >> 8), 15: byte(i)})
		mac := MAC{0x02, 0, 0, 0, byte(i >> 8), byte(i)}
		body := append(append(make([]byte, 4), v6A.AsSlice()...), 1, 1, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
		a.Input(t0, frame6(multicastMAC(dst), mac, src, dst, 255, ProtoICMPv6, icmp6(src, dst, ICMPv6NeighSolicit, 0, body)))
	}
	if n := len(a.neigh.m); n > 8 {
		t.Fatalf("%d neighbour entries, bound 8", n)
	}
	if a.st.NDP.NAOut != 200 {
		t.Fatalf("answered %d of 200", a.st.NDP.NAOut)
	}
}

func TestIPv6HeaderGolden(t *testing.T) {
	b := make([]byte, IPv6HeaderLen)
	encodeIPv6(b, 0x1234, 0xabcde, ProtoTCP, 64, v6A, v6B)
	want := append([]byte{0x60, 0x0a, 0xbc, 0xde, 0x12, 0x34, 6, 64}, append(v6A.AsSlice(), v6B.AsSlice()...)...)
	if !bytes.Equal(b, want) {
		t.Fatalf("header\n got %x\nwant %x", b, want)
	}
	f1, f2 := flowLabel(v6A, v6B, ProtoTCP, 1), flowLabel(v6A, v6B, ProtoUDP, 1)
	if f1 == 0 || f1 > 0xfffff || f1 == f2 || f1 != flowLabel(v6A, v6B, ProtoTCP, 1) {
		t.Fatalf("flow labels %#x %#x", f1, f2)
	}
	// A zero payload length with a hop-by-hop header is a jumbogram.
	b[4], b[5], b[6] = 0, 0, ProtoHopByHop
	if _, _, err := ParseIPv6(append(b, make([]byte, 8)...)); err != errJumbo {
		t.Fatalf("jumbogram: %v", err)
	}
}

func TestLargeEcho6(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	b := newHost6(t, prefixB, v6B, macB, nil)
	var got []byte
	a.h.EchoReply = func(now time.Time, src netip.Addr, id, seq uint16, data []byte) { got = bytes.Clone(data) }
	data := bytes.Repeat([]byte("0123456789abcdef"), 375) // 6000 bytes
	if err := a.SendEcho(t0, v6B, 5, 6, data); err != nil {
		t.Fatal(err)
	}
	exchange(t0, a, b)
	if !bytes.Equal(got, data) {
		t.Fatalf("reply of %d bytes, want %d", len(got), len(data))
	}
	if b.st.IPv6.Reassembled != 1 || b.st.IPv6.FragmentedPackets != 1 || a.st.IPv6.Reassembled != 1 {
		t.Fatalf("A %+v\nB %+v", a.st.IPv6, b.st.IPv6)
	}
}

// TestNextDeadlineNeverPast runs a Host as the stack's timer loop does,
// through start, DAD, router solicitation and an RA's lifetimes: after
// each Timer the next deadline is in the future (or none), so the loop
// never spins.
func TestNextDeadlineNeverPast(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.NoLinkLocal = false; c.NoRS = false; c.DADTransmits = 2 })
	now := t0
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	for i := 0; i < 200; i++ {
		if i == 3 { // an RA arrives, and its wake runs the timer
			a.Input(now, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, ra(0, 30, prefixOpt(pfx, 0xc0, 60, 20))))
		}
		a.Timer(now)
		a.take()
		d := a.NextDeadline()
		if d.IsZero() {
			break
		}
		if !d.After(now) {
			t.Fatalf("step %d: deadline %v not after now %v", i, d, now)
		}
		now = d
	}
	if a.st.NDP.RSOut == 0 || a.st.NDP.SLAACAddrs != 1 || !a.NextDeadline().IsZero() {
		t.Fatalf("RS %d, SLAAC %d, deadline %v", a.st.NDP.RSOut, a.st.NDP.SLAACAddrs, a.NextDeadline())
	}
}

// TestRATimers: an RA's Reachable Time and Retrans Timer (RFC 4861
// §6.3.4) set how long an IPv6 neighbour is trusted (drawn between half
// and one and a half of the base) and how far apart solicitations go;
// IPv4 neighbours keep the configured times; out-of-range values are
// ignored and counted.
func TestRATimers(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, nil)
	b := newHost6(t, prefixB, v6B, macB, nil)
	a.Timer(t0) // its MLD report
	a.take()
	a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, raTimers(0, 0, 4000, 250)))
	reach := a.neigh.reachable(v6B)
	if reach < 2*time.Second || reach >= 6*time.Second {
		t.Fatalf("reachable time %v, want in [2 s, 6 s) for a base of 4 s", reach)
	}
	if got := a.neigh.reachable(addrB); got != 30*time.Second {
		t.Fatalf("IPv4 reachable time %v, want the configured 30 s", got)
	}
	// The same base again keeps the time drawn; an hour and a day (too
	// long) change nothing.
	a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, raTimers(0, 0, 4000, 250)))
	a.Input(t0, frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6, raTimers(0, 0, 3_600_001, 86_400_000)))
	if got := a.neigh.reachable(v6B); got != reach || a.st.NDP.TimerIgnored != 2 {
		t.Fatalf("reachable time %v (was %v), %d ignored; want it kept and 2 ignored", got, reach, a.st.NDP.TimerIgnored)
	}

	// Solicitations go 250 ms apart.
	a.SendEcho(t0, v6B, 1, 1, nil)
	if out := a.take(); len(out) != 1 {
		t.Fatalf("%d frames, want one NS", len(out))
	}
	a.Timer(t0.Add(249 * time.Millisecond))
	if out := a.take(); len(out) != 0 {
		t.Fatalf("%d frames before the Retrans Timer", len(out))
	}
	at := t0.Add(250 * time.Millisecond)
	a.Timer(at)
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames at the Retrans Timer, want a second NS", len(out))
	}
	b.Input(at, out[0])
	exchange(at, a, b)
	if _, ok := a.neigh.lookupFast(v6B, at.Add(reach-time.Millisecond)); !ok {
		t.Fatal("entry not REACHABLE within the reachable time")
	}
	// Past it, the next use keeps the entry and confirms it (DELAY).
	stale := at.Add(reach)
	a.SendEcho(stale, v6B, 1, 2, nil)
	if out := a.take(); len(out) != 1 {
		t.Fatalf("%d frames from a stale entry, want the echo only", len(out))
	}
	if _, st, _ := a.neigh.get(v6B); st != neighDelay {
		t.Fatalf("state %d past the reachable time, want DELAY", st)
	}
}
