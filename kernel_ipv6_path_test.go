package netstack

import (
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
