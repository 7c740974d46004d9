package netstack

import (
	"fmt"
	"net"
	"testing"

	"github.com/gotcpip/netstack/internal/stack"
)

// TestEphemeralPortsFollowEachOther: as RFC 6056's double-hash algorithm
// (Linux's), the dials to one destination take one ephemeral port after
// another (modulo the range), passing over a port a socket is bound to.
func TestEphemeralPortsFollowEachOther(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go closeAccepted(ln)
	const span = stack.EphemeralHigh - stack.EphemeralLow + 1
	next := func(p int) int { return stack.EphemeralLow + (p-stack.EphemeralLow+1)%span }
	dial := func() int {
		t.Helper()
		c, err := a.Dial("tcp", "198.18.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.LocalAddr().(*net.TCPAddr).Port
	}
	p := dial()
	for range 5 {
		if q := dial(); q != next(p) {
			t.Fatalf("dial after port %d took %d, want %d", p, q, next(p))
		}
		p = next(p)
	}
	// A socket bound to the next port: the dial passes over it.
	busy, err := a.Listen("tcp", fmt.Sprintf(":%d", next(p)))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if q := dial(); q != next(next(p)) {
		t.Fatalf("dial after port %d with %d bound took %d, want %d", p, next(p), q, next(next(p)))
	}
}
