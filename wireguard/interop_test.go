package netstack_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var bulkMiB = flag.Int("wg.bulk", 0, "MiB each way in TestBulk (0: 64, or 256 without the race detector)")

// bulkSize is the bytes each way in TestBulk: 256 MiB as the issue asks,
// 64 MiB under the race detector, which slows the stacks tenfold.
func bulkSize() int64 {
	if *bulkMiB > 0 {
		return int64(*bulkMiB) << 20
	}
	if raceEnabled {
		return 64 << 20
	}
	return 256 << 20
}

// serveHTTP serves on port 80 of e a handler that answers with who
// served, the client's address and the request body's length.
func serveHTTP(t testing.TB, e *end) {
	t.Helper()
	ln, err := e.listen(80)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s here; you are %s; you sent %d bytes", e.name, r.RemoteAddr, len(body))
	})}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// get fetches url through e's tunnel.
func get(t testing.TB, e *end, url string) string {
	t.Helper()
	tr := &http.Transport{DialContext: e.dial.DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := hc.Post(url, "text/plain", bytes.NewReader(make([]byte, 100000)))
	if err != nil {
		t.Fatalf("%s: GET %s: %v", e.name, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: GET %s: reading body: %v", e.name, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: GET %s: %s", e.name, url, resp.Status)
	}
	return string(body)
}

// testHTTP serves HTTP on a and b and fetches from each through the
// other, at their first addresses.
func testHTTP(t *testing.T, a, b *end) {
	serveHTTP(t, a)
	serveHTTP(t, b)
	checkGet(t, a, b, b.addr, a.addr)
	checkGet(t, b, a, a.addr, b.addr)
}

// checkGet fetches from the HTTP server (serveHTTP) of server at to, through
// client's tunnel, and checks that the server saw the client at from and
// the whole POST body.
func checkGet(t testing.TB, client, server *end, to, from netip.Addr) {
	t.Helper()
	url := "http://" + net.JoinHostPort(to.String(), "80") + "/"
	got := get(t, client, url)
	want := fmt.Sprintf("%s here; you are %s", server.name, net.JoinHostPort(from.String(), ""))
	if !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "sent 100000 bytes") {
		t.Errorf("%s fetched %s: %q, want %q...sent 100000 bytes", client.name, url, got, want)
	}
}

// TestHTTP serves and fetches HTTP both ways between a WireGuard device on
// our stack and one on wireguard-go's gVisor netstack.
func TestHTTP(t *testing.T) {
	a, b := pair(t, true, false, nil)
	testHTTP(t, a, b)
}

// TestHTTPOursBothEnds is TestHTTP with our stack at both ends.
func TestHTTPOursBothEnds(t *testing.T) {
	a, b := pair(t, true, true, nil)
	testHTTP(t, a, b)
}

// sendAndHash writes n pseudo-random bytes from seed to c, then closes its
// write side, and returns their SHA-256.
func sendAndHash(c net.Conn, n int64, seed uint64) ([32]byte, error) {
	h := sha256.New()
	r := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n), h)
	_, err := io.CopyBuffer(c, r, make([]byte, 256<<10))
	if err == nil {
		err = c.(interface{ CloseWrite() error }).CloseWrite()
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, err
}

// readAndHash reads c to EOF and returns the byte count and SHA-256.
func readAndHash(c net.Conn) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, c, make([]byte, 256<<10))
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return n, sum, err
}

// bulk sends size bytes each way at once over one TCP connection from a to
// b, and checks their SHA-256 at each end.
func bulk(t testing.TB, a, b *end, size int64) {
	t.Helper()
	ln, err := b.listen(5001)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		name       string
		sent, got  [32]byte
		n          int64
		sErr, rErr error
	}
	run := func(name string, c net.Conn, seed uint64, out chan<- result) {
		var r result
		r.name = name
		var wg sync.WaitGroup
		wg.Go(func() { r.sent, r.sErr = sendAndHash(c, size, seed) })
		r.n, r.got, r.rErr = readAndHash(c)
		wg.Wait()
		out <- r
	}
	results := make(chan result, 2)
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		accepted <- err
		if err == nil {
			defer c.Close()
			run("b", c, 2, results)
		}
	}()
	c, err := a.dial.Dial("tcp", netip.AddrPortFrom(b.addr, 5001).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	go run("a", c, 1, results)
	r1, r2 := <-results, <-results
	if r1.name == "b" {
		r1, r2 = r2, r1
	}
	for _, r := range []result{r1, r2} {
		if r.sErr != nil || r.rErr != nil {
			t.Fatalf("%s: send: %v, receive: %v", r.name, r.sErr, r.rErr)
		}
		if r.n != size {
			t.Errorf("%s received %d bytes, want %d", r.name, r.n, size)
		}
	}
	if r1.sent != r2.got {
		t.Errorf("a → b: SHA-256 sent %x, received %x", r1.sent, r2.got)
	}
	if r2.sent != r1.got {
		t.Errorf("b → a: SHA-256 sent %x, received %x", r2.sent, r1.got)
	}
}

// TestBulk sends 64 MiB each way at once (256 MiB without the race
// detector) between our stack and wireguard-go's, checking SHA-256.
func TestBulk(t *testing.T) {
	a, b := pair(t, true, false, nil)
	testBulk(t, a, b)
}

// TestBulkOursBothEnds is TestBulk with our stack at both ends.
func TestBulkOursBothEnds(t *testing.T) {
	a, b := pair(t, true, true, nil)
	testBulk(t, a, b)
}

// testBulk runs bulk with bulkSize bytes each way and logs how long it
// took.
func testBulk(t *testing.T, a, b *end) {
	start := time.Now()
	bulk(t, a, b, bulkSize())
	t.Logf("%d MiB each way in %v", bulkSize()>>20, time.Since(start))
}

// echoUDP echoes every datagram on pc back to its sender until pc closes.
func echoUDP(pc net.PacketConn) {
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(buf[:n], from)
	}
}

// TestUDPEcho sends datagrams of sizes up to 8000 bytes (fragmented) each
// way, from our stack to an echo server on wireguard-go's and back, and
// from a client there to an echo server on ours.
func TestUDPEcho(t *testing.T) {
	a, b := pair(t, true, false, nil)
	testUDPEcho(t, a, b, addrA, addrB)
}

// testUDPEcho is TestUDPEcho between a, ours, at aAddr, and b, wireguard-go's,
// at bAddr.
func testUDPEcho(t *testing.T, a, b *end, aAddr, bAddr netip.Addr) {
	theirs, err := b.theirs.ListenUDP(&net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	go echoUDP(theirs)
	ours, err := a.ours.ListenUDPAddrPort(netip.AddrPortFrom(netip.Addr{}, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	go echoUDP(ours)

	check := func(name string, c net.Conn) {
		t.Helper()
		defer c.Close()
		buf := make([]byte, 65536)
		for i, size := range []int{1, 100, 1392, 1393, 3000, 8000} {
			msg := bytes.Repeat([]byte{byte('a' + i)}, size)
			// UDP may lose a datagram (the handshake is under way at first):
			// resend until the echo arrives, within a bound.
			var n int
			for try := 0; ; try++ {
				if try == 20 {
					t.Fatalf("%s: no echo of %d bytes after %d tries", name, size, try)
				}
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("%s: write: %v", name, err)
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				n, err = c.Read(buf)
				if err == nil {
					break
				}
				if !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
					t.Fatalf("%s: read: %v", name, err)
				}
			}
			if !bytes.Equal(buf[:n], msg) {
				t.Errorf("%s: echo of %d bytes came back as %d bytes %q...", name, size, n, buf[:min(n, 8)])
			}
		}
	}
	c, err := a.ours.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(bAddr, 7))
	if err != nil {
		t.Fatal(err)
	}
	check("ours → theirs", c)
	c2, err := b.theirs.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(aAddr, 7))
	if err != nil {
		t.Fatal(err)
	}
	check("theirs → ours", c2)
	// And through Dial's "udp" network and the family's own.
	for _, network := range []string{"udp", "udp" + family(bAddr)} {
		c3, err := a.ours.Dial(network, netip.AddrPortFrom(bAddr, 7).String())
		if err != nil {
			t.Fatal(err)
		}
		if ra := c3.RemoteAddr().(*net.UDPAddr).AddrPort(); ra != netip.AddrPortFrom(bAddr, 7) {
			t.Errorf("Dial(%q): RemoteAddr %v; want %v", network, ra, netip.AddrPortFrom(bAddr, 7))
		}
		check("ours Dial("+network+")", c3)
	}
}

// family returns "4" or "6", a network's suffix for a's family.
func family(a netip.Addr) string {
	if a.Is4() {
		return "4"
	}
	return "6"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestDNS resolves names with LookupHost on our stack against a miekg/dns
// server on wireguard-go's, over the tunnel: an A record, a name that does
// not exist, an answer too big for UDP (retried over TCP), and Dial by
// name.
func TestDNS(t *testing.T) {
	a, b := pair(t, true, false, []netip.Addr{addrB})
	serveDNS(t, b, dnsZone(map[string][]netip.Addr{"name.test.": {addrB}}))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := a.ours.LookupContextHost(ctx, "name.test")
	if err != nil || len(got) != 1 || got[0] != "198.18.0.2" {
		t.Errorf("LookupContextHost(name.test) = %v, %v; want [198.18.0.2]", got, err)
	}
	_, err = a.ours.LookupHost("missing.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("LookupHost(missing.test) error %v; want a *net.DNSError with IsNotFound", err)
	}
	got, err = a.ours.LookupHost("big.test")
	if err != nil || len(got) != 60 || got[59] != "198.18.1.59" {
		t.Errorf("LookupHost(big.test) = %d addresses (last %v), %v; want 60 over TCP", len(got), got[max(len(got)-1, 0):], err)
	}
	if got, err := a.ours.LookupHost("198.18.9.9"); err != nil || len(got) != 1 || got[0] != "198.18.9.9" {
		t.Errorf("LookupHost(literal) = %v, %v", got, err)
	}

	// Dial by name resolves through the tunnel too.
	serveHTTP(t, b)
	if body := get(t, a, "http://name.test/"); !bytes.HasPrefix([]byte(body), []byte("b here")) {
		t.Errorf("GET http://name.test/ = %q", body)
	}
}

// dnsZone answers for the names in records with their A or AAAA records,
// as asked (NODATA when the name has none of the type), for "big.test."
// with 60 records of the type asked (about 1 KB for A, 2 KB for AAAA,
// beyond UDP's 512 bytes: truncated over UDP), and NXDOMAIN for the rest.
func dnsZone(records map[string][]netip.Addr) dns.Handler {
	rr := func(q dns.Question, a netip.Addr) dns.RR {
		hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
		if a.Is4() {
			return &dns.A{Hdr: hdr, A: a.AsSlice()}
		}
		return &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()}
	}
	return dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(q)
		r.Authoritative = true
		qq := q.Question[0]
		want4, want6 := qq.Qtype == dns.TypeA, qq.Qtype == dns.TypeAAAA
		addrs, ok := records[strings.ToLower(qq.Name)]
		switch {
		case strings.EqualFold(qq.Name, "big.test."):
			for i := range 60 {
				if want4 {
					r.Answer = append(r.Answer, rr(qq, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)})))
				} else if want6 {
					r.Answer = append(r.Answer, rr(qq, netip.AddrFrom16([16]byte{0: 0xfd, 13: 1, 15: byte(i)})))
				}
			}
			if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
				r.Truncate(dns.MinMsgSize)
			}
		case ok:
			for _, a := range addrs {
				if a.Is4() && want4 || a.Is6() && want6 {
					r.Answer = append(r.Answer, rr(qq, a))
				}
			}
		default:
			r.SetRcode(q, dns.RcodeNameError)
		}
		w.WriteMsg(r)
	})
}

// serveDNS serves h on port 53 of b, wireguard-go's, over UDP and TCP,
// on all its addresses, until the test ends.
func serveDNS(t *testing.T, b *end, h dns.Handler) {
	t.Helper()
	pc, err := b.theirs.ListenUDP(&net.UDPAddr{Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := b.theirs.ListenTCP(&net.TCPAddr{Port: 53})
	if err != nil {
		t.Fatal(err)
	}
	udpSrv := &dns.Server{PacketConn: pc, Handler: h}
	tcpSrv := &dns.Server{Listener: ln, Handler: h}
	var wg sync.WaitGroup
	wg.Go(func() { udpSrv.ActivateAndServe() })
	wg.Go(func() { tcpSrv.ActivateAndServe() })
	t.Cleanup(func() { udpSrv.Shutdown(); tcpSrv.Shutdown(); wg.Wait() })
}
