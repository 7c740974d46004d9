package stack

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// The table agrees with a map through random puts, replacements and
// deletes, across growth, with IPv4 and IPv6 keys; every entry stays
// reachable after the shifts that deletion makes.
func TestConnTableModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	local4, local6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")
	var eps []*TCPEndpoint
	for i := range 3000 {
		var la, ra netip.AddrPort
		if i%3 == 0 {
			la = netip.AddrPortFrom(local6, 80)
			ra = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(i)}), uint16(i))
		} else {
			la = netip.AddrPortFrom(local4, 80)
			ra = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), uint16(40000+i%7))
		}
		eps = append(eps, newTestEndpoint(la, ra))
	}
	var tab connTable
	model := map[tcpKey]*TCPEndpoint{}
	check := func(step int) {
		t.Helper()
		if tab.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, tab.len(), len(model))
		}
		for _, c := range eps {
			k := c.key()
			if got, want := tab.get(k), model[k]; got != want {
				t.Fatalf("step %d: get(%v→%v) = %p, want %p", step, c.LocalAddr(), c.RemoteAddr(), got, want)
			}
		}
		n := 0
		for c := range tab.all() {
			if model[c.key()] != c {
				t.Fatalf("step %d: all yielded %v→%v, not in the model", step, c.LocalAddr(), c.RemoteAddr())
			}
			n++
		}
		if n != len(model) {
			t.Fatalf("step %d: all yielded %d, want %d", step, n, len(model))
		}
	}
	if tab.get(eps[0].key()) != nil {
		t.Fatal("the empty table found a connection")
	}
	tab.delete(eps[0].key()) // on the empty table: nothing
	for step := range 20000 {
		c := eps[r.IntN(len(eps))]
		k := c.key()
		switch r.IntN(3) {
		case 0, 1:
			if r.IntN(4) == 0 { // a new endpoint for the same 4-tuple replaces the old
				c = newTestEndpoint(c.LocalAddr(), c.RemoteAddr())
				eps = append(eps, c)
			}
			tab.put(k, c)
			model[k] = c
		case 2:
			tab.delete(k)
			delete(model, k)
		}
		if step%997 == 0 {
			check(step)
		}
	}
	check(-1)
	for k := range model {
		tab.delete(k)
		delete(model, k)
	}
	check(-2)
}

// A table entry costs 16 to 32 bytes: the slots (12 bytes each) stay
// between 3/8 and 3/4 full.
func TestConnTableDensity(t *testing.T) {
	var tab connTable
	for i := range 100000 {
		c := newTestEndpoint(netip.MustParseAddrPort("198.18.0.1:80"),
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), uint16(1+i>>16)))
		tab.put(c.key(), c)
		if n := tab.len(); n > minConnSlots && (3*len(tab.slots) > 8*n || 3*len(tab.slots) < 4*n) {
			t.Fatalf("%d entries in %d slots", n, len(tab.slots))
		}
	}
}

// newTestEndpoint returns an endpoint from la to ra that only the table
// looks at.
func newTestEndpoint(la, ra netip.AddrPort) *TCPEndpoint {
	return &TCPEndpoint{local: la.Addr(), remote: ra.Addr(), lport: la.Port(), rport: ra.Port()}
}
