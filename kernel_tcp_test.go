package netstack

import (
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
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// kernelListen makes a listener inside the namespace on the kernel's
// address.
func kernelListen(t *testing.T, ns *netnstest.NS, port int) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.Run(func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(ns.KernelAddr, uint16(port)).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// kernelPair connects the stack to a kernel listener on port and returns
// both ends, closed when the test ends.
func kernelPair(t *testing.T, ns *netnstest.NS, s *Stack, port int) (stackSide, kernelSide net.Conn) {
	t.Helper()
	return dialPair(t, kernelListen(t, ns, port), s, netip.AddrPortFrom(ns.KernelAddr, uint16(port)))
}

// dialPair dials addr from s and returns both ends of the connection, the
// other accepted from the kernel's ln.
func dialPair(t *testing.T, ln net.Listener, s *Stack, addr netip.AddrPort) (stackSide, kernelSide net.Conn) {
	t.Helper()
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c, err := s.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	k := <-acc
	if k == nil {
		t.Fatal("the kernel accepted nothing")
	}
	t.Cleanup(func() { k.Close() })
	return c, k
}

// impairedPeer is newKernelPeer on a plain TAP (one frame, one segment)
// with the impairment wrapper between the stack and the device.
func impairedPeer(t *testing.T, cfg link.ImpairConfig) (*netnstest.NS, *Stack, *link.Impair) {
	t.Helper()
	netnstest.Require(t)
	ns := netnstest.New(t, netnstest.Plain())
	imp := link.NewImpair(ns.Dev, cfg)
	s, err := New(Config{Link: imp, Addr: ns.StackPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return ns, s, imp
}

// kernelDial connects from inside the namespace.
func kernelDial(t *testing.T, ns *netnstest.NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := ns.Run(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestKernelCurlFetchesFromStack(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	netnstest.LookPath(t, "curl")
	ln, err := s.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s from the stack", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	for i := range 3 { // keep-alive is per process; run curl a few times
		out, err := runIn(t, ns, 20*time.Second, "curl", "-sS", "--max-time", "10",
			fmt.Sprintf("http://%v:8080/x%d", s.Addr(), i))
		if err != nil || out != fmt.Sprintf("hello /x%d from the stack", i) {
			t.Fatalf("curl: %v: %q", err, out)
		}
	}
}

func TestStackHTTPClientFetchesFromKernel(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	ln := kernelListen(t, ns, 8081)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kernel says hi to %s", r.RemoteAddr)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{DialContext: s.DialContext}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	for range 3 {
		resp, err := hc.Get(fmt.Sprintf("http://%v:8081/", ns.KernelAddr))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.HasPrefix(string(body), "kernel says hi to "+s.Addr().String()) {
			t.Fatalf("body %q", body)
		}
	}
}

// stream is a deterministic pseudo-random byte source of a given length.
type stream struct {
	r    *rand.ChaCha8
	left int64
}

func newStream(seed byte, n int64) *stream {
	return &stream{r: rand.NewChaCha8([32]byte{seed}), left: n}
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

// exchange sends size bytes each way at once between a and b, each closing
// its write side when done, and checks both directions by SHA-256.
func exchange(t *testing.T, a, b net.Conn, size int64) { exchangeUntil(t, a, b, size, nil) }

// exchangeUntil is exchange that also stops sending, each way, once stop
// is closed (a nil stop never is); what was sent up to then is checked.
func exchangeUntil(t *testing.T, a, b net.Conn, size int64, stop <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	type sent struct {
		seed byte
		n    int64
		err  error
	}
	send := func(c net.Conn, seed byte, out chan<- sent) {
		src := newStream(seed, size)
		buf := make([]byte, 64<<10)
		var total int64
		for {
			select {
			case <-stop:
				src.left = 0
			default:
			}
			n, _ := src.Read(buf)
			if n == 0 {
				break
			}
			w, err := c.Write(buf[:n])
			total += int64(w)
			if err != nil {
				out <- sent{seed, total, err}
				return
			}
		}
		out <- sent{seed, total, c.(interface{ CloseWrite() error }).CloseWrite()}
	}
	recv := func(c net.Conn, out chan<- result) {
		h := sha256.New()
		n, err := io.Copy(h, c)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = n, err
		out <- r
	}
	sends := make(chan sent, 2)
	results := make(chan result, 2)
	go send(a, 1, sends)
	go send(b, 2, sends)
	go recv(a, results)
	go recv(b, results)
	want := map[[32]byte]int64{}
	for range 2 {
		sd := <-sends
		if sd.err != nil {
			t.Fatalf("send: %v", sd.err)
		}
		if stop == nil && sd.n != size {
			t.Fatalf("sent %d of %d bytes", sd.n, size)
		}
		h := sha256.New()
		io.Copy(h, newStream(sd.seed, sd.n))
		want[[32]byte(h.Sum(nil))] = sd.n
	}
	for range 2 {
		r := <-results
		n, ok := want[r.sum]
		if r.err != nil || !ok || r.n != n {
			t.Fatalf("received %d bytes (err %v); hash match %v", r.n, r.err, ok)
		}
		delete(want, r.sum)
	}
}

// bulkSize is 1 GiB as the issue asks, 64 MiB under the race detector
// (make test runs the bulk tests again without it at full size);
// NETSTACK_BULK_MIB overrides both.
func bulkSize() int64 {
	var mib int64 = 1024
	if raceEnabled {
		mib = 64
	}
	if v := os.Getenv("NETSTACK_BULK_MIB"); v != "" {
		fmt.Sscan(v, &mib)
	}
	return mib << 20
}

// TestKernelBulkExchange runs over the default device, opened with the
// virtio-net header: the kernel hands the stack 64 KiB super-segments
// (checksums completed by the link) and takes super-segments (TSO) back.
func TestKernelBulkExchange(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	if !ns.Dev.Offload() {
		t.Fatal("the kernel refused IFF_VNET_HDR offloads")
	}
	c, k := kernelPair(t, ns, s, 9000)
	start := time.Now()
	exchange(t, c, k, bulkSize())
	st := s.Stats()
	t.Logf("%d MiB each way in %v; %d frames in carried %d segments, %d frames out carried %d",
		bulkSize()>>20, time.Since(start), st.Link.FramesIn, st.TCP.SegmentsIn, st.Link.FramesOut, st.TCP.SegmentsOut)
	if st.TCP.SegmentsOut < 2*st.Link.FramesOut {
		t.Fatalf("TSO did not coalesce: %d segments in %d frames", st.TCP.SegmentsOut, st.Link.FramesOut)
	}
}

func TestKernelBulkExchangeImpaired(t *testing.T) {
	checkGoroutines(t)
	ns, s, imp := impairedPeer(t, link.ImpairConfig{
		Seed:    7,
		Egress:  link.Impairment{Drop: 0.02, Reorder: 0.02},
		Ingress: link.Impairment{Drop: 0.02, Reorder: 0.02},
	})
	c, k := kernelPair(t, ns, s, 9001)
	start := time.Now()
	exchange(t, c, k, bulkSize())
	eg, in := imp.Stats()
	t.Logf("%d MiB each way in %v; dropped %d+%d, reordered %d+%d", bulkSize()>>20, time.Since(start),
		eg.Dropped, in.Dropped, eg.Reordered, in.Reordered)
	if eg.Dropped == 0 || in.Dropped == 0 || eg.Reordered == 0 || in.Reordered == 0 {
		t.Fatal("the impairment did nothing")
	}
	// Every segment our side lost had to be sent again, and the stack's
	// counter says so.
	if st := s.Stats(); st.TCP.Retransmits < eg.Dropped/2 {
		t.Fatalf("Stats().TCP.Retransmits = %d after %d of our frames were dropped", st.TCP.Retransmits, eg.Dropped)
	}
}

func TestKernelManyConnections(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	ln := kernelListen(t, ns, 9002)
	go serveEcho(ln, time.Minute)
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c, err := s.DialContext(ctx, "tcp", fmt.Sprintf("%v:9002", ns.KernelAddr))
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(60 * time.Second))
			msg := bytes.Repeat([]byte{byte(i)}, 1000+i)
			if _, err := c.Write(msg); err != nil {
				errs <- err
				return
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				errs <- fmt.Errorf("conn %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestKernelHalfClose(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	// Stack closes its write side: the kernel reads EOF and can still send.
	c, k := kernelPair(t, ns, s, 9003)
	halfClose(t, c, k)

	// Kernel closes its write side: the stack reads EOF and can still send.
	sl, err := s.Listen("tcp", ":9004")
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	sacc := make(chan net.Conn, 1)
	go func() { c, _ := sl.Accept(); sacc <- c }()
	k2 := kernelDial(t, ns, fmt.Sprintf("%v:9004", s.Addr()))
	c2 := <-sacc
	defer c2.Close()
	halfClose(t, k2, c2)
}

// halfClose: closer writes and closes its write side; other reads the data
// then EOF, answers, and closer reads the answer.
func halfClose(t *testing.T, closer, other net.Conn) {
	t.Helper()
	closer.SetDeadline(time.Now().Add(10 * time.Second))
	other.SetDeadline(time.Now().Add(10 * time.Second))
	closer.Write([]byte("request"))
	if err := closer.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(other)
	if err != nil || string(got) != "request" {
		t.Fatalf("read to EOF: %q %v", got, err)
	}
	if _, err := other.Write([]byte("response after EOF")); err != nil {
		t.Fatal(err)
	}
	other.Close()
	got, err = io.ReadAll(closer)
	if err != nil || string(got) != "response after EOF" {
		t.Fatalf("half-closed side read %q %v", got, err)
	}
}

func TestKernelRefusedAndReset(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	_, err := s.Dial("tcp", fmt.Sprintf("%v:9", ns.KernelAddr))
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial closed port: %v", err)
	}
	// The kernel resets an established connection (SO_LINGER 0).
	ln := kernelListen(t, ns, 9005)
	acc := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); acc <- c }()
	c, err := s.Dial("tcp", fmt.Sprintf("%v:9005", ns.KernelAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := <-acc
	k.(*net.TCPConn).SetLinger(0)
	k.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 10))
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read after kernel RST: %v", err)
	}
}

func TestKernelDialSilentHostTimesOut(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	netnstest.LookPath(t, "nft")
	// A second kernel address that answers ARP but drops every TCP segment.
	silent := ns.KernelAddr.Next().Next() // 198.18.N.3
	for _, args := range [][]string{
		{"ip", "addr", "add", silent.String() + "/32", "dev", ns.DevName},
		{"nft", "add table inet nst"},
		{"nft", "add chain inet nst in { type filter hook input priority 0 ; }"},
		{"nft", "add rule inet nst in ip daddr " + silent.String() + " tcp dport 80 drop"},
	} {
		if out, err := runIn(t, ns, 5*time.Second, args[0], args[1:]...); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	d := Dialer{Stack: s, Timeout: 1500 * time.Millisecond}
	start := time.Now()
	_, err := d.Dial("tcp", silent.String()+":80")
	wantDialTimeout(t, "dial a silent port", err)
	// It cannot fail before its timeout; the upper bound only catches a hang.
	if el := time.Since(start); el < time.Second || el > 30*time.Second {
		t.Fatalf("timed out after %v", el)
	}
	out, _ := runIn(t, ns, 5*time.Second, "nft", "list", "ruleset")
	if !strings.Contains(out, "drop") {
		t.Fatalf("rule missing:\n%s", out)
	}
}

// TestKernelBulkPlain is the bulk exchange over a TAP opened without the
// virtio-net header: every frame one MTU at most, each way.
func TestKernelBulkPlain(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t, netnstest.Plain())
	if ns.Dev.Offload() {
		t.Fatal("a plain device has offloads")
	}
	c, k := kernelPair(t, ns, s, 9010)
	start := time.Now()
	exchange(t, c, k, bulkSize())
	t.Logf("%d MiB each way in %v; %d frames in for %d segments in", bulkSize()>>20, time.Since(start),
		s.Stats().Link.FramesIn, s.Stats().TCP.SegmentsIn)
}

// TestKernelBulkLossGoodput: 256 MiB each way against the kernel over a
// plain TAP, with our impairment wrapper dropping 1 % of frames each way,
// beside the same transfer without loss; both arrive intact.
func TestKernelBulkLossGoodput(t *testing.T) {
	checkGoroutines(t)
	size := bulkSize() / 4
	run := func(drop float64) time.Duration {
		ns, s, imp := impairedPeer(t, link.ImpairConfig{
			Seed:    9,
			Egress:  link.Impairment{Drop: drop},
			Ingress: link.Impairment{Drop: drop},
		})
		c, k := kernelPair(t, ns, s, 9020)
		start := time.Now()
		exchange(t, c, k, size)
		took := time.Since(start)
		eg, in := imp.Stats()
		info := c.(*TCPConn).Info()
		t.Logf("%.0f %% loss: %d MiB each way in %v (%.0f Mbit/s each way); dropped %d+%d frames; retransmits %d, timeouts %d, recoveries %d, TLPs %d",
			drop*100, size>>20, took.Round(time.Millisecond), float64(size*8)/took.Seconds()/1e6,
			eg.Dropped, in.Dropped, info.Retransmits, info.Timeouts, info.Recoveries, info.TLPs)
		if drop > 0 && (eg.Dropped == 0 || in.Dropped == 0) {
			t.Fatal("the impairment dropped nothing")
		}
		return took
	}
	// How much slower the lossy run is, is a benchmark's question (bench/
	// has the lossy rows); here both must complete intact.
	clean := run(0)
	lossy := run(0.01)
	t.Logf("1 %% loss took %.1f× the clean run", lossy.Seconds()/clean.Seconds())
}
