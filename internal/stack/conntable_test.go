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
		eps = append(eps, &TCPEndpoint{laddr: la, raddr: ra})
	}
	var tab connTable
	model := map[tcpKey]*TCPEndpoint{}
	check := func(step int) {
		t.Helper()
		if tab.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, tab.len(), len(model))
		}
		for _, c := range eps {
			k := keyOfConn(c)
			if got, want := tab.get(k), model[k]; got != want {
				t.Fatalf("step %d: get(%v→%v) = %p, want %p", step, c.laddr, c.raddr, got, want)
			}
		}
		n := 0
		for c := range tab.all() {
			if model[keyOfConn(c)] != c {
				t.Fatalf("step %d: all yielded %v→%v, not in the model", step, c.laddr, c.raddr)
			}
			n++
		}
		if n != len(model) {
			t.Fatalf("step %d: all yielded %d, want %d", step, n, len(model))
		}
	}
	if tab.get(keyOfConn(eps[0])) != nil {
		t.Fatal("the empty table found a connection")
	}
	tab.delete(keyOfConn(eps[0])) // on the empty table: nothing
	for step := range 20000 {
		c := eps[r.IntN(len(eps))]
		k := keyOfConn(c)
		switch r.IntN(3) {
		case 0, 1:
			if r.IntN(4) == 0 { // a new endpoint for the same 4-tuple replaces the old
				c = &TCPEndpoint{laddr: c.laddr, raddr: c.raddr}
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
		c := &TCPEndpoint{laddr: netip.MustParseAddrPort("198.18.0.1:80"),
			raddr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1)}
		tab.put(keyOfConn(c), c)
		if n := tab.len(); n > minConnSlots && (3*len(tab.slots) > 8*n || 3*len(tab.slots) < 4*n) {
			t.Fatalf("%d entries in %d slots", n, len(tab.slots))
		}
	}
}
