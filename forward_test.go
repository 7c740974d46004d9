package netstack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// packetPair joins two stacks with PacketLinks carrying bare IP packets,
// the way a VPN transport would: each side's Output injects into the
// other.
func packetPair(t testing.TB, fwd *Forwarder) (a, b *Stack) {
	t.Helper()
	return packetPairLimits(t, fwd, Limits{})
}

// packetPairLimits is packetPair with the forwarding stack's Limits.
func packetPairLimits(t testing.TB, fwd *Forwarder, lim Limits) (a, b *Stack) {
	t.Helper()
	var la, lb *PacketLink
	la = NewPacketLink(PacketLinkConfig{Output: func(p []byte) { lb.Inject(p) }})
	lb = NewPacketLink(PacketLinkConfig{Output: func(p []byte) { la.Inject(p) }})
	var err error
	pp := netip.MustParsePrefix
	a, err = New(Config{Link: la, Addrs: []netip.Prefix{pp("198.18.0.1/24"), pp("fd00:18::1/64")}})
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(Config{Link: lb, Addrs: []netip.Prefix{pp("198.18.0.2/24"), pp("fd00:18::2/64")}, Forwarder: fwd, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// The stack reads a bare IP packet where the PacketLink holds it, with
// room before it: an echo reply is built in place there, and a datagram
// too big for one packet is reassembled from lent fragments.
func TestPacketLinkLentPackets(t *testing.T) {
	checkGoroutines(t)
	a, b := packetPair(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		if _, err := a.Ping(ctx, b.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	// b counts a reply once it has sent it, which may be after a read it.
	waitFor(t, "b's replies counted", func() bool { return b.Stats().ICMP.EchoRepliesOut == 3 })
	if st := b.Stats().ICMP; st.EchoRequestsIn != 3 || st.EchoRepliesOut != 3 {
		t.Fatalf("echo: %+v", st)
	}
	pb, err := b.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	pa, err := a.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	msg := make([]byte, 6000)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	if _, err := pa.WriteTo(msg, &net.UDPAddr{IP: b.Addr().AsSlice(), Port: 53}); err != nil {
		t.Fatal(err)
	}
	pb.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8000)
	n, _, err := pb.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("datagram: %d bytes, %v", n, err)
	}
	if st := b.Stats().IPv4; st.Reassembled != 1 {
		t.Fatalf("reassembled %d datagrams, want 1", st.Reassembled)
	}
}

func TestPacketLinkNettest(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := packetPair(t, nil)
		ln, err := b.Listen("tcp", ":0")
		if err != nil {
			return nil, nil, nil, err
		}
		acc := make(chan net.Conn, 1)
		go func() { c, _ := ln.Accept(); acc <- c }()
		c1, err = a.Dial("tcp", netip.AddrPortFrom(b.Addr(), uint16(ln.Addr().(*net.TCPAddr).Port)).String())
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-acc
		return c1, c2, func() { c1.Close(); c2.Close(); ln.Close(); a.Close(); b.Close() }, nil
	})
}

func TestForwarderTCP(t *testing.T) {
	checkGoroutines(t)
	seen := make(chan [2]netip.AddrPort, 10)
	a, _ := packetPair(t, &Forwarder{TCP: func(r *TCPRequest) {
		if r.Destination().Port() == 81 {
			r.Refuse()
			return
		}
		c, err := r.Accept(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		seen <- [2]netip.AddrPort{r.Source(), c.LocalAddr().(*net.TCPAddr).AddrPort()}
		io.Copy(c, c)
		c.Close()
	}})
	for _, dst := range []string{"198.19.7.7:8080", "203.0.113.9:443", "[2001:db8::7]:8080", "[fd00:19::9]:443"} {
		c, err := a.Dial("tcp", dst)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := []byte("through the tunnel to " + dst)
		c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%q %v", got, err)
		}
		ends := <-seen
		if ends[1].String() != dst || ends[0] != c.LocalAddr().(*net.TCPAddr).AddrPort() {
			t.Fatalf("handler saw %v→%v, dialed %v from %v", ends[0], ends[1], dst, c.LocalAddr())
		}
		c.Close()
	}
	for _, dst := range []string{"198.19.7.7:81", "[2001:db8::7]:81"} {
		if _, err := a.Dial("tcp", dst); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("refused flow to %v: %v", dst, err)
		}
	}
}

func TestForwarderUDP(t *testing.T) {
	checkGoroutines(t)
	a, b := packetPair(t, &Forwarder{
		UDPIdleTimeout: 200 * time.Millisecond,
		UDP: func(r *UDPRequest) {
			if r.Destination().Port() == 54 {
				r.Refuse()
				return
			}
			c, err := r.Accept()
			if err != nil {
				t.Error(err)
				return
			}
			buf := make([]byte, 2000)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return // the flow expired
				}
				c.Write(append([]byte(r.Destination().String()+" "), buf[:n]...))
			}
		},
	})
	for _, dst := range []string{"198.19.8.8:53", "[2001:db8::8]:53"} {
		c, err := a.Dial("udp", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		for _, m := range []string{"one", "two"} {
			c.Write([]byte(m))
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil || string(buf[:n]) != dst+" "+m {
				t.Fatalf("%q %v", buf[:n], err)
			}
		}
	}
	// Idle flows expire.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := b.e.FlowCount()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("idle flow never expired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, dst := range []string{"198.19.8.8:54", "[2001:db8::8]:54"} {
		r, err := a.Dial("udp", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		r.Write([]byte("x"))
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := r.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("refused flow to %v: %v", dst, err)
		}
	}
}

// TestForwarderUDPFlowLimit: with Limits.ForwardedUDPFlows at 2, a third
// flow is dropped and counted while two are open (the handler is never
// called for it), and is taken once one of the two has closed.
func TestForwarderUDPFlowLimit(t *testing.T) {
	checkGoroutines(t)
	var handled atomic.Int32
	a, b := packetPairLimits(t, &Forwarder{
		UDP: func(r *UDPRequest) {
			handled.Add(1)
			c, err := r.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			buf := make([]byte, 100)
			for range 2 { // echo two datagrams, then close the flow
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				c.Write(buf[:n])
			}
		},
	}, Limits{ForwardedUDPFlows: 2})
	dial := func(dst string) net.Conn {
		c, err := a.Dial("udp", dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	echo := func(c net.Conn, msg string) {
		t.Helper()
		c.Write([]byte(msg))
		buf := make([]byte, 10)
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != msg {
			t.Fatalf("echo %q: %q %v", msg, buf[:n], err)
		}
	}
	c1, c2 := dial("198.19.1.1:9"), dial("198.19.1.2:9")
	echo(c1, "one")
	echo(c2, "two")
	if n := b.e.FlowCount(); n != 2 {
		t.Fatalf("%d flows, want 2", n)
	}
	c3 := dial("198.19.1.3:9")
	c3.Write([]byte("three"))
	waitFor(t, "the third flow's drop", func() bool { return b.Stats().UDP.DropFlowLimit == 1 })
	if n := handled.Load(); n != 2 {
		t.Fatalf("%d handlers called, want 2", n)
	}
	echo(c1, "bye") // the first flow's second datagram: it closes
	waitFor(t, "the first flow to close", func() bool { return b.e.FlowCount() == 1 })
	echo(c3, "three")
}

// waitFor waits, up to 10 s (a bound against a hang), for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A Forwarder's pending TCP requests are bounded by MaxPending, and its
// connections with them by Limits.MaxConnections: a SYN past either bound
// is dropped and counted before any handler starts; the peer's
// retransmission gets in once there is room.
func TestForwarderTCPBounds(t *testing.T) {
	checkGoroutines(t)
	var handled atomic.Int32
	release := make(chan struct{})
	a, b := packetPair(t, &Forwarder{MaxPending: 3, TCP: func(r *TCPRequest) {
		handled.Add(1)
		<-release
		r.Refuse()
	}})
	errs := make(chan error, 6)
	for i := range 6 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := a.DialContext(ctx, "tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 2, byte(i)}), 80).String())
			errs <- err
		}()
	}
	waitFor(t, "three handlers and three SYNs dropped", func() bool {
		return handled.Load() == 3 && b.Stats().TCP.DropForwardPending >= 3
	})
	close(release)
	for range 6 {
		if err := <-errs; !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial: %v, want ECONNREFUSED once a handler refused", err)
		}
	}
	if n := handled.Load(); n != 6 {
		t.Fatalf("%d handlers, want 6: each retransmitted SYN handled once there was room", n)
	}

	held := make(chan *TCPConn, 4)
	a, b = packetPairLimits(t, &Forwarder{TCP: func(r *TCPRequest) {
		handled.Add(1)
		if c, err := r.Accept(context.Background()); err == nil {
			held <- c
		}
	}}, Limits{MaxConnections: 2})
	handled.Store(0)
	for i := range 2 {
		c, err := a.Dial("tcp", netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 3, byte(i)}), 80).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		defer (<-held).Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := a.DialContext(ctx, "tcp", "198.19.3.9:80"); err == nil {
		t.Fatal("a third connection past MaxConnections 2")
	}
	if n, st := handled.Load(), b.Stats().TCP; n != 2 || st.DropConnLimit < 1 {
		t.Fatalf("%d handlers, %d SYNs dropped at the limit: want 2 and at least 1", n, st.DropConnLimit)
	}
}

// A Forwarder's Echo handler sees pings of either family to any address:
// the ones it answers come back to Ping from the address asked for, with
// their data; the ones it refuses fail with host unreachable; and past
// MaxPendingEcho unanswered ones, the rest are dropped and counted.
func TestForwarderEcho(t *testing.T) {
	checkGoroutines(t)
	seen := make(chan [2]netip.Addr, 16)
	hold := make(chan struct{})
	a, b := packetPair(t, &Forwarder{MaxPendingEcho: 2, Echo: func(r *EchoRequest) {
		seen <- [2]netip.Addr{r.Source(), r.Destination()}
		switch r.Destination().As16()[15] {
		case 7:
			if err := r.Reply(); err != nil {
				t.Error(err)
			}
			if err := r.Reply(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second reply: %v, want net.ErrClosed", err)
			}
		case 8:
			r.Refuse()
		case 9:
			<-hold
		}
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, dst := range []string{"198.19.7.7", "2001:db8::7"} {
		d := netip.MustParseAddr(dst)
		if _, err := a.Ping(ctx, d); err != nil {
			t.Fatalf("ping %v through the forwarder: %v", d, err)
		}
		if got := <-seen; got[1] != d || !a.e.HasAddr(got[0]) {
			t.Fatalf("handler saw %v→%v for a ping to %v", got[0], got[1], d)
		}
	}
	for _, dst := range []string{"198.19.7.8", "2001:db8::8"} {
		if _, err := a.Ping(ctx, netip.MustParseAddr(dst)); !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Fatalf("refused ping to %v: %v, want EHOSTUNREACH", dst, err)
		}
		<-seen
	}
	// At most two handlers run; a request past them is dropped before a
	// handler, and counted. Usually that is two held and one dropped, but
	// a handler above may not have returned yet (its answer can arrive
	// first), and it still counts. The pings wait until every request is
	// seen or dropped (not for a timeout a loaded machine could pass
	// before they are even sent), then give up.
	pending, giveUp := context.WithCancel(ctx)
	defer giveUp()
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := a.Ping(pending, netip.MustParseAddr("198.19.7.9")); errs <- err }()
	}
	drops := func() int { return int(b.Stats().ICMP.DropEchoPending) }
	waitFor(t, "three requests held or dropped", func() bool { return len(seen)+drops() == 3 })
	if held := len(seen); held > 2 || drops() < 1 {
		t.Fatalf("%d handlers ran with MaxPendingEcho 2, %d requests dropped", held, drops())
	}
	giveUp()
	for range 3 {
		if err := <-errs; err == nil {
			t.Fatal("an unanswered ping came back")
		}
	}
	close(hold)
	if st := b.Stats(); st.ICMP.EchoForwarded != 5 || st.ICMPv6.EchoForwarded != 2 {
		t.Fatalf("forwarded %d ICMP and %d ICMPv6 echoes, want 5 and 2", st.ICMP.EchoForwarded, st.ICMPv6.EchoForwarded)
	}
}
