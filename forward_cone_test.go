package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestForwarderFullCone: with FullConeUDP one client socket's datagrams
// to two destinations make one flow, whose ReadFrom names each
// destination; replies written from a third address, never asked for,
// reach the client, which sees that address as their source.
func TestForwarderFullCone(t *testing.T) {
	checkGoroutines(t)
	flows := make(chan netip.AddrPort, 4)
	a, b := packetPair(t, &Forwarder{
		FullConeUDP:    true,
		UDPIdleTimeout: 200 * time.Millisecond,
		UDP: func(r *UDPRequest) {
			flows <- r.Source()
			c, err := r.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			buf := make([]byte, 2000)
			for {
				n, dst, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					return // the flow expired
				}
				reply := append([]byte(dst.String()+" "), buf[:n]...)
				if _, err := c.WriteToUDPAddrPort(reply, dst); err != nil {
					t.Error(err)
				}
				third := netip.AddrPortFrom(netip.MustParseAddr("198.19.9.9"), 999)
				if _, err := c.WriteToUDPAddrPort([]byte("unasked"), third); err != nil {
					t.Error(err)
				}
			}
		},
	})
	pc, err := a.ListenUDP("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	for _, d := range []string{"198.19.1.1:3478", "198.19.2.2:5000"} {
		dst := netip.MustParseAddrPort(d)
		if _, err := pc.WriteToUDPAddrPort([]byte("hi"), dst); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		buf := make([]byte, 100)
		for range 2 {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			got[from.String()] = string(buf[:n])
		}
		if got[d] != d+" hi" || got["198.19.9.9:999"] != "unasked" {
			t.Fatalf("replies to %v: %q", d, got)
		}
	}
	if len(flows) != 1 {
		t.Fatalf("%d flows for one source, want 1", len(flows))
	}
	waitFor(t, "the flow to expire", func() bool { return b.e.FlowCount() == 0 })
}

// TestForwarderSpoofedSources: with a Forwarder, a TCP dial and a UDP
// socket may use an address not the stack's, and what comes back to it
// arrives; without one, binding it fails with EADDRNOTAVAIL.
func TestForwarderSpoofedSources(t *testing.T) {
	checkGoroutines(t)
	a, b := packetPair(t, &Forwarder{TCP: func(r *TCPRequest) { r.Refuse() }})
	ln, err := a.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte(c.RemoteAddr().String()))
		c.Close()
	}()
	foreign := netip.MustParseAddr("198.19.7.7")
	d := Dialer{Stack: b, LocalAddr: &net.TCPAddr{IP: foreign.AsSlice()}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", "198.18.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, _ := c.Read(buf)
	c.Close()
	if got, _ := netip.ParseAddrPort(string(buf[:n])); got.Addr() != foreign {
		t.Fatalf("the server saw %q, want %v", buf[:n], foreign)
	}

	uc, err := b.ListenPacket("udp4", "198.19.7.8:4000")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	pa, err := a.ListenPacket("udp4", "198.18.0.1:4001")
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	if _, err := uc.WriteTo([]byte("ping"), &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 4001}); err != nil {
		t.Fatal(err)
	}
	pa.SetDeadline(time.Now().Add(10 * time.Second))
	n, from, err := pa.ReadFrom(buf)
	if err != nil || from.String() != "198.19.7.8:4000" {
		t.Fatalf("got %q from %v: %v", buf[:n], from, err)
	}
	pa.WriteTo([]byte("pong"), from)
	uc.SetDeadline(time.Now().Add(10 * time.Second))
	if n, _, err = uc.ReadFrom(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("reply to the foreign address: %q %v", buf[:n], err)
	}

	if _, err := a.ListenPacket("udp4", "198.19.7.9:4000"); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("foreign bind without a forwarder: %v", err)
	}
}

// TestForwarderSetMSS: the connection of a request whose MSS was set
// advertises it, and the peer's segments respect it.
func TestForwarderSetMSS(t *testing.T) {
	checkGoroutines(t)
	a, _ := packetPair(t, &Forwarder{TCP: func(r *TCPRequest) {
		if err := r.SetMSS(10); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("SetMSS(10): %v", err)
		}
		if err := r.SetMSS(600); err != nil {
			t.Error(err)
		}
		c, err := r.Accept(context.Background())
		if err != nil {
			return
		}
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
	}})
	c, err := a.Dial("tcp", "198.19.3.3:443")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 100000)); err != nil {
		t.Fatal(err)
	}
	if mss := c.(*TCPConn).Info().SndMSS; mss > 600 {
		t.Fatalf("client's send MSS %d, want ≤ 600", mss)
	}
}

// TestTimeWaitEvicted: at Limits.MaxConnections, connections in TIME-WAIT
// make room for new ones (the oldest ended early and counted) instead of
// refusing them.
func TestTimeWaitEvicted(t *testing.T) {
	checkGoroutines(t)
	a, b := packetPairLimits(t, nil, Limits{MaxConnections: 4})
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // the server closes first: TIME-WAIT on b
		}
	}()
	for i := range 12 {
		c, err := a.Dial("tcp", "198.18.0.2:80")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Read(make([]byte, 1)) // EOF: b's FIN
		c.Close()               // its FIN reaches b before the next SYN: b is in TIME-WAIT
	}
	if n := b.e.ConnCount(); n > 4 {
		t.Fatalf("%d connections on b, limit 4", n)
	}
	if st := b.Stats().TCP; st.TimeWaitEvicted < 8 || st.DropConnLimit != 0 {
		t.Fatalf("evicted %d, refused %d", st.TimeWaitEvicted, st.DropConnLimit)
	}
}
