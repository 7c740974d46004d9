package netstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// IPv6 against the Linux kernel over a TAP in a namespace with IPv6 on:
// the kernel at fd00:18:N::1/64, the stack at fd00:18:N::2/64 beside its
// IPv4 address.

// kernelPeer6 is a namespace and a dual-stack stack on its device.
type kernelPeer6 struct {
	ns           *netnstest.NS
	s            *Stack
	kernel, self netip.Addr // fd00:18:N::1 and ::2
}

// newKernelPeer6 makes the namespace, gives the kernel its IPv6 address
// (without duplicate address detection, so it is usable at once) and
// starts a stack with both families; cfg may set DNS.
func newKernelPeer6(t *testing.T, cfg Config, opts ...netnstest.Option) *kernelPeer6 {
	t.Helper()
	return newKernelPeer6On(t, cfg, nil, opts...)
}

// newKernelPeer6On is newKernelPeer6 that, when setup is not nil, calls it
// once the namespace and the kernel's address exist and before the stack
// starts, to change the stack's configuration (its link, its gateways) or
// build more of the network.
func newKernelPeer6On(t *testing.T, cfg Config, setup func(p *kernelPeer6, cfg *Config), opts ...netnstest.Option) *kernelPeer6 {
	t.Helper()
	netnstest.Require(t)
	ns := netnstest.New(t, append(opts, netnstest.IPv6())...)
	n := ns.KernelAddr.As4()[2]
	p := &kernelPeer6{
		ns:     ns,
		kernel: netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::1", n)),
		self:   netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::2", n)),
	}
	if out, err := runIn(t, ns, 10*time.Second, "ip", "-6", "addr", "add", netip.PrefixFrom(p.kernel, 64).String(),
		"dev", ns.DevName, "nodad"); err != nil {
		t.Fatalf("ip -6 addr add: %v\n%s", err, out)
	}
	cfg.Link = ns.Dev
	cfg.Addrs = []netip.Prefix{ns.StackPrefix, netip.PrefixFrom(p.self, 64)}
	if setup != nil {
		setup(p, &cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p.s = s
	waitAddr(t, s, p.self)
	return p
}

// waitAddr waits until duplicate address detection has passed for a and
// the stack uses it (a second or so: one neighbor solicitation).
func waitAddr(t *testing.T, s *Stack, a netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a bound against a hang
	for !slices.ContainsFunc(s.Addrs(), func(p netip.Prefix) bool { return p.Addr() == a }) {
		if time.Now().After(deadline) {
			t.Fatalf("%v never became usable: Addrs %v, duplicates %v", a, s.Addrs(), s.DuplicateAddrs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKernelIPv6Ping: ping -6 from the kernel, small and 6000-byte echoes
// (fragmented each way), the stack's Ping to the kernel, and the
// kernel's neighbor cache holding the stack REACHABLE with its MAC.
func TestKernelIPv6Ping(t *testing.T) {
	checkGoroutines(t)
	p := newKernelPeer6(t, Config{})
	addr := p.self.String()
	if n := pingReplies(t, p.ns, "-6", "-c", "3", "-i", "0.2", "-W", "2", addr); n != 3 {
		t.Fatalf("ping -6 -c 3: %d replies", n)
	}
	if n := pingReplies(t, p.ns, "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "6000", addr); n != 2 {
		t.Fatalf("ping -6 -s 6000: %d replies", n)
	}
	out, err := runIn(t, p.ns, 5*time.Second, "ip", "-6", "neigh", "show", addr)
	if err != nil || !strings.Contains(out, strings.ToLower(p.s.HardwareAddr().String())) || !strings.Contains(out, "REACHABLE") {
		t.Fatalf("ip -6 neigh does not show the stack's MAC %v REACHABLE: %v\n%s", p.s.HardwareAddr(), err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		if _, err := p.s.Ping(ctx, p.kernel); err != nil {
			t.Fatalf("stack pings the kernel: %v", err)
		}
	}
	// A 6000-byte echo from the stack, through an ICMPv6 socket: the
	// stack fragments the request, the kernel the reply.
	pc, err := p.s.ListenPacket("ip6:ipv6-icmp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	data := bytes.Repeat([]byte("0123456789"), 600)
	req, err := (&icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 0x6006, Seq: 1, Data: data}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo(req, &net.IPAddr{IP: p.kernel.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 9000)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for the 6000-byte echo reply: %v", err)
		}
		m, err := icmp.ParseMessage(58, buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv6.ICMPTypeEchoReply && e.ID == 0x6006 {
			if !bytes.Equal(e.Data, data) || from.String() != p.kernel.String() {
				t.Fatalf("reply of %d bytes from %v", len(e.Data), from)
			}
			break
		}
	}
}

// TestKernelIPv6Curl: curl -6 from the kernel to an http.Server on the
// stack's dual-stack listener, and curl -4 to the same listener.
func TestKernelIPv6Curl(t *testing.T) {
	checkGoroutines(t)
	p := newKernelPeer6(t, Config{})
	netnstest.LookPath(t, "curl")
	ln, err := p.s.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	for _, tc := range []struct{ flag, url, from string }{
		{"-6", fmt.Sprintf("http://[%v]:8080/", p.self), "[" + p.kernel.String() + "]:"},
		{"-4", fmt.Sprintf("http://%v:8080/", p.s.Addr()), p.ns.KernelAddr.String() + ":"}, // mapped, printed as IPv4
	} {
		out, err := runIn(t, p.ns, 20*time.Second, "curl", tc.flag, "-g", "-sS", "--max-time", "10", tc.url)
		if err != nil || !strings.HasPrefix(out, "hello "+tc.from) {
			t.Fatalf("curl %s %s: %v: %q", tc.flag, tc.url, err, out)
		}
	}
}

// kernelListen6 listens inside the namespace on [::]:port, both families.
func kernelListen6(t *testing.T, ns *netnstest.NS, port int) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.Run(func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf("[::]:%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestKernelIPv6HTTPClient: an http.Client on the stack fetches from a
// kernel server on [::] over IPv6.
func TestKernelIPv6HTTPClient(t *testing.T) {
	checkGoroutines(t)
	p := newKernelPeer6(t, Config{})
	ln := kernelListen6(t, p.ns, 8081)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kernel says hi to %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: p.s.DialContext}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	for range 3 {
		resp, err := hc.Get(fmt.Sprintf("http://[%v]:8081/", p.kernel))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(body), "kernel says hi to ["+p.self.String()+"]:") {
			t.Fatalf("body %q", body)
		}
	}
}

// TestKernelIPv6Bulk: data each way over IPv6 with SHA-256, over the
// offload device: the stack sends TCPv6 super-segments (GSO_TCPV6) and
// takes coalesced ones.
func TestKernelIPv6Bulk(t *testing.T) {
	checkGoroutines(t)
	p := newKernelPeer6(t, Config{})
	if !p.ns.Dev.Offload() {
		t.Fatal("the kernel refused IFF_VNET_HDR offloads")
	}
	c, k := kernelPair6(t, p.ns, p.s, p.kernel, 9000)
	if info := c.(*TCPConn).Info(); info.SndMSS > p.ns.MTU-60 {
		t.Fatalf("MSS %d over IPv6 on a %d-byte link", info.SndMSS, p.ns.MTU)
	}
	start := time.Now()
	exchange(t, c, k, bulkSize())
	st := p.s.Stats()
	t.Logf("%d MiB each way in %v; %d frames out carried %d segments", bulkSize()>>20, time.Since(start), st.Link.FramesOut, st.TCP.SegmentsOut)
	if st.TCP.SegmentsOut < 2*st.Link.FramesOut {
		t.Fatalf("TSO over IPv6 did not coalesce: %d segments in %d frames", st.TCP.SegmentsOut, st.Link.FramesOut)
	}
}

// TestKernelIPv6DNS: dig AAAA from the kernel against miekg/dns on the
// stack over IPv6, and the stack's Resolver against miekg/dns in the
// namespace over IPv6.
func TestKernelIPv6DNS(t *testing.T) {
	checkGoroutines(t)
	netnstest.Require(t)
	netnstest.LookPath(t, "dig")
	answer := func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Name == "six.test." && q.Question[0].Qtype == dns.TypeAAAA {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: "six.test.", Rrtype: dns.TypeAAAA,
				Class: dns.ClassINET, Ttl: 60}, AAAA: net.ParseIP("2001:db8::66")})
		}
		w.WriteMsg(m)
	}
	serve := func(pc net.PacketConn) {
		srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(answer)}
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	// The kernel-side server needs the namespace first; the stack's DNS
	// setting names it, so the stack comes second.
	ns := netnstest.New(t, netnstest.IPv6())
	n := ns.KernelAddr.As4()[2]
	kernel := netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::1", n))
	self := netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::2", n))
	if out, err := runIn(t, ns, 10*time.Second, "ip", "-6", "addr", "add", netip.PrefixFrom(kernel, 64).String(),
		"dev", ns.DevName, "nodad"); err != nil {
		t.Fatalf("ip -6 addr add: %v\n%s", err, out)
	}
	kernelDNS(t, ns, netip.AddrPortFrom(kernel, 53), answer)
	s, err := New(Config{Link: ns.Dev, Addrs: []netip.Prefix{ns.StackPrefix, netip.PrefixFrom(self, 64)},
		DNS: []netip.AddrPort{netip.AddrPortFrom(kernel, 53)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitAddr(t, s, self)
	spc, err := s.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	serve(spc)

	out, err := runIn(t, ns, 20*time.Second, "dig", "+time=2", "+tries=2", "+short", "@"+self.String(), "six.test", "AAAA")
	if err != nil || strings.TrimSpace(out) != "2001:db8::66" {
		t.Fatalf("dig AAAA @%v: %v %q", self, err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addrs, err := s.Resolver().LookupNetIP(ctx, "ip6", "six.test")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("2001:db8::66") {
		t.Fatalf("the stack's resolver over IPv6: %v %v", addrs, err)
	}
}

// TestKernelIPv6UDP: 16 KiB datagrams each way over IPv6, fragmented.
func TestKernelIPv6UDP(t *testing.T) {
	checkGoroutines(t)
	p := newKernelPeer6(t, Config{})
	var kc *net.UDPConn
	if err := p.ns.Run(func() (err error) {
		kc, err = net.ListenUDP("udp6", &net.UDPAddr{IP: p.kernel.AsSlice(), Port: 7000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	sc, err := p.s.ListenUDP("udp6", ":7001")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	udpBothWays(t, kc, sc, netip.AddrPortFrom(p.kernel, 7000), netip.AddrPortFrom(p.self, 7001))
}

// TestKernelIPv6UDPRefused: an ICMPv6 port unreachable each way fails the
// sender's connected socket with ECONNREFUSED.
func TestKernelIPv6UDPRefused(t *testing.T) {
	checkGoroutines(t)
	p := newKernelPeer6(t, Config{})
	refusedBothWays(t, p.ns, p.s, "udp6", netip.AddrPortFrom(p.self, 9999), netip.AddrPortFrom(p.kernel, 9998))
}

// kernelDNS serves DNS with miekg/dns at addr, over UDP in the namespace,
// answering with answer, until the test ends.
func kernelDNS(t *testing.T, ns *netnstest.NS, addr netip.AddrPort, answer dns.HandlerFunc) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Run(func() (err error) {
		pc, err = net.ListenPacket("udp", addr.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	startDNS(t, pc, answer)
}
