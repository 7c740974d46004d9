package netstack

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
)

// narrowPath is a stack on a TAP whose kernel side routes, through a
// 1000-byte hop, to a peer namespace; c and k are the two ends of a TCP
// connection from the stack to the peer, through the router.
func narrowPath(t testing.TB, port int, opts ...netnstest.Option) (ns *netnstest.NS, s *Stack, c, k net.Conn) {
	t.Helper()
	netnstest.Require(t)
	ns = netnstest.New(t, opts...)
	peer, peerAddr := ns.Behind(1000)
	s, err := New(Config{Link: ns.Dev, Addr: ns.StackPrefix, Gateway: ns.KernelAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var ln net.Listener
	if err := peer.Run(func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c, err = s.Dial("tcp", netip.AddrPortFrom(peerAddr, uint16(port)).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if k = <-acc; k == nil {
		t.Fatal("the peer accepted nothing")
	}
	t.Cleanup(func() { k.Close() })
	return ns, s, c, k
}

// TestKernelPathMTU: through a router whose next hop has MTU 1000, the
// kernel's forwarding path answers our 1500-byte segments with
// fragmentation-needed; the stack validates them against the connection,
// lowers its MSS to what the path carries (1000 − 40, less 12 of
// timestamps) and 64 MiB each way arrive intact.
func TestKernelPathMTU(t *testing.T) {
	checkGoroutines(t)
	_, s, c, k := narrowPath(t, 9300)
	exchange(t, c, k, bulkSize()/16)
	info := c.(*TCPConn).Info()
	st := s.Stats().TCP
	t.Logf("path MTU %d, MSS %d; frag-needed %d, accepted %d, rejected %d", info.PMTU, info.SndMSS, st.FragNeeded, st.FragNeededAccepted, st.FragNeededRejected)
	if info.PMTU != 1000 || info.SndMSS != 1000-40-12 {
		t.Fatalf("path MTU %d, MSS %d; want 1000 and 948", info.PMTU, info.SndMSS)
	}
	if st.FragNeededAccepted == 0 {
		t.Fatalf("no fragmentation-needed accepted: %+v", st)
	}
}

// TestKernelPathMTUBlackHole: the router's fragmentation-needed messages
// are dropped by nftables (an ICMP black hole); packetization-layer PMTUD
// (RFC 4821, as Linux's tcp_mtu_probing=1) finds a size that passes, and
// 16 MiB from the stack arrive intact.
func TestKernelPathMTUBlackHole(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "nft")
	ns, s, c, k := narrowPath(t, 9310)
	for _, args := range [][]string{
		{"add", "table", "inet", "nsthole"},
		{"add", "chain", "inet", "nsthole", "out", "{ type filter hook output priority 0 ; }"},
		{"add", "rule", "inet", "nsthole", "out", "icmp", "type", "destination-unreachable", "icmp", "code", "frag-needed", "counter", "drop"},
	} {
		if out, err := runIn(t, ns, 10*time.Second, "nft", args...); err != nil {
			t.Fatalf("nft %v: %v %s", args, err, out)
		}
	}
	const size = 16 << 20
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, size))
		if err == nil {
			err = c.(*TCPConn).CloseWrite()
		}
		done <- err
	}()
	k.SetDeadline(time.Now().Add(5 * time.Minute)) // a bound against a hang
	n, err := readAll(k)
	if err != nil || n != size {
		t.Fatalf("the peer read %d of %d bytes: %v", n, size, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out, _ := runIn(t, ns, 10*time.Second, "nft", "list", "table", "inet", "nsthole")
	st := s.Stats().TCP
	info := c.(*TCPConn).Info()
	t.Logf("MSS %d; fallbacks %d, probes %d\n%s", info.SndMSS, st.PLPMTUDFallbacks, st.PLPMTUDProbes, out)
	if st.FragNeeded != 0 || st.PLPMTUDFallbacks == 0 || info.SndMSS > 1000-40 {
		t.Fatalf("frag-needed %d reached the stack, fallbacks %d, MSS %d", st.FragNeeded, st.PLPMTUDFallbacks, info.SndMSS)
	}
}

// readAll reads c to EOF and returns how many bytes it read.
func readAll(c net.Conn) (int, error) {
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := c.Read(buf)
		total += n
		if err != nil {
			if err.Error() == "EOF" {
				return total, nil
			}
			return total, err
		}
	}
}

// TestKernelPathMTUSpoofed: a forged fragmentation-needed (MTU 68, for a
// sequence number outside the connection's window), sent during a
// transfer, is rejected (RFC 5927) and counted; the MSS stays.
func TestKernelPathMTUSpoofed(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	c, k := kernelPair(t, ns, s, 9320)
	local, remote := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
	before := c.(*TCPConn).Info()
	raw := newRawSender(t, ns)
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		// Forge while data flows: far outside SND.UNA..SND.NXT.
		waitFor(t, "data in flight", func() bool {
			una, nxt, _, ok := s.e.ConnSeqs(local, remote)
			return ok && nxt != una
		})
		_, nxt, _, _ := s.e.ConnSeqs(local, remote)
		if err := raw.sendFragNeeded(local, remote, nxt.Add(1<<30), 68); err != nil {
			t.Error(err)
			return
		}
		waitFor(t, "the forged message", func() bool { return s.Stats().TCP.FragNeededRejected > 0 })
	}()
	exchangeUntil(t, c, k, math.MaxInt64, stop)
	after := c.(*TCPConn).Info()
	if after.SndMSS != before.SndMSS || after.PMTU != before.PMTU || s.Stats().TCP.FragNeededAccepted != 0 {
		t.Fatalf("MSS %d → %d, path MTU %d → %d after a forged message", before.SndMSS, after.SndMSS, before.PMTU, after.PMTU)
	}
}

// BenchmarkKernelNarrowHop: 64 MiB from the stack to the peer behind a
// router whose next hop has MTU 1000, the stack's own link 1500 (so its
// MSS falls by path MTU discovery), against the same transfer with every
// link at MTU 1000 from the start. The ratio of the two times, in one
// run, is the cost of discovering the path:
//
//	go test -run '^$' -bench NarrowHop -benchtime 3x .
func BenchmarkKernelNarrowHop(b *testing.B) {
	const size = 64 << 20
	run := func(opts ...netnstest.Option) time.Duration {
		_, _, c, k := narrowPath(b, 9330, opts...)
		done := make(chan error, 1)
		go func() {
			_, err := io.Copy(io.Discard, k)
			done <- err
		}()
		start := time.Now()
		if _, err := c.Write(make([]byte, size)); err != nil {
			b.Fatal(err)
		}
		c.(*TCPConn).CloseWrite()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var narrow, uniform time.Duration
	for b.Loop() {
		narrow += run()
		uniform += run(netnstest.MTU(1000))
	}
	b.ReportMetric(narrow.Seconds()/float64(b.N), "s-narrow-hop")
	b.ReportMetric(uniform.Seconds()/float64(b.N), "s-all-1000")
	b.ReportMetric(narrow.Seconds()/uniform.Seconds(), "ratio")
}
