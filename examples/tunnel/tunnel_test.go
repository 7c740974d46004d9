package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/internal/leaktest"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// tunnelPrefix is what the client namespace routes into the TUN device:
// addresses nobody has, which only the forwarder answers for.
const tunnelPrefix = "198.19.0.0/16"

// checkGoroutines fails the test if goroutines it started outlive it.
func checkGoroutines(t *testing.T) { leaktest.Check(t) }

// tunnel makes namespace A with a TUN device, runs a stack with fwd on it
// and routes tunnelPrefix into the device inside A, so that whatever A's
// kernel sends there reaches fwd.
func tunnel(t *testing.T, fwd *netstack.Forwarder) (*netnstest.NS, *netstack.Stack) {
	t.Helper()
	ns := netnstest.New(t, netnstest.TUN())
	s, err := netstack.New(netstack.Config{Link: ns.Dev, Addr: ns.StackPrefix, Forwarder: fwd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := runIn(t, ns, 10*time.Second, "ip", "route", "add", tunnelPrefix, "dev", ns.DevName); err != nil {
		t.Fatal(err)
	}
	return ns, s
}

// runIn runs a tool inside ns and returns its trimmed standard output.
func runIn(t *testing.T, ns *netnstest.NS, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stderr bytes.Buffer
	cmd := ns.Command(ctx, name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), err
}

// dialIn returns a DialFunc whose sockets live in ns.
func dialIn(ns *netnstest.NS) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := ns.Run(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// dialFrom connects from inside ns.
func dialFrom(ns *netnstest.NS, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Run(func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, 20*time.Second)
		return err
	})
	return c, err
}

// serveIn listens on 127.0.0.1 inside ns (the server namespace B) and runs
// handle on each connection, which it closes after. Cleanup stops the
// listener and waits a bounded time for the handlers.
func serveIn(t *testing.T, ns *netnstest.NS, handle func(net.Conn)) string {
	t.Helper()
	var ln net.Listener
	if err := ns.Run(func() error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Minute))
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("server handlers still running 10 s after the test")
		}
	})
	return ln.Addr().String()
}

// stream is a deterministic pseudo-random byte source of a given length.
type stream struct {
	r    *rand.ChaCha8
	left int64
}

func newStream(seed uint64, n int64) *stream {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return &stream{r: rand.NewChaCha8(s), left: n}
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	s.r.Read(p)
	s.left -= int64(len(p))
	return len(p), nil
}

// digest returns the SHA-256 of a stream.
func digest(seed uint64, n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, newStream(seed, n))
	return [32]byte(h.Sum(nil))
}

// TestForwarderSeesOriginalDestinations checks what the tunnel relies on:
// connections and datagrams the kernel routes into the TUN device reach
// the Forwarder's handlers with the addresses the client asked for. The
// handlers answer themselves, without relaying: curl gets an HTTP reply
// naming the destination, dig a DNS answer whose A record is it.
func TestForwarderSeesOriginalDestinations(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "curl")
	netnstest.LookPath(t, "dig")
	seen := make(chan string, 16)
	fails := make(chan error, 16)
	ns, _ := tunnel(t, &netstack.Forwarder{
		UDPIdleTimeout: time.Second,
		TCP: func(r *netstack.TCPRequest) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := r.Accept(ctx)
			if err != nil {
				fails <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			dst := c.LocalAddr().String()
			if dst != r.Destination().String() {
				fails <- fmt.Errorf("accepted conn's LocalAddr %s, request's destination %s", dst, r.Destination())
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				fails <- err
				return
			}
			seen <- "tcp " + dst
			body := fmt.Sprintf("%s %s for %s at %s\n", req.Method, req.URL.Path, r.Source().Addr(), dst)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		},
		UDP: func(r *netstack.UDPRequest) {
			c, err := r.Accept()
			if err != nil {
				fails <- err
				return
			}
			defer c.Close()
			dst := r.Destination()
			buf := make([]byte, 1500)
			for {
				// The flow closes after a second idle; the deadline
				// bounds the loop whatever happens.
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				var q dns.Msg
				if err := q.Unpack(buf[:n]); err != nil || len(q.Question) != 1 {
					fails <- fmt.Errorf("bad query %x: %v", buf[:n], err)
					return
				}
				seen <- "udp " + dst.String()
				m := new(dns.Msg)
				m.SetReply(&q)
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IP(dst.Addr().AsSlice()),
				})
				out, err := m.Pack()
				if err != nil {
					fails <- err
					return
				}
				c.Write(out)
			}
		},
	})

	out, err := runIn(t, ns, 20*time.Second, "curl", "-sS", "--max-time", "10", "http://198.19.7.7:8080/where")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("GET /where for %s at 198.19.7.7:8080", ns.KernelAddr); out != want {
		t.Errorf("curl got %q, want %q", out, want)
	}
	out, err = runIn(t, ns, 20*time.Second, "dig", "+short", "+time=2", "+tries=2", "@198.19.8.8", "name.test", "A")
	if err != nil {
		t.Fatal(err)
	}
	if out != "198.19.8.8" {
		t.Errorf("dig got %q, want 198.19.8.8", out)
	}
	want := map[string]bool{"tcp 198.19.7.7:8080": true, "udp 198.19.8.8:53": true}
	for len(want) > 0 {
		select {
		case s := <-seen:
			if !want[s] {
				t.Errorf("a handler saw %s", s)
			}
			delete(want, s)
		case err := <-fails:
			t.Errorf("handler: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatalf("handlers never saw %v", want)
		}
	}
	select {
	case err := <-fails:
		t.Errorf("handler: %v", err)
	default:
	}
}

// relayed sets up the whole tunnel between two namespaces: the client
// namespace A routes tunnelPrefix into a TUN device read by a stack whose
// Relay dials, inside namespace B, to the server handle runs there. It
// returns A and the relay.
func relayed(t *testing.T, handle func(net.Conn)) (*netnstest.NS, *Relay) {
	t.Helper()
	b := netnstest.New(t) // its TAP device goes unused: B is just a namespace
	r := &Relay{Dial: dialIn(b), To: serveIn(t, b, handle)}
	a, _ := tunnel(t, r.Forwarder())
	return a, r
}

// bulkSize is how much TestTunnelBulk sends each way. It takes about 5 s,
// or 20 s under the race detector, on two cores.
const bulkSize = 256 << 20

// TestTunnelBulk relays bulkSize bytes each way through one connection,
// client in A → TUN → stack → Relay → kernel socket in B → server, and
// checks both directions' SHA-256.
func TestTunnelBulk(t *testing.T) {
	checkGoroutines(t)
	const up, down = 1, 2 // stream seeds
	got := make(chan [32]byte, 1)
	a, r := relayed(t, func(c net.Conn) {
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			io.Copy(c, newStream(down, bulkSize))
			c.(*net.TCPConn).CloseWrite()
		}()
		h := sha256.New()
		io.Copy(h, c)
		<-sent
		got <- [32]byte(h.Sum(nil))
	})
	c, err := dialFrom(a, "198.19.1.1:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	start := time.Now()
	sendErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, newStream(up, bulkSize))
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		sendErr <- err
	}()
	h := sha256.New()
	n, err := io.Copy(h, c)
	if err != nil || n != bulkSize {
		t.Fatalf("client read %d bytes of %d: %v", n, bulkSize, err)
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("client send: %v", err)
	}
	var serverGot [32]byte
	select {
	case serverGot = <-got:
	case <-time.After(time.Minute):
		t.Fatal("server never finished reading")
	}
	elapsed := time.Since(start)
	t.Logf("relayed %d MiB each way in %v (%.0f MiB/s each way)", bulkSize>>20, elapsed.Round(time.Millisecond), float64(bulkSize>>20)/elapsed.Seconds())
	if want := digest(down, bulkSize); [32]byte(h.Sum(nil)) != want {
		t.Error("the client received corrupted data")
	}
	if want := digest(up, bulkSize); serverGot != want {
		t.Error("the server received corrupted data")
	}
	c.Close()
	waitIdle(t, r)
}

// waitIdle waits a bounded time for the relay's flows to end.
func waitIdle(t *testing.T, r *Relay) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Active() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d flows still relayed 10 s after their clients closed", r.Active())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTunnelManyConnections relays 200 connections at once, each echoing a
// few kilobytes of its own.
func TestTunnelManyConnections(t *testing.T) {
	checkGoroutines(t)
	const conns = 200
	a, r := relayed(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	ready := make(chan struct{})
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialFrom(a, fmt.Sprintf("198.19.%d.%d:80", 1+i/250, 1+i%250))
			if err != nil {
				errs <- fmt.Errorf("conn %d: %w", i, err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			<-ready // all connected before any data moves
			size := int64(2048 + 37*i)
			go func() {
				io.Copy(c, newStream(uint64(100+i), size))
				c.(*net.TCPConn).CloseWrite()
			}()
			h := sha256.New()
			if n, err := io.Copy(h, c); err != nil || n != size {
				errs <- fmt.Errorf("conn %d: read %d of %d bytes: %v", i, n, size, err)
				return
			}
			if [32]byte(h.Sum(nil)) != digest(uint64(100+i), size) {
				errs <- fmt.Errorf("conn %d: corrupted echo", i)
			}
		}()
	}
	// Wait until every client is connected, or has failed.
	deadline := time.Now().Add(time.Minute)
	for r.Active() < conns && len(errs) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d relayed connections open after %v", r.Active(), time.Since(start).Round(time.Millisecond))
	close(ready)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		failed++
		if failed <= 10 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d connections failed", failed, conns)
	}
	t.Logf("%d connections done in %v", conns, time.Since(start).Round(time.Millisecond))
	waitIdle(t, r)
}

// TestTunnelRefusesWhenUpstreamRefuses checks that the relay accepts a
// client only once its upstream dial succeeded: a refused upstream shows
// as a refused connection to the client.
func TestTunnelRefusesWhenUpstreamRefuses(t *testing.T) {
	checkGoroutines(t)
	b := netnstest.New(t)
	var ln net.Listener // a port in B that is certainly closed: listen, then close
	if err := b.Run(func() error {
		var err error
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	r := &Relay{Dial: dialIn(b), To: ln.Addr().String()}
	a, _ := tunnel(t, r.Forwarder())
	c, err := dialFrom(a, "198.19.3.3:443")
	if err == nil {
		c.Close()
		t.Fatal("connected through a relay whose upstream refuses")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v, want ECONNREFUSED", err)
	}
	waitIdle(t, r)
}

// TestTunnelUDP relays datagrams of a flow to a UDP echo server in B and
// back, then lets the flow expire.
func TestTunnelUDP(t *testing.T) {
	checkGoroutines(t)
	b := netnstest.New(t)
	var pc net.PacketConn
	if err := b.Run(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-echoed })
	r := &Relay{Dial: dialIn(b), To: pc.LocalAddr().String(), UDPIdleTimeout: 300 * time.Millisecond}
	a, _ := tunnel(t, r.Forwarder())
	var c net.Conn
	if err := a.Run(func() error {
		var err error
		c, err = net.Dial("udp4", "198.19.4.4:7")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, size := range []int{5, 1400, 8000} { // the last one fragmented both ways
		msg := bytes.Repeat([]byte{byte(size)}, size)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d-byte datagram: %v", size, err)
		}
		if !bytes.Equal(buf[:n], append([]byte("echo "), msg...)) {
			t.Fatalf("%d-byte datagram: got %d bytes back", size, n)
		}
	}
	waitIdle(t, r) // the flow expires after 300 ms idle
}

// TestRelayAddrs checks the destination a flow is relayed to.
func TestRelayAddrs(t *testing.T) {
	dst := netip.MustParseAddrPort("198.19.7.7:8080")
	if got := (&Relay{}).target(dst); got != "198.19.7.7:8080" {
		t.Errorf("target without To = %s", got)
	}
	if got := (&Relay{To: "198.18.9.9:80"}).target(dst); got != "198.18.9.9:80" {
		t.Errorf("target with To = %s", got)
	}
}

// TestTunnelPing runs ping(8) in A through the tunnel. The relay pings
// the original destination from a ping socket in B: one B holds answers,
// and ping counts the replies; one B has no route to gets host
// unreachable back.
func TestTunnelPing(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "ping")
	b := netnstest.New(t)
	for _, args := range [][]string{
		{"sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"}, // ping sockets for root's group
		{"ip", "addr", "add", "198.19.5.5/32", "dev", "lo"},
	} {
		if _, err := runIn(t, b, 10*time.Second, args[0], args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	r := &Relay{ListenPing: func(v6 bool) (pc net.PacketConn, err error) {
		err = b.Run(func() (err error) {
			pc, err = listenPing(v6, 0)
			return err
		})
		return pc, err
	}}
	a, s := tunnel(t, r.Forwarder())
	out, err := runIn(t, a, 30*time.Second, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "5", "198.19.5.5")
	if err != nil || !strings.Contains(out, "3 packets transmitted, 3 received") {
		t.Fatalf("ping through the tunnel: %v\n%s", err, out)
	}
	out, err = runIn(t, a, 30*time.Second, "ping", "-n", "-c", "1", "-W", "5", "198.19.5.6")
	if err == nil || !strings.Contains(out, "Destination Host Unreachable") {
		t.Fatalf("ping to an address B cannot reach: %v\n%s", err, out)
	}
	if st := s.Stats().ICMP; st.EchoForwarded != 4 || st.EchoRepliesOut != 3 || st.UnreachOut != 1 {
		t.Fatalf("forwarded %d echo requests, replied %d, refused %d: want 4, 3, 1", st.EchoForwarded, st.EchoRepliesOut, st.UnreachOut)
	}
}
