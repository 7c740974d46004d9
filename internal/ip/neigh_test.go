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
