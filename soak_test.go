package netstack

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
)

// soakCycles is 20,000 as issue 8 asks; NETSTACK_SOAK_CYCLES changes it
// (make soak runs more).
func soakCycles() int {
	n := 20000
	if raceEnabled {
		n = 5000
	}
	if v := os.Getenv("NETSTACK_SOAK_CYCLES"); v != "" {
		fmt.Sscan(v, &n)
	}
	return n
}

// findConn describes the connection local→remote of s, for diagnostics.
func (s *Stack) findConn(local, remote netip.AddrPort) string {
	info, ok := s.e.ConnInfo(local, remote)
	if !ok {
		return "gone"
	}
	return fmt.Sprintf("%+v", info)
}

func heapInUse() uint64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestSoakConnectionChurn opens, uses and closes connections by the
// thousand over an impaired link (and sends datagrams beside them), then
// checks that goroutines and heap come back to where they started.
func TestSoakConnectionChurn(t *testing.T) {
	la, lb := Pipe()
	imp := link.NewImpair(la, link.ImpairConfig{
		Seed:    11,
		Egress:  link.Impairment{Drop: 0.01, Reorder: 0.01, Duplicate: 0.005},
		Ingress: link.Impairment{Drop: 0.01, Reorder: 0.01, Duplicate: 0.005},
	})
	tcpCfg := TCPConfig{TimeWait: 200 * time.Millisecond, ReceiveBuffer: 64 << 10, SendBuffer: 64 << 10}
	a, err := New(Config{Link: imp, Addr: netip.MustParsePrefix("198.18.0.1/24"), TCP: tcpCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24"), TCP: tcpCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, _ := b.Listen("tcp", ":7")
	defer ln.Close()
	go serveEcho(ln, time.Minute)
	pc, _ := b.ListenPacket("udp", ":7")
	defer pc.Close()
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()

	cycle := func(i int) error {
		c, err := a.Dial("tcp", "198.18.0.2:7")
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		msg := bytes.Repeat([]byte{byte(i)}, 100+i%3000)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		c.(*TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, msg) {
			tc := c.(*TCPConn)
			info := tc.Info()
			peer := b.findConn(tc.ep.RemoteAddr(), tc.ep.LocalAddr())
			return fmt.Errorf("cycle %d: echoed %d of %d bytes: %v\nclient %+v\nserver %s", i, len(got), len(msg), err, info, peer)
		}
		u, err := a.Dial("udp", "198.18.0.2:7")
		if err == nil {
			u.Write(msg[:100]) // may be dropped by the impairment: not waited for
			u.Close()
		}
		return nil
	}
	run := func(n, workers int) {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		next := make(chan int)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := cycle(i); err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				}
			}()
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	settle := func() {
		deadline := time.Now().Add(30 * time.Second)
		for a.e.ConnCount()+b.e.ConnCount() > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Warm up pools, maps and link buffers: they keep what the busiest
	// moment needed (a map does not shrink, a link keeps the buffers of the
	// most frames it held at once), so the warm-up must see such moments.
	n := soakCycles()
	run(max(500, n/10), 16)
	settle()
	g0, h0 := runtime.NumGoroutine(), heapInUse()
	start := time.Now()
	run(n, 16)
	settle()
	g1, h1 := runtime.NumGoroutine(), heapInUse()
	eg, in := imp.Stats()
	t.Logf("%d cycles in %v; goroutines %d → %d, heap %d KiB → %d KiB; impairment dropped %d, reordered %d, duplicated %d",
		n, time.Since(start).Round(time.Millisecond), g0, g1, h0>>10, h1>>10,
		eg.Dropped+in.Dropped, eg.Reordered+in.Reordered, eg.Duplicated+in.Duplicated)
	if n := a.e.ConnCount() + b.e.ConnCount(); n != 0 {
		t.Fatalf("%d connections still open", n)
	}
	if g1 > g0+g0/10 {
		t.Fatalf("goroutines %d → %d: more than 10 %% growth", g0, g1)
	}
	if h1 > h0+h0/10 {
		// Maps and link buffers keep what the busiest moment of a run
		// needed, so one run may end above the baseline without leaking
		// (seen: 1464 → 1664 KiB at 20,000 cycles, 1352 → 1368 KiB at
		// 60,000). A leak grows with the cycles: run as many again and fail
		// only if the heap keeps growing.
		run(n, 16)
		settle()
		h2 := heapInUse()
		t.Logf("heap %d KiB after a second run of %d cycles", h2>>10, n)
		if h2 > h1+(h1-h0)/2 {
			t.Fatalf("heap %d → %d → %d bytes: it grows with the cycles", h0, h1, h2)
		}
	}
}
