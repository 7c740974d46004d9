package netstack

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// TestKernelICMPSocket: over a TAP, an ICMP socket on the stack pings the
// kernel with golang.org/x/net/icmp and reads the kernel's reply; and
// while ping(8) in the namespace pings the stack, which answers every
// request, the socket sees each request.
func TestKernelICMPSocket(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	pc, err := s.ListenPacket("ip4:icmp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(20 * time.Second))
	data := []byte("from an ICMP socket on netstack")
	if _, err := pc.WriteTo(echoRequest(t, 4242, 1, data), &net.IPAddr{IP: ns.KernelAddr.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	e, from := readEcho(t, pc, ipv4.ICMPTypeEchoReply, 4242)
	if string(e.Data) != string(data) || from.String() != ns.KernelAddr.String() {
		t.Fatalf("kernel's reply %+v from %v", e, from)
	}
	if n := pingReplies(t, ns, "-c", "3", "-i", "0.2", "-W", "5", s.Addr().String()); n != 3 {
		t.Fatalf("ping got %d of 3 replies with an ICMP socket open", n)
	}
	buf := make([]byte, 1500)
	requests := 0
	for requests < 3 {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d requests: %v", requests, err)
		}
		if n > 0 && buf[0] == byte(ipv4.ICMPTypeEcho) {
			requests++
		}
	}
}
