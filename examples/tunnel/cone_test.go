package main

import (
	"net"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestTunnelFullCone: with FullCone, one client socket in A that sends
// only to 198.19.1.1:3478 gets replies from there and from
// 198.19.2.2:3479, a server it never sent to that answers the address the
// first one saw, as a STUN server's other address does: endpoint-
// independent filtering through the tunnel.
func TestTunnelFullCone(t *testing.T) {
	checkGoroutines(t)
	a, b, r, _ := farTunnelWith(t, func(r *Relay, far *netnstest.NS) {
		r.FullCone = true
		r.ListenUDP = func(bool) (uc *net.UDPConn, err error) {
			err = far.Run(func() (err error) {
				uc, err = net.ListenUDP("udp", nil)
				return err
			})
			return uc, err
		}
	}, "198.19.1.1", "198.19.2.2")
	one := listenPacketIn(t, b, "198.19.1.1:3478")
	other := listenPacketIn(t, b, "198.19.2.2:3479")
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := one.ReadFrom(buf)
			if err != nil {
				return
			}
			one.WriteTo(append([]byte("one:"), buf[:n]...), from)
			other.WriteTo(append([]byte("other:"), buf[:n]...), from)
		}
	}()
	var client net.PacketConn
	if err := a.Run(func() (err error) {
		client, err = net.ListenPacket("udp4", ":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := client.WriteTo([]byte("hello"), &net.UDPAddr{IP: net.IPv4(198, 19, 1, 1), Port: 3478}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	buf := make([]byte, 1500)
	for len(got) < 2 {
		n, from, err := client.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got[from.String()] = string(buf[:n])
	}
	if got["198.19.1.1:3478"] != "one:hello" || got["198.19.2.2:3479"] != "other:hello" {
		t.Fatalf("replies: %q", got)
	}
	one.Close()
	other.Close()
	waitIdle(t, r)
}
