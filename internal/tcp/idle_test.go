package tcp

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// Issue 7: an idle connection must be cheap. The Conn holds what every
// connection needs; the scoreboard, rings, autotuning state and rare
// counters come and go with use (see the Conn's fields).
const (
	maxConnSize = 448 // unsafe.Sizeof(Conn{}): an allocation class (the next is 480); 448 today
	// maxIdlePairHeap bounds the heap an idle ESTABLISHED pair that has
	// not sent data yet holds: two Conns (913 bytes today with a 448-byte Conn, 1041 with 512, 1169 with 568; it was 3281
	// with a 1440-byte Conn and a congestion control made at the
	// handshake). Once data flows, each end adds its congestion control
	// (96 bytes for CUBIC) and the rings, autotuning and rare state it
	// needed; the scoreboard goes back to its pool when all is acked.
	maxIdlePairHeap = 1000
)

func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > maxConnSize {
		t.Fatalf("unsafe.Sizeof(Conn{}) = %d, want at most %d", n, maxConnSize)
	}
}

// makeIdlePairs opens n connections through a listener by direct Input
// calls (SYN, SYN-ACK, ACK), accepts them, and returns both ends, idle
// and ESTABLISHED.
func makeIdlePairs(tb testing.TB, n int) (clients, servers []*Conn) {
	tb.Helper()
	var toSrv, toCli Segment
	emitC := func(s *Segment) { toSrv = *s }
	emitS := func(s *Segment) { toCli = *s }
	srv := netip.MustParseAddrPort("198.18.0.1:80")
	l := NewListener(nil, srv, n, fixedRand(7))
	clients, servers = make([]*Conn, n), make([]*Conn, n)
	now := ttT0
	for i := range n {
		cl := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), uint16(10000+i))
		c := NewConn(nil, cl, srv, Seq(i*7919), EmitFunc(emitC))
		c.Connect(now)
		s := l.Input(now, &toSrv, cl, EmitFunc(emitS))
		c.Input(now, &toCli)
		s.Input(now, &toSrv)
		if c.State() != Established || s.State() != Established {
			tb.Fatalf("pair %d: %v/%v", i, c.State(), s.State())
		}
		c.TakeEvents()
		s.TakeEvents()
		l.Accepted()
		clients[i], servers[i] = c, s
	}
	return clients, servers
}

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// idlePairHeap returns the heap bytes per idle ESTABLISHED pair, over n.
func idlePairHeap(tb testing.TB, n int) float64 {
	before := heapAlloc()
	c, s := makeIdlePairs(tb, n)
	after := heapAlloc()
	runtime.KeepAlive(c)
	runtime.KeepAlive(s)
	return (float64(after) - float64(before)) / float64(n)
}

// TestIdleConnHeap measures the heap 1000 idle ESTABLISHED pairs hold.
func TestIdleConnHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes")
	}
	per := idlePairHeap(t, 1000)
	t.Logf("heap per idle established pair: %.0f bytes (Sizeof(Conn) = %d)", per, unsafe.Sizeof(Conn{}))
	if per > maxIdlePairHeap {
		t.Fatalf("heap per idle established pair %.0f bytes, want at most %d", per, maxIdlePairHeap)
	}
}

// BenchmarkIdleConnHeap reports the heap per idle ESTABLISHED pair.
func BenchmarkIdleConnHeap(b *testing.B) {
	for range b.N {
		b.ReportMetric(idlePairHeap(b, 1000), "B/pair")
	}
}

// A prepared Config is shared by the connections made with it; any other
// is copied with its defaults applied, so each connection would hold one.
func TestPreparedConfigShared(t *testing.T) {
	l, r := netip.MustParseAddrPort("198.18.0.1:1"), netip.MustParseAddrPort("198.18.0.2:2")
	p := Prepare(&Config{MSS: 1400})
	a, b := NewConn(p, l, r, 1, EmitFunc(func(*Segment) {})), NewConn(p, l, r, 2, EmitFunc(func(*Segment) {}))
	if a.cfg != p || b.cfg != p {
		t.Fatal("connections made with a prepared Config do not share it")
	}
	if p.MSS != 1400 || p.RecvBuf != DefaultRecvBuf {
		t.Fatalf("Prepare: MSS %d RecvBuf %d", p.MSS, p.RecvBuf)
	}
	u := &Config{MSS: 1400}
	if c := NewConn(u, l, r, 3, EmitFunc(func(*Segment) {})); c.cfg == u || c.cfg.RecvBuf != DefaultRecvBuf {
		t.Fatal("an unprepared Config was not copied with its defaults")
	}
}

// While autotuning raises the buffers a little at a time, the rings must
// grow by doubling, not reallocate (and copy) at each raise: 32 MiB each
// way once allocated 5 GB in ring copies that way.
func TestRingGrowthAmortized(t *testing.T) {
	imp := simImpair{Delay: 5 * time.Millisecond, Rate: 125e6, Dup: 0.01, Reorder: 0.02, Jitter: 3 * time.Millisecond}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	simTransfer(t, 1, imp, nil, 32<<20, Seq(0xFFFFFFFF-1000), Seq(0xFFFFFF00))
	runtime.ReadMemStats(&m1)
	if got := m1.TotalAlloc - m0.TotalAlloc; got > 64<<20 {
		t.Fatalf("a 32 MiB exchange allocated %d MiB", got>>20)
	}
}
