package wiretest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// DUT is the device under test's socket side: what a program on it does.
// Listen, Dial and ListenUDP return package net's interfaces; the TCP
// connections also have CloseWrite, SetLinger, SetNoDelay and
// SetReadBuffer, as *net.TCPConn and *netstack.TCPConn both do.
type DUT interface {
	// Name is "linux" or "netstack".
	Name() string
	// Listen listens for TCP on the DUT's address and port, failing t if it
	// cannot. The listener is closed when the test ends.
	Listen(t testing.TB, port uint16) net.Listener
	// Dial connects to raddr over TCP. It blocks until the handshake
	// completes or fails, so a test calls it from a goroutine while the
	// testbench plays the other end.
	Dial(ctx context.Context, raddr netip.AddrPort) (net.Conn, error)
	// ListenUDP opens a UDP socket on port, closed when the test ends.
	ListenUDP(t testing.TB, port uint16) net.PacketConn
}

// Harness is one test's testbench and DUT, joined by a link of their own.
type Harness struct {
	*Bench
	DUT DUT
}

// NewNetstack returns a harness whose DUT is a netstack Stack on a TAP
// device, opened with offloads as netstack.OpenTAP opens it. The TAP's
// kernel end is in a namespace of its own with no address and IPv6 off, so
// the kernel stays silent there; the testbench sits on it. Everything is
// torn down when t ends.
func NewNetstack(t testing.TB) *Harness {
	t.Helper()
	ns := netnstest.New(t)
	// netnstest addressed the kernel's end; take the address away, so that
	// only the testbench answers for it.
	mustIP(t, "-n", ns.Name, "addr", "flush", "dev", ns.DevName)
	quietKernel(t, ns)
	b := openBench(t, ns, ns.DevName, ns.KernelAddr, ns.StackPrefix)
	s, err := netstack.New(netstack.Config{Link: ns.Dev, Addr: ns.StackPrefix})
	if err != nil {
		t.Fatalf("wiretest: netstack.New: %v", err)
	}
	t.Cleanup(func() {
		s.Close() // closes the TAP
		// The kernel removes the interface once its last descriptor is
		// closed, a moment later; wait for that, so that ns.Close does not
		// see it, try to delete it and find it gone.
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if exec.Command("ip", "-n", ns.Name, "link", "show", "dev", ns.DevName).Run() != nil {
				return
			}
		}
	})
	b.DUTMAC = MAC(s.HardwareAddr())
	b.waitReady(t)
	return &Harness{Bench: b, DUT: &netstackDUT{s: s}}
}

// NewLinux returns a harness whose DUT is the Linux kernel: a veth pair
// between two namespaces, the DUT's end addressed, the testbench's end not
// (IPv6 off in both). The DUT has a permanent neighbour entry for the
// testbench, so it sends no ARP.
func NewLinux(t testing.TB) *Harness {
	t.Helper()
	tb := netnstest.Empty(t)
	dut := netnstest.Empty(t)
	mustIP(t, "-n", tb.Name, "link", "add", "tb0", "type", "veth", "peer", "name", "dut0", "netns", dut.Name)
	mustIP(t, "-n", dut.Name, "addr", "add", tb.StackPrefix.String(), "dev", "dut0")
	mustIP(t, "-n", dut.Name, "link", "set", "dev", "dut0", "up")
	mustIP(t, "-n", tb.Name, "link", "set", "dev", "tb0", "up")
	mustIP(t, "-n", dut.Name, "neigh", "replace", tb.KernelAddr.String(), "lladdr", BenchMAC.String(), "dev", "dut0", "nud", "permanent")
	quietKernel(t, tb)
	b := openBench(t, tb, "tb0", tb.KernelAddr, tb.StackPrefix)
	err := dut.Run(func() error {
		ifi, err := net.InterfaceByName("dut0")
		if err != nil {
			return err
		}
		b.DUTMAC = MAC(ifi.HardwareAddr)
		return nil
	})
	if err != nil {
		t.Fatalf("wiretest: %v", err)
	}
	b.waitReady(t)
	return &Harness{Bench: b, DUT: &linuxDUT{ns: dut, addr: b.DUTAddr}}
}

// quietKernel makes the kernel on the testbench's side of the link answer
// no ARP at all (arp_ignore 8), in case an address appears there.
func quietKernel(t testing.TB, ns *netnstest.NS) {
	t.Helper()
	err := ns.Run(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/all/arp_ignore", []byte("8"), 0)
	})
	if err != nil {
		t.Fatalf("wiretest: %v", err)
	}
}

func mustIP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("wiretest: ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

type netstackDUT struct{ s *netstack.Stack }

func (d *netstackDUT) Name() string { return "netstack" }

func (d *netstackDUT) Listen(t testing.TB, port uint16) net.Listener {
	t.Helper()
	l, err := d.s.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("wiretest: netstack listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func (d *netstackDUT) Dial(ctx context.Context, raddr netip.AddrPort) (net.Conn, error) {
	return d.s.DialContext(ctx, "tcp", raddr.String())
}

func (d *netstackDUT) ListenUDP(t testing.TB, port uint16) net.PacketConn {
	t.Helper()
	c, err := d.s.ListenPacket("udp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatalf("wiretest: netstack listen udp: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// linuxDUT makes its sockets on a thread inside the DUT's namespace; they
// work from any goroutine afterwards.
type linuxDUT struct {
	ns   *netnstest.NS
	addr netip.Addr
}

func (d *linuxDUT) Name() string { return "linux" }

func (d *linuxDUT) Listen(t testing.TB, port uint16) net.Listener {
	t.Helper()
	var l net.Listener
	err := d.ns.Run(func() (err error) {
		l, err = net.Listen("tcp4", netip.AddrPortFrom(d.addr, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("wiretest: linux listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func (d *linuxDUT) Dial(ctx context.Context, raddr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := d.ns.Run(func() (err error) {
		var dl net.Dialer
		c, err = dl.DialContext(ctx, "tcp4", raddr.String())
		return err
	})
	return c, err
}

func (d *linuxDUT) ListenUDP(t testing.TB, port uint16) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	err := d.ns.Run(func() (err error) {
		c, err = net.ListenPacket("udp4", netip.AddrPortFrom(d.addr, port).String())
		return err
	})
	if err != nil {
		t.Fatalf("wiretest: linux listen udp: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Accept waits up to Timeout for l to accept a connection and returns it,
// closed when the test ends. It fails t if none comes.
func Accept(t testing.TB, l net.Listener) net.Conn {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := l.Accept()
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("wiretest: accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(Timeout):
		l.Close() // ends the Accept
		<-ch
		t.Fatalf("wiretest: no connection accepted within %v", Timeout)
		return nil
	}
}

// Establish listens on the DUT's port, connects the testbench to it
// (Conn.Connect) and accepts the connection on the DUT.
func (h *Harness) Establish(t testing.TB, port uint16) (*Conn, net.Conn) {
	t.Helper()
	l := h.DUT.Listen(t, port)
	c := h.NewConn(port)
	c.Connect(t)
	return c, Accept(t, l)
}

// Write writes p on the DUT's connection from a goroutine, since a write
// may block until the testbench acknowledges, and returns a channel that
// delivers Write's error.
func Write(dc net.Conn, p []byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := dc.Write(p)
		ch <- err
	}()
	return ch
}

// ReadFull reads exactly n bytes from the DUT's connection within Timeout
// and returns them, failing t otherwise.
func ReadFull(t testing.TB, dc net.Conn, n int) []byte {
	t.Helper()
	dc.SetReadDeadline(time.Now().Add(Timeout))
	defer dc.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(dc, b); err != nil {
		t.Fatalf("wiretest: DUT read of %d bytes: %v", n, err)
	}
	return b
}

func netipAddrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

func deadline() time.Time { return time.Now().Add(Timeout) }

// lastAddr returns the last address of p, the subnet's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
