package netstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// IPv6 between two stacks over a Pipe: v6 only, and dual (both families
// on each stack).

var (
	v6A = netip.MustParsePrefix("2001:db8::1/64")
	v6B = netip.MustParsePrefix("2001:db8::2/64")
)

// newV6Pair makes two stacks over a Pipe with addresses 2001:db8::1 and
// ::2, and with dual also 198.18.0.1 and .2.
func newV6Pair(t testing.TB, dual bool) (a, b *Stack) {
	t.Helper()
	la, lb := Pipe()
	ca := Config{Link: la, DADTransmits: -1, Addrs: []netip.Prefix{v6A}}
	cb := Config{Link: lb, DADTransmits: -1, Addrs: []netip.Prefix{v6B}}
	if dual {
		ca.Addrs = append(ca.Addrs, netip.MustParsePrefix("198.18.0.1/24"))
		cb.Addrs = append(cb.Addrs, netip.MustParsePrefix("198.18.0.2/24"))
	}
	var err error
	if a, err = New(ca); err != nil {
		la.Close()
		lb.Close()
		t.Fatal(err)
	}
	if b, err = New(cb); err != nil {
		a.Close()
		lb.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// sendHashed writes n pseudo-random bytes to c, then closes its write side,
// and returns their SHA-256.
func sendHashed(c net.Conn, n int, seed uint64) ([32]byte, error) {
	h := sha256.New()
	r := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(buf))
		for i := range buf[:k] {
			buf[i] = byte(r.Uint32())
		}
		h.Write(buf[:k])
		if _, err := c.Write(buf[:k]); err != nil {
			return [32]byte{}, err
		}
		n -= k
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, c.(interface{ CloseWrite() error }).CloseWrite()
}

// recvHashed reads c to EOF and returns the bytes' count and SHA-256.
func recvHashed(c net.Conn) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, c)
	var sum [32]byte
	h.Sum(sum[:0])
	return n, sum, err
}

// TestIPv6TCPTransfer: 8 MiB each way over IPv6 only, hashes matching; the
// connection's MSS leaves room for the 40-byte IPv6 header.
func TestIPv6TCPTransfer(t *testing.T) {
	checkGoroutines(t)
	a, b := newV6Pair(t, false)
	ln, err := b.Listen("tcp6", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 8 << 20
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	srv := make(chan result, 2)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srv <- result{err: err}
			return
		}
		defer c.Close()
		got := make(chan result, 1)
		go func() { n, sum, err := recvHashed(c); got <- result{n, sum, err} }()
		sum, err := sendHashed(c, size, 2)
		srv <- result{size, sum, err}
		srv <- <-got
	}()
	c, err := a.Dial("tcp", "[2001:db8::2]:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != "[2001:db8::2]:80" || c.LocalAddr().(*net.TCPAddr).IP.String() != "2001:db8::1" {
		t.Fatalf("addresses %v → %v", c.LocalAddr(), c.RemoteAddr())
	}
	info := c.(*TCPConn).Info()
	if info.SndMSS > 1500-40-20 || info.SndMSS < 1500-40-20-40 {
		t.Fatalf("MSS %d over IPv6 on a 1500-byte link, want at most 1440", info.SndMSS)
	}
	recvd := make(chan result, 1)
	go func() { n, sum, err := recvHashed(c); recvd <- result{n, sum, err} }()
	sent, err := sendHashed(c, size, 1)
	if err != nil {
		t.Fatal(err)
	}
	fromB, toB := <-srv, <-srv
	mine := <-recvd
	if fromB.err != nil || toB.err != nil || mine.err != nil {
		t.Fatalf("errors: %v %v %v", fromB.err, toB.err, mine.err)
	}
	if toB.n != size || toB.sum != sent || mine.n != size || mine.sum != fromB.sum {
		t.Fatalf("a→b %d bytes (hash match %v), b→a %d bytes (hash match %v)", toB.n, toB.sum == sent, mine.n, mine.sum == fromB.sum)
	}
}

// TestIPv6DualListener: one Listen("tcp", ":port") accepts an IPv4 and
// an IPv6 client; the IPv4 one shows IPv4-mapped, the IPv6 one as it is.
func TestIPv6DualListener(t *testing.T) {
	checkGoroutines(t)
	a, b := newV6Pair(t, true)
	ln, err := b.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct{ dial, wantRemote, wantLocal string }{
		{"198.18.0.2:8080", "::ffff:198.18.0.1", "::ffff:198.18.0.2"},
		{"[2001:db8::2]:8080", "2001:db8::1", "2001:db8::2"},
	} {
		acc := make(chan net.Conn, 1)
		go func() { c, _ := ln.Accept(); acc <- c }()
		c, err := a.Dial("tcp", tc.dial)
		if err != nil {
			t.Fatalf("dial %s: %v", tc.dial, err)
		}
		s := <-acc
		if s == nil {
			t.Fatal("accept failed")
		}
		ra, la := s.RemoteAddr().(*net.TCPAddr).AddrPort(), s.LocalAddr().(*net.TCPAddr).AddrPort()
		if ra.Addr().String() != tc.wantRemote || la.Addr().String() != tc.wantLocal || ra.Port() != c.LocalAddr().(*net.TCPAddr).AddrPort().Port() {
			t.Errorf("dial %s: accepted %v → %v", tc.dial, ra, la)
		}
		io.WriteString(c, "x")
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		c.Close()
		s.Close()
	}
}

// TestIPv6UDP: 16 KiB datagrams each way over IPv6, fragmented and
// reassembled; sources as sent.
func TestIPv6UDP(t *testing.T) {
	checkGoroutines(t)
	a, b := newV6Pair(t, false)
	srv, err := b.ListenUDP("udp6", ":5300")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := a.Dial("udp", "[2001:db8::2]:5300")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 16<<10)
	for i := range msg {
		msg[i] = byte(i * 7)
	}
	srv.SetDeadline(time.Now().Add(10 * time.Second))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 20<<10)
	n, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || !bytes.Equal(buf[:n], msg) || from != c.LocalAddr().(*net.UDPAddr).AddrPort() || from.Addr() != v6A.Addr() {
		t.Fatalf("read %d bytes from %v: %v", n, from, err)
	}
	if _, err := srv.WriteToUDPAddrPort(msg, from); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(buf); err != nil || !bytes.Equal(buf[:n], msg) {
		t.Fatalf("reply of %d bytes: %v", n, err)
	}
}

// TestIPv6UDPRefused: an ICMPv6 port unreachable fails the next read of
// a connected socket with ECONNREFUSED.
func TestIPv6UDPRefused(t *testing.T) {
	checkGoroutines(t)
	a, _ := newV6Pair(t, false)
	c, err := a.Dial("udp6", "[2001:db8::2]:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("read: %v, want ECONNREFUSED", err)
	}
}

// TestIPv6Ping: Stack.Ping and an ICMPv6 socket with x/net/icmp (which
// leaves the checksum to the stack, as to Linux).
func TestIPv6Ping(t *testing.T) {
	checkGoroutines(t)
	a, _ := newV6Pair(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		if _, err := a.Ping(ctx, v6B.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := a.ListenPacket("ip6:ipv6-icmp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := (&icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 0x4242, Seq: 1, Data: []byte("six")}}).Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo(req, &net.IPAddr{IP: v6B.Addr().AsSlice()}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := icmp.ParseMessage(58, buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv6.ICMPTypeEchoReply && e.ID == 0x4242 {
			if string(e.Data) != "six" || from.String() != "2001:db8::2" {
				t.Fatalf("reply %q from %v", e.Data, from)
			}
			break
		}
	}
}

// serveHE answers AAAA and A queries for he.test. with the addresses
// given, on b's port 53.
func serveHE(t *testing.T, s *Stack, aaaa, a netip.Addr) {
	t.Helper()
	pc, err := s.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	startDNS(t, pc, answerHE(func(string) netip.Addr { return aaaa }, a))
}

// answerHE answers an AAAA query with aaaa of the name asked and an A
// query with a.
func answerHE(aaaa func(name string) netip.Addr, a netip.Addr) dns.HandlerFunc {
	return func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		hdr := dns.RR_Header{Name: q.Question[0].Name, Class: dns.ClassINET, Ttl: 60}
		switch q.Question[0].Qtype {
		case dns.TypeAAAA:
			hdr.Rrtype = dns.TypeAAAA
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: aaaa(hdr.Name).AsSlice()})
		case dns.TypeA:
			hdr.Rrtype = dns.TypeA
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
		}
		w.WriteMsg(m)
	}
}

// newHEPair is newV6Pair, dual, with a asking dns and b echoing on
// [::]:80.
func newHEPair(t *testing.T, dns netip.AddrPort) (a, b *Stack) {
	t.Helper()
	la, lb := Pipe()
	a, err := New(Config{Link: la, DADTransmits: -1, Addrs: []netip.Prefix{v6A, netip.MustParsePrefix("198.18.0.1/24")},
		DNS: []netip.AddrPort{dns}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = New(Config{Link: lb, DADTransmits: -1, Addrs: []netip.Prefix{v6B, netip.MustParsePrefix("198.18.0.2/24")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go serveEcho(ln, 10*time.Second)
	return a, b
}

// TestIPv6HappyEyeballs: a name whose AAAA is dead (an on-link address
// nobody answers neighbor solicitations for) and whose A is live connects
// over IPv4, not before FallbackDelay; with a live AAAA, over IPv6, which
// RFC 6724 puts first.
func TestIPv6HappyEyeballs(t *testing.T) {
	checkGoroutines(t)
	a, b := newHEPair(t, netip.MustParseAddrPort("[2001:db8::2]:53"))
	serveHE(t, b, netip.MustParseAddr("2001:db8::99"), netip.MustParseAddr("198.18.0.2"))
	d := Dialer{Stack: a, FallbackDelay: 200 * time.Millisecond}
	start := time.Now()
	c, err := d.Dial("tcp", "he.test:80")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort(); ra != netip.MustParseAddrPort("198.18.0.2:80") {
		t.Fatalf("connected to %v, want the A record", ra)
	}
	if took < d.FallbackDelay {
		t.Fatalf("connected after %v, before the fallback delay of %v", took, d.FallbackDelay)
	}
	c.Close()
}

// TestIPv6HappyEyeballsLive: with both records live, IPv6 wins.
func TestIPv6HappyEyeballsLive(t *testing.T) {
	checkGoroutines(t)
	a, b := newHEPair(t, netip.MustParseAddrPort("198.18.0.2:53"))
	serveHE(t, b, v6B.Addr(), netip.MustParseAddr("198.18.0.2"))
	c, err := a.Dial("tcp", "he.test:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort(); ra != netip.MustParseAddrPort("[2001:db8::2]:80") {
		t.Fatalf("connected to %v, want the AAAA record", ra)
	}
}

// TestIPv6Zones: a link-local address's zone must name the link; the
// stack hands link-local addresses out with the link's name.
func TestIPv6Zones(t *testing.T) {
	checkGoroutines(t)
	la, lb := Pipe()
	a, err := New(Config{Link: la, DADTransmits: -1, Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::1/64"), v6A}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Link: lb, DADTransmits: -1, Addrs: []netip.Prefix{netip.MustParsePrefix("fe80::2/64"), v6B}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := b.Listen("tcp", "[fe80::2%"+b.Zone()+"]:80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().String() != "[fe80::2%"+b.Zone()+"]:80" {
		t.Fatalf("listener on %v", ln.Addr())
	}
	go serveEcho(ln, 10*time.Second)
	for _, addr := range []string{"[fe80::2%1]:80", "[fe80::2]:80", "[fe80::2%link]:80"} {
		c, err := a.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		if la := c.LocalAddr().(*net.TCPAddr); la.IP.String() != "fe80::1" || la.Zone != a.Zone() {
			t.Fatalf("dial %s: local address %v", addr, la)
		}
		c.Close()
	}
	if _, err := a.Dial("tcp", "[fe80::2%eth7]:80"); !isAddrErr(err, "no such network interface") {
		t.Fatalf("a zone naming another link: %v", err)
	}
}

// TestNewSLAACOnly: on an Ethernet link a stack may be configured with no
// address at all. Each then has only its link-local address, once
// duplicate address detection has passed, and two such stacks talk TCP
// over those addresses.
func TestNewSLAACOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		la, lb := Pipe()
		a, err := New(Config{Link: la})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := New(Config{Link: lb})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if a.Addr().IsValid() {
			t.Fatalf("Addr() = %v before duplicate address detection", a.Addr())
		}
		for _, s := range []*Stack{a, b} {
			for deadline := time.Now().Add(10 * time.Second); !s.Addr().IsValid(); time.Sleep(100 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no link-local address after 10 s")
				}
			}
			if !s.Addr().IsLinkLocalUnicast() || len(s.Addrs()) != 1 || s.Addrs()[0].Addr() != s.Addr() {
				t.Fatalf("Addr() = %v, Addrs() = %v; want one link-local address", s.Addr(), s.Addrs())
			}
		}
		ln, err := b.Listen("tcp", "[::]:80")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go serveEcho(ln, 10*time.Second)
		c, err := a.Dial("tcp", netip.AddrPortFrom(b.Addr(), 80).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
			t.Fatalf("echo %q, %v", got, err)
		}
	})
}
