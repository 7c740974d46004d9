package netstack

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// echoRequest marshals an ICMP echo request as golang.org/x/net/icmp does.
func echoRequest(t *testing.T, id, seq int, data []byte) []byte {
	t.Helper()
	b, err := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readEcho reads from c until an echo message of type typ with id arrives.
func readEcho(t *testing.T, c net.PacketConn, typ ipv4.ICMPType, id int) (*icmp.Echo, net.Addr) {
	t.Helper()
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for %v id %d: %v", typ, id, err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			t.Fatalf("parse %x: %v", buf[:n], err)
		}
		if e, ok := m.Body.(*icmp.Echo); ok && m.Type == typ && e.ID == id {
			return e, from
		}
	}
}

// TestICMPSocketEcho: an ICMP socket from ListenPacket("ip4:icmp") works
// with golang.org/x/net/icmp: a request written to another stack draws
// that stack's reply, read back with its sender; the other stack's own
// socket sees a copy of the request while the stack still answers it.
func TestICMPSocketEcho(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	pa, err := a.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	pb, err := b.ListenPacket("ip4:1", "198.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	pa.SetDeadline(time.Now().Add(10 * time.Second))
	pb.SetDeadline(time.Now().Add(10 * time.Second))
	data := []byte("over an ICMP socket")
	if _, err := pa.WriteTo(echoRequest(t, 0x1234, 7, data), &net.IPAddr{IP: net.IPv4(198, 18, 0, 2)}); err != nil {
		t.Fatal(err)
	}
	e, from := readEcho(t, pa, ipv4.ICMPTypeEchoReply, 0x1234)
	if e.Seq != 7 || !bytes.Equal(e.Data, data) || from.String() != "198.18.0.2" {
		t.Fatalf("reply %+v from %v", e, from)
	}
	if e, from := readEcho(t, pb, ipv4.ICMPTypeEcho, 0x1234); e.Seq != 7 || from.String() != "198.18.0.1" {
		t.Fatalf("copy of the request %+v from %v", e, from)
	}
	if pa.LocalAddr().String() != "198.18.0.1" {
		t.Fatalf("local address %v", pa.LocalAddr())
	}
}

// TestICMPSocketDial: Dial("ip4:icmp", host) gives a connected socket,
// a net.Conn that writes to its peer and reads only its peer's messages;
// errors follow package net's.
func TestICMPSocketDial(t *testing.T) {
	checkGoroutines(t)
	a, _ := newPipePair(t)
	c, err := a.Dial("ip4:icmp", "198.18.0.2")
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(echoRequest(t, 99, 1, []byte("hi"))); err != nil {
		t.Fatal(err)
	}
	e, _ := readEcho(t, c.(*IPConn), ipv4.ICMPTypeEchoReply, 99)
	if e.Seq != 1 || string(e.Data) != "hi" || c.RemoteAddr().String() != "198.18.0.2" {
		t.Fatalf("reply %+v, remote %v", e, c.RemoteAddr())
	}
	if _, err := c.(*IPConn).WriteTo([]byte{8, 0, 0, 0, 0, 0, 0, 0}, &net.IPAddr{IP: net.IPv4(198, 18, 0, 3)}); err == nil {
		t.Fatal("WriteTo on a connected ICMP socket succeeded")
	}
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	c.Close()
	_, err = c.Read(make([]byte, 10))
	wantClosed(t, "ICMP read", "read", err)
	_, err = c.Write([]byte{8, 0, 0, 0, 0, 0, 0, 0})
	wantClosed(t, "ICMP write", "write", err)
	wantClosed(t, "ICMP SetDeadline", "set", c.SetDeadline(time.Time{}))

	for _, bad := range []struct{ network, address string }{
		{"ip4:tcp", "0.0.0.0"}, {"ip4:icmp", "198.18.0.9"}, {"ip4:icmp", "nonsense"},
	} {
		if pc, err := a.ListenPacket(bad.network, bad.address); err == nil {
			pc.Close()
			t.Errorf("ListenPacket(%q, %q) succeeded", bad.network, bad.address)
		} else if _, ok := err.(*net.OpError); !ok {
			t.Errorf("ListenPacket(%q, %q): %T %v, want *net.OpError", bad.network, bad.address, err, err)
		}
	}
}
