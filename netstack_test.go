package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// newPipePair returns two stacks, 198.18.0.1 and 198.18.0.2, joined by Pipe.
func newPipePair(t testing.TB) (a, b *Stack) {
	t.Helper()
	return newPipePairConfig(t, Config{})
}

// newPipePairConfig is newPipePair with the other settings of cfg.
func newPipePairConfig(t testing.TB, cfg Config) (a, b *Stack) {
	t.Helper()
	ca, cb := cfg, cfg
	ca.Link, cb.Link = Pipe()
	ca.Addr, cb.Addr = netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	var err error
	a, err = New(ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestPingOverPipe(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		rtt, err := a.Ping(ctx, b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if rtt <= 0 {
			t.Fatalf("rtt %v", rtt)
		}
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.ICMP.EchoRepliesIn != 5 || sb.ICMP.EchoRepliesOut != 5 || sb.ICMP.EchoRequestsIn != 5 {
		t.Fatalf("stats a %+v b %+v", sa.ICMP, sb.ICMP)
	}
	// Each learned the other: one request (a's) and one reply (b's); b's
	// cache was filled by a's request. Plus one gratuitous ARP each.
	if sa.ARP.RequestsOut != 1 || sb.ARP.RequestsOut != 0 || sa.ARP.Gratuitous != 1 {
		t.Fatalf("arp a %+v b %+v", sa.ARP, sb.ARP)
	}
}

func TestPingUnresolvable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := newPipePair(t)
		start := time.Now()
		_, err := a.Ping(context.Background(), netip.MustParseAddr("198.18.0.77"))
		if !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Fatalf("got %v, want EHOSTUNREACH", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "ping" {
			t.Fatalf("not a *net.OpError: %#v", err)
		}
		if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
			t.Fatalf("failed after %v, want about 3 s", d)
		}
	})
}

func TestPingNoRoute(t *testing.T) {
	a, _ := newPipePair(t)
	_, err := a.Ping(context.Background(), netip.MustParseAddr("198.19.0.1"))
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("got %v, want ENETUNREACH", err)
	}
}

func TestPingContextDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := newPipePair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := a.Ping(ctx, netip.MustParseAddr("198.18.0.77"))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("got %v, want a timeout", err)
		}
	})
}

func TestPingAfterClose(t *testing.T) {
	a, b := newPipePair(t)
	a.Close()
	if _, err := a.Ping(context.Background(), b.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	la, _ := Pipe()
	defer la.Close()
	for _, cfg := range []Config{
		{},
		{Link: la},
		{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), Gateway: netip.MustParseAddr("198.19.0.1")},
		{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), MAC: net.HardwareAddr{1, 2}},
		{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), MTU: 40},
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
