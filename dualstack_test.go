package netstack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
)

// The networks and addresses of a dual stack, with Go's semantics, on
// stacks over a Pipe. Tests that need IPv6 on the wire are in
// ipv6_test.go.

func TestListenNetworks(t *testing.T) {
	checkGoroutines(t)
	a, _ := newPipePair(t)
	for _, tc := range []struct{ network, address, want string }{
		{"tcp", ":8001", "[::]:8001"},        // dual stack, as Go's
		{"tcp", "0.0.0.0:8002", "[::]:8002"}, // an IPv4 wildcard with "tcp" too
		{"tcp", "[::]:8003", "[::]:8003"},    //
		{"tcp4", ":8004", "0.0.0.0:8004"},    // IPv4 only
		{"tcp6", ":8005", "[::]:8005"},       // IPv6 only
		{"tcp", "198.18.0.1:8006", "198.18.0.1:8006"},
		{"tcp4", "[::ffff:198.18.0.1]:8007", "198.18.0.1:8007"}, // a mapped address is IPv4
	} {
		ln, err := a.Listen(tc.network, tc.address)
		if err != nil {
			t.Fatalf("Listen(%q, %q): %v", tc.network, tc.address, err)
		}
		if got := ln.Addr().String(); got != tc.want {
			t.Errorf("Listen(%q, %q).Addr() = %s, want %s", tc.network, tc.address, got, tc.want)
		}
		ln.Close()
	}
	for _, tc := range []struct{ network, address string }{
		{"tcp6", "198.18.0.1:8010"},
		{"tcp4", "[2001:db8::1]:8011"},
		{"tcp6", "[::ffff:198.18.0.1]:8012"},
	} {
		var ae *net.AddrError
		if _, err := a.Listen(tc.network, tc.address); !errors.As(err, &ae) || ae.Err != "no suitable address found" {
			t.Errorf("Listen(%q, %q): %v, want no suitable address", tc.network, tc.address, err)
		}
	}
	if _, err := a.Listen("tcp", "[2001:db8::9]:8013"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Errorf("a foreign IPv6 address: %v", err)
	}
	if _, err := a.Listen("tcp", "[fe80::1%nosuchlink]:8014"); err == nil || !isAddrErr(err, "no such network interface") {
		t.Errorf("a zone naming another link: %v", err)
	}
	var unk net.UnknownNetworkError
	if _, err := a.Listen("tcp5", ":1"); !errors.As(err, &unk) {
		t.Errorf("tcp5: %v", err)
	}
}

func isAddrErr(err error, text string) bool {
	var ae *net.AddrError
	return errors.As(err, &ae) && ae.Err == text
}

// TestBindConflicts: ports are shared by bindings of different families
// and refused to overlapping ones, as Linux's bind does.
func TestBindConflicts(t *testing.T) {
	checkGoroutines(t)
	a, _ := newPipePair(t)
	listen := func(network, address string) (net.Listener, error) {
		ln, err := a.Listen(network, address)
		if err == nil {
			t.Cleanup(func() { ln.Close() })
		}
		return ln, err
	}
	if _, err := listen("tcp4", ":9000"); err != nil {
		t.Fatal(err)
	}
	if _, err := listen("tcp6", ":9000"); err != nil {
		t.Fatalf("an IPv6-only wildcard beside an IPv4 one: %v", err)
	}
	if _, err := listen("tcp", ":9000"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("a dual-stack wildcard over both: %v", err)
	}
	if _, err := listen("tcp", ":9001"); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"0.0.0.0:9001", "198.18.0.1:9001"} {
		if _, err := listen("tcp4", addr); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("tcp4 %s under a dual-stack wildcard: %v", addr, err)
		}
	}
	// UDP keeps its own table with the same rules.
	pc, err := a.ListenPacket("udp6", ":9000")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if pc.LocalAddr().String() != "[::]:9000" {
		t.Fatalf("udp6 LocalAddr %v", pc.LocalAddr())
	}
	pc4, err := a.ListenPacket("udp4", ":9000")
	if err != nil {
		t.Fatalf("udp4 beside udp6: %v", err)
	}
	defer pc4.Close()
	if _, err := a.ListenPacket("udp", ":9000"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("udp dual over both: %v", err)
	}
}

// TestDualListenerAcceptsIPv4: Listen("tcp", ":port") takes IPv4 clients
// and shows them as Go does through an AF_INET6 socket: IPv4-mapped
// 16-byte IPs that print as IPv4. A "tcp4" listener shows plain IPv4, and
// so does the dialer's side.
func TestDualListenerAcceptsIPv4(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	for _, tc := range []struct {
		network string
		mapped  bool
	}{{"tcp", true}, {"tcp4", false}} {
		ln, err := b.Listen(tc.network, ":80")
		if err != nil {
			t.Fatal(err)
		}
		acc := make(chan net.Conn, 1)
		go func() { c, _ := ln.Accept(); acc <- c }()
		c, err := a.Dial("tcp", "198.18.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		s := <-acc
		if s == nil {
			t.Fatal("accept failed")
		}
		ra, la := s.RemoteAddr().(*net.TCPAddr), s.LocalAddr().(*net.TCPAddr)
		wantLen := 4
		if tc.mapped {
			wantLen = 16
		}
		if len(ra.IP) != wantLen || len(la.IP) != wantLen || ra.AddrPort().Addr().Is4In6() != tc.mapped {
			t.Errorf("%s: accepted %v (%d bytes) → %v (%d bytes)", tc.network, ra, len(ra.IP), la, len(la.IP))
		}
		if ra.String() != c.LocalAddr().String() || la.String() != "198.18.0.2:80" {
			t.Errorf("%s: accepted %v → %v, dialed from %v", tc.network, ra, la, c.LocalAddr())
		}
		if cl := c.LocalAddr().(*net.TCPAddr); len(cl.IP) != 4 {
			t.Errorf("dialer's local address %v is %d bytes", cl, len(cl.IP))
		}
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("read %q %v", buf, err)
		}
		c.Close()
		s.Close()
		ln.Close()
	}
}

// TestDialNetworks: Dial checks the address's family against the
// network, and an IPv6 destination on a stack without IPv6 fails as
// Linux's connect does.
func TestDialNetworks(t *testing.T) {
	checkGoroutines(t)
	a, _ := newPipePair(t)
	if _, err := a.Dial("tcp6", "198.18.0.2:80"); !isAddrErr(err, "no suitable address found") {
		t.Errorf("tcp6 to IPv4: %v", err)
	}
	if _, err := a.Dial("udp4", "[2001:db8::2]:53"); !isAddrErr(err, "no suitable address found") {
		t.Errorf("udp4 to IPv6: %v", err)
	}
	if _, err := a.Dial("tcp", "[2001:db8::2]:80"); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("tcp to IPv6 from an IPv4-only stack: %v", err)
	}
	if _, err := a.Dial("udp", "[2001:db8::2]:53"); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("udp to IPv6 from an IPv4-only stack: %v", err)
	}
	d := Dialer{Stack: a, LocalAddr: &net.TCPAddr{IP: net.ParseIP("198.18.0.1")}}
	if _, err := d.Dial("tcp6", "[2001:db8::2]:80"); !isAddrErr(err, "no suitable address found") {
		t.Errorf("tcp6 from an IPv4 local address: %v", err)
	}
}

// TestNewValidatesAddrs: the address and gateway checks of New.
func TestNewValidatesAddrs(t *testing.T) {
	la, _ := Pipe()
	defer la.Close()
	p := netip.MustParsePrefix
	for _, cfg := range []Config{
		{Link: la, Addrs: []netip.Prefix{p("::ffff:198.18.0.1/120")}},
		{Link: la, Addrs: []netip.Prefix{p("198.18.0.1/24"), p("198.18.0.1/16")}},
		{Link: la, Addrs: []netip.Prefix{p("::/64")}},
		{Link: la, Addrs: []netip.Prefix{p("ff02::1/64")}},
		{Link: la, Addrs: []netip.Prefix{{}}},
		{Link: la, Addrs: []netip.Prefix{p("198.18.0.1/24")}, Gateways: []netip.Addr{netip.MustParseAddr("2001:db8::1")}},
		{Link: la, Addrs: []netip.Prefix{p("198.18.0.1/24"), p("2001:db8::2/64")}, MTU: 1200},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestAddrsShorthands: Config.Addr and Gateway join Addrs and Gateways,
// and Stack.Addrs lists the usable addresses.
func TestAddrsShorthands(t *testing.T) {
	la, lb := Pipe()
	defer lb.Close()
	s, err := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"),
		Gateways: []netip.Addr{netip.MustParseAddr("198.18.0.254")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !slices.Contains(s.Addrs(), netip.MustParsePrefix("198.18.0.1/24")) || s.Addr() != netip.MustParseAddr("198.18.0.1") {
		t.Fatalf("Addrs %v, Addr %v", s.Addrs(), s.Addr())
	}
}

// TestDestinationOrder: RFC 6724 §6 Rule 6 with the default policy
// table: a global IPv6 address before IPv4, IPv4 before a ULA; Rule 1: a
// family the stack has no address of goes last.
func TestDestinationOrder(t *testing.T) {
	a, _ := newPipePair(t)
	ap := func(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), 80) }
	if !(precedence(netip.MustParseAddr("2001:db8::1")) > precedence(netip.MustParseAddr("198.18.0.1")) &&
		precedence(netip.MustParseAddr("198.18.0.1")) > precedence(netip.MustParseAddr("fd00::1"))) {
		t.Fatal("precedences out of RFC 6724's order")
	}
	addrs := []netip.AddrPort{ap("2001:db8::1"), ap("198.18.0.9")}
	a.sortDestinations(addrs) // a has no IPv6 address: IPv4 first
	if addrs[0] != ap("198.18.0.9") {
		t.Fatalf("order %v", addrs)
	}
}
