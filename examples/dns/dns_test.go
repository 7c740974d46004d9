package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/internal/leaktest"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// checkGoroutines fails the test if goroutines it started outlive it.
func checkGoroutines(t *testing.T) { leaktest.Check(t) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startServing runs the zone's servers on s and stops them in cleanup.
func startServing(t *testing.T, s *netstack.Stack, z *zone) {
	t.Helper()
	stop, err := serve(s, z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping DNS servers: %v", err)
		}
	})
}

func newStack(t *testing.T, cfg netstack.Config) *netstack.Stack {
	t.Helper()
	s, err := netstack.New(cfg)
	if err != nil {
		cfg.Link.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wantA checks that m answers with exactly the A record a.
func wantA(t *testing.T, what string, m *dns.Msg, a netip.Addr) {
	t.Helper()
	if m.Rcode != dns.RcodeSuccess || m.Truncated || len(m.Answer) != 1 {
		t.Fatalf("%s: got %v", what, m)
	}
	rr, ok := m.Answer[0].(*dns.A)
	if !ok || rr.A.String() != a.String() {
		t.Fatalf("%s: answer %v, want A %v", what, m.Answer[0], a)
	}
}

// TestDemo runs the no-flag path of the program and checks what it prints.
func TestDemo(t *testing.T) {
	checkGoroutines(t)
	var out bytes.Buffer
	if err := demo(testContext(t), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"over udp: name.test. A: NOERROR [198.18.0.53]",
		"over tcp: name.test. A: NOERROR [198.18.0.53]",
		"over udp: big.name.test. TXT: NOERROR [] truncated",
		"over tcp: big.name.test. TXT: NOERROR [TXT of 2000 bytes]",
		"LookupHost(name.test): [198.18.0.53]",
		"LookupTXT(big.name.test): 1 record(s) of [2000] bytes, 1 TCP query(ies)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}

// TestInMemory checks the answers themselves over a Pipe: miekg/dns
// client to miekg/dns server, both on netstack, and Go's resolver through
// the stack, whose big TXT lookup must go over TCP after truncation.
func TestInMemory(t *testing.T) {
	checkGoroutines(t)
	ctx := testContext(t)
	la, lb := netstack.Pipe()
	server := newStack(t, netstack.Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	srvAddr := netip.AddrPortFrom(server.Addr(), 53)
	client := newStack(t, netstack.Config{
		Link: lb,
		Addr: netip.MustParsePrefix("198.18.0.2/24"),
		DNS:  []netip.AddrPort{srvAddr},
	})
	z := newZone()
	startServing(t, server, z)

	for _, network := range []string{"udp", "tcp"} {
		m, _, err := exchange(ctx, client, network, srvAddr.String(), "name.test", dns.TypeA)
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		wantA(t, network+" A name.test", m, nameAddr)

		m, _, err = exchange(ctx, client, network, srvAddr.String(), "nothere.name.test", dns.TypeA)
		if err != nil || m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
			t.Fatalf("%s A nothere.name.test: %v, %v; want NXDOMAIN with SOA", network, m, err)
		}
	}
	if z.udp.Load() != 2 || z.tcp.Load() != 2 {
		t.Errorf("server counted %d UDP and %d TCP queries, want 2 and 2", z.udp.Load(), z.tcp.Load())
	}

	want := strings.Join(bigTXT(), "")
	m, _, err := exchange(ctx, client, "udp", srvAddr.String(), bigName, dns.TypeTXT)
	if err != nil || !m.Truncated || len(m.Answer) != 0 {
		t.Fatalf("UDP TXT big.name.test: %v, %v; want truncated, no answer", m, err)
	}
	m, _, err = exchange(ctx, client, "tcp", srvAddr.String(), bigName, dns.TypeTXT)
	if err != nil || m.Truncated || len(m.Answer) != 1 {
		t.Fatalf("TCP TXT big.name.test: %v, %v", m, err)
	}
	if got := strings.Join(m.Answer[0].(*dns.TXT).Txt, ""); got != want {
		t.Fatalf("TCP TXT big.name.test = %q, want %q", got, want)
	}

	r := client.Resolver()
	addrs, err := r.LookupHost(ctx, "name.test")
	if err != nil || !slices.Equal(addrs, []string{nameAddr.String()}) {
		t.Fatalf("LookupHost(name.test) = %v, %v; want [%v]", addrs, err, nameAddr)
	}
	tcpBefore := z.tcp.Load()
	txt, err := r.LookupTXT(ctx, "big.name.test")
	if err != nil || len(txt) != 1 || txt[0] != want {
		t.Fatalf("LookupTXT(big.name.test) = %d records, %v", len(txt), err)
	}
	if z.tcp.Load() == tcpBefore {
		t.Fatal("LookupTXT(big.name.test) succeeded without a TCP query")
	}
	_, err = r.LookupHost(ctx, "nothere.name.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("LookupHost(nothere.name.test): %v, want not found", err)
	}
}

// dig runs dig(1) in the namespace and returns its output.
func dig(t *testing.T, ns *netnstest.NS, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args = append([]string{"+time=2", "+tries=2"}, args...)
	out, err := ns.Command(ctx, "dig", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestKernelDigsStack serves the zone from the stack on a TAP and queries
// it with dig(1) from the kernel's side, over UDP, over TCP, and for the
// big record over UDP first and TCP after truncation.
func TestKernelDigsStack(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "dig")
	ns := netnstest.New(t)
	s := newStack(t, netstack.Config{Link: ns.Dev, Addr: ns.StackPrefix})
	z := newZone()
	startServing(t, s, z)
	at := "@" + s.Addr().String()

	// dig may resend a query it thinks lost (+tries=2), so the counts
	// are lower bounds.
	if got := dig(t, ns, at, "name.test", "A", "+short"); strings.TrimSpace(got) != nameAddr.String() {
		t.Fatalf("dig over UDP printed %q, want %v", got, nameAddr)
	}
	if z.udp.Load() < 1 || z.tcp.Load() != 0 {
		t.Fatalf("after dig over UDP the server counted %d UDP and %d TCP queries", z.udp.Load(), z.tcp.Load())
	}
	if got := dig(t, ns, "+tcp", at, "name.test", "A", "+short"); strings.TrimSpace(got) != nameAddr.String() {
		t.Fatalf("dig +tcp printed %q, want %v", got, nameAddr)
	}
	if z.tcp.Load() < 1 {
		t.Fatalf("after dig +tcp the server counted %d TCP queries", z.tcp.Load())
	}
	// dig retries a truncated answer over TCP by itself.
	udp, tcp := z.udp.Load(), z.tcp.Load()
	out := dig(t, ns, at, "big.name.test", "TXT")
	if !strings.Contains(out, "Truncated, retrying in TCP mode") {
		t.Errorf("dig did not report truncation:\n%s", out)
	}
	for _, part := range bigTXT() {
		if !strings.Contains(out, part) {
			t.Fatalf("dig output lacks %q:\n%s", part, out)
		}
	}
	if z.udp.Load() == udp || z.tcp.Load() == tcp {
		t.Fatalf("the big TXT took %d UDP and %d TCP queries, want some of each", z.udp.Load()-udp, z.tcp.Load()-tcp)
	}
}

// TestStackResolvesFromKernel runs the miekg/dns server on the kernel's
// side and resolves through the stack's Resolver (UDP, and TCP after
// truncation), then fetches a page by name with http.Client dialing
// through the stack.
func TestStackResolvesFromKernel(t *testing.T) {
	checkGoroutines(t)
	ns := netnstest.New(t)
	kernelDNS := netip.AddrPortFrom(ns.KernelAddr, 53)
	s := newStack(t, netstack.Config{Link: ns.Dev, Addr: ns.StackPrefix, DNS: []netip.AddrPort{kernelDNS}})

	var (
		pc     net.PacketConn
		dnsLn  net.Listener
		httpLn net.Listener
	)
	err := ns.Run(func() (err error) {
		if pc, err = net.ListenPacket("udp4", kernelDNS.String()); err != nil {
			return err
		}
		if dnsLn, err = net.Listen("tcp4", kernelDNS.String()); err != nil {
			pc.Close()
			return err
		}
		if httpLn, err = net.Listen("tcp4", netip.AddrPortFrom(ns.KernelAddr, 8080).String()); err != nil {
			pc.Close()
			dnsLn.Close()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	z := newZone()
	z.addA("web.test", ns.KernelAddr)
	stop, err := startServers(pc, dnsLn, z)
	if err != nil {
		httpLn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("stopping DNS servers: %v", err)
		}
	})
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kernel here; you are %s asking for %s", r.RemoteAddr, r.Host)
	})}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(httpLn) }()
	t.Cleanup(func() {
		hs.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http.Server.Serve: %v", err)
		}
	})

	ctx := testContext(t)
	r := s.Resolver()
	addrs, err := r.LookupHost(ctx, "name.test")
	if err != nil || !slices.Equal(addrs, []string{nameAddr.String()}) {
		t.Fatalf("LookupHost(name.test) = %v, %v; want [%v]", addrs, err, nameAddr)
	}
	if z.udp.Load() == 0 || z.tcp.Load() != 0 {
		t.Fatalf("LookupHost: kernel server counted %d UDP and %d TCP queries, want some and 0", z.udp.Load(), z.tcp.Load())
	}
	txt, err := r.LookupTXT(ctx, "big.name.test")
	if err != nil || len(txt) != 1 || txt[0] != strings.Join(bigTXT(), "") {
		t.Fatalf("LookupTXT(big.name.test) = %d records, %v", len(txt), err)
	}
	if z.tcp.Load() == 0 {
		t.Fatal("LookupTXT(big.name.test) succeeded without a TCP query to the kernel's server")
	}

	tr := &http.Transport{DialContext: s.DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://web.test:8080/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("kernel here; you are %s:", s.Addr())
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), want) || !strings.HasSuffix(string(body), "web.test:8080") {
		t.Fatalf("GET http://web.test:8080/: %s %q, want 200 and %q...web.test:8080", resp.Status, body, want)
	}
}
