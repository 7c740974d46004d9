package stack

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

var (
	any4  = Binding{Addr: netip.IPv4Unspecified()}
	any6  = Binding{Addr: netip.IPv6Unspecified()}
	dual  = Binding{Addr: netip.IPv6Unspecified(), Dual: true}
	host4 = Binding{Addr: netip.MustParseAddr("198.18.0.1")}
	host6 = Binding{Addr: netip.MustParseAddr("2001:db8::1")}
)

func TestBindingTakes(t *testing.T) {
	v4, v6 := host4.Addr, host6.Addr
	for _, tc := range []struct {
		b        Binding
		dst      netip.Addr
		expected bool
	}{
		{any4, v4, true}, {any4, v6, false},
		{any6, v4, false}, {any6, v6, true},
		{dual, v4, true}, {dual, v6, true},
		{host4, v4, true}, {host4, netip.MustParseAddr("198.18.0.9"), false},
		{host6, v6, true}, {host6, v4, false},
	} {
		if got := tc.b.Takes(tc.dst); got != tc.expected {
			t.Errorf("%+v.Takes(%v) = %v", tc.b, tc.dst, got)
		}
	}
}

// TestPortSharing: Linux's bind conflicts between the bindings of one
// port (without SO_REUSEPORT).
func TestPortSharing(t *testing.T) {
	rnd := func() uint32 { return 7 }
	for _, tc := range []struct {
		first, second Binding
		conflict      bool
	}{
		{any4, any6, false}, // an IPv6-only wildcard beside an IPv4 one
		{any4, dual, true},
		{any6, dual, true},
		{dual, host4, true},
		{dual, host6, true},
		{any4, host4, true},
		{any4, host6, false},
		{any6, host4, false},
		{host4, host6, false},
		{host4, host4, true},
	} {
		var p portTable
		if _, err := p.take(80, tc.first, rnd); err != nil {
			t.Fatal(err)
		}
		_, err := p.take(80, tc.second, rnd)
		if got := errors.Is(err, syscall.EADDRINUSE); got != tc.conflict {
			t.Errorf("%+v then %+v: %v", tc.first, tc.second, err)
		}
		p.release(80, tc.first)
		if !tc.conflict {
			p.release(80, tc.second)
		}
		if p.inUse(80) {
			t.Errorf("%+v, %+v: port still in use after both released", tc.first, tc.second)
		}
	}
	// An ephemeral port is one no binding holds.
	var p portTable
	port, err := p.take(0, dual, rnd)
	if err != nil || port < EphemeralLow || port > EphemeralHigh {
		t.Fatalf("ephemeral %d %v", port, err)
	}
	if again, _ := p.take(0, any4, rnd); again == port {
		t.Fatalf("ephemeral port %d handed out twice", port)
	}
}

func TestBindingBetter(t *testing.T) {
	if !host4.better(any4) || !any4.better(dual) || !host6.better(dual) || dual.better(any6) {
		t.Fatal("a specific address must beat a wildcard, a one-family wildcard a dual one")
	}
}
