// Package work holds the workloads, written once against net.Conn and
// net.Listener and run unchanged on every pair.
package work

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/bench/internal/netns"
	"github.com/gotcpip/netstack/bench/internal/pair"
)

// accepter accepts from l in the background and hands conns out in order.
type accepter struct {
	c    chan net.Conn
	errc chan error
}

func accept(l net.Listener, depth int) *accepter {
	a := &accepter{c: make(chan net.Conn, depth), errc: make(chan error, 1)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				a.errc <- err
				close(a.c)
				return
			}
			a.c <- c
		}
	}()
	return a
}

func (a *accepter) next(ctx context.Context) (net.Conn, error) {
	select {
	case c, ok := <-a.c:
		if !ok {
			return nil, fmt.Errorf("accept: %w", <-a.errc)
		}
		return c, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("accept: %w", ctx.Err())
	}
}

func deadline(ctx context.Context, cs ...net.Conn) {
	if d, ok := ctx.Deadline(); ok {
		for _, c := range cs {
			c.SetDeadline(d)
		}
	}
}

// connect dials n connections and pairs each with its accepted end.
func connect(ctx context.Context, p *pair.Pair, a *accepter, n int) (cli, srv []net.Conn, err error) {
	for range n {
		c, err := p.Dial(ctx)
		if err != nil {
			return cli, srv, fmt.Errorf("dial: %w", err)
		}
		cli = append(cli, c)
		s, err := a.next(ctx)
		if err != nil {
			return cli, srv, err
		}
		srv = append(srv, s)
		deadline(ctx, c, s)
	}
	return cli, srv, nil
}

func closeAll(cs ...[]net.Conn) {
	for _, l := range cs {
		for _, c := range l {
			c.Close()
		}
	}
}

// Stream moves size bytes over n connections at once (size/n each), from
// client to server (down false) or server to client (down true), and
// returns Gbit/s from the first write to the last byte read.
func Stream(ctx context.Context, p *pair.Pair, size int64, n int, down bool) ([]float64, error) {
	a := accept(p.Listener, n)
	cli, srv, err := connect(ctx, p, a, n)
	defer closeAll(cli, srv)
	if err != nil {
		return nil, err
	}
	src, dst := cli, srv
	if down {
		src, dst = srv, cli
	}
	per := size / int64(n)
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	start := time.Now()
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for left := per; left > 0; {
				k := min(left, int64(len(buf)))
				if _, err := src[i].Write(buf[:k]); err != nil {
					errs[2*i] = fmt.Errorf("write after %d of %d bytes: %w", per-left, per, err)
					return
				}
				left -= k
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			var got int64
			for got < per {
				k, err := dst[i].Read(buf)
				got += int64(k)
				if err != nil && got < per {
					errs[2*i+1] = fmt.Errorf("read after %d of %d bytes: %w", got, per, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return []float64{float64(per*int64(n)) * 8 / el.Seconds() / 1e9}, nil
}

// RR does 1-byte request/response round trips on one connection, count
// times or for dur, whichever ends first, and returns µs per round trip.
func RR(ctx context.Context, p *pair.Pair, count int, dur time.Duration) ([]float64, error) {
	a := accept(p.Listener, 1)
	cli, srv, err := connect(ctx, p, a, 1)
	defer closeAll(cli, srv)
	if err != nil {
		return nil, err
	}
	for _, c := range []net.Conn{cli[0], srv[0]} {
		if nd, ok := c.(interface{ SetNoDelay(bool) error }); ok {
			nd.SetNoDelay(true)
		}
	}
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := io.ReadFull(srv[0], b); err != nil {
				return
			}
			if _, err := srv[0].Write(b); err != nil {
				return
			}
		}
	}()
	b := make([]byte, 1)
	start := time.Now()
	end := start.Add(dur)
	n := 0
	for n < count {
		if _, err := cli[0].Write(b); err != nil {
			return nil, fmt.Errorf("write after %d round trips: %w", n, err)
		}
		if _, err := io.ReadFull(cli[0], b); err != nil {
			return nil, fmt.Errorf("read after %d round trips: %w", n, err)
		}
		n++
		if n%256 == 0 && time.Now().After(end) {
			break
		}
	}
	return []float64{float64(time.Since(start).Microseconds()) / float64(n)}, nil
}

// ConnClose dials and closes connections one after another (the server
// accepts and closes each), count times or for dur, and returns conns/s.
func ConnClose(ctx context.Context, p *pair.Pair, count int, dur time.Duration) ([]float64, error) {
	go func() {
		for {
			c, err := p.Listener.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	start := time.Now()
	end := start.Add(dur)
	n := 0
	for n < count && time.Now().Before(end) {
		c, err := p.Dial(ctx)
		if err != nil {
			return nil, fmt.Errorf("dial #%d: %w", n+1, err)
		}
		c.Close()
		n++
	}
	return []float64{float64(n) / time.Since(start).Seconds()}, nil
}

// Idle opens n connections and leaves them idle, then returns the Go heap
// (HeapInuse after GC) and goroutines they added, per connection, with both
// ends (client and server conn) in this process counted together.
// If the pair caps connections (p.MaxConns) below n, it opens that many.
func Idle(ctx context.Context, p *pair.Pair, n int) ([]float64, error) {
	heap, goroutines, _, err := idle(ctx, p, n, true)
	if err != nil {
		return nil, err
	}
	return []float64{heap, goroutines}, nil
}

// IdleUsed is Idle for connections that each carried one request and
// its response first (100 bytes from the client, 1,000 back, as a small
// HTTP exchange), both read: what a server's idle keep-alive connections
// hold between requests.
func IdleUsed(ctx context.Context, p *pair.Pair, n int) ([]float64, error) {
	heap, goroutines, _, err := idleAfter(ctx, p, n, true, exchange)
	if err != nil {
		return nil, err
	}
	return []float64{heap, goroutines}, nil
}

// exchange sends a 100-byte request from cli to srv and a 1,000-byte
// response back, each read whole by the other end.
func exchange(cli, srv net.Conn) error {
	var req [100]byte
	var resp [1000]byte
	if _, err := cli.Write(req[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(srv, req[:]); err != nil {
		return err
	}
	if _, err := srv.Write(resp[:]); err != nil {
		return err
	}
	_, err := io.ReadFull(cli, resp[:])
	return err
}

// IdleMany is Idle for many connections: it returns the heap per
// connection and the seconds it took to open them all, one after the
// other. It leaves them open: closing a million connections one by one
// takes longer than opening them, and the pair's Close ends them all.
func IdleMany(ctx context.Context, p *pair.Pair, n int) ([]float64, error) {
	heap, _, open, err := idle(ctx, p, n, false)
	if err != nil {
		return nil, err
	}
	return []float64{heap, open}, nil
}

// HeapProfile, if set, is the file each idle measurement writes a heap
// profile to while its connections are open (the last one run wins).
var HeapProfile string

// writeHeapProfile writes the heap profile to path; it reports a failure
// on standard error, as the measurement goes on without it.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "heap profile:", err)
	}
}

// settle waits, at most 10 s, until the heap and the goroutines stop
// shrinking: the pair of the run before, closed just now, may still be
// freeing its connections in goroutines of its own (gVisor's forwarder
// takes seconds), and what it frees during a measurement would count
// against that measurement (runs in a row read 6,654, 4,638 and 3,595
// bytes per connection before this).
func settle() {
	prevHeap, prevG := uint64(math.MaxUint64), math.MaxInt
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		g := runtime.NumGoroutine()
		if m.HeapInuse+m.HeapInuse/200 >= prevHeap && g >= prevG {
			return // less than 0.5 % smaller, and no goroutine gone
		}
		prevHeap, prevG = m.HeapInuse, g
	}
}

// idle measures n idle connections (see Idle) and how long they took to
// open; it closes them at the end if closeThem is set.
func idle(ctx context.Context, p *pair.Pair, n int, closeThem bool) (heap, goroutines, open float64, err error) {
	return idleAfter(ctx, p, n, closeThem, nil)
}

// idleAfter is idle with use, if not nil, called on each connection's two
// ends once it is open; its time counts in open.
func idleAfter(ctx context.Context, p *pair.Pair, n int, closeThem bool, use func(cli, srv net.Conn) error) (heap, goroutines, open float64, err error) {
	if p.MaxConns > 0 && n > p.MaxConns {
		n = p.MaxConns
	}
	var m0, m1 runtime.MemStats
	settle()
	a := accept(p.Listener, 64)
	time.Sleep(10 * time.Millisecond) // the accepter is running
	runtime.GC()
	runtime.ReadMemStats(&m0)
	g0 := runtime.NumGoroutine()
	start := time.Now()
	cli, srv, err := connect(ctx, p, a, n)
	if closeThem {
		defer closeAll(cli, srv)
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("after %d connections: %w", len(srv), err)
	}
	for i := 0; use != nil && i < n; i++ {
		if err := use(cli[i], srv[i]); err != nil {
			return 0, 0, 0, fmt.Errorf("connection %d: %w", i+1, err)
		}
	}
	open = time.Since(start).Seconds()
	time.Sleep(300 * time.Millisecond) // let ACKs and timers settle
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	g1 := runtime.NumGoroutine()
	if HeapProfile != "" {
		writeHeapProfile(HeapProfile)
	}
	runtime.KeepAlive(cli)
	runtime.KeepAlive(srv)
	heap = (float64(m1.HeapInuse) - float64(m0.HeapInuse)) / float64(n)
	return heap, float64(g1-g0) / float64(n), open, nil
}

// Wrk serves a small HTTP response on p.Listener and runs wrk from
// p.ClientNS: returns requests/s and p99 latency in ms.
func Wrk(ctx context.Context, p *pair.Pair, threads, conns int, dur time.Duration) ([]float64, error) {
	if p.ClientNS == nil {
		return nil, errors.New("wrk: pair has no client namespace")
	}
	body := []byte("hello, netstack\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})}
	go srv.Serve(p.Listener)
	defer srv.Close()
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, errors.New("wrk not installed (apt-get install -y wrk)")
	}
	cmd := p.ClientNS.Command("wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(dur.Seconds()))+"s", "--timeout", "5s", "--latency", p.URL)
	cctx, cancel := context.WithTimeout(ctx, dur+30*time.Second)
	defer cancel()
	cmd = exec.CommandContext(cctx, cmd.Args[0], cmd.Args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, lastLines(string(out), 5))
	}
	return parseWrk(string(out))
}

var (
	reRPS  = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP99  = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
	reErrs = regexp.MustCompile(`Socket errors: .*|Non-2xx or 3xx responses: \d+`)
)

func parseWrk(out string) ([]float64, error) {
	m := reRPS.FindStringSubmatch(out)
	q := reP99.FindStringSubmatch(out)
	if m == nil || q == nil {
		return nil, fmt.Errorf("wrk output not understood: %s", lastLines(out, 8))
	}
	rps, _ := strconv.ParseFloat(m[1], 64)
	p99, _ := strconv.ParseFloat(q[1], 64)
	switch q[2] {
	case "us":
		p99 /= 1000
	case "s":
		p99 *= 1000
	}
	if e := reErrs.FindString(out); e != "" && rps == 0 {
		return nil, fmt.Errorf("wrk: %s", e)
	}
	return []float64{rps, p99}, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// duplexData is the payload of Duplex: size pseudo-random bytes (the same
// in every run) and the SHA-256 of each direction's stream, computed once
// outside the timed part.
type duplexData struct {
	buf        []byte
	up, down   [sha256.Size]byte // client→server: buf; server→client: buf rotated by half
	size, half int64
}

var (
	dataMu sync.Mutex
	data   *duplexData
)

// PrepareDuplex makes Duplex's payload and digests for size bytes ahead of
// the runs, so that no run's CPU time includes them.
func PrepareDuplex(size int64) { payload(size) }

func payload(size int64) *duplexData {
	dataMu.Lock()
	defer dataMu.Unlock()
	if data != nil && data.size == size {
		return data
	}
	d := &duplexData{buf: make([]byte, size), size: size, half: size / 2}
	var seed [32]byte
	copy(seed[:], "netstack bench duplex payload")
	r := rand.NewChaCha8(seed)
	r.Read(d.buf)
	d.up = sha256.Sum256(d.buf)
	h := sha256.New()
	h.Write(d.buf[d.half:])
	h.Write(d.buf[:d.half])
	copy(d.down[:], h.Sum(nil))
	data = d
	return d
}

// Duplex sends size bytes each way at once on one connection (the client
// writes the payload, the server writes it rotated by half), each reader
// hashing what it receives with SHA-256 and comparing with the digest of
// what the other end wrote. It returns the goodput of each direction in
// Gbit/s, client→server then server→client, each from the first write to
// the last byte of that direction read. On a lossy pair it also returns
// the drop rate the bridge applied to each direction in percent (same
// order) and puts the nftables counters in p.Note.
func Duplex(ctx context.Context, p *pair.Pair, size int64) ([]float64, error) {
	d := payload(size)
	a := accept(p.Listener, 1)
	cli, srv, err := connect(ctx, p, a, 1)
	defer closeAll(cli, srv)
	if err != nil {
		return nil, err
	}
	type dir struct {
		src, dst  net.Conn
		parts     [][]byte
		want      [sha256.Size]byte
		name      string
		took      time.Duration
		werr, err error
	}
	dirs := []*dir{
		{src: cli[0], dst: srv[0], parts: [][]byte{d.buf}, want: d.up, name: "client→server"},
		{src: srv[0], dst: cli[0], parts: [][]byte{d.buf[d.half:], d.buf[:d.half]}, want: d.down, name: "server→client"},
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, x := range dirs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			var sent int64
			for _, b := range x.parts {
				for len(b) > 0 {
					k := min(len(b), 64<<10)
					if _, err := x.src.Write(b[:k]); err != nil {
						x.werr = fmt.Errorf("%s: write after %d of %d bytes: %w", x.name, sent, size, err)
						return
					}
					b = b[k:]
					sent += int64(k)
				}
			}
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			buf := make([]byte, 64<<10)
			var got int64
			for got < size {
				k, err := x.dst.Read(buf[:min(int64(len(buf)), size-got)])
				h.Write(buf[:k])
				got += int64(k)
				if err != nil && got < size {
					x.err = fmt.Errorf("%s: read after %d of %d bytes: %w", x.name, got, size, err)
					return
				}
			}
			x.took = time.Since(start)
			if s := h.Sum(nil); !bytes.Equal(s, x.want[:]) {
				x.err = fmt.Errorf("%s: SHA-256 mismatch: got %x, want %x", x.name, s, x.want)
			}
		}()
	}
	wg.Wait()
	var errs []error
	for _, x := range dirs {
		errs = append(errs, x.err, x.werr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	bits := float64(size) * 8
	v := []float64{bits / dirs[0].took.Seconds() / 1e9, bits / dirs[1].took.Seconds() / 1e9}
	if p.Lossy != nil {
		c, err := p.Lossy.Counters()
		if err != nil {
			return nil, err
		}
		p.Note = c.String()
		if p.Lossy.Loss > 0 {
			// The kernel is the client: client→server is kernel→stack.
			v = append(v, netns.Rate(c.ToStackDrop, c.ToStack), netns.Rate(c.FromStackDrop, c.FromStack))
		}
	}
	return v, nil
}

// ccChooser is a connection whose congestion control can be chosen by
// name (netstack's TCPConn).
type ccChooser interface{ SetCongestionControl(name string) error }

// LongPath runs one stream for dur with BBR, then one for dur with
// CUBIC, on the same pair, and returns the goodput of each in Mbit/s and
// their ratio, BBR/CUBIC.
func LongPath(ctx context.Context, p *pair.Pair, dur time.Duration) ([]float64, error) {
	a := accept(p.Listener, 1)
	bbr, err := timedStreams(ctx, p, a, dur, "bbr")
	if err != nil {
		return nil, err
	}
	cubic, err := timedStreams(ctx, p, a, dur, "cubic")
	if err != nil {
		return nil, err
	}
	return []float64{bbr[0], cubic[0], bbr[0] / cubic[0]}, nil
}

// LongPathShare runs a BBR stream and a CUBIC stream at once for dur and
// returns the goodput of each in Mbit/s and CUBIC's share of the two in
// percent.
func LongPathShare(ctx context.Context, p *pair.Pair, dur time.Duration) ([]float64, error) {
	v, err := timedStreams(ctx, p, accept(p.Listener, 2), dur, "bbr", "cubic")
	if err != nil {
		return nil, err
	}
	return []float64{v[0], v[1], 100 * v[1] / (v[0] + v[1])}, nil
}

// timedStreams opens one connection per name in ccs, each sending with
// the congestion control it names, sends on all of them at once from
// client to server for dur, and returns what each delivered in Mbit/s.
func timedStreams(ctx context.Context, p *pair.Pair, a *accepter, dur time.Duration, ccs ...string) ([]float64, error) {
	cli, srv, err := connect(ctx, p, a, len(ccs))
	defer closeAll(cli, srv)
	if err != nil {
		return nil, err
	}
	for i, name := range ccs {
		c, ok := cli[i].(ccChooser)
		if !ok {
			return nil, fmt.Errorf("%T cannot choose its congestion control", cli[i])
		}
		if err := c.SetCongestionControl(name); err != nil {
			return nil, err
		}
	}
	got := make([]atomic.Int64, len(ccs))
	var wg sync.WaitGroup
	for i := range ccs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				if _, err := cli[i].Write(buf); err != nil {
					return // closed at the end of the run
				}
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for {
				k, err := srv[i].Read(buf)
				got[i].Add(int64(k))
				if err != nil {
					return
				}
			}
		}()
	}
	t := time.NewTimer(dur)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	res := make([]float64, len(ccs))
	for i := range got {
		res[i] = float64(got[i].Load()) * 8 / dur.Seconds() / 1e6
	}
	closeAll(cli, srv)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}
