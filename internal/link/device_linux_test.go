package link_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/netnstest"
	"golang.org/x/sys/unix"
)

func TestOpenDevice(t *testing.T) {
	netnstest.Require(t)
	tests := []struct {
		name     string
		open     func(string) (*link.Device, error)
		ethernet bool
	}{
		{"tap", link.OpenTAP, true},
		{"tun", link.OpenTUN, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.open("")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if !strings.HasPrefix(d.Name(), tt.name) {
				t.Errorf("Name() = %q, want the kernel's %s%%d", d.Name(), tt.name)
			}
			if d.Ethernet() != tt.ethernet {
				t.Errorf("Ethernet() = %v, want %v", d.Ethernet(), tt.ethernet)
			}
			if d.MTU() != 1500 {
				t.Errorf("MTU() = %d, want 1500", d.MTU())
			}
			if _, err := net.InterfaceByName(d.Name()); err != nil {
				t.Errorf("interface %s not created: %v", d.Name(), err)
			}
			// Non-blocking is what lets Close interrupt ReadFrame.
			if fl := fdFlags(t, d); fl&unix.O_NONBLOCK == 0 {
				t.Errorf("descriptor flags %#x lack O_NONBLOCK", fl)
			}
		})
	}
}

func TestOpenDeviceNameTooLong(t *testing.T) {
	if _, err := link.OpenTAP("a-name-far-too-long"); err == nil {
		t.Error("OpenTAP(19-byte name) succeeded; IFNAMSIZ is 16")
	}
}

// TestDeviceCloseUnblocksRead proves that Close interrupts a ReadFrame
// blocked in the poller, which a blocking descriptor would not allow, and
// that reads and writes then fail with net.ErrClosed, with and without
// the virtio-net header (whose descriptor calls go through a
// syscall.RawConn, which reports a closed file in its own words).
func TestDeviceCloseUnblocksRead(t *testing.T) {
	netnstest.Require(t)
	for _, open := range []func(string) (*link.Device, error){link.OpenTAP, link.OpenTUN, link.OpenTAPOffload, link.OpenTUNOffload} {
		d, err := open("")
		if err != nil {
			t.Fatal(err)
		}
		name := d.Name()
		errc := make(chan error, 1)
		go func() {
			_, err := d.ReadFrame(make([]byte, 2048))
			errc <- err
		}()
		waitBlockedInPoller(t)
		start := time.Now()
		if err := d.Close(); err != nil {
			t.Fatalf("%s: Close: %v", name, err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%s: ReadFrame after Close = %v, want net.ErrClosed", name, err)
			}
		case <-time.After(time.Second):
			t.Fatalf("%s: ReadFrame still blocked 1s after Close", name)
		}
		t.Logf("%s: ReadFrame returned %v after Close", name, time.Since(start))
		if err := d.WriteFrame(make([]byte, 60)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: WriteFrame after Close = %v, want net.ErrClosed", name, err)
		}
		if err := d.Close(); !errors.Is(err, net.ErrClosed) {
			t.Errorf("%s: second Close = %v, want net.ErrClosed", name, err)
		}
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("%s: interface survives Close", name)
		}
	}
}

func TestDeviceReadDeadline(t *testing.T) {
	netnstest.Require(t)
	d, err := link.OpenTAP("")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := d.ReadFrame(make([]byte, 100)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrame past deadline = %v, want os.ErrDeadlineExceeded", err)
	}
}

// TestDeviceTruncates reads a frame into a short buffer: the kernel
// returns the frame's full length (drivers/net/tun.c, tun_put_user), which
// ReadFrame must clamp to the buffer.
func TestDeviceTruncates(t *testing.T) {
	ns := netnstest.New(t)
	err := ns.Run(func() error {
		c, err := net.Dial("udp4", net.JoinHostPort(ns.StackPrefix.Addr().String(), "9"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Dev.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 20)
	n, err := ns.Dev.ReadFrame(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(buf) {
		t.Errorf("ReadFrame of a 42-byte ARP frame into 20 bytes = %d, want 20", n)
	}
	if !bytes.Equal(buf[:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("frame starts % x, want the broadcast ARP request", buf[:6])
	}
}

func fdFlags(t *testing.T, d *link.Device) int {
	t.Helper()
	// Reach the descriptor through /proc: Device does not export it.
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, e := range fds {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if target != "/dev/net/tun" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err != nil || !strings.Contains(string(info), "iff:\t"+d.Name()) {
			continue
		}
		for _, l := range strings.Split(string(info), "\n") {
			var fl int
			if n, _ := fmt.Sscanf(l, "flags:\t%o", &fl); n == 1 {
				return fl
			}
		}
	}
	t.Fatalf("descriptor of %s not found in /proc/self/fdinfo", d.Name())
	return 0
}

// waitBlockedInPoller waits, up to 10 s (a bound against a hang), until some goroutine is
// parked in the network poller inside ReadFrame.
func waitBlockedInPoller(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, "(*Device).ReadFrame") {
				return
			}
		}
	}
	t.Fatal("ReadFrame never blocked in the poller")
}

// TestDeviceZeroAllocs: a frame written to or read from a device with the
// virtio-net header costs no allocation. Each round is an ARP request
// written for the kernel's address and the kernel's reply read back
// (RFC 826), so it moves one frame each way through the header's path.
func TestDeviceZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so the pool allocates")
	}
	ns := netnstest.New(t)
	if !ns.Dev.Offload() {
		t.Fatal("netnstest.New opened the device without offloads")
	}
	mac := []byte{0x02, 0, 0, 0, 0, 1}
	req := arpRequest(ns, mac)
	buf := make([]byte, 2048)
	var failed error
	round := func() {
		if err := ns.Dev.WriteFrame(req); err != nil {
			failed = err
			return
		}
		n, err := ns.Dev.ReadFrame(buf)
		switch {
		case err != nil:
			failed = err
		case n < 42 || !bytes.Equal(buf[:6], mac) || buf[21] != 2:
			failed = fmt.Errorf("read % x, want an ARP reply to %x", buf[:min(n, 42)], mac)
		}
	}
	// A hung kernel fails the test rather than hanging it.
	ns.Dev.SetReadDeadline(time.Now().Add(30 * time.Second))
	round()
	allocs := testing.AllocsPerRun(200, round)
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("WriteFrame+ReadFrame: %v allocs per round, want 0", allocs)
	}
}

// arpRequest returns a broadcast ARP request from mac and the stack's
// address for the kernel's address in ns (RFC 826).
func arpRequest(ns *netnstest.NS, mac []byte) []byte {
	req := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac...)
	req = append(req, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1)
	req = append(req, mac...)
	req = append(req, ns.StackPrefix.Addr().AsSlice()...)
	req = append(req, 0, 0, 0, 0, 0, 0)
	return append(req, ns.KernelAddr.AsSlice()...)
}

// TestDeviceConcurrentWriters: concurrent writers of a device with the
// virtio-net header each get every frame through. Four goroutines each
// write 100 ARP requests from their own address; the kernel answers each,
// and every writer's replies come back.
func TestDeviceConcurrentWriters(t *testing.T) {
	ns := netnstest.New(t)
	const writers, each = 4, 100
	errc := make(chan error, writers)
	for w := range writers {
		req := arpRequest(ns, []byte{0x02, 0, 0, 0, 0, byte(1 + w)})
		go func() {
			for range each {
				if err := ns.Dev.WriteFrame(req); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range writers {
		if err := <-errc; err != nil {
			t.Fatalf("WriteFrame: %v", err)
		}
	}
	ns.Dev.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got [writers]int
	buf := make([]byte, 2048)
	for n := 0; n < writers*each; n++ {
		m, err := ns.Dev.ReadFrame(buf)
		if err != nil {
			t.Fatalf("after %d replies (%v per writer): ReadFrame: %v", n, got, err)
		}
		w := int(buf[5]) - 1
		if m < 42 || buf[21] != 2 || w < 0 || w >= writers {
			t.Fatalf("read % x, want an ARP reply to one of the writers", buf[:min(m, 42)])
		}
		got[w]++
	}
	for w, n := range got {
		if n != each {
			t.Errorf("writer %d: %d replies, want %d", w, n, each)
		}
	}
}

// BenchmarkDeviceRoundTrip writes an ARP request to a device with the
// virtio-net header and reads the kernel's reply: one frame each way.
func BenchmarkDeviceRoundTrip(b *testing.B) {
	ns := netnstest.New(b)
	mac := []byte{0x02, 0, 0, 0, 0, 1}
	req := arpRequest(ns, mac)
	buf := make([]byte, 2048)
	ns.Dev.SetReadDeadline(time.Now().Add(time.Minute))
	b.ReportAllocs()
	for b.Loop() {
		if err := ns.Dev.WriteFrame(req); err != nil {
			b.Fatal(err)
		}
		if _, err := ns.Dev.ReadFrame(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeviceWriteParallel writes ARP requests to a device with the
// virtio-net header from GOMAXPROCS goroutines at once, as a stack's
// connections do, while one goroutine reads the replies.
func BenchmarkDeviceWriteParallel(b *testing.B) {
	ns := netnstest.New(b)
	req := arpRequest(ns, []byte{0x02, 0, 0, 0, 0, 1})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			if _, err := ns.Dev.ReadFrame(buf); err != nil {
				return
			}
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := ns.Dev.WriteFrame(req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	ns.Dev.Close()
	<-done
}
