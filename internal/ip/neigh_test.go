package ip

import (
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// The entry lookupFast remembers goes with it when it leaves the table:
// an evicted or failed neighbour is not used again, and one learnt anew
// for the same address is the one used.
func TestNeighLookupFastAfterRemoval(t *testing.T) {
	var st stats.ARP
	tb := newNeighTable(neighConfig{size: 1, queueLen: 1, retries: 1, retryInterval: time.Second, reachable: 30 * time.Second}, &st)
	macC := MAC{0x02, 0, 0, 0, 0, 0xc}
	tb.learn(addrA, macA, t0, true)
	if mac, ok := tb.lookupFast(addrA, t0); !ok || mac != macA {
		t.Fatalf("lookupFast(A) = %v, %v; want %v", mac, ok, macA)
	}
	tb.learn(addrB, macB, t0.Add(time.Second), true) // evicts A from the 1-entry table
	if _, ok := tb.lookupFast(addrA, t0); ok {
		t.Fatal("lookupFast found A after its eviction")
	}
	if mac, ok := tb.lookupFast(addrB, t0); !ok || mac != macB {
		t.Fatalf("lookupFast(B) = %v, %v; want %v", mac, ok, macB)
	}
	tb.learn(addrA, macC, t0.Add(2*time.Second), true) // A again, at a new MAC; B evicted
	if _, ok := tb.lookupFast(addrB, t0); ok {
		t.Fatal("lookupFast found B after its eviction")
	}
	if mac, ok := tb.lookupFast(addrA, t0); !ok || mac != macC {
		t.Fatalf("lookupFast(A) = %v, %v; want the new entry's %v", mac, ok, macC)
	}
}

// Frames sent while the ones that waited for a resolution are being
// flushed queue behind them (neither lookupFast nor resolve lets them
// overtake), a second reply meanwhile hands out nothing twice, and once
// the flusher finds the queue empty frames go straight out again.
func TestNeighFlushKeepsOrder(t *testing.T) {
	var st stats.ARP
	tb := newNeighTable(neighConfig{size: 4, queueLen: 8, retries: 3, retryInterval: time.Second, reachable: 30 * time.Second}, &st)
	if a := tb.resolve(addrB, []byte{1}, t0); !a.queued || !a.request {
		t.Fatalf("first frame: %+v, want queued with a request", a)
	}
	waited := tb.learn(addrB, macB, t0, true)
	if len(waited) != 1 || waited[0][0] != 1 {
		t.Fatalf("learn returned %v, want frame 1", waited)
	}
	// Frame 1 is still being sent: frame 2 must wait behind it.
	if _, ok := tb.lookupFast(addrB, t0); ok {
		t.Fatal("lookupFast sends straight out while the waiting frames are flushed")
	}
	if a := tb.resolve(addrB, []byte{2}, t0); !a.queued || a.send {
		t.Fatalf("frame 2 during the flush: %+v, want queued", a)
	}
	if again := tb.learn(addrB, macB, t0, true); len(again) != 0 {
		t.Fatalf("a second reply during the flush returned %v, want nothing", again)
	}
	if more := tb.drained(addrB); len(more) != 1 || more[0][0] != 2 {
		t.Fatalf("drained returned %v, want frame 2", more)
	}
	if more := tb.drained(addrB); len(more) != 0 {
		t.Fatalf("drained returned %v, want nothing", more)
	}
	if mac, ok := tb.lookupFast(addrB, t0); !ok || mac != macB {
		t.Fatalf("after the flush lookupFast = %v, %v; want %v", mac, ok, macB)
	}
	if a := tb.resolve(addrB, []byte{3}, t0); !a.send || a.queued {
		t.Fatalf("frame 3 after the flush: %+v, want sent", a)
	}
}
