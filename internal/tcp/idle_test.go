package tcp

import (
	"net/netip"
	"runtime"
	"testing"
	"time"
)

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
		c := NewConn(nil, cl, srv, Seq(i*7919), emitC)
		c.Connect(now)
		s := l.Input(now, &toSrv, cl, emitS)
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

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// idleHeap returns the heap bytes per idle ESTABLISHED pair.
func idleHeap(tb testing.TB) float64 {
	const n = 1000
	before := heapInUse()
	c, s := makeIdlePairs(tb, n)
	after := heapInUse()
	runtime.KeepAlive(c)
	runtime.KeepAlive(s)
	return float64(after-before) / n
}

func TestIdleConnHeap(t *testing.T) {
	per := idleHeap(t)
	t.Logf("heap per idle established pair: %.0f bytes (Sizeof(Conn) = %d)", per, sizeofConn)
	_ = time.Second
}
