package netstack

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/stack"
)

func TestUDPEchoOverPipe(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	srv, err := b.ListenPacket("udp", ":5300")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 70000)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			srv.WriteTo(buf[:n], from)
		}
	}()
	c, err := a.Dial("udp", "198.18.0.2:5300")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != "198.18.0.2:5300" || c.LocalAddr().(*net.UDPAddr).Port < stack.EphemeralLow {
		t.Fatalf("addrs %v %v", c.LocalAddr(), c.RemoteAddr())
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, size := range []int{0, 1, 1472, 1473, 16 << 10, 65507} {
		msg := bytes.Repeat([]byte{byte(size)}, size)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 70000)
		n, err := c.Read(got)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(got[:n], msg) {
			t.Fatalf("size %d: echoed %d bytes differ", size, n)
		}
	}
	if st := a.Stats(); st.IPv4.FragmentedPackets < 3 || st.IPv4.Reassembled < 3 {
		t.Fatalf("large datagrams not fragmented: %+v", st.IPv4)
	}
	if _, err := c.Write(make([]byte, 65508)); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestUDPConnectedRefused(t *testing.T) {
	a, b := newPipePair(t)
	c, err := a.Dial("udp", b.Addr().String()+":9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("anyone?"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 10))
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("got %v, want read: ECONNREFUSED", err)
	}
	// b counts the unreachable once it has sent it, which may be after a
	// read it.
	waitFor(t, "b's unreachable counted", func() bool { return b.Stats().ICMP.UnreachOut == 1 })
	if st := b.Stats(); st.UDP.DropNoPort != 1 || st.ICMP.UnreachOut != 1 {
		t.Fatalf("stats %+v %+v", st.UDP, st.ICMP)
	}
	// Reported once: the next read times out instead.
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second read: %v", err)
	}
}

func TestUDPDeadlineAndClose(t *testing.T) {
	checkGoroutines(t)
	a, _ := newPipePair(t)
	pc, err := a.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, _, err = pc.ReadFrom(make([]byte, 10))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v", err)
	}
	pc.SetReadDeadline(time.Time{})
	done := make(chan error)
	go func() { _, _, err := pc.ReadFrom(make([]byte, 10)); done <- err }()
	pc.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestUDPBindErrors(t *testing.T) {
	a, _ := newPipePair(t)
	pc, err := a.ListenPacket("udp", "198.18.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := a.ListenPacket("udp", ":7000"); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("double bind: %v", err)
	}
	if _, err := a.ListenPacket("udp", "198.18.0.9:7001"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("foreign address: %v", err)
	}
	var unk net.UnknownNetworkError
	if _, err := a.ListenPacket("udp7", ":1"); !errors.As(err, &unk) {
		t.Fatalf("udp7: %v", err)
	}
	var ae *net.AddrError
	if _, err := a.ListenPacket("udp6", "198.18.0.1:7002"); !errors.As(err, &ae) || ae.Err != "no suitable address found" {
		t.Fatalf("udp6 with an IPv4 address: %v", err)
	}
	if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(198, 19, 0, 1), Port: 1}); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("no route: %v", err)
	}
}

func TestUDPQueueBounded(t *testing.T) {
	a, b := newPipePair(t)
	srv, err := b.ListenUDP("udp", ":5301")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.SetReadBuffer(4000)
	c, _ := a.Dial("udp", "198.18.0.2:5301")
	defer c.Close()
	for range 10 {
		c.Write(make([]byte, 1000))
	}
	// Wait for all ten to arrive or be dropped.
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats().UDP.DatagramsIn < 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := b.Stats().UDP; st.DropQueueFull != 6 {
		t.Fatalf("drops %d, want 6 (4 of 1000 bytes fit in 4000)", st.DropQueueFull)
	}
	srv.SetReadDeadline(time.Now().Add(time.Second))
	for range 4 {
		if n, _, err := srv.ReadFromUDPAddrPort(make([]byte, 2000)); err != nil || n != 1000 {
			t.Fatalf("%d %v", n, err)
		}
	}
}

func TestUDPTruncatesLongDatagram(t *testing.T) {
	a, b := newPipePair(t)
	srv, _ := b.ListenUDP("udp", ":5302")
	defer srv.Close()
	c, _ := a.Dial("udp", "198.18.0.2:5302")
	defer c.Close()
	c.Write([]byte("0123456789"))
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	// A dual-stack socket sees IPv4 peers IPv4-mapped, as Go's does.
	if err != nil || n != 4 || string(buf) != "0123" || from.Addr() != netip.MustParseAddr("::ffff:198.18.0.1") {
		t.Fatalf("%d %q %v %v", n, buf, from, err)
	}
}
