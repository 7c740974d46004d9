package ip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

var (
	t0      = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	macA    = MAC{0x02, 0, 0, 0, 0, 0xa}
	macB    = MAC{0x02, 0, 0, 0, 0, 0xb}
	addrA   = netip.MustParseAddr("198.18.0.1")
	addrB   = netip.MustParseAddr("198.18.0.2")
	prefixA = netip.MustParsePrefix("198.18.0.1/24")
	prefixB = netip.MustParsePrefix("198.18.0.2/24")
)

// testHost is a Host whose link is a slice of written frames.
type testHost struct {
	*Host
	st     stats.Stats
	out    [][]byte
	errs   []ErrorInfo
	udp    [][]byte
	tcp    [][]byte
	tcpECN []uint8 // the ECN field of each TCP segment delivered
	echoes []uint16
	noPort bool
	// onTCP, if set, runs for each TCP payload delivered, as the
	// transport would (to answer a SYN, say).
	onTCP func(now time.Time, src, dst netip.Addr, p []byte)
}

func newTestHost(t testing.TB, prefix netip.Prefix, mac MAC, mutate func(*Config)) *testHost {
	th := &testHost{}
	// The IPv4 tests see no IPv6 start traffic (link-local DAD, MLD, RS).
	cfg := Config{Addr: prefix, MAC: mac, MTU: 1500, Ethernet: true, Seed: 1, NoLinkLocal: true, NoRS: true}
	if mutate != nil {
		mutate(&cfg)
	}
	th.Host = New(cfg, func(f []byte) error {
		th.out = append(th.out, bytes.Clone(f))
		return nil
	}, &th.st, Handlers{
		UDP: func(now time.Time, src, dst netip.Addr, p []byte) bool {
			th.udp = append(th.udp, bytes.Clone(p))
			return th.noPort
		},
		TCP: func(now time.Time, src, dst netip.Addr, ecn uint8, p []byte) {
			th.tcp = append(th.tcp, bytes.Clone(p))
			th.tcpECN = append(th.tcpECN, ecn)
			if th.onTCP != nil {
				th.onTCP(now, src, dst, p)
			}
		},
		Error: func(now time.Time, e *ErrorInfo) {
			c := *e
			c.Transport = bytes.Clone(e.Transport)
			th.errs = append(th.errs, c)
		},
		EchoReply: func(now time.Time, src netip.Addr, id, seq uint16, data []byte) {
			th.echoes = append(th.echoes, seq)
		},
	}, nil)
	return th
}

// take returns and clears the frames written so far.
func (th *testHost) take() [][]byte {
	o := th.out
	th.out = nil
	return o
}

// deliverAll moves every frame written by from into to, in order, and
// returns how many moved.
func deliverAll(now time.Time, from, to *testHost) int {
	n := 0
	for len(from.out) > 0 {
		fs := from.take()
		for _, f := range fs {
			to.Input(now, f)
			n++
		}
	}
	return n
}

// exchange shuttles frames both ways until both sides go quiet.
func exchange(now time.Time, a, b *testHost) {
	for deliverAll(now, a, b)+deliverAll(now, b, a) > 0 {
	}
}

func udpPacket(size int) []byte {
	pkt := make([]byte, Headroom+8+size)
	for i := range pkt[Headroom:] {
		pkt[Headroom+i] = byte(i * 7)
	}
	return pkt
}

func TestARPRequestAnswered(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	var f [minFrame]byte
	EthernetHeader(f[:]).Encode(BroadcastMAC, macB, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, macB, addrB, MAC{}, addrA)
	a.Input(t0, f[:])
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("got %d frames, want 1 reply", len(out))
	}
	e := EthernetHeader(out[0])
	p := ARPPacket(out[0][EthernetHeaderLen:])
	if e.Dst() != macB || e.Src() != macA || e.Type() != EtherTypeARP || !p.Valid() || p.Op() != ARPOpReply ||
		p.SenderMAC() != macA || p.SenderIP() != addrA || p.TargetMAC() != macB || p.TargetIP() != addrB {
		t.Fatalf("bad reply % x", out[0])
	}
	// RFC 826: a request for us teaches us the sender.
	if mac, ok := a.Neighbour(addrB); !ok || mac != macB {
		t.Fatalf("sender not learned: %v %v", mac, ok)
	}
}

func TestARPRequestForOthersIgnored(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	var f [minFrame]byte
	EthernetHeader(f[:]).Encode(BroadcastMAC, macB, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, macB, addrB, MAC{}, netip.MustParseAddr("198.18.0.77"))
	a.Input(t0, f[:])
	if len(a.take()) != 0 || a.st.ARP.DropNotForUs != 1 {
		t.Fatalf("answered a request for someone else; stats %+v", a.st.ARP)
	}
	if _, ok := a.Neighbour(addrB); ok {
		t.Fatal("learned a sender from a request not for us")
	}
}

func TestResolveQueueFlushAndPing(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	b := newTestHost(t, prefixB, macB, nil)
	for seq := range uint16(3) {
		if err := a.SendEcho(t0, addrB, 7, seq, []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	out := a.take()
	if len(out) != 1 || EthernetHeader(out[0]).Type() != EtherTypeARP || EthernetHeader(out[0]).Dst() != BroadcastMAC {
		t.Fatalf("want one broadcast ARP request while resolving, got %d frames", len(out))
	}
	b.Input(t0, out[0])
	exchange(t0, a, b)
	if len(a.echoes) != 3 || a.echoes[0] != 0 || a.echoes[2] != 2 {
		t.Fatalf("echo replies %v, want [0 1 2]", a.echoes)
	}
	if a.st.ARP.PendingFlushed != 3 || b.st.ICMP.EchoRepliesOut != 3 {
		t.Fatalf("stats a %+v b %+v", a.st.ARP, b.st.ICMP)
	}
}

func TestResolveFailsWithHostUnreachable(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	silent := netip.MustParseAddr("198.18.0.99")
	pkt := udpPacket(10)
	binary.BigEndian.PutUint16(pkt[Headroom:], 5555)
	if err := a.Output(t0, pkt, ProtoUDP, addrA, silent, true); err != nil {
		t.Fatalf("queued send returned %v", err)
	}
	if n := len(a.take()); n != 1 {
		t.Fatalf("want 1 request, got %d", n)
	}
	if d := a.NextDeadline(); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("deadline %v", d)
	}
	// Retries a second apart, then failure.
	a.Timer(t0.Add(time.Second))
	a.Timer(t0.Add(2 * time.Second))
	if n := len(a.take()); n != 2 {
		t.Fatalf("want 2 retries, got %d", n)
	}
	if len(a.errs) != 0 {
		t.Fatal("failed too early")
	}
	a.Timer(t0.Add(3 * time.Second))
	if len(a.errs) != 1 || !errors.Is(a.errs[0].Errno, syscall.EHOSTUNREACH) || a.errs[0].Dst != silent ||
		binary.BigEndian.Uint16(a.errs[0].Transport) != 5555 || !a.errs[0].Local {
		t.Fatalf("errors %+v", a.errs)
	}
	if a.st.ARP.ResolveFailed != 1 || !a.NextDeadline().IsZero() {
		t.Fatalf("stats %+v deadline %v", a.st.ARP, a.NextDeadline())
	}
}

func TestPendingQueueBounded(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.NeighQueueLen = 4 })
	for range 10 {
		a.Output(t0, udpPacket(10), ProtoUDP, addrA, addrB, true)
	}
	if a.st.ARP.QueueDrops != 6 {
		t.Fatalf("queue drops %d, want 6", a.st.ARP.QueueDrops)
	}
}

func TestNeighCacheBounded(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.NeighCacheSize = 8 })
	for i := range 20 {
		var f [minFrame]byte
		src := netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)})
		EthernetHeader(f[:]).Encode(BroadcastMAC, macB, EtherTypeARP)
		ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, macB, src, MAC{}, addrA)
		a.Input(t0.Add(time.Duration(i)*time.Millisecond), f[:])
	}
	if n := len(a.neigh.m); n != 8 {
		t.Fatalf("cache holds %d entries, bound 8", n)
	}
	if a.st.ARP.CacheEvictions != 12 {
		t.Fatalf("evictions %d", a.st.ARP.CacheEvictions)
	}
}

func TestStaleEntryProbedThenDropped(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.neigh.learn(addrB, macB, t0, true)
	later := t0.Add(31 * time.Second)
	a.Output(later, udpPacket(4), ProtoUDP, addrA, addrB, true)
	out := a.take()
	if len(out) != 1 || EthernetHeader(out[0]).Type() != EtherTypeIPv4 || EthernetHeader(out[0]).Dst() != macB {
		t.Fatalf("want the packet (the entry enters DELAY), got %d frames", len(out))
	}
	// RFC 4861 §7.3.3: the first probe after DELAY_FIRST_PROBE_TIME.
	a.Timer(later.Add(delayFirstProbe - time.Millisecond))
	if len(a.take()) != 0 {
		t.Fatal("probe during DELAY")
	}
	a.Timer(later.Add(delayFirstProbe))
	out = a.take()
	if len(out) != 1 || EthernetHeader(out[0]).Type() != EtherTypeARP || EthernetHeader(out[0]).Dst() != macB {
		t.Fatalf("want a unicast probe, got %d frames", len(out))
	}
	for i := 1; i <= 3; i++ {
		a.Timer(later.Add(delayFirstProbe + time.Duration(i)*time.Second))
	}
	if _, ok := a.Neighbour(addrB); ok {
		t.Fatal("unconfirmed entry kept")
	}
}

func TestRouting(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	err := a.Output(t0, udpPacket(4), ProtoUDP, addrA, netip.MustParseAddr("198.19.0.1"), true)
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("off-link without gateway: %v", err)
	}
	gw := netip.MustParseAddr("198.18.0.254")
	g := newTestHost(t, prefixA, macA, func(c *Config) { c.Gateway = gw })
	if err := g.Output(t0, udpPacket(4), ProtoUDP, addrA, netip.MustParseAddr("198.19.0.1"), true); err != nil {
		t.Fatal(err)
	}
	out := g.take()
	if len(out) != 1 || ARPPacket(out[0][EthernetHeaderLen:]).TargetIP() != gw {
		t.Fatal("did not resolve the gateway")
	}
}

func TestFragmentationRoundTrip(t *testing.T) {
	for _, order := range []string{"forward", "reverse", "duplicates"} {
		t.Run(order, func(t *testing.T) {
			a := newTestHost(t, prefixA, macA, nil)
			b := newTestHost(t, prefixB, macB, nil)
			a.neigh.learn(addrB, macB, t0, true)
			pkt := udpPacket(6000)
			want := bytes.Clone(pkt[Headroom:])
			if err := a.Output(t0, pkt, ProtoUDP, addrA, addrB, false); err != nil {
				t.Fatal(err)
			}
			frags := a.take()
			if len(frags) != 5 {
				t.Fatalf("%d fragments, want 5", len(frags))
			}
			for _, f := range frags {
				if len(f) > EthernetHeaderLen+1500 {
					t.Fatalf("fragment of %d bytes over the MTU", len(f))
				}
			}
			switch order {
			case "reverse":
				for i, j := 0, len(frags)-1; i < j; i, j = i+1, j-1 {
					frags[i], frags[j] = frags[j], frags[i]
				}
			case "duplicates":
				frags = append([][]byte{bytes.Clone(frags[2]), bytes.Clone(frags[0])}, frags...)
			}
			for _, f := range frags {
				b.Input(t0, f)
			}
			if len(b.udp) != 1 || !bytes.Equal(b.udp[0], want) {
				t.Fatalf("reassembled %d datagrams; stats %+v", len(b.udp), b.st.IPv4)
			}
			if m, n := b.ReassemblyMemory(); m != 0 || n != 0 {
				t.Fatalf("memory still held: %d bytes in %d", m, n)
			}
		})
	}
}

func TestDFTooBig(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.neigh.learn(addrB, macB, t0, true)
	if err := a.Output(t0, udpPacket(2000), ProtoUDP, addrA, addrB, true); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("got %v", err)
	}
}

// rawIPv4 builds an Ethernet frame holding an IPv4 packet from B to A.
func rawIPv4(proto uint8, id uint16, fragOff int, mf bool, payload []byte) []byte {
	f := make([]byte, Headroom+len(payload))
	EthernetHeader(f).Encode(macA, macB, EtherTypeIPv4)
	encodeIPv4(f[EthernetHeaderLen:], IPv4MinHeaderLen+len(payload), id, false, fragOff, mf, 64, proto, addrB, addrA)
	copy(f[Headroom:], payload)
	return f
}

func TestOverlappingFragmentsDropDatagram(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.Input(t0, rawIPv4(ProtoUDP, 9, 0, true, make([]byte, 16)))
	a.Input(t0, rawIPv4(ProtoUDP, 9, 8, true, make([]byte, 16))) // overlaps 8..16
	a.Input(t0, rawIPv4(ProtoUDP, 9, 24, false, make([]byte, 8)))
	if len(a.udp) != 0 || a.st.IPv4.FragDropOverlap != 1 {
		t.Fatalf("delivered %d; stats %+v", len(a.udp), a.st.IPv4)
	}
}

func TestReassemblyTimeoutAndMemoryCap(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.ReassemblyMemory = 64 << 10 })
	for id := range uint16(500) {
		a.Input(t0, rawIPv4(ProtoUDP, id, 0, true, make([]byte, 1024)))
		if m, _ := a.ReassemblyMemory(); m > 64<<10 {
			t.Fatalf("memory %d over the cap", m)
		}
	}
	if a.st.IPv4.FragDropMemory == 0 {
		t.Fatal("flood past the cap not counted")
	}
	a.Timer(t0.Add(31 * time.Second))
	if m, n := a.ReassemblyMemory(); m != 0 || n != 0 || a.st.IPv4.FragDropTimeout == 0 {
		t.Fatalf("after timeout: %d bytes in %d; stats %+v", m, n, a.st.IPv4)
	}
}

func TestMalformedCounted(t *testing.T) {
	good := rawIPv4(ProtoUDP, 1, 0, false, make([]byte, 8))
	cases := []struct {
		name    string
		mangle  func([]byte) []byte
		counter func(*stats.Stats) uint64
	}{
		{"short frame", func(f []byte) []byte { return f[:10] }, func(s *stats.Stats) uint64 { return s.Ethernet.DropTruncated }},
		{"truncated ip", func(f []byte) []byte { return f[:EthernetHeaderLen+12] }, func(s *stats.Stats) uint64 { return s.IPv4.DropTruncated }},
		{"version 5", func(f []byte) []byte { f[14] = 0x55; return f }, func(s *stats.Stats) uint64 { return s.IPv4.DropBadVersion }},
		{"ihl 4", func(f []byte) []byte { f[14] = 0x44; return f }, func(s *stats.Stats) uint64 { return s.IPv4.DropBadIHL }},
		{"ihl past buffer", func(f []byte) []byte { f[14] = 0x4f; return f }, func(s *stats.Stats) uint64 { return s.IPv4.DropTruncated }},
		{"total below ihl", func(f []byte) []byte { f[16], f[17] = 0, 10; return f }, func(s *stats.Stats) uint64 { return s.IPv4.DropBadLength }},
		{"total past buffer", func(f []byte) []byte { f[16], f[17] = 0x10, 0; return f }, func(s *stats.Stats) uint64 { return s.IPv4.DropTruncated }},
		{"bad checksum", func(f []byte) []byte { f[24] ^= 0xff; return f }, func(s *stats.Stats) uint64 { return s.IPv4.DropBadChecksum }},
		{"not for us", func(f []byte) []byte { f[0] = 0x04; return f }, func(s *stats.Stats) uint64 { return s.Ethernet.DropNotForUs }},
		{"multicast", func(f []byte) []byte { f[0] = 0x33; return f }, func(s *stats.Stats) uint64 { return s.Ethernet.DropMulticast }},
		{"ipv6", func(f []byte) []byte { f[12], f[13] = 0x86, 0xdd; return f }, func(s *stats.Stats) uint64 { return s.IPv6.DropTruncated }}, // a 28-byte IPv4 packet behind the IPv6 type
		{"unknown ethertype", func(f []byte) []byte { f[12], f[13] = 0x88, 0xb5; return f }, func(s *stats.Stats) uint64 { return s.Ethernet.DropUnknownType }},
		{"bad arp", func(f []byte) []byte { f[12], f[13] = 0x08, 0x06; return f[:30] }, func(s *stats.Stats) uint64 { return s.ARP.DropMalformed }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newTestHost(t, prefixA, macA, nil)
			a.Input(t0, c.mangle(bytes.Clone(good)))
			if got := c.counter(&a.st); got != 1 {
				t.Fatalf("counter %d, want 1; stats %+v", got, a.st)
			}
			if len(a.udp) != 0 || len(a.take()) != 0 {
				t.Fatal("malformed frame was delivered or answered")
			}
		})
	}
}

func TestProtocolUnreachable(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.neigh.learn(addrB, macB, t0, true)
	a.Input(t0, rawIPv4(132, 1, 0, false, make([]byte, 12))) // SCTP
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	_, pkt, err := ParseIPv4(out[0][EthernetHeaderLen:])
	if err != nil {
		t.Fatal(err)
	}
	m := ICMPHeader(pkt[IPv4MinHeaderLen:])
	if m.Type() != ICMPDestUnreach || m.Code() != CodeProtoUnreach || checksum.Checksum(m, 0) != 0 {
		t.Fatalf("got type %d code %d", m.Type(), m.Code())
	}
}

func TestPortUnreachableRateLimited(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.ICMPBurst = 5; c.ICMPRateLimit = 10 })
	a.neigh.learn(addrB, macB, t0, true)
	a.noPort = true
	for range 20 {
		a.Input(t0, rawIPv4(ProtoUDP, 1, 0, false, make([]byte, 8)))
	}
	if n := len(a.take()); n != 5 || a.st.ICMP.RateLimited != 15 {
		t.Fatalf("sent %d, limited %d", n, a.st.ICMP.RateLimited)
	}
	a.Input(t0.Add(100*time.Millisecond), rawIPv4(ProtoUDP, 1, 0, false, make([]byte, 8)))
	if n := len(a.take()); n != 1 {
		t.Fatalf("bucket did not refill: %d", n)
	}
}

func TestICMPErrorDelivered(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	b := newTestHost(t, prefixB, macB, nil)
	a.neigh.learn(addrB, macB, t0, true)
	b.neigh.learn(addrA, macA, t0, true)
	b.noPort = true
	pkt := udpPacket(4)
	binary.BigEndian.PutUint16(pkt[Headroom:], 4242)
	a.Output(t0, pkt, ProtoUDP, addrA, addrB, true)
	exchange(t0, a, b)
	if len(a.errs) != 1 || !errors.Is(a.errs[0].Errno, syscall.ECONNREFUSED) || a.errs[0].Local ||
		binary.BigEndian.Uint16(a.errs[0].Transport) != 4242 || a.errs[0].Proto != ProtoUDP {
		t.Fatalf("errors %+v", a.errs)
	}
}

func TestTUNLinkNoEthernet(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Ethernet = false })
	b := newTestHost(t, prefixB, macB, func(c *Config) { c.Ethernet = false })
	// IP links hand packets without the Ethernet header; Input wants 14
	// bytes of scratch in front.
	shuttle := func(from, to *testHost) int {
		n := 0
		for _, p := range from.take() {
			to.Input(t0, append(make([]byte, EthernetHeaderLen), p...))
			n++
		}
		return n
	}
	a.SendEcho(t0, addrB, 1, 1, []byte("tun"))
	for shuttle(a, b)+shuttle(b, a) > 0 {
	}
	if len(a.echoes) != 1 {
		t.Fatalf("echo over an IP link: %v; stats %+v", a.echoes, b.st)
	}
}

func TestAnnounce(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.Announce()
	out := a.take()
	p := ARPPacket(out[0][EthernetHeaderLen:])
	if len(out) != 1 || !p.Valid() || p.SenderIP() != addrA || p.TargetIP() != addrA || EthernetHeader(out[0]).Dst() != BroadcastMAC {
		t.Fatal("bad gratuitous ARP")
	}
}

func TestEchoToSelf(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.SendEcho(t0, addrA, 3, 9, []byte("me"))
	if len(a.echoes) != 1 || len(a.take()) != 0 {
		t.Fatal("echo to our own address must loop back without the link")
	}
}

// BenchmarkEchoIngress measures frame in → echo reply out.
func BenchmarkEchoIngress(b *testing.B) {
	var st stats.Stats
	h := New(Config{Addr: prefixA, MAC: macA, MTU: 1500, Ethernet: true, Seed: 1},
		func([]byte) error { return nil }, &st, Handlers{}, nil)
	h.neigh.learn(addrB, macB, t0, true)
	req := make([]byte, Headroom+ICMPHeaderLen+56)
	m := req[Headroom:]
	m[0] = ICMPEchoRequest
	binary.BigEndian.PutUint16(m[2:4], checksum.Checksum(m, 0))
	EthernetHeader(req).Encode(macA, macB, EtherTypeIPv4)
	encodeIPv4(req[EthernetHeaderLen:], len(req)-EthernetHeaderLen, 1, false, 0, false, 64, ProtoICMP, addrB, addrA)
	frame := make([]byte, len(req))
	b.ReportAllocs()
	for b.Loop() {
		copy(frame, req) // the reply is built in place
		h.Input(t0, frame)
	}
	if st.ICMP.EchoRepliesOut == 0 {
		b.Fatal("no replies")
	}
}

func TestPromiscuousAcceptsAnyDestination(t *testing.T) {
	other := netip.MustParseAddr("198.19.7.7")
	frame := func() []byte {
		f := make([]byte, Headroom+8)
		EthernetHeader(f).Encode(macA, macB, EtherTypeIPv4)
		encodeIPv4(f[EthernetHeaderLen:], IPv4MinHeaderLen+8, 1, false, 0, false, 64, ProtoUDP, addrB, other)
		return f
	}
	a := newTestHost(t, prefixA, macA, nil)
	a.Input(t0, frame())
	if len(a.udp) != 0 || a.st.IPv4.DropNotForUs != 1 {
		t.Fatal("delivered a packet for another address")
	}
	p := newTestHost(t, prefixA, macA, func(c *Config) { c.Promiscuous = true })
	p.Input(t0, frame())
	if len(p.udp) != 1 {
		t.Fatalf("promiscuous host dropped it: %+v", p.st.IPv4)
	}
}

func TestSendUnreachableFor(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.neigh.learn(addrB, macB, t0, true)
	other := netip.MustParseAddr("198.18.0.9")
	a.SendUnreachableFor(t0, CodePortUnreach, ProtoUDP, addrB, other, []byte{0, 1, 0, 2, 0, 8, 0, 0})
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	h, pkt, err := ParseIPv4(out[0][EthernetHeaderLen:])
	if err != nil || h.Src() != other || h.Dst() != addrB {
		t.Fatalf("%v %v→%v", err, h.Src(), h.Dst())
	}
	m := ICMPHeader(pkt[IPv4MinHeaderLen:])
	inner := IPv4Header(m[ICMPHeaderLen:])
	if m.Type() != ICMPDestUnreach || m.Code() != CodePortUnreach || inner.Src() != addrB || inner.Dst() != other {
		t.Fatal("bad quote")
	}
}

// TestNeighFloodKeepsWorkingEntries: resolutions for many silent on-link
// addresses (what SYN-ACKs to spoofed sources cause) never evict an entry
// that works, and take at most half the cache.
func TestNeighFloodKeepsWorkingEntries(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.NeighCacheSize = 16 })
	a.neigh.learn(addrB, macB, t0, true)
	for i := range 1000 {
		dst := netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i%200)})
		a.Output(t0.Add(time.Duration(i)*time.Microsecond), udpPacket(8), ProtoUDP, addrA, dst, true)
	}
	if _, ok := a.Neighbour(addrB); !ok {
		t.Fatal("a working entry was evicted by unresolved ones")
	}
	if a.neigh.incomplete > 8 || len(a.neigh.m) > 16 {
		t.Fatalf("%d incomplete of %d entries", a.neigh.incomplete, len(a.neigh.m))
	}
	a.take()
	a.Output(t0, udpPacket(8), ProtoUDP, addrA, addrB, true)
	if out := a.take(); len(out) != 1 || EthernetHeader(out[0]).Dst() != macB {
		t.Fatal("could not send to the working neighbour during the flood")
	}
}
