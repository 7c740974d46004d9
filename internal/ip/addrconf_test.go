package ip

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestAddRemoveAddr4: an IPv4 address added at run time is announced with
// a gratuitous ARP, answered for at once and chosen as the source on its
// subnet; once removed, ARP for it goes unanswered and the first address
// still works. Adding twice and removing what is not there fail.
func TestAddRemoveAddr4(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	b := newTestHost(t, prefixB, macB, nil)
	added := netip.MustParsePrefix("198.18.7.1/24")
	if err := a.AddAddr(added); err != nil {
		t.Fatal(err)
	}
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames on add, want a gratuitous ARP", len(out))
	}
	if p := ARPPacket(out[0][EthernetHeaderLen:]); p.Op() != ARPOpRequest || p.SenderIP() != added.Addr() ||
		p.TargetIP() != added.Addr() || EthernetHeader(out[0]).Dst() != BroadcastMAC {
		t.Fatalf("not a gratuitous ARP for %v: % x", added.Addr(), out[0])
	}
	if !a.HasAddr(added.Addr()) || len(a.Addrs()) != 2 {
		t.Fatalf("Addrs %v after adding %v", a.Addrs(), added)
	}
	if src, ok := a.SourceAddr(netip.MustParseAddr("198.18.7.9")); !ok || src != added.Addr() {
		t.Fatalf("source for its subnet: %v", src)
	}
	if err := a.AddAddr(added); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("second add: %v, want EEXIST", err)
	}
	ask := func(target netip.Addr) int {
		var f [minFrame]byte
		EthernetHeader(f[:]).Encode(BroadcastMAC, macB, EtherTypeARP)
		ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, macB, addrB, MAC{}, target)
		a.Input(t0, f[:])
		return len(a.take())
	}
	if n := ask(added.Addr()); n != 1 {
		t.Fatalf("ARP for the added address: %d replies", n)
	}
	if err := a.RemoveAddr(added.Addr()); err != nil {
		t.Fatal(err)
	}
	if a.HasAddr(added.Addr()) || len(a.Addrs()) != 1 {
		t.Fatalf("Addrs %v after removing %v", a.Addrs(), added)
	}
	if n := ask(added.Addr()); n != 0 {
		t.Fatalf("ARP for the removed address: %d replies", n)
	}
	if err := a.RemoveAddr(added.Addr()); !errors.Is(err, syscall.EADDRNOTAVAIL) {
		t.Fatalf("second remove: %v, want EADDRNOTAVAIL", err)
	}
	// The configured address is untouched.
	if err := a.SendEcho(t0, addrB, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	exchange(t0, a, b)
	if len(a.echoes) != 1 {
		t.Fatalf("echo replies %v", a.echoes)
	}
}

// TestAddRemoveAddr6: an IPv6 address added at run time passes DAD before
// it is usable, then is; removed, it is gone.
func TestAddRemoveAddr6(t *testing.T) {
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.DADTransmits = 1 })
	a.Timer(t0)
	a.Timer(t0.Add(time.Second)) // the configured address's DAD
	a.take()
	added := netip.MustParsePrefix("2001:db8:7::1/64")
	if err := a.AddAddr(added); err != nil {
		t.Fatal(err)
	}
	if a.HasAddr(added.Addr()) {
		t.Fatal("usable before DAD")
	}
	now := t0.Add(2 * time.Second)
	a.Timer(now)
	sawNS := false
	for _, f := range a.take() {
		if _, proto, m := parse6(t, f); proto == ProtoICMPv6 && m[0] == ICMPv6NeighSolicit &&
			netip.AddrFrom16([16]byte(m[8:24])) == added.Addr() {
			sawNS = true
		}
	}
	if !sawNS {
		t.Fatal("no DAD solicitation for the added address")
	}
	a.Timer(now.Add(time.Second))
	if !a.HasAddr(added.Addr()) {
		t.Fatalf("not usable after DAD: %v", a.Addrs())
	}
	if err := a.RemoveAddr(added.Addr()); err != nil || a.HasAddr(added.Addr()) {
		t.Fatalf("remove: %v, Addrs %v", err, a.Addrs())
	}
	if !a.HasAddr(v6A) {
		t.Fatal("the configured address went too")
	}
}
