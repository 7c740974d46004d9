package netstack

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestKernelUDPLargeDatagrams sends 16 KiB datagrams each way across the
// TAP: fragmented on the wire by the sender, reassembled by the receiver.
func TestKernelUDPLargeDatagrams(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	var kc *net.UDPConn
	if err := ns.Run(func() (err error) {
		kc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ns.KernelAddr.AsSlice(), Port: 7000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	sc, err := s.ListenUDP("udp", ":7001")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	udpBothWays(t, kc, sc, netip.AddrPortFrom(ns.KernelAddr, 7000), netip.AddrPortFrom(s.Addr(), 7001))
	st := s.Stats().IPv4
	if st.FragmentedPackets < 1 || st.Reassembled < 1 {
		t.Fatalf("16 KiB did not fragment both ways: %+v", st)
	}
}

// udpBothWays sends a 16 KiB datagram from the stack's socket sc (at
// saddr) to the kernel's kc (at kaddr) and one back, and checks each
// arrives whole from the other's address.
func udpBothWays(t *testing.T, kc *net.UDPConn, sc *UDPConn, kaddr, saddr netip.AddrPort) {
	t.Helper()
	msg := make([]byte, 16<<10)
	for i := range msg {
		msg[i] = byte(i * 31)
	}
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(10 * time.Second)
	kc.SetDeadline(deadline)
	sc.SetDeadline(deadline)
	if _, err := sc.WriteToUDPAddrPort(msg, kaddr); err != nil {
		t.Fatal(err)
	}
	n, from, err := kc.ReadFromUDPAddrPort(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) || from != saddr {
		t.Fatalf("kernel got %d bytes from %v: %v", n, from, err)
	}
	if _, err := kc.WriteToUDPAddrPort(msg, saddr); err != nil {
		t.Fatal(err)
	}
	n, from, err = sc.ReadFromUDPAddrPort(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) || from.Addr().Unmap() != kaddr.Addr() || from.Port() != kaddr.Port() {
		t.Fatalf("stack got %d bytes from %v: %v", n, from, err)
	}
}

// TestKernelUDPRefused: a datagram to a closed port on either side makes
// the sender's connected socket read ECONNREFUSED.
func TestKernelUDPRefused(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	refusedBothWays(t, ns, s, "udp4", netip.AddrPortFrom(s.Addr(), 9999), netip.AddrPortFrom(ns.KernelAddr, 9998))
}

// refusedBothWays sends a datagram from the kernel to the stack's closed
// port at closedHere and from the stack to the kernel's at closedThere,
// each from a connected socket of network, which must then read
// ECONNREFUSED.
func refusedBothWays(t *testing.T, ns *netnstest.NS, s *Stack, network string, closedHere, closedThere netip.AddrPort) {
	t.Helper()
	var kc net.Conn
	if err := ns.Run(func() (err error) {
		kc, err = net.Dial(network, closedHere.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	var err error
	// The first datagram may wait on ARP or neighbor discovery; resend
	// until the error arrives.
	for range 5 {
		kc.Write([]byte("knock"))
		kc.SetReadDeadline(time.Now().Add(time.Second))
		if _, err = kc.Read(make([]byte, 10)); !errors.Is(err, syscall.EAGAIN) && !isTimeout(err) {
			break
		}
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("kernel read: %v, want ECONNREFUSED", err)
	}
	sc, err := s.Dial(network, closedThere.String())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.Write([]byte("knock"))
	sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := sc.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("stack read: %v, want ECONNREFUSED", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
