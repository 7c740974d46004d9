package netstack_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	gvnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	wgnetstack "github.com/gotcpip/netstack/wireguard"
)

// echoRequest returns an ICMP echo request (RFC 792) with sequence number
// seq and data, identifier and checksum left zero for the ping socket to
// fill in.
func echoRequest(seq uint16, data []byte) []byte {
	m := make([]byte, 8, 8+len(data))
	m[0] = 8
	binary.BigEndian.PutUint16(m[6:], seq)
	return append(m, data...)
}

// echoRequestTo is echoRequest for to's family: an ICMPv6 echo request
// (RFC 4443 §4.1, type 128) for an IPv6 address.
func echoRequestTo(to netip.Addr, seq uint16, data []byte) []byte {
	m := echoRequest(seq, data)
	if to.Is6() {
		m[0] = 128
	}
	return m
}

// echoReply checks that m is an echo reply (type 0, code 0) with a valid
// RFC 792 checksum, sequence number seq and data, and returns its
// identifier.
func echoReply(t *testing.T, what string, m []byte, seq uint16, data []byte) uint16 {
	t.Helper()
	return echoReplyOf(t, what, false, m, seq, data)
}

// echoReplyOf is echoReply for either family: for v6 an ICMPv6 echo reply
// (RFC 4443 §4.2, type 129), whose checksum covers the IPv6 pseudo-header
// and was checked by the stack that received it.
func echoReplyOf(t *testing.T, what string, v6 bool, m []byte, seq uint16, data []byte) uint16 {
	t.Helper()
	if len(m) < 8 {
		t.Fatalf("%s: %d-byte message % x, want an echo reply", what, len(m), m)
	}
	typ := byte(0)
	got := binary.BigEndian.Uint16(m[2:])
	want := got
	if v6 {
		typ = 129
	} else {
		want = checksum(append([]byte(nil), m...))
	}
	if m[0] != typ || m[1] != 0 || got != want || binary.BigEndian.Uint16(m[6:]) != seq || !bytes.Equal(m[8:], data) {
		t.Fatalf("%s: got type %d code %d seq %d data %q checksum %#04x (want %#04x); want an echo reply (type %d), seq %d, data %q",
			what, m[0], m[1], binary.BigEndian.Uint16(m[6:]), m[8:], got, want, typ, seq, data)
	}
	return binary.BigEndian.Uint16(m[4:])
}

// unspecified returns the unspecified address of a's family.
func unspecified(a netip.Addr) netip.Addr {
	if a.Is6() {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// warmUp pings b from a (on our stack) until a reply comes, so that the
// WireGuard handshake is done and no later packet is lost to it.
func warmUp(t *testing.T, a, b *end) {
	t.Helper()
	for try := 0; ; try++ {
		if try == 20 {
			t.Fatalf("no reply from %v after %d pings", b.addr, try)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := a.ours.Stack().Ping(ctx, b.addr)
		cancel()
		if err == nil {
			return
		}
	}
}

// addrC is a third end's tunnel address, for TestPingFilters.
var addrC = netip.MustParseAddr("198.18.0.3")

// readDeadline bounds every read that must succeed: generous, it only
// catches a hang.
const readDeadline = 10 * time.Second

// pingConnected sends echo requests of several sizes (up to 3000 bytes,
// so fragmented) on a connected ping socket and checks each reply, its
// sender and the socket's addresses.
func pingConnected(t *testing.T, what string, c net.Conn, laddr, raddr netip.Addr) {
	t.Helper()
	defer c.Close()
	if la, ok := c.LocalAddr().(wgnetstack.PingAddr); !ok || la.Addr() != laddr || la.Network() != "ping"+family(laddr) {
		t.Errorf("%s: LocalAddr %T %v; want PingAddr %v", what, c.LocalAddr(), c.LocalAddr(), laddr)
	}
	if ra, ok := c.RemoteAddr().(wgnetstack.PingAddr); !ok || ra.Addr() != raddr {
		t.Errorf("%s: RemoteAddr %T %v; want PingAddr %v", what, c.RemoteAddr(), c.RemoteAddr(), raddr)
	}
	pc := c.(net.PacketConn)
	buf := make([]byte, 4000)
	var id uint16
	for i, size := range []int{0, 56, 1392, 3000} {
		data := bytes.Repeat([]byte{byte('a' + i)}, size)
		seq := uint16(100 + i)
		req := echoRequestTo(raddr, seq, data)
		if n, err := c.Write(req); n != len(req) || err != nil {
			t.Fatalf("%s: Write = %d, %v; want %d, nil", what, n, err, len(req))
		}
		c.SetReadDeadline(time.Now().Add(readDeadline))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s: ReadFrom: %v", what, err)
		}
		if got := echoReplyOf(t, what, raddr.Is6(), buf[:n], seq, data); i > 0 && got != id {
			t.Errorf("%s: reply %d has identifier %#x, the earlier ones %#x", what, i, got, id)
		} else {
			id = got
		}
		if pa, ok := from.(*wgnetstack.PingAddr); !ok || pa.Addr() != raddr {
			t.Errorf("%s: reply from %T %v; want *PingAddr %v", what, from, from, raddr)
		}
	}
}

// pingListening sends an echo request from an unconnected ping socket with
// WriteTo, to each of the address types it takes, and checks the replies.
func pingListening(t *testing.T, what string, pc net.PacketConn, raddr netip.Addr) {
	t.Helper()
	defer pc.Close()
	buf := make([]byte, 1500)
	for i, to := range []net.Addr{wgnetstack.PingAddrFromAddr(raddr), &net.IPAddr{IP: raddr.AsSlice()}} {
		data := []byte(fmt.Sprintf("to %T", to))
		seq := uint16(200 + i)
		if _, err := pc.WriteTo(echoRequestTo(raddr, seq, data), to); err != nil {
			t.Fatalf("%s: WriteTo(%T): %v", what, to, err)
		}
		pc.SetReadDeadline(time.Now().Add(readDeadline))
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%s: ReadFrom: %v", what, err)
		}
		echoReplyOf(t, what, raddr.Is6(), buf[:n], seq, data)
		if pa, ok := from.(*wgnetstack.PingAddr); !ok || pa.Addr() != raddr {
			t.Errorf("%s: reply from %T %v; want *PingAddr %v", what, from, from, raddr)
		}
	}
}

// TestPingToGVisor pings wireguard-go's gVisor netstack, which answers,
// from our PingConn: DialPingAddr, DialPing, ListenPingAddr, ListenPing,
// and Dial's "ping" and "ping4" networks.
func TestPingToGVisor(t *testing.T) {
	a, b := pair(t, true, false, nil)
	testPingFromOurs(t, a, b, addrA, addrB)
}

// TestPingOursBothEnds is TestPingToGVisor with our stack answering.
func TestPingOursBothEnds(t *testing.T) {
	a, b := pair(t, true, true, nil)
	testPingFromOurs(t, a, b, addrA, addrB)
}

// testPingFromOurs pings b at addrB from a, ours, at addrA, with each way
// of making a ping socket, of addrB's family.
func testPingFromOurs(t *testing.T, a, b *end, addrA, addrB netip.Addr) {
	warmUp(t, a, b)
	unspec := unspecified(addrB)

	c, err := a.ours.DialPingAddr(netip.Addr{}, addrB)
	if err != nil {
		t.Fatal(err)
	}
	pingConnected(t, "DialPingAddr", c, unspec, addrB)
	c, err = a.ours.DialPing(wgnetstack.PingAddrFromAddr(addrA), wgnetstack.PingAddrFromAddr(addrB))
	if err != nil {
		t.Fatal(err)
	}
	pingConnected(t, "DialPing", c, addrA, addrB)
	for _, network := range []string{"ping", "ping" + family(addrB)} {
		dc, err := a.ours.Dial(network, addrB.String())
		if err != nil {
			t.Fatalf("Dial(%q): %v", network, err)
		}
		pingConnected(t, "Dial "+network, dc, unspec, addrB)
	}

	lc, err := a.ours.ListenPingAddr(unspec)
	if err != nil {
		t.Fatal(err)
	}
	if ra, ok := lc.RemoteAddr().(wgnetstack.PingAddr); !ok || ra.Addr().IsValid() || ra.Network() != "ping" {
		t.Errorf("ListenPingAddr: RemoteAddr %T %v; want the zero PingAddr", lc.RemoteAddr(), lc.RemoteAddr())
	}
	pingListening(t, "ListenPingAddr", lc, addrB)
	lc, err = a.ours.ListenPing(wgnetstack.PingAddrFromAddr(addrA))
	if err != nil {
		t.Fatal(err)
	}
	pingListening(t, "ListenPing", lc, addrB)

	// Writers and a reader at once on one socket (for the race detector):
	// every reply comes back once.
	c, err = a.ours.DialPingAddr(netip.Addr{}, addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const writers, each = 4, 16
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				seq := uint16(w*each + i)
				if _, err := c.Write(echoRequestTo(addrB, seq, []byte{byte(seq)})); err != nil {
					t.Errorf("concurrent Write: %v", err)
				}
			}
		})
	}
	seen := make(map[uint16]bool)
	buf := make([]byte, 100)
	for len(seen) < writers*each {
		c.SetReadDeadline(time.Now().Add(readDeadline))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("concurrent pings: %d of %d replies, then %v", len(seen), writers*each, err)
		}
		seq := binary.BigEndian.Uint16(buf[6:])
		echoReplyOf(t, "concurrent ping", addrB.Is6(), buf[:n], seq, []byte{byte(seq)})
		if seen[seq] || seq >= writers*each {
			t.Fatalf("concurrent pings: reply %d again or unasked", seq)
		}
		seen[seq] = true
	}
	wg.Wait()
}

// TestPingFromGVisor pings our stack, which answers, from wireguard-go's
// own gVisor PingConn, connected and not.
func TestPingFromGVisor(t *testing.T) {
	a, b := pair(t, true, false, nil)
	testPingFromGVisor(t, a, b, addrA, addrB)
}

// testPingFromGVisor pings a, ours, at addrA from b, wireguard-go's, at
// addrB.
func testPingFromGVisor(t *testing.T, a, b *end, addrA, addrB netip.Addr) {
	warmUp(t, a, b)
	buf := make([]byte, 4000)
	// gVisor's PingConn.ReadFrom waits for a wakeup that comes only when a
	// reply reaches an empty queue after the read began, so the read is
	// started first, and a socket that missed its wakeup is replaced.
	ping := func(what string, open func() (net.PacketConn, error), write func(net.PacketConn, []byte) error, seq uint16, data []byte) {
		t.Helper()
		for try := 0; ; try++ {
			if try == 5 {
				t.Fatalf("%s: no reply after %d sockets", what, try)
			}
			pc, err := open()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			type result struct {
				n    int
				from net.Addr
				err  error
			}
			done := make(chan result, 1)
			pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			go func() {
				n, from, err := pc.ReadFrom(buf)
				done <- result{n, from, err}
			}()
			if err := write(pc, echoRequestTo(addrA, seq, data)); err != nil {
				t.Fatalf("%s: write: %v", what, err)
			}
			r := <-done
			pc.Close()
			if errors.Is(r.err, os.ErrDeadlineExceeded) {
				continue
			}
			if r.err != nil {
				t.Fatalf("%s: ReadFrom: %v", what, r.err)
			}
			echoReplyOf(t, what, addrA.Is6(), buf[:r.n], seq, data)
			if from, ok := r.from.(*gvnetstack.PingAddr); !ok || from.Addr() != addrA {
				t.Errorf("%s: reply from %T %v; want %v", what, r.from, r.from, addrA)
			}
			return
		}
	}
	for i, size := range []int{0, 56, 1392, 3000} {
		data := bytes.Repeat([]byte{byte('k' + i)}, size)
		ping(fmt.Sprintf("gVisor DialPingAddr, %d bytes", size), func() (net.PacketConn, error) {
			return b.theirs.DialPingAddr(netip.Addr{}, addrA)
		}, func(pc net.PacketConn, m []byte) error {
			_, err := pc.(net.Conn).Write(m)
			return err
		}, uint16(i), data)
	}
	ping("gVisor ListenPingAddr", func() (net.PacketConn, error) {
		return b.theirs.ListenPingAddr(addrB)
	}, func(pc net.PacketConn, m []byte) error {
		_, err := pc.WriteTo(m, &net.IPAddr{IP: addrA.AsSlice()})
		return err
	}, 9, []byte("unconnected"))
}

// TestPingFilters: each of two ping sockets on one Net reads only the
// echo replies with its own identifier, which it puts in its requests
// whatever the caller wrote there; never the other's replies, nor echo
// requests to the stack (even with its identifier), nor, when connected,
// replies from another address; and it gets a reply queued before it
// began to read.
func TestPingFilters(t *testing.T) {
	a, b := pair(t, true, true, nil)
	s1, s2 := pingSockets(t, a, b, addrB)
	to := wgnetstack.PingAddrFromAddr(addrB)
	buf := make([]byte, 1500)
	read := func(what string, c *wgnetstack.PingConn, seq uint16, data string) uint16 {
		t.Helper()
		id, _ := readReply(t, what, c, buf, false, seq, data)
		return id
	}

	if _, err := s1.WriteTo(echoRequest(1, []byte("one")), to); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Write(echoRequest(2, []byte("two"))); err != nil {
		t.Fatal(err)
	}
	// Once s2 has reply 2, s1 has its copy too if it were taking it.
	id2 := read("s2", s2, 2, "two")
	// b pings a: a's stack answers; the request is not a reply for s1.
	bc, err := b.ours.DialPingAddr(netip.Addr{}, addrA)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if _, err := bc.Write(echoRequest(7, []byte("to a"))); err != nil {
		t.Fatal(err)
	}
	read("b", bc, 7, "to a")
	if _, err := s1.WriteTo(echoRequest(3, []byte("three")), to); err != nil {
		t.Fatal(err)
	}
	id1 := read("s1 first", s1, 1, "one") // queued before this read
	if got := read("s1 second", s1, 3, "three"); got != id1 {
		t.Errorf("s1's replies have identifiers %#x and %#x", id1, got)
	}
	if id1 == id2 {
		t.Errorf("s1 and s2 have the same echo identifier %#x", id1)
	}
	// An identifier put in the request is the socket's in the reply.
	req := echoRequest(4, []byte("four"))
	binary.BigEndian.PutUint16(req[4:], id1^0xffff)
	if _, err := s2.Write(req); err != nil {
		t.Fatal(err)
	}
	if got := read("s2 own id", s2, 4, "four"); got != id2 {
		t.Errorf("s2 sent identifier %#x: reply has %#x, want the socket's %#x", id1^0xffff, got, id2)
	}

	// Raw ICMP sockets on b and on a third end, c, send messages as given,
	// with s1's and s2's identifiers.
	rawB, err := b.ours.Stack().ListenPacket("ip4:icmp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rawB.Close()
	c := newEnd(t, "c", true, []netip.Addr{addrC}, nil)
	t.Cleanup(c.dev.Close)
	peer(t, a, c)
	warmUp(t, c, a)
	rawC, err := c.ours.Stack().ListenPacket("ip4:icmp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rawC.Close()
	toA := &net.IPAddr{IP: addrA.AsSlice()}
	withID := func(m []byte, id uint16) []byte {
		binary.BigEndian.PutUint16(m[4:], id)
		binary.BigEndian.PutUint16(m[2:], checksum(m))
		return m
	}
	// An echo request to a with s1's identifier is the stack's to answer,
	// not s1's to read: once b has the answer, s1 must have ignored it.
	if _, err := rawB.WriteTo(withID(echoRequest(5, []byte("raw")), id1), toA); err != nil {
		t.Fatal(err)
	}
	for {
		rawB.SetReadDeadline(time.Now().Add(readDeadline))
		n, _, err := rawB.ReadFrom(buf)
		if err != nil {
			t.Fatalf("raw socket on b: %v", err)
		}
		if buf[0] == 0 && binary.BigEndian.Uint16(buf[6:]) == 5 {
			echoReply(t, "answer to the raw request", buf[:n], 5, []byte("raw"))
			break
		}
	}
	// Echo replies from c: the one with s2's identifier is not for s2,
	// connected to b; the one with s1's is for s1, which is not connected
	// (replies match by identifier alone, as on Linux and gVisor).
	echoReplyMsg := func(seq uint16, data string, id uint16) []byte {
		m := echoRequest(seq, []byte(data))
		m[0] = 0
		return withID(m, id)
	}
	for _, m := range [][]byte{echoReplyMsg(6, "for s2", id2), echoReplyMsg(7, "for s1", id1)} {
		if _, err := rawC.WriteTo(m, toA); err != nil {
			t.Fatal(err)
		}
	}
	s1.SetReadDeadline(time.Now().Add(readDeadline))
	n, from, err := s1.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	echoReply(t, "s1, reply from c", buf[:n], 7, []byte("for s1"))
	if pa, ok := from.(*wgnetstack.PingAddr); !ok || pa.Addr() != addrC {
		t.Errorf("s1: reply from %v, want %v", from, addrC)
	}
	// The reply for s1 came after the one from c for s2, so s2 has passed
	// that one by if it is to read this one next.
	if _, err := s2.Write(echoRequest(8, []byte("eight"))); err != nil {
		t.Fatal(err)
	}
	read("s2 after c's reply", s2, 8, "eight")
}

// pingSockets warms the tunnel from a to b, then opens on a, ours, two
// ping sockets of peer's family, closed when the test ends: s1 listening
// on the unspecified address and s2 connected to peer, one of b's.
func pingSockets(t *testing.T, a, b *end, peer netip.Addr) (s1, s2 *wgnetstack.PingConn) {
	t.Helper()
	warmUp(t, a, b)
	s1, err := a.ours.ListenPingAddr(unspecified(peer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s1.Close() })
	s2, err = a.ours.DialPingAddr(netip.Addr{}, peer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s1, s2
}

// readReply reads an echo reply (echoReplyOf) from c into buf within
// readDeadline and returns its identifier and sender.
func readReply(t *testing.T, what string, c *wgnetstack.PingConn, buf []byte, v6 bool, seq uint16, data string) (uint16, net.Addr) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(readDeadline))
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("%s: Read: %v", what, err)
	}
	return echoReplyOf(t, what, v6, buf[:n], seq, []byte(data)), from
}

// checksum returns the RFC 792 checksum of m, its checksum field zero.
func checksum(m []byte) uint16 {
	m[2], m[3] = 0, 0
	var sum uint32
	for i := 0; i+1 < len(m); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(m[i:]))
	}
	if len(m)%2 == 1 {
		sum += uint32(m[len(m)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// TestPingDeadlinesAndClose: read deadlines (past, pending, cleared) and
// write deadlines fail as package net's do, Close ends a blocked Read
// with net.ErrClosed, and closing the device ends the sockets' reads.
func TestPingDeadlinesAndClose(t *testing.T) {
	a, b := pair(t, true, false, nil)
	warmUp(t, a, b)
	c, err := a.ours.DialPingAddr(netip.Addr{}, addrB)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	isDeadline := func(what string, err error) {
		t.Helper()
		var oe *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !isTimeout(err) || !errors.As(err, &oe) || oe.Net != "ping4" {
			t.Errorf("%s: %v; want a ping4 *net.OpError wrapping os.ErrDeadlineExceeded", what, err)
		}
	}

	c.SetReadDeadline(time.Now().Add(-time.Second))
	_, err = c.Read(buf)
	isDeadline("Read past the deadline", err)

	// A deadline set while a Read waits ends it.
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := c.Read(buf); done <- err }()
	c.SetReadDeadline(time.Now())
	isDeadline("pending Read", <-done)

	// Cleared, the socket reads again.
	c.SetDeadline(time.Time{})
	if _, err := c.Write(echoRequest(1, []byte("again"))); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(readDeadline))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	echoReply(t, "after clearing", buf[:n], 1, []byte("again"))
	c.SetReadDeadline(time.Time{})

	c.SetWriteDeadline(time.Now().Add(-time.Second))
	_, err = c.Write(echoRequest(2, nil))
	isDeadline("Write past the deadline", err)
	c.SetWriteDeadline(time.Time{})

	go func() { _, err := c.Read(buf); done <- err }()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read blocked across Close: %v; want net.ErrClosed", err)
	}
	if _, err := c.Write(echoRequest(3, nil)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v; want net.ErrClosed", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v; want net.ErrClosed", err)
	}
	if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetDeadline after Close: %v; want net.ErrClosed", err)
	}

	// Closing the device (and with it the stack) ends a blocked Read.
	lc, err := a.ours.ListenPingAddr(netip.IPv4Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _, err := lc.ReadFrom(buf); done <- err }()
	a.dev.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read blocked across device Close: %v; want net.ErrClosed", err)
	}
}

// TestPingErrors: what DialPingAddr, Dial and writes refuse, each a
// *net.OpError.
func TestPingErrors(t *testing.T) {
	a, _ := pair(t, true, false, nil)
	v6 := netip.MustParseAddr("fd00::1")
	for _, tc := range []struct{ laddr, raddr netip.Addr }{
		{netip.Addr{}, netip.Addr{}},               // wireguard-go's "invalid address"
		{addrA, v6},                                // two families
		{netip.IPv6Unspecified(), addrB},           // two families
		{netip.MustParseAddr("198.18.0.9"), addrB}, // not the Net's address
	} {
		_, err := a.ours.DialPingAddr(tc.laddr, tc.raddr)
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("DialPingAddr(%v, %v) = %v; want a dial *net.OpError", tc.laddr, tc.raddr, err)
		}
	}
	if _, err := a.ours.DialPingAddr(addrA, v6); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("DialPingAddr from %v to %v: %v; want EAFNOSUPPORT", addrA, v6, err)
	}
	if _, err := a.ours.ListenPing(nil); err == nil {
		t.Error("ListenPing(nil) succeeded; wireguard-go's fails")
	}
	for _, tc := range []struct{ network, address string }{
		{"ping6", addrB.String()},        // no IPv4 address for ping6
		{"ping4", "fd00::1"},             // IPv6
		{"ping4", addrB.String() + ":1"}, // a ping address has no port
		{"pong", addrB.String()},
	} {
		if c, err := a.ours.Dial(tc.network, tc.address); err == nil {
			c.Close()
			t.Errorf("Dial(%q, %q) succeeded", tc.network, tc.address)
		}
	}

	lc, err := a.ours.ListenPingAddr(addrA)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	to := wgnetstack.PingAddrFromAddr(addrB)
	reply := echoRequest(1, nil)
	reply[0] = 0
	for _, tc := range []struct {
		what string
		m    []byte
		to   net.Addr
		want error
	}{
		{"echo reply", reply, to, syscall.EINVAL},
		{"short", []byte{8, 0, 0, 0}, to, syscall.EINVAL},
		{"code 1", append([]byte{8, 1}, make([]byte, 6)...), to, syscall.EINVAL},
		{"IPv6", echoRequest(1, nil), wgnetstack.PingAddrFromAddr(v6), syscall.EAFNOSUPPORT},
		{"ICMPv6 echo request", echoRequestTo(v6, 1, nil), to, syscall.EINVAL},
		{"UDP address", echoRequest(1, nil), &net.UDPAddr{IP: addrB.AsSlice()}, nil},
	} {
		n, err := lc.WriteTo(tc.m, tc.to)
		var oe *net.OpError
		if n != 0 || !errors.As(err, &oe) || oe.Op != "write" || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("WriteTo(%s) = %d, %v; want 0 and a write *net.OpError (%v)", tc.what, n, err, tc.want)
		}
	}
	if _, err := lc.Write(echoRequest(1, nil)); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Errorf("Write on an unconnected socket: %v; want EDESTADDRREQ", err)
	}

	// An ICMPv6 socket takes ICMPv6 echo requests to IPv6 addresses only;
	// on this Net, without an IPv6 address, the stack cannot send them.
	lc6, err := a.ours.ListenPingAddr(netip.IPv6Unspecified())
	if err != nil {
		t.Fatal(err)
	}
	defer lc6.Close()
	if la := lc6.LocalAddr().(wgnetstack.PingAddr); la.Addr() != netip.IPv6Unspecified() || la.Network() != "ping6" {
		t.Errorf("ICMPv6 socket: LocalAddr %v (%s); want :: (ping6)", la, la.Network())
	}
	to6 := wgnetstack.PingAddrFromAddr(v6)
	for _, tc := range []struct {
		what string
		m    []byte
		to   net.Addr
		want error
	}{
		{"ICMP echo request", echoRequest(1, nil), to6, syscall.EINVAL},
		{"ICMPv6 echo reply", append([]byte{129}, make([]byte, 7)...), to6, syscall.EINVAL},
		{"IPv4", echoRequestTo(v6, 1, nil), to, syscall.EAFNOSUPPORT},
		{"no IPv6 address", echoRequestTo(v6, 1, nil), to6, nil},
	} {
		n, err := lc6.WriteTo(tc.m, tc.to)
		var oe *net.OpError
		if n != 0 || !errors.As(err, &oe) || oe.Op != "write" || oe.Net != "ping6" || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("ICMPv6 socket: WriteTo(%s) = %d, %v; want 0 and a ping6 write *net.OpError (%v)", tc.what, n, err, tc.want)
		}
	}
}
