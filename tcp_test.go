package netstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
	"golang.org/x/net/nettest"
)

func TestTCPEchoOverPipe(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln, time.Minute)
	c, err := a.Dial("tcp", "198.18.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	msg := []byte("hello, netstack")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%q %v", got, err)
	}
	// A larger stream, checked by hash.
	const size = 8 << 20
	src := make([]byte, size)
	for i := range src {
		src[i] = byte(i * 13)
	}
	go c.Write(src)
	h := sha256.New()
	if n, err := io.CopyN(h, c, size); err != nil || n != size {
		t.Fatalf("copied %d: %v", n, err)
	}
	if want := sha256.Sum256(src); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("stream corrupted")
	}
	c.(*TCPConn).CloseWrite()
	if n, err := c.Read(got); n != 0 || err != io.EOF {
		t.Fatalf("after half-close: %d %v, want EOF", n, err)
	}
}

func TestTCPDialRefused(t *testing.T) {
	a, b := newPipePair(t)
	_, err := a.Dial("tcp", b.Addr().String()+":81")
	var oe *net.OpError
	if !errors.Is(err, syscall.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Fatalf("got %v", err)
	}
}

func TestTCPDialContextDeadline(t *testing.T) {
	a, _ := newPipePair(t)
	// Nobody answers ARP for .77: the context ends first.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := a.DialContext(ctx, "tcp", "198.18.0.77:80")
	wantDialTimeout(t, "context deadline", err)
	d := &Dialer{Stack: a, Timeout: 200 * time.Millisecond}
	_, err = d.Dial("tcp", "198.18.0.77:80")
	wantDialTimeout(t, "Dialer.Timeout", err)
	d = &Dialer{Stack: a, Deadline: time.Now().Add(200 * time.Millisecond)}
	_, err = d.Dial("tcp", "198.18.0.77:80")
	wantDialTimeout(t, "Dialer.Deadline", err)
}

// wantDialTimeout checks err as Go's net gives a dial that runs out of
// time: a "dial" *net.OpError, a net.Error whose Timeout is true, matching
// context.DeadlineExceeded (what retry code checks) and
// os.ErrDeadlineExceeded.
func wantDialTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	var oe *net.OpError
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) ||
		!errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("%s: got %v", what, err)
	}
}

func TestTCPDialUnreachable(t *testing.T) {
	a, _ := newPipePair(t)
	_, err := a.Dial("tcp", "198.18.0.77:80")
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("got %v", err)
	}
}

func TestNettestConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := newPipePair(t)
		ln, err := b.Listen("tcp", ":0")
		if err != nil {
			return nil, nil, nil, err
		}
		acc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			acc <- c
		}()
		c1, err = a.Dial("tcp", netip.AddrPortFrom(b.Addr(), uint16(ln.Addr().(*net.TCPAddr).Port)).String())
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-acc
		if c2 == nil {
			return nil, nil, nil, errors.New("accept failed")
		}
		stop = func() {
			c1.Close()
			c2.Close()
			ln.Close()
			a.Close()
			b.Close()
		}
		return c1, c2, stop, nil
	})
}

// TestTCPDialCancelResets: a dial whose context ends mid-handshake aborts,
// and the peer's half-open connection is reset when its SYN-ACK arrives.
func TestTCPDialCancelResets(t *testing.T) {
	checkGoroutines(t)
	la, lb := Pipe()
	slow := link.NewImpair(lb, link.ImpairConfig{Seed: 1, Egress: link.Impairment{Delay: 300 * time.Millisecond}})
	a, err := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Link: slow, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, _ := b.Listen("tcp", ":80")
	defer ln.Close()
	// Let ARP settle first so the SYN leaves at once.
	a.Ping(context.Background(), b.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.DialContext(ctx, "tcp", "198.18.0.2:80"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("dial: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := b.e.ConnCount()
		if n == 0 && b.Stats().TCP.ResetsIn > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer still holds %d connections; a: %+v b: %+v", n, a.Stats().TCP, b.Stats().TCP)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if a.Stats().TCP.ResetsOut == 0 {
		t.Fatal("the dialer sent no RST")
	}
}

func TestTCPConnectionLimit(t *testing.T) {
	la, lb := Pipe()
	a, _ := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), Limits: Limits{MaxConnections: 2}})
	defer a.Close()
	b, _ := New(Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24"), Limits: Limits{MaxConnections: 3}})
	defer b.Close()
	ln, _ := b.Listen("tcp", ":80")
	defer ln.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2 {
		c, err := a.Dial("tcp", "198.18.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if _, err := a.Dial("tcp", "198.18.0.2:80"); !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("third dial: %v, want ENOBUFS", err)
	}
	if n := a.Stats().TCP.DropConnLimit; n != 1 {
		t.Fatalf("DropConnLimit %d", n)
	}
}

func TestTCPInfoAndCongestionControl(t *testing.T) {
	la, lb := Pipe()
	a, err := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), TCP: TCPConfig{CongestionControl: "reno"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, _ := New(Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	defer b.Close()
	if _, err := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.3/24"), TCP: TCPConfig{CongestionControl: "vegas"}}); err == nil {
		t.Fatal("unknown congestion control accepted")
	}
	ln, _ := b.Listen("tcp", ":80")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := a.Dial("tcp", "198.18.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := c.(*TCPConn)
	if err := tc.SetCongestionControl("cubic"); err != nil {
		t.Fatal(err)
	}
	if err := tc.SetCongestionControl("nope"); err == nil {
		t.Fatal("unknown congestion control accepted")
	}
	if err := tc.SetCongestionControl("bbr"); err != nil {
		t.Fatal(err)
	}
	c.Write(make([]byte, 1<<20))
	deadline := time.Now().Add(5 * time.Second)
	for tc.Info().BytesAcked < 1<<20 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	info := tc.Info()
	if info.BytesAcked != 1<<20 || !info.SACK || !info.Timestamps || info.RTT <= 0 || info.Cwnd <= 0 {
		t.Fatalf("info %+v", info)
	}
	if info.BBR.State == "" || info.BBR.PacingRate <= 0 {
		t.Fatalf("BBR selected, but Info.BBR is %+v", info.BBR)
	}
}

// TestTCPBufferMemoryLimit: sixteen 4 MiB echoes at once through stacks
// whose TCP buffers may take 512 KiB in all. Every stream comes back
// intact, the limit is hit and counted, it is never exceeded by more than
// the 8 KiB each connection is always granted, and all of it is given back
// once the connections are closed.
func TestTCPBufferMemoryLimit(t *testing.T) {
	checkGoroutines(t)
	const conns, limit = 16, 512 << 10
	size := int64(4 << 20)
	if raceEnabled {
		size = 1 << 20
	}
	a, b := newPipePairConfig(t, Config{Limits: Limits{TCPBufferMemory: limit}})
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln, time.Minute)

	var peak atomic.Int64
	sample := func() {
		for _, s := range []*Stack{a, b} {
			u := int64(s.e.TCPMemoryUsed())
			for p := peak.Load(); u > p && !peak.CompareAndSwap(p, u); p = peak.Load() {
			}
		}
	}
	echo := func(seed byte) error {
		c, err := a.Dial("tcp", "198.18.0.2:80")
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		werr := make(chan error, 1)
		go func() {
			_, err := io.Copy(c, newStream(seed, size))
			if err == nil {
				err = c.(*TCPConn).CloseWrite()
			}
			werr <- err
		}()
		h := sha256.New()
		buf := make([]byte, 32<<10)
		var n int64
		for {
			k, err := c.Read(buf)
			h.Write(buf[:k])
			n += int64(k)
			sample()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("stream %d: read after %d bytes: %v", seed, n, err)
			}
		}
		if err := <-werr; err != nil {
			return fmt.Errorf("stream %d: write: %v", seed, err)
		}
		want := sha256.New()
		io.Copy(want, newStream(seed, size))
		if n != size || !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
			return fmt.Errorf("stream %d: %d of %d bytes came back, or not the ones sent", seed, n, size)
		}
		return nil
	}
	errs := make(chan error, conns)
	for i := range conns {
		go func() { errs <- echo(byte(i + 1)) }()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ha, hb := a.Stats().TCP.BufferBudgetHits, b.Stats().TCP.BufferBudgetHits
	t.Logf("peak %d KiB of %d KiB; budget hits %d (client), %d (server); segments trimmed %d, %d",
		peak.Load()>>10, limit>>10, ha, hb, a.Stats().TCP.DropMemory, b.Stats().TCP.DropMemory)
	if ha == 0 || hb == 0 {
		t.Fatalf("budget hits %d, %d: the limit never bit", ha, hb)
	}
	if bound := int64(limit + conns*8<<10); peak.Load() > bound {
		t.Fatalf("buffers took %d bytes, bound %d", peak.Load(), bound)
	}
	// The clients' connections are in TIME-WAIT, the servers' closed: no
	// buffers.
	deadline := time.Now().Add(10 * time.Second)
	for a.e.TCPMemoryUsed() != 0 || b.e.TCPMemoryUsed() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("buffers still held after all closed: %d, %d bytes", a.e.TCPMemoryUsed(), b.e.TCPMemoryUsed())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTCPConnCountersSurviveClose: the counters each connection keeps
// (recoveries, out-of-order segments, ...) show in Stats().TCP while it
// lives, and stay there, never lower, once it is gone.
func TestTCPConnCountersSurviveClose(t *testing.T) {
	checkGoroutines(t)
	la, lb := Pipe()
	lossy := link.NewImpair(lb, link.ImpairConfig{Seed: 3, Egress: link.Impairment{Drop: 0.02, Reorder: 0.02}})
	cfg := Config{TCP: TCPConfig{TimeWait: 10 * time.Millisecond}}
	cfg.Link, cfg.Addr = la, netip.MustParsePrefix("198.18.0.1/24")
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cfg.Link, cfg.Addr = lossy, netip.MustParsePrefix("198.18.0.2/24")
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 4 << 20
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(make([]byte, size))
	}()
	c, err := a.Dial("tcp", "198.18.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(time.Minute))
	if n, err := io.Copy(io.Discard, c); n != size || err != nil {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	live := b.Stats().TCP.TCPConns
	got := a.Stats().TCP.TCPConns
	if live.FastRetransmits+live.Timeouts+live.TLPs == 0 || got.OutOfOrder == 0 {
		t.Fatalf("sender %+v, receiver %+v: the losses did not count", live, got)
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for a.e.ConnCount() > 0 || b.e.ConnCount() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("connections left: %d, %d", a.e.ConnCount(), b.e.ConnCount())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if after := b.Stats().TCP.TCPConns; after.FastRetransmits < live.FastRetransmits || after.Timeouts < live.Timeouts || after.TLPs < live.TLPs {
		t.Fatalf("sender's counters went down after close: %+v, then %+v", live, after)
	}
	if after := a.Stats().TCP.TCPConns; after.OutOfOrder < got.OutOfOrder {
		t.Fatalf("receiver's counters went down after close: %+v, then %+v", got, after)
	}
}

// TestTCPSettersZeroAllocs: setting a connection's deadlines, as net/http
// does several times a request, allocates nothing when no Read or Write
// waits on them (only an error carries the connection's addresses).
func TestTCPSettersZeroAllocs(t *testing.T) {
	checkGoroutines(t)
	la, lb := Pipe()
	a, b := newLinkPair(t, Config{}, la, lb)
	c, sc := pipePairConn(t, a, b, 80)
	defer c.Close()
	defer sc.Close()
	soon := time.Now().Add(time.Hour)
	if n := testing.AllocsPerRun(100, func() {
		c.SetReadDeadline(soon)
		c.SetReadDeadline(time.Time{})
		c.SetWriteDeadline(soon)
		c.SetDeadline(time.Time{})
	}); n != 0 {
		t.Errorf("setting deadlines: %v allocs, want 0", n)
	}
}
