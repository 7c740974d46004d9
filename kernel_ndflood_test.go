package netstack

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// frameSender writes whole Ethernet frames on the kernel's end of a TAP
// through a packet socket, as another host on the link would send them.
type frameSender struct {
	fd   int
	sa   *syscall.SockaddrLinklayer
	s    *Stack
	out  int    // frames sent
	base uint64 // the stack's Link.FramesIn at the start
}

func newFrameSender(t *testing.T, ns *netnstest.NS, s *Stack) *frameSender {
	t.Helper()
	var fd, ifindex int
	if err := ns.Run(func() error {
		ifi, err := net.InterfaceByName(ns.DevName)
		if err != nil {
			return err
		}
		ifindex = ifi.Index
		fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return &frameSender{fd: fd, sa: &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifindex}, s: s, base: s.Stats().Link.FramesIn}
}

// send writes f, waiting while the TAP's queue is full, and paces the
// sender by what the stack has read so that the queue never overflows
// and drops the real traffic beside the flood.
func (fs *frameSender) send(t *testing.T, f []byte) {
	t.Helper()
	for {
		err := syscall.Sendto(fs.fd, f, 0, fs.sa)
		if err == nil {
			break
		}
		if err != syscall.ENOBUFS && err != syscall.EAGAIN {
			t.Fatalf("sendto: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	fs.out++
	if fs.out%50 == 0 {
		limit := time.Now().Add(2 * time.Second)
		for fs.s.Stats().Link.FramesIn+200 < fs.base+uint64(fs.out) && time.Now().Before(limit) {
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// ipv6Frame returns an Ethernet frame from srcMAC to dstMAC holding an
// IPv6 packet with hop limit hop and the given payload; for ICMPv6 (next
// header 58) it fills in the checksum.
func ipv6Frame(dstMAC, srcMAC net.HardwareAddr, src, dst netip.Addr, hop, next uint8, payload []byte) []byte {
	f := make([]byte, 14+40+len(payload))
	copy(f[0:6], dstMAC)
	copy(f[6:12], srcMAC)
	f[12], f[13] = 0x86, 0xdd
	h := f[14:54]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, hop
	s16, d16 := src.As16(), dst.As16()
	copy(h[8:24], s16[:])
	copy(h[24:40], d16[:])
	copy(f[54:], payload)
	if next == 58 {
		m := f[54:]
		binary.BigEndian.PutUint16(m[2:], checksum.Checksum(m, checksum.Pseudo(src, dst, 58, len(m))))
	}
	return f
}

// multicastMAC is the Ethernet address of IPv6 multicast group g.
func multicastMAC(g netip.Addr) net.HardwareAddr {
	b := g.As16()
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// TestKernelIPv6NDFlood: from the kernel's end of the TAP come floods an
// on-link attacker can send: router advertisements from 2,000 routers,
// each with a prefix of its own to configure and a DNS server; neighbor
// solicitations from 20,000 sources; first fragments of 20,000 datagrams
// that never complete. What the stack learns stays within Config.Limits,
// each refusal is counted, the live heap grows by little, and a connection with
// the kernel made before the floods works after them, as does a new one.
func TestKernelIPv6NDFlood(t *testing.T) {
	checkGoroutines(t)
	lim := Limits{NeighborCache: 64, ReassemblyMemory: 1 << 20, Routers: 4, RDNSSServers: 2, Prefixes: 8}
	p := newKernelPeer6(t, Config{Limits: lim})
	s, ns := p.s, p.ns
	c, k := kernelPair6(t, ns, s, p.kernel, 8080)
	fs := newFrameSender(t, ns, s)
	mac := s.HardwareAddr()
	self16 := p.self.As16()
	r := rand.New(rand.NewPCG(61, 62))
	randMAC := func() net.HardwareAddr {
		return net.HardwareAddr{0x02, byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}
	}
	// What the stack keeps after the floods: the live heap's growth, once
	// the garbage is collected, bounded by what Limits allow (64 neighbour
	// entries, 1 MiB of fragments, a few routers and prefixes) with room to
	// spare for the runtime.
	const heapBound = 16 << 20
	live := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	heap0 := live()
	before := s.Stats()

	// Router advertisements: router lifetime 1800 s, a source link-layer
	// address, a /64 prefix with the on-link and autonomous flags, and an
	// RDNSS option.
	allNodes := netip.MustParseAddr("ff02::1")
	for i := range 2000 {
		rmac := randMAC()
		src := netip.AddrFrom16([16]byte{0xfe, 0x80, 8: 0x02, 9: byte(i >> 8), 10: byte(i), 15: 1})
		m := make([]byte, 16, 16+8+32+24)
		m[0] = 134
		binary.BigEndian.PutUint16(m[6:], 1800)
		m = append(m, 1, 1)
		m = append(m, rmac...)
		pfx := make([]byte, 32)
		pfx[0], pfx[1], pfx[2], pfx[3] = 3, 4, 64, 0xc0
		binary.BigEndian.PutUint32(pfx[4:], 7200)
		binary.BigEndian.PutUint32(pfx[8:], 3600)
		copy(pfx[16:], []byte{0x20, 0x01, 0x0d, 0xb8, 0x40 | byte(i>>8), byte(i)})
		m = append(m, pfx...)
		rdnss := make([]byte, 24)
		rdnss[0], rdnss[1] = 25, 3
		binary.BigEndian.PutUint32(rdnss[4:], 3600)
		copy(rdnss[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 0x40 | byte(i>>8), byte(i)})
		rdnss[23] = 0x53
		m = append(m, rdnss...)
		fs.send(t, ipv6Frame(multicastMAC(allNodes), rmac, src, allNodes, 255, 58, m))
	}
	// Neighbor solicitations for our address from on-link sources, each
	// with its link-layer address: each asks for a cache entry.
	solicited := netip.AddrFrom16([16]byte{0xff, 0x02, 11: 1, 12: 0xff, 13: self16[13], 14: self16[14], 15: self16[15]})
	for i := range 20000 {
		smac := randMAC()
		src := p.kernel.As16()
		src[12], src[13], src[14], src[15] = 0x10, byte(i>>16), byte(i>>8), byte(i)
		m := make([]byte, 24, 32)
		m[0] = 135
		copy(m[8:], self16[:])
		m = append(m, 1, 1)
		m = append(m, smac...)
		fs.send(t, ipv6Frame(multicastMAC(solicited), smac, netip.AddrFrom16(src), solicited, 255, 58, m))
	}
	// First fragments (offset 0, more to come) of UDP datagrams that
	// never complete, 1,000 bytes each: 20 MB in all against a 1 MiB cap.
	for i := range 20000 {
		fr := make([]byte, 8+1000)
		fr[0] = 17
		fr[3] = 1 // offset 0, M set
		binary.BigEndian.PutUint32(fr[4:], uint32(i+1))
		fs.send(t, ipv6Frame(mac, randMAC(), p.kernel, p.self, 64, 44, fr))
	}
	// The connection made before works after the floods.
	exchange(t, c, k, 1<<20)
	heap1 := live()
	grown := max(int64(heap1)-int64(heap0), 0)

	st := s.Stats()
	t.Logf("sent %d frames; RAs in %d, NS in %d, fragments in %d; live heap grew by %d KiB", fs.out,
		st.NDP.RAIn-before.NDP.RAIn, st.NDP.NSIn-before.NDP.NSIn, st.IPv6.FragmentsIn-before.IPv6.FragmentsIn, grown>>10)
	t.Logf("refused: %d routers, %d prefixes or addresses, %d DNS servers; %d neighbour evictions; %d fragments at the memory cap",
		st.NDP.RouterLimit, st.NDP.PrefixLimit, st.NDP.RDNSSLimit, st.ARP.CacheEvictions-before.ARP.CacheEvictions,
		st.IPv6.FragDropMemory-before.IPv6.FragDropMemory)
	if got := st.NDP.RAIn - before.NDP.RAIn; got < 2000 {
		t.Errorf("RAs received %d, want the 2000 sent", got)
	}
	if got := st.NDP.NSIn - before.NDP.NSIn; got < 20000 {
		t.Errorf("NS received %d, want the 20000 sent", got)
	}
	if got := st.IPv6.FragmentsIn - before.IPv6.FragmentsIn; got < 20000 {
		t.Errorf("fragments received %d, want the 20000 sent", got)
	}
	if n := len(s.e.Routers()); n > lim.Routers {
		t.Errorf("%d routers, want at most %d", n, lim.Routers)
	}
	if n := len(s.e.DNSServers()); n > lim.RDNSSServers {
		t.Errorf("%d DNS servers, want at most %d", n, lim.RDNSSServers)
	}
	// The static IPv4 and IPv6 addresses, the link-local one, and at most
	// Prefixes from SLAAC.
	if n := len(s.Addrs()); n > 3+lim.Prefixes || n < 3 {
		t.Errorf("%d addresses %v, want 3 to %d", n, s.Addrs(), 3+lim.Prefixes)
	}
	if st.NDP.RouterLimit == 0 || st.NDP.PrefixLimit == 0 || st.NDP.RDNSSLimit == 0 {
		t.Errorf("limits reached uncounted: %+v", st.NDP)
	}
	if st.ARP.CacheEvictions == before.ARP.CacheEvictions {
		t.Errorf("20000 solicitors and a 64-entry cache, but no eviction counted: %+v", st.ARP)
	}
	if st.IPv6.FragDropMemory == before.IPv6.FragDropMemory {
		t.Errorf("20 MB of fragments against a 1 MiB cap, but no drop counted: %+v", st.IPv6)
	}
	if grown > heapBound {
		t.Errorf("the live heap grew by %d MiB over the floods, want at most %d", grown>>20, heapBound>>20)
	}
	// A new connection works too.
	c2, k2 := kernelPair6(t, ns, s, p.kernel, 8081)
	exchange(t, c2, k2, 1<<20)
}
