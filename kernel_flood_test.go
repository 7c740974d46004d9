package netstack

import (
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/tcp"
)

// TestKernelSYNFlood: 100,000 SYNs from spoofed sources arrive from the
// kernel side while a real client connects and exchanges data. The real
// client dials once the half-open queue is full, so it must come in on a
// SYN cookie; the stack's heap stays bounded.
func TestKernelSYNFlood(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln, 10*time.Second)
	raw := newRawSender(t, ns)
	dst := netip.AddrPortFrom(s.Addr(), 80)
	const total = 100000
	const heapBound = 64 << 20 // bytes of heap in use, for the whole test binary
	runtime.GC()
	var peak atomic.Uint64
	flood := make(chan error, 1)
	base0 := s.Stats().TCP.SegmentsIn
	go func() {
		r := rand.New(rand.NewPCG(3, 4))
		for i := range total {
			// Spoofed sources across 198.18.0.0/15, off our subnet, so
			// the SYN-ACKs find no route and go nowhere.
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(r.Uint32()), byte(r.Uint32())}), uint16(1024+r.IntN(60000)))
			seg := tcp.Segment{Seq: tcp.Seq(r.Uint32()), Flags: tcp.FlagSYN, Wnd: 64240,
				Opts: tcp.Options{MSS: 1460}}
			if err := raw.sendTCP(src, dst, &seg); err != nil {
				flood <- err
				return
			}
			if i%50 == 49 {
				// Pace by what the stack has taken in, so the TAP's queue
				// does not overflow and drop the real client's SYN.
				limit := time.Now().Add(2 * time.Second)
				for s.Stats().TCP.SegmentsIn+500 < base0+uint64(i+1) && time.Now().Before(limit) {
					time.Sleep(200 * time.Microsecond)
				}
			}
			if i%5000 == 0 {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
		flood <- nil
	}()
	// Connect for real once the flood has filled the half-open queue: the
	// first cookie shows it is full, and the flood keeps it full.
	for s.Stats().TCP.SynCookiesSent == 0 {
		select {
		case err := <-flood:
			t.Fatalf("the flood ended (%v) before the half-open queue filled", err)
		case <-time.After(time.Millisecond):
		}
	}
	var took time.Duration
	if err := ns.Run(func() error {
		start := time.Now()
		c, err := net.DialTimeout("tcp4", dst.String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		msg := []byte("a real client in the flood")
		if _, err := c.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		took = time.Since(start)
		return nil
	}); err != nil {
		t.Fatalf("real client: %v", err)
	}
	if err := <-flood; err != nil {
		t.Fatal(err)
	}
	st := s.Stats().TCP
	t.Logf("real client connected and echoed in %v; SYNs in %d, answered with cookies %d, dropped %d; peak heap %d MiB",
		took, st.SegmentsIn, st.SynCookiesSent, st.DropListenOverflow, peak.Load()>>20)
	if st.SynCookiesSent == 0 || st.SynCookiesValid == 0 {
		t.Fatalf("cookies sent %d, completed %d: the real client should have come in on a cookie", st.SynCookiesSent, st.SynCookiesValid)
	}
	if st.SegmentsIn < total/2 {
		t.Fatalf("only %d of %d SYNs reached the stack", st.SegmentsIn, total)
	}
	if p := peak.Load(); p > heapBound {
		t.Fatalf("heap peaked at %d MiB during the flood, bound %d MiB", p>>20, heapBound>>20)
	}
}
