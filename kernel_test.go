package netstack

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
)

// newKernelPeer makes a namespace with a TAP (or TUN) whose kernel side is
// 198.18.N.1 and starts a stack on it at 198.18.N.2.
func newKernelPeer(t *testing.T, opts ...netnstest.Option) (*netnstest.NS, *Stack) {
	t.Helper()
	netnstest.Require(t)
	ns := netnstest.New(t, opts...)
	s, err := New(Config{Link: ns.Dev, Addr: ns.StackPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ns, s
}

// runIn runs a command in the namespace and returns its combined output.
func runIn(t *testing.T, ns *netnstest.NS, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	return string(out), err
}

var received = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// pingReplies runs ping(8) in the namespace and returns how many replies
// it counted.
func pingReplies(t *testing.T, ns *netnstest.NS, args ...string) int {
	t.Helper()
	netnstest.LookPath(t, "ping")
	out, err := runIn(t, ns, 30*time.Second, "ping", args...)
	m := received.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping %v: %v\n%s", args, err, out)
	}
	n := 0
	for _, c := range m[2] {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestKernelPingsStack(t *testing.T) {
	checkGoroutines(t)
	netnstest.Require(t)
	ns := netnstest.New(t)
	// Capture the whole exchange; tshark reads it back at the end.
	capture := filepath.Join(t.TempDir(), "ping.pcap")
	f, err := os.Create(capture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := PcapLink(ns.Dev, f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Link: l, Addr: ns.StackPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr().String()
	if n := pingReplies(t, ns, "-c", "5", "-i", "0.2", "-W", "2", addr); n != 5 {
		t.Fatalf("ping -c 5: %d replies", n)
	}
	// 6000 bytes of data: fragmented by the kernel on the way in and by
	// the stack on the way back.
	if n := pingReplies(t, ns, "-c", "3", "-i", "0.2", "-W", "2", "-s", "6000", addr); n != 3 {
		t.Fatalf("ping -s 6000: %d replies", n)
	}
	st := s.Stats()
	if st.IPv4.Reassembled < 3 || st.IPv4.FragmentedPackets < 3 {
		t.Fatalf("large pings did not fragment both ways: %+v", st.IPv4)
	}
	out, err := runIn(t, ns, 5*time.Second, "ip", "neigh", "show", addr)
	if err != nil || !strings.Contains(out, s.HardwareAddr().String()) {
		t.Fatalf("ip neigh does not show the stack's MAC %v: %v\n%s", s.HardwareAddr(), err, out)
	}

	// The capture, read by a parser other than ours.
	s.Close()
	tshark := netnstest.LookPath(t, "tshark")
	cmd := exec.Command(tshark, "-n", "-r", capture, "-Y", "icmp.type == 0 && ip.src == "+addr)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	tout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, tout)
	}
	// 5 small replies and 3 reassembled large ones.
	if n := strings.Count(string(tout), "Echo (ping) reply"); n != 8 {
		t.Fatalf("tshark sees %d echo replies from the stack, want 8:\n%s", n, tout)
	}
}

func TestStackPingsKernel(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		if _, err := s.Ping(ctx, ns.KernelAddr); err != nil {
			t.Fatal(err)
		}
	}
	// Nobody answers ARP for .77: EHOSTUNREACH after the retries.
	silent := ns.StackPrefix.Masked().Addr().Next()
	for range 76 {
		silent = silent.Next()
	}
	start := time.Now()
	_, err := s.Ping(ctx, silent)
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("ping %v: got %v, want EHOSTUNREACH", silent, err)
	}
	if d := time.Since(start); d > 30*time.Second { // a bound against a hang
		t.Fatalf("took %v", d)
	}
}

func TestKernelPingsStackOverTUN(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t, netnstest.TUN())
	if n := pingReplies(t, ns, "-c", "3", "-i", "0.2", "-W", "2", s.Addr().String()); n != 3 {
		t.Fatalf("ping over TUN: %d replies", n)
	}
	if n := pingReplies(t, ns, "-c", "2", "-i", "0.2", "-W", "2", "-s", "6000", s.Addr().String()); n != 2 {
		t.Fatalf("ping -s 6000 over TUN: %d replies", n)
	}
}
