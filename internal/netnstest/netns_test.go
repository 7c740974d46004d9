package netnstest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain fails the run if any namespace or interface this process made
// outlives the tests, whatever the tests did.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		if left := leftovers(); left != "" {
			fmt.Fprintf(os.Stderr, "netnstest: left behind after tests:\n%s", left)
			code = 1
		}
	}
	os.Exit(code)
}

func leftovers() string {
	var b strings.Builder
	nsOut, _ := exec.Command("ip", "netns", "list").Output()
	for _, l := range strings.Split(string(nsOut), "\n") {
		if strings.HasPrefix(l, fmt.Sprintf("nst-%d-", os.Getpid())) {
			fmt.Fprintf(&b, "namespace %s\n", l)
		}
	}
	linkOut, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, l := range strings.Split(string(linkOut), "\n") {
		if strings.Contains(l, fmt.Sprintf(" nst%d-", os.Getpid())) {
			fmt.Fprintf(&b, "interface %s\n", l)
		}
	}
	return b.String()
}

// TestTAPSeesARP sends a datagram from the kernel to the stack's address:
// the kernel must first ask for the address with ARP (RFC 826), and the
// request must come out of the TAP descriptor opened before the move.
func TestTAPSeesARP(t *testing.T) {
	ns := New(t)
	if !ns.Dev.Ethernet() {
		t.Fatal("TAP device reports Ethernet() false")
	}
	if ns.MTU != 1500 {
		t.Errorf("MTU = %d, want 1500", ns.MTU)
	}
	stack := ns.StackPrefix.Addr()
	err := ns.Run(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stack, 9)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitFrame(t, ns, func(f []byte) bool { return isARPRequest(f, stack) },
		"ARP request for "+stack.String())

	out, err := exec.Command("ip", "-n", ns.Name, "-4", "addr", "show", "dev", ns.DevName).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v\n%s", err, out)
	}
	want := netip.PrefixFrom(ns.KernelAddr, 24).String()
	if !strings.Contains(string(out), "inet "+want) {
		t.Errorf("ip -n %s addr shows\n%s\nwant inet %s", ns.Name, out, want)
	}
}

// TestTUNSeesIP does the same over a TUN device, where there is no ARP:
// the datagram itself comes out, as a bare IPv4 packet.
func TestTUNSeesIP(t *testing.T) {
	ns := New(t, TUN(), MTU(1400))
	if ns.Dev.Ethernet() {
		t.Fatal("TUN device reports Ethernet() true")
	}
	if ns.MTU != 1400 || ns.Dev.MTU() != 1400 {
		t.Errorf("MTU = %d, Dev.MTU() = %d, want 1400", ns.MTU, ns.Dev.MTU())
	}
	stack := ns.StackPrefix.Addr()
	err := ns.Run(func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(stack, 9)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("hello"))
		return err
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitFrame(t, ns, func(p []byte) bool {
		return len(p) >= 20 && p[0]>>4 == 4 && p[9] == 17 && // IPv4, UDP
			netip.AddrFrom4([4]byte(p[12:16])) == ns.KernelAddr &&
			netip.AddrFrom4([4]byte(p[16:20])) == stack
	}, "UDP packet from "+ns.KernelAddr.String()+" to "+stack.String())
}

// TestRunSocketOutlivesThread proves sockets made in Run stay in the
// namespace: a listener made there is reachable by a dial made there
// later, and the dial from the test's own namespace does not reach it.
func TestRunSocketOutlivesThread(t *testing.T) {
	ns := New(t)
	var ln net.Listener
	if err := ns.Run(func() (err error) {
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() { // Accept on an ordinary goroutine: the socket is what counts.
		c, err := ln.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	if err := ns.Run(func() error {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("dial inside namespace: %v", err)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if c, err := net.DialTimeout("tcp4", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Errorf("dial from the test's namespace reached the namespace's loopback listener")
	}
}

// TestCommandAndClose checks that Command runs inside the namespace and
// that Close kills a process still running there and removes everything.
func TestCommandAndClose(t *testing.T) {
	ns := New(t)
	out, err := ns.Command(context.Background(), "ip", "-4", "-o", "addr", "show", "dev", ns.DevName).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns exec: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), ns.KernelAddr.String()) {
		t.Errorf("ip addr inside namespace = %q, want %s on it", out, ns.KernelAddr)
	}

	sleeper := ns.Command(context.Background(), "sleep", "1000")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	if err := ns.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-waited:
		if err == nil {
			t.Error("sleep 1000 exited cleanly; want killed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not kill the command")
	}
	if _, err := os.Stat("/run/netns/" + ns.Name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s still exists after Close (stat: %v)", ns.Name, err)
	}
	if linkExists("", ns.DevName) {
		t.Errorf("interface %s still exists after Close", ns.DevName)
	}
	if err := ns.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestUniqueNames(t *testing.T) {
	a, b := New(t), New(t)
	if a.Name == b.Name || a.DevName == b.DevName {
		t.Errorf("two namespaces share names: %s/%s and %s/%s", a.Name, a.DevName, b.Name, b.DevName)
	}
	for _, ns := range []*NS{a, b} {
		if !netip.MustParsePrefix("198.18.0.0/15").Contains(ns.KernelAddr) ||
			!netip.MustParsePrefix("198.18.0.0/15").Contains(ns.StackPrefix.Addr()) {
			t.Errorf("addresses %s, %s outside 198.18.0.0/15", ns.KernelAddr, ns.StackPrefix)
		}
	}
}

func TestRequireSkips(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: nothing to skip")
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Skip(RequireEnv + "=1 turns the skip into a failure")
	}
	ok := t.Run("inner", func(t *testing.T) {
		Require(t)
		t.Error("Require did not skip without root")
	})
	if !ok {
		t.Error("inner test failed")
	}
}

// waitFrame reads from ns.Dev until match accepts a frame or 5 seconds
// pass. Other frames (there should be none with IPv6 off) are ignored.
func waitFrame(t *testing.T, ns *NS, match func([]byte) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	if err := ns.Dev.SetReadDeadline(deadline); err != nil {
		t.Fatal(err)
	}
	defer ns.Dev.SetReadDeadline(time.Time{})
	buf := make([]byte, 65536)
	for {
		n, err := ns.Dev.ReadFrame(buf)
		if err != nil {
			t.Fatalf("waiting for %s: ReadFrame: %v", what, err)
		}
		if match(buf[:n]) {
			return
		}
		t.Logf("ignoring frame % x", buf[:min(n, 42)])
	}
}

// isARPRequest reports whether f is an Ethernet broadcast ARP request for
// target (RFC 826: htype 1, ptype 0x0800, hlen 6, plen 4, op 1).
func isARPRequest(f []byte, target netip.Addr) bool {
	if len(f) < 14+28 || binary.BigEndian.Uint16(f[12:]) != 0x0806 {
		return false
	}
	a := f[14:]
	return binary.BigEndian.Uint16(a[0:]) == 1 && binary.BigEndian.Uint16(a[2:]) == 0x0800 &&
		a[4] == 6 && a[5] == 4 && binary.BigEndian.Uint16(a[6:]) == 1 &&
		netip.AddrFrom4([4]byte(a[24:28])) == target
}

func TestRunErrors(t *testing.T) {
	ns := New(t)
	tests := []struct {
		name string
		fn   func() error
		want string
	}{
		{"error", func() error { return errors.New("boom") }, "boom"},
		{"panic", func() error { panic("kaboom") }, "panic: kaboom"},
		{"goexit", func() error { runtime.Goexit(); return nil }, "did not return"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ns.Run(tt.fn)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
