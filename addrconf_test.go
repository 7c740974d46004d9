package netstack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestAddRemoveAddr: an address added at run time takes connections at
// once through a wildcard listener; when it is removed, the connection
// from it is reset (ECONNABORTED for its user, ECONNRESET for the peer), a
// listener bound to it fails its Accept, a UDP socket bound to it gets
// the error once, and a connection on the address kept goes on.
func TestAddRemoveAddr(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	extra := netip.MustParsePrefix("198.18.0.3/24")
	if err := b.AddAddr(extra); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b.Addrs(), extra) {
		t.Fatalf("Addrs() = %v, want %v among them", b.Addrs(), extra)
	}
	if err := b.AddAddr(extra); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("adding it again: %v, want EEXIST", err)
	}
	if err := b.AddAddr(netip.MustParsePrefix("224.0.0.1/24")); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("adding a multicast address: %v, want EINVAL", err)
	}
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	kept, keptPeer := dialPair(t, ln, a, netip.MustParseAddrPort("198.18.0.2:80"))
	gone, gonePeer := dialPair(t, ln, a, netip.MustParseAddrPort("198.18.0.3:80"))
	if la := gonePeer.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); la != extra.Addr() { // a dual-stack listener shows it mapped
		t.Fatalf("the connection to the added address is from %v", la)
	}
	bound, err := b.Listen("tcp", "198.18.0.3:81")
	if err != nil {
		t.Fatal(err)
	}
	defer bound.Close()
	udp, err := b.ListenPacket("udp", "198.18.0.3:53")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()

	if err := b.RemoveAddr(extra); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(b.Addrs(), extra) {
		t.Fatalf("Addrs() = %v after the removal", b.Addrs())
	}
	if err := b.RemoveAddr(extra); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("removing it again: %v, want EADDRNOTAVAIL", err)
	}
	gonePeer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := gonePeer.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNABORTED) {
		t.Fatalf("read on the removed address: %v, want ECONNABORTED", err)
	}
	gone.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := gone.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the peer's read: %v, want ECONNRESET", err)
	}
	if _, err := bound.Accept(); !errors.Is(err, syscall.ECONNABORTED) {
		t.Fatalf("Accept on the removed address: %v, want ECONNABORTED", err)
	}
	if err := bound.Close(); err != nil {
		t.Fatalf("Close of a listener its address left: %v", err)
	}
	udp.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := udp.ReadFrom(make([]byte, 1)); !errors.Is(err, syscall.ECONNABORTED) {
		t.Fatalf("UDP read on the removed address: %v, want ECONNABORTED", err)
	}
	// The connection on the address kept goes on.
	go func() { keptPeer.Write([]byte("still")); keptPeer.Close() }()
	kept.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, err := io.ReadAll(kept); err != nil || string(got) != "still" {
		t.Fatalf("the kept connection: %q, %v", got, err)
	}
	// Nothing answers on the removed address any more.
	d := Dialer{Stack: a, Timeout: 2 * time.Second}
	if c, err := d.Dial("tcp", "198.18.0.3:80"); err == nil {
		c.Close()
		t.Fatal("a dial to the removed address connected")
	}
}

// TestAddAddrIPv6: two IPv4 stacks are given IPv6 addresses while they
// run; once duplicate address detection has passed they talk TCP over
// them.
func TestAddAddrIPv6(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	pa, pb := netip.MustParsePrefix("fd00:7::1/64"), netip.MustParsePrefix("fd00:7::2/64")
	if err := a.AddAddr(pa); err != nil {
		t.Fatal(err)
	}
	if err := b.AddAddr(pb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "DAD of the added addresses", func() bool {
		return slices.Contains(a.Addrs(), pa) && slices.Contains(b.Addrs(), pb)
	})
	ln, err := b.Listen("tcp6", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, sc := dialPair(t, ln, a, netip.AddrPortFrom(pb.Addr(), 80))
	if la := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); la != pa.Addr() {
		t.Fatalf("dialed from %v, want %v", la, pa.Addr())
	}
	exchange(t, c, sc, 1<<20)
}

// TestAddrsChangedAfterDAD: an IPv6 address is reported by
// Config.AddrsChanged when it passes duplicate address detection, not
// before; the goroutine that calls it ends with the stack.
func TestAddrsChangedAfterDAD(t *testing.T) {
	checkGoroutines(t)
	changes := make(chan []netip.Prefix, 16)
	l, peer := Pipe()
	defer peer.Close()
	v6 := netip.MustParsePrefix("fd00::2/64")
	s, err := New(Config{Link: l, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), v6},
		AddrsChanged: func(addrs []netip.Prefix) { changes <- addrs }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if slices.Contains(s.Addrs(), v6) {
		t.Fatal("the address is usable before DAD")
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case addrs := <-changes:
			if slices.Contains(addrs, v6) {
				return
			}
		case <-timeout:
			t.Fatalf("no report of %v after DAD; Addrs() = %v", v6, s.Addrs())
		}
	}
}
