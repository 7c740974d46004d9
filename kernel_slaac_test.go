package netstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
	"github.com/miekg/dns"
)

// TestKernelIPv6SLAAC: radvd on the kernel's side of the TAP advertises a
// prefix, itself as default router and an RDNSS server. The stack, given
// only an IPv4 address ("dual") or no address at all ("slaac-only"),
// configures an address in the prefix (SLAAC), learns the DNS server, and
// reaches the kernel's ULA address, which is on none of its prefixes,
// through the default router the advertisement named; the SLAAC-only one
// also serves curl -6 from the kernel on its SLAAC address.
func TestKernelIPv6SLAAC(t *testing.T) {
	checkGoroutines(t)
	netnstest.Require(t)
	t.Run("dual", func(t *testing.T) { testKernelSLAAC(t, true) })
	t.Run("slaac-only", func(t *testing.T) { testKernelSLAAC(t, false) })
}

func testKernelSLAAC(t *testing.T, withIPv4 bool) {
	radvd := netnstest.LookPath(t, "radvd")
	ns := netnstest.New(t, netnstest.IPv6())
	n := ns.KernelAddr.As4()[2]
	prefix := netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/64", n))
	ula := netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::1", n)) // off every prefix we learn
	if out, err := runIn(t, ns, 10*time.Second, "ip", "-6", "addr", "add", ula.String()+"/128", "dev", ns.DevName, "nodad"); err != nil {
		t.Fatalf("ip -6 addr add: %v\n%s", err, out)
	}
	// The router's own address in the prefix gives the kernel its route
	// back to the addresses the stack configures in it.
	if out, err := runIn(t, ns, 10*time.Second, "ip", "-6", "addr", "add", prefix.Addr().Next().String()+"/64", "dev", ns.DevName, "nodad"); err != nil {
		t.Fatalf("ip -6 addr add: %v\n%s", err, out)
	}
	// A router forwards; radvd checks it.
	if out, err := runIn(t, ns, 10*time.Second, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	AdvDefaultLifetime 600;
	prefix %s { AdvOnLink on; AdvAutonomous on; };
	RDNSS %s { };
};
`, ns.DevName, prefix, ula)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := ns.Command(ctx, radvd, "-n", "-C", conf, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr")
	var log safeBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()

	cfg := Config{Link: ns.Dev}
	if withIPv4 {
		cfg.Addrs = []netip.Prefix{ns.StackPrefix}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A resolver taken before any advertisement: its lookups still ask
	// the server the advertisement names later.
	resolver := s.Resolver()

	// The stack solicits at start (RFC 4861 §6.3.7), so the answer comes
	// without waiting for radvd's next periodic advertisement.
	var slaac netip.Addr
	deadline := time.Now().Add(30 * time.Second) // a bound against a hang
	for !slaac.IsValid() {
		for _, p := range s.Addrs() {
			if prefix.Contains(p.Addr()) {
				slaac = p.Addr()
				if p.Bits() != 64 {
					t.Errorf("SLAAC address %v: prefix length %d, want 64", p, p.Bits())
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address in %v after 30 s: Addrs %v; radvd:\n%s", prefix, s.Addrs(), log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Contains(s.e.DNSServers(), ula) {
		t.Errorf("DNS servers %v: want the advertised RDNSS %v", s.e.DNSServers(), ula)
	}
	kernelDNS(t, ns, netip.AddrPortFrom(ula, 53), func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == dns.TypeAAAA {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeAAAA,
				Class: dns.ClassINET, Ttl: 60}, AAAA: net.ParseIP("2001:db8::66")})
		}
		w.WriteMsg(m)
	})
	lctx, lcancel := context.WithTimeout(context.Background(), 20*time.Second)
	got, err := resolver.LookupNetIP(lctx, "ip6", "rdnss.test")
	lcancel()
	if err != nil || !slices.Equal(got, []netip.Addr{netip.MustParseAddr("2001:db8::66")}) {
		t.Errorf("lookup through the advertised server: %v, %v", got, err)
	}

	// The kernel serves HTTP on its ULA address; the stack reaches it
	// through the default router only, from its SLAAC address (the one
	// source of global scope it has, RFC 6724 rule 2).
	ln := kernelListen6(t, ns, 8080)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "from %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{DialContext: s.DialContext}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + net.JoinHostPort(ula.String(), "8080") + "/")
	if err != nil {
		t.Fatalf("GET through the default router: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := "from " + net.JoinHostPort(slaac.String(), ""); len(body) < len(want) || string(body[:len(want)]) != want {
		t.Fatalf("kernel saw %q, want it from the SLAAC address %v", body, slaac)
	}
	if withIPv4 {
		return
	}
	// With no address of its own choosing, the stack's Addr is the one
	// SLAAC gave it, and it serves the kernel there.
	if got := s.Addr(); got != slaac {
		t.Errorf("Addr() = %v, want the SLAAC address %v", got, slaac)
	}
	sln, err := s.Listen("tcp", ":8081")
	if err != nil {
		t.Fatal(err)
	}
	ssrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "stack on SLAAC")
	})}
	go ssrv.Serve(sln)
	defer ssrv.Close()
	out, err := runIn(t, ns, 20*time.Second, "curl", "-6", "-g", "-sS", "--max-time", "10",
		"http://"+net.JoinHostPort(slaac.String(), "8081")+"/")
	if err != nil || string(out) != "stack on SLAAC" {
		t.Fatalf("curl -6 to the SLAAC address: %v: %q", err, out)
	}
}

// safeBuffer is a bytes.Buffer a child process and the test may use at once.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestKernelIPv6DADConflict: an address the kernel already owns is found
// duplicate by the stack's DAD (the kernel answers its solicitation): it
// is reported and never used, while the stack's other addresses work.
func TestKernelIPv6DADConflict(t *testing.T) {
	checkGoroutines(t)
	netnstest.Require(t)
	ns := netnstest.New(t, netnstest.IPv6())
	n := ns.KernelAddr.As4()[2]
	taken := netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::7", n))
	mine := netip.MustParseAddr(fmt.Sprintf("fd00:18:%x::2", n))
	if out, err := runIn(t, ns, 10*time.Second, "ip", "-6", "addr", "add", taken.String()+"/64", "dev", ns.DevName, "nodad"); err != nil {
		t.Fatalf("ip -6 addr add: %v\n%s", err, out)
	}
	kernelIPv6Ready(t, ns)
	s, err := New(Config{Link: ns.Dev, Addrs: []netip.Prefix{ns.StackPrefix,
		netip.PrefixFrom(taken, 64), netip.PrefixFrom(mine, 64)}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	waitAddr(t, s, mine)
	deadline := time.Now().Add(20 * time.Second) // a bound against a hang
	for !slices.Contains(s.DuplicateAddrs(), taken) {
		if time.Now().After(deadline) {
			t.Fatalf("%v never reported duplicate: DuplicateAddrs %v, Addrs %v; NDP %+v", taken, s.DuplicateAddrs(), s.Addrs(), s.Stats().NDP)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if slices.ContainsFunc(s.Addrs(), func(p netip.Prefix) bool { return p.Addr() == taken }) {
		t.Fatalf("the duplicate %v is in Addrs %v", taken, s.Addrs())
	}
	// The stack's other IPv6 address is in use: it answers the kernel.
	if got := pingReplies(t, ns, "-6", "-c", "2", "-W", "5", mine.String()); got != 2 {
		t.Fatalf("ping -6 %v: %d of 2 replies", mine, got)
	}
}

// kernelIPv6Ready waits until the kernel's IPv6 on ns's device is up: its
// link-local address has passed DAD, so the kernel has seen the link come
// up (which it learns asynchronously, by linkwatch) and joined the
// solicited-node groups of its addresses. Before that it answers no
// neighbor solicitation, so a stack's DAD would find nothing.
func kernelIPv6Ready(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a bound against a hang
	for {
		out, err := runIn(t, ns, 10*time.Second, "ip", "-6", "-o", "addr", "show", "dev", ns.DevName, "scope", "link")
		if err == nil && strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kernel's IPv6 on %s never came up: %v\n%s", ns.DevName, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
