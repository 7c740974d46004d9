package netstack

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestKernelIPv6BulkImpaired: data each way over IPv6 with SHA-256 against
// the kernel on a plain TAP, with the impairment wrapper dropping and
// reordering 2 % of frames each way (neighbor discovery and duplicate
// address detection included); both directions arrive intact.
func TestKernelIPv6BulkImpaired(t *testing.T) {
	checkGoroutines(t)
	var imp *link.Impair
	p := newKernelPeer6On(t, Config{}, func(p *kernelPeer6, cfg *Config) {
		imp = link.NewImpair(p.ns.Dev, link.ImpairConfig{
			Seed:    11,
			Egress:  link.Impairment{Drop: 0.02, Reorder: 0.02},
			Ingress: link.Impairment{Drop: 0.02, Reorder: 0.02},
		})
		cfg.Link = imp
	}, netnstest.Plain())
	c, k := kernelPair6(t, p.ns, p.s, p.kernel, 9030)
	start := time.Now()
	exchange(t, c, k, bulkSize())
	eg, in := imp.Stats()
	t.Logf("%d MiB each way over IPv6 in %v; dropped %d+%d, reordered %d+%d; retransmits %d", bulkSize()>>20,
		time.Since(start), eg.Dropped, in.Dropped, eg.Reordered, in.Reordered, p.s.Stats().TCP.Retransmits)
	if eg.Dropped == 0 || in.Dropped == 0 || eg.Reordered == 0 || in.Reordered == 0 {
		t.Fatal("the impairment did nothing")
	}
	if st := p.s.Stats(); st.TCP.Retransmits < eg.Dropped/4 { // some drops were ACKs
		t.Fatalf("Stats().TCP.Retransmits = %d after %d of our frames were dropped", st.TCP.Retransmits, eg.Dropped)
	}
}

// TestKernelIPv6PathMTU: the kernel routes, through a hop of MTU 1280, to
// a peer namespace; its forwarding path answers our 1500-byte segments
// with real Packet Too Big messages (RFC 8201), which the stack checks
// against the connection they quote, and its MSS falls to what the path
// carries (1280 − 60, less 12 of timestamps) while data each way arrives
// intact.
func TestKernelIPv6PathMTU(t *testing.T) {
	checkGoroutines(t)
	var peer *netnstest.NS
	var peerAddr netip.Addr
	p := newKernelPeer6On(t, Config{}, func(p *kernelPeer6, cfg *Config) {
		peer, peerAddr = p.ns.Behind6(1280, netip.PrefixFrom(p.self, 64))
		cfg.Gateways = []netip.Addr{p.kernel}
	})
	c, k := kernelPair6(t, peer, p.s, peerAddr, 9340)
	exchange(t, c, k, bulkSize()/16)
	info := c.(*TCPConn).Info()
	st := p.s.Stats()
	t.Logf("path MTU %d, MSS %d; Packet Too Big %d; frag-needed checks: accepted %d, rejected %d",
		info.PMTU, info.SndMSS, st.ICMPv6.PacketTooBigIn, st.TCP.FragNeededAccepted, st.TCP.FragNeededRejected)
	if info.PMTU != 1280 || info.SndMSS != 1280-60-12 {
		t.Fatalf("path MTU %d, MSS %d; want 1280 and 1208", info.PMTU, info.SndMSS)
	}
	if st.ICMPv6.PacketTooBigIn == 0 || st.TCP.FragNeededAccepted == 0 {
		t.Fatalf("no Packet Too Big accepted: ICMPv6 %+v, TCP %+v", st.ICMPv6, st.TCP)
	}
}

// kernelPair6 is a TCP connection over IPv6 from s to a listener in ns at
// addr.
func kernelPair6(t *testing.T, ns *netnstest.NS, s *Stack, addr netip.Addr, port int) (stackSide, kernelSide net.Conn) {
	t.Helper()
	return dialPair(t, kernelListen6(t, ns, port), s, netip.AddrPortFrom(addr, uint16(port)))
}

// TestKernelIPv6HappyEyeballs: a DNS server in the namespace gives a name
// an AAAA record nobody answers for (an address on the link's prefix whose
// neighbor solicitations go unanswered) and an A record where the kernel
// listens, both of global scope. The stack's Dialer, resolving through that server, connects
// over IPv4 once FallbackDelay has passed (RFC 8305); with the AAAA
// record the kernel's own, over IPv6.
func TestKernelIPv6HappyEyeballs(t *testing.T) {
	checkGoroutines(t)
	// Global-scope addresses (2001:db8::/32): RFC 6724's default policy
	// puts IPv4 before ULAs (fd00::/8), so with those IPv4 would go first.
	var live, self, dead netip.Addr
	p := newKernelPeer6On(t, Config{}, func(p *kernelPeer6, cfg *Config) {
		n := p.ns.KernelAddr.As4()[2]
		live = netip.MustParseAddr(fmt.Sprintf("2001:db8:%x::1", n))
		self, dead = live.Next(), live.Next().Next().Next() // ::2 is ours, ::4 is on-link and nobody's
		if out, err := runIn(t, p.ns, 10*time.Second, "ip", "-6", "addr", "add", netip.PrefixFrom(live, 64).String(),
			"dev", p.ns.DevName, "nodad"); err != nil {
			t.Fatalf("ip -6 addr add: %v\n%s", err, out)
		}
		cfg.Addrs = append(cfg.Addrs, netip.PrefixFrom(self, 64))
		cfg.DNS = []netip.AddrPort{netip.AddrPortFrom(p.kernel, 53)}
	})
	waitAddr(t, p.s, self)
	v4 := p.ns.KernelAddr
	kernelDNS(t, p.ns, netip.AddrPortFrom(p.kernel, 53), answerHE(func(name string) netip.Addr {
		if name == "live.test." {
			return live
		}
		return dead
	}, v4))
	ln := kernelListen6(t, p.ns, 8443) // [::]: both families
	go closeAccepted(ln)
	d := Dialer{Stack: p.s, FallbackDelay: 300 * time.Millisecond}
	start := time.Now()
	c, err := d.Dial("tcp", "dead.test:8443")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	c.Close()
	t.Logf("connected to %v after %v (FallbackDelay %v)", c.RemoteAddr(), took, d.FallbackDelay)
	if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort(); ra != netip.AddrPortFrom(v4, 8443) {
		t.Fatalf("connected to %v, want the A record's %v", ra, v4)
	}
	if took < d.FallbackDelay {
		t.Fatalf("connected after %v, before the fallback delay of %v", took, d.FallbackDelay)
	}
	c, err = d.Dial("tcp", "live.test:8443")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort(); ra != netip.AddrPortFrom(live, 8443) {
		t.Fatalf("connected to %v, want the AAAA record's %v", ra, live)
	}
}
