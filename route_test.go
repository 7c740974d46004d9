package netstack

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
)

// TestRoutes: a destination off the subnet is unreachable until a route
// names a gateway for it; then a connection to it goes through that
// gateway (here the peer itself, which holds the destination as a second
// address); the route's removal makes it unreachable again. Errors are
// *net.OpError and name their cause.
func TestRoutes(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	far := netip.MustParsePrefix("198.19.0.5/32")
	if err := b.AddAddr(far); err != nil {
		t.Fatal(err)
	}
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	dst := netip.AddrPortFrom(far.Addr(), 80).String()
	if _, err := a.Dial("tcp", dst); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("dial without a route: %v, want ENETUNREACH", err)
	}
	r := Route{Dst: netip.MustParsePrefix("198.19.0.0/16"), Gateway: netip.MustParseAddr("198.18.0.2"), Metric: 5}
	if err := a.AddRoute(r); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(a.Routes(), r) {
		t.Fatalf("Routes() = %v, want %v among them", a.Routes(), r)
	}
	if got, want := r.String(), "198.19.0.0/16 via 198.18.0.2 metric 5"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	c, err := a.Dial("tcp", dst)
	if err != nil {
		t.Fatalf("dial through the gateway: %v", err)
	}
	var buf [1]byte
	if _, err := c.Read(buf[:]); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q %v", buf, err)
	}
	c.Close()
	err = a.AddRoute(r)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "addroute" || !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("adding it again: %v, want an OpError wrapping EEXIST", err)
	}
	if err := a.AddRoute(Route{Dst: netip.MustParsePrefix("198.20.0.0/16"), Gateway: netip.MustParseAddr("198.21.0.1")}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("gateway off the link: %v, want ENETUNREACH", err)
	}
	if err := a.RemoveRoute(r); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveRoute(r); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("removing it again: %v, want ESRCH", err)
	}
	if _, err := a.Dial("tcp", dst); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("dial after the route went: %v, want ENETUNREACH", err)
	}
	if err := a.SetRoutes(a.Routes()); err != nil {
		t.Fatalf("setting back what Routes returned: %v", err)
	}
}
