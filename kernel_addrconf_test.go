package netstack

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKernelAddRemoveAddr: against the kernel, an address added while the
// stack runs is in the kernel's neighbour table at once (the gratuitous
// ARP, which the namespace is set to accept) and serves curl; when it is
// removed, the kernel's connection to it is reset while its connection to
// the address kept goes on.
func TestKernelAddRemoveAddr(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	if out, err := runIn(t, ns, 10*time.Second, "sysctl", "-qw", "net.ipv4.conf."+ns.DevName+".arp_accept=1"); err != nil {
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "served on %s", r.Host)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	echo, err := s.Listen("tcp", ":7")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go serveEcho(echo, 30*time.Second)

	extra := netip.PrefixFrom(ns.StackPrefix.Addr().Next(), ns.StackPrefix.Bits()) // 198.18.N.3
	if err := s.AddAddr(extra); err != nil {
		t.Fatal(err)
	}
	var neigh string
	waitFor(t, "the kernel's neighbour entry for the added address", func() bool {
		neigh, _ = runIn(t, ns, 10*time.Second, "ip", "neigh", "show", extra.Addr().String(), "dev", ns.DevName)
		return strings.Contains(neigh, strings.ToLower(s.HardwareAddr().String()))
	})
	t.Logf("ip neigh: %s", strings.TrimSpace(neigh))
	out, err := runIn(t, ns, 20*time.Second, "curl", "-sS", "--max-time", "10", "http://"+extra.Addr().String()+"/")
	if want := "served on " + extra.Addr().String(); err != nil || out != want {
		t.Fatalf("curl to the added address: %v %q, want %q", err, out, want)
	}

	dial := func(to netip.Addr) net.Conn {
		var c net.Conn
		if err := ns.Run(func() (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(to, 7).String(), 10*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	kept, gone := dial(ns.StackPrefix.Addr()), dial(extra.Addr())
	for _, c := range []net.Conn{kept, gone} {
		roundTrip(t, c, "before")
	}
	if err := s.RemoveAddr(extra); err != nil {
		t.Fatal(err)
	}
	gone.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := gone.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the kernel's read on the removed address: %v, want ECONNRESET", err)
	}
	roundTrip(t, kept, "after")
}

// roundTrip writes msg on c and reads it back from an echo server.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo %q: %q, %v", msg, got, err)
	}
}
