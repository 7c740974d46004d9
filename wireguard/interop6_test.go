package netstack_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	wgnetstack "github.com/gotcpip/netstack/wireguard"
)

// IPv6 through the tunnel: the tests of interop_test.go and ping_test.go
// with IPv6 tunnel addresses, against wireguard-go's gVisor netstack and
// with our stack at both ends, and ends that have several addresses of
// both families.

// pair6 is pair with IPv6 tunnel addresses only: a at addrA6, b at addrB6.
func pair6(t testing.TB, aOurs, bOurs bool, dnsForA []netip.Addr) (a, b *end) {
	t.Helper()
	return pairAt(t, aOurs, bOurs, []netip.Addr{addrA6}, []netip.Addr{addrB6}, dnsForA)
}

// TestHTTP6 serves and fetches HTTP both ways over IPv6 between our stack
// and wireguard-go's; each server sees its client's IPv6 address.
func TestHTTP6(t *testing.T) {
	a, b := pair6(t, true, false, nil)
	testHTTP(t, a, b)
}

// TestHTTP6OursBothEnds is TestHTTP6 with our stack at both ends.
func TestHTTP6OursBothEnds(t *testing.T) {
	a, b := pair6(t, true, true, nil)
	testHTTP(t, a, b)
}

// TestBulk6 is TestBulk over IPv6: 64 MiB each way at once (256 MiB
// without the race detector), checked by SHA-256.
func TestBulk6(t *testing.T) {
	a, b := pair6(t, true, false, nil)
	testBulk(t, a, b)
}

// TestBulk6OursBothEnds is TestBulk6 with our stack at both ends.
func TestBulk6OursBothEnds(t *testing.T) {
	a, b := pair6(t, true, true, nil)
	testBulk(t, a, b)
}

// TestUDPEcho6 is TestUDPEcho over IPv6 (fragments beyond 1372 bytes of
// payload, RFC 8200 §4.5).
func TestUDPEcho6(t *testing.T) {
	a, b := pair6(t, true, false, nil)
	testUDPEcho(t, a, b, addrA6, addrB6)
}

// TestPing6ToGVisor pings wireguard-go's gVisor netstack over IPv6 from
// our PingConn: ICMPv6 echo requests (type 128) and replies (129), with
// DialPingAddr, DialPing, ListenPingAddr(::), ListenPing and Dial's
// "ping" and "ping6".
func TestPing6ToGVisor(t *testing.T) {
	a, b := pair6(t, true, false, nil)
	testPingFromOurs(t, a, b, addrA6, addrB6)
}

// TestPing6OursBothEnds is TestPing6ToGVisor with our stack answering.
func TestPing6OursBothEnds(t *testing.T) {
	a, b := pair6(t, true, true, nil)
	testPingFromOurs(t, a, b, addrA6, addrB6)
}

// TestPing6FromGVisor pings our stack over IPv6 from wireguard-go's own
// gVisor PingConn, connected and not.
func TestPing6FromGVisor(t *testing.T) {
	a, b := pair6(t, true, false, nil)
	testPingFromGVisor(t, a, b, addrA6, addrB6)
}

// TestPing6Filters: each of two ICMPv6 ping sockets on one Net reads only
// the echo replies with its own identifier; neither reads an echo request
// to the stack carrying its identifier, nor an echo reply with another
// identifier, and a connected one none from another address.
func TestPing6Filters(t *testing.T) {
	a, b := pair6(t, true, true, nil)
	s1, s2 := pingSockets(t, a, b, addrB6)
	buf := make([]byte, 1500)
	read := func(what string, c *wgnetstack.PingConn, seq uint16, data string) (uint16, net.Addr) {
		t.Helper()
		return readReply(t, what, c, buf, true, seq, data)
	}
	if _, err := s1.WriteTo(echoRequestTo(addrB6, 1, []byte("one")), wgnetstack.PingAddrFromAddr(addrB6)); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Write(echoRequestTo(addrB6, 2, []byte("two"))); err != nil {
		t.Fatal(err)
	}
	id2, _ := read("s2", s2, 2, "two")
	id1, _ := read("s1", s1, 1, "one")
	if id1 == id2 {
		t.Fatalf("s1 and s2 have the same echo identifier %#x", id1)
	}

	// From b's raw ICMPv6 socket (the stack fills in the checksum): an
	// echo request to a with s1's identifier, which a's stack answers and
	// s1 must not read; an echo reply with an identifier neither socket
	// has; then one with s1's, the one s1 reads next.
	rawB, err := b.ours.Stack().ListenPacket("ip6:ipv6-icmp", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rawB.Close()
	toA := &net.IPAddr{IP: addrA6.AsSlice()}
	msg := func(typ byte, seq uint16, data string, id uint16) []byte {
		m := echoRequestTo(addrA6, seq, []byte(data))
		m[0] = typ
		m[4], m[5] = byte(id>>8), byte(id)
		return m
	}
	if _, err := rawB.WriteTo(msg(128, 5, "raw", id1), toA); err != nil {
		t.Fatal(err)
	}
	for {
		rawB.SetReadDeadline(time.Now().Add(readDeadline))
		n, _, err := rawB.ReadFrom(buf)
		if err != nil {
			t.Fatalf("raw socket on b: %v", err)
		}
		if buf[0] == 129 && buf[6] == 0 && buf[7] == 5 {
			echoReplyOf(t, "answer to the raw request", true, buf[:n], 5, []byte("raw"))
			break
		}
	}
	for _, m := range [][]byte{msg(129, 6, "stranger", id1^id2^0x8000), msg(129, 7, "for s1", id1)} {
		if _, err := rawB.WriteTo(m, toA); err != nil {
			t.Fatal(err)
		}
	}
	if _, from := read("s1, raw reply from b", s1, 7, "for s1"); from.(*wgnetstack.PingAddr).Addr() != addrB6 {
		t.Errorf("s1: reply from %v, want %v", from, addrB6)
	}
	// s2 passed the stranger by if it reads its own next.
	if _, err := s2.Write(echoRequestTo(addrB6, 8, []byte("eight"))); err != nil {
		t.Fatal(err)
	}
	read("s2 after the stranger", s2, 8, "eight")
}

// TestDNS6 resolves names over IPv6 from a Net with an IPv6 address only,
// against a miekg/dns server on wireguard-go's at its IPv6 address: AAAA
// queries alone, as wireguard-go's asks (a name with only an A record is
// not found), an answer too big for UDP retried over TCP, and Dial by
// name over IPv6.
func TestDNS6(t *testing.T) {
	a, b := pair6(t, true, false, []netip.Addr{addrB6})
	serveDNS(t, b, dnsZone(map[string][]netip.Addr{
		"name.test.":   {addrB, addrB6},
		"v4only.test.": {addrB},
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if got, err := a.ours.LookupContextHost(ctx, "name.test"); err != nil || !slices.Equal(got, []string{addrB6.String()}) {
		t.Errorf("LookupContextHost(name.test) = %v, %v; want [%v]", got, err, addrB6)
	}
	var de *net.DNSError
	for _, name := range []string{"v4only.test", "missing.test"} {
		if got, err := a.ours.LookupHost(name); !errors.As(err, &de) || !de.IsNotFound {
			t.Errorf("LookupHost(%s) = %v, %v; want a *net.DNSError with IsNotFound", name, got, err)
		}
	}
	got, err := a.ours.LookupHost("big.test")
	if err != nil || len(got) != 60 || got[59] != "fd00::1:3b" {
		t.Errorf("LookupHost(big.test) = %d addresses (last %v), %v; want 60 AAAA over TCP", len(got), got[max(len(got)-1, 0):], err)
	}

	serveHTTP(t, b)
	if body, want := get(t, a, "http://name.test/"), "b here; you are [fd00::1]:"; len(body) < len(want) || body[:len(want)] != want {
		t.Errorf("GET http://name.test/ = %q; want %q...", body, want)
	}
	if c, err := a.ours.Dial("tcp4", "name.test:80"); err == nil {
		c.Close()
		t.Error(`Dial("tcp4", "name.test:80") succeeded on a Net without IPv4`)
	}
}

// TestSeveralAddresses: our end has an IPv4 and two IPv6 addresses,
// wireguard-go's an IPv4 and an IPv6, and every one of them is used: HTTP each way to each address (our listener on
// no address is dual-stack), UDP echo to both of ours and from a given
// source address, ping of both families, and names with A and AAAA
// records, resolved IPv6 first as wireguard-go's does.
func TestSeveralAddresses(t *testing.T) {
	addrA6b := netip.MustParseAddr("fd00::11")
	a, b := pairAt(t, true, false, []netip.Addr{addrA, addrA6, addrA6b}, []netip.Addr{addrB, addrB6}, []netip.Addr{addrB6, addrB})
	serveHTTP(t, a)
	serveHTTP(t, b)
	warmUp(t, a, b)
	checkGet(t, a, b, addrB, addrA)
	checkGet(t, a, b, addrB6, addrA6)
	checkGet(t, b, a, addrA, addrB)
	checkGet(t, b, a, addrA6, addrB6)
	checkGet(t, b, a, addrA6b, addrB6)

	// UDP: one echo socket on no address takes both families; one bound to
	// the second IPv6 address answers from it (the first would answer from
	// the source address it picks for the peer, fd00::1, as Linux's do
	// without IPV6_PKTINFO).
	echo, err := a.ours.ListenUDPAddrPort(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go echoUDP(echo)
	echo6b, err := a.ours.ListenUDPAddrPort(netip.AddrPortFrom(addrA6b, 8))
	if err != nil {
		t.Fatal(err)
	}
	defer echo6b.Close()
	go echoUDP(echo6b)
	theirEcho, err := b.theirs.ListenUDP(&net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer theirEcho.Close()
	go echoUDP(theirEcho)
	buf := make([]byte, 1500)
	udpEcho := func(what string, c net.Conn, want netip.AddrPort) {
		t.Helper()
		defer c.Close()
		if ra := c.RemoteAddr().(*net.UDPAddr).AddrPort(); ra != want {
			t.Errorf("%s: RemoteAddr %v, want %v", what, ra, want)
		}
		if _, err := c.Write([]byte(what)); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		c.SetReadDeadline(time.Now().Add(readDeadline))
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != what {
			t.Fatalf("%s: echo %q, %v", what, buf[:n], err)
		}
	}
	for _, to := range []netip.AddrPort{netip.AddrPortFrom(addrA, 7), netip.AddrPortFrom(addrA6, 7), netip.AddrPortFrom(addrA6b, 8)} {
		c, err := b.theirs.DialUDPAddrPort(netip.AddrPort{}, to)
		if err != nil {
			t.Fatal(err)
		}
		udpEcho("theirs to "+to.String(), c, to)
	}
	c, err := a.ours.DialUDPAddrPort(netip.AddrPortFrom(addrA6b, 0), netip.AddrPortFrom(addrB6, 7))
	if err != nil {
		t.Fatal(err)
	}
	if la := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); la != addrA6b {
		t.Errorf("UDP from %v: LocalAddr %v", addrA6b, la)
	}
	udpEcho("ours from "+addrA6b.String(), c, netip.AddrPortFrom(addrB6, 7))

	// Ping of each family, from one socket of each.
	for _, to := range []netip.Addr{addrB, addrB6} {
		pc, err := a.ours.ListenPingAddr(unspecified(to))
		if err != nil {
			t.Fatal(err)
		}
		pingListening(t, "ping "+to.String(), pc, to)
	}

	// Names: IPv6 first, then IPv4; Dial picks by network.
	serveDNS(t, b, dnsZone(map[string][]netip.Addr{"name.test.": {addrB, addrB6}}))
	got, err := a.ours.LookupHost("name.test")
	if want := []string{addrB6.String(), addrB.String()}; err != nil || !slices.Equal(got, want) {
		t.Errorf("LookupHost(name.test) = %v, %v; want %v", got, err, want)
	}
	for network, want := range map[string]netip.Addr{"tcp": addrB6, "tcp6": addrB6, "tcp4": addrB} {
		c, err := a.ours.Dial(network, "name.test:80")
		if err != nil {
			t.Fatalf("Dial(%q, name.test:80): %v", network, err)
		}
		if ra := c.RemoteAddr().(*net.TCPAddr).AddrPort(); ra != netip.AddrPortFrom(want, 80) {
			t.Errorf("Dial(%q, name.test:80) connected to %v; want %v", network, ra, netip.AddrPortFrom(want, 80))
		}
		c.Close()
	}
}
