package ip

import (
	"net/netip"
	"testing"
	"time"
)

// TestPathMTUCache: a learned path MTU holds for PathMTUExpiry, is raised
// to MinPathMTU, only ever lowers the path's MTU, and the cache stays
// within its bound, dropping the entry that expires first.
func TestPathMTUCache(t *testing.T) {
	th := newTestHost(t, prefixA, macA, func(c *Config) { c.PathMTUCache = 2 })
	t0 := time.Unix(1000, 0)
	d1, d2, d3 := netip.MustParseAddr("198.19.0.1"), netip.MustParseAddr("198.19.0.2"), netip.MustParseAddr("198.19.0.3")
	if got := th.PathMTU(t0, d1); got != 1500 {
		t.Fatalf("unknown path: %d", got)
	}
	if got := th.SetPathMTU(t0, d1, 1000); got != 1000 || th.PathMTU(t0, d1) != 1000 {
		t.Fatalf("set 1000: %d", got)
	}
	if got := th.SetPathMTU(t0, d1, 1400); got != 1000 {
		t.Fatalf("a higher MTU raised the path: %d", got)
	}
	if got := th.SetPathMTU(t0, d1, 68); got != MinPathMTU {
		t.Fatalf("68 set %d, want the floor %d", got, MinPathMTU)
	}
	th.SetPathMTU(t0.Add(time.Minute), d2, 900)
	th.SetPathMTU(t0.Add(2*time.Minute), d3, 800) // full: d1 expires first and goes
	if th.PathMTU(t0.Add(2*time.Minute), d1) != 1500 || th.PathMTU(t0.Add(2*time.Minute), d3) != 800 || th.st.IPv4.PathMTUEvicted != 1 {
		t.Fatalf("eviction: d1 %d d3 %d evicted %d", th.PathMTU(t0, d1), th.PathMTU(t0, d3), th.st.IPv4.PathMTUEvicted)
	}
	if got := th.PathMTU(t0.Add(time.Minute+PathMTUExpiry), d2); got != 1500 {
		t.Fatalf("after expiry: %d", got)
	}
}

// TestFragmentsToPathMTU: a datagram without DF is fragmented to the path
// MTU the cache holds for its destination, not the link's.
func TestFragmentsToPathMTU(t *testing.T) {
	th := newTestHost(t, prefixA, macA, nil)
	now := time.Unix(1000, 0)
	th.neigh.learn(addrB, macB, now, true) // resolved: frames go out at once
	th.SetPathMTU(now, addrB, 1000)
	pkt := make([]byte, Headroom+1400)
	if err := th.Output(now, pkt, ProtoUDP, addrA, addrB, false); err != nil {
		t.Fatal(err)
	}
	frames := th.take()
	if len(frames) != 2 {
		t.Fatalf("%d frames, want 2", len(frames))
	}
	for _, f := range frames {
		if n := len(f) - EthernetHeaderLen; n > 1000 {
			t.Fatalf("a %d-byte packet on a 1000-byte path", n)
		}
	}
}
