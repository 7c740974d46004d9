package ip

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
)

// What a DHCP client needs of the IP layer: sending from 0.0.0.0 to the
// limited broadcast before it has an address, hearing broadcasts back,
// probing an offered address with ARP and hearing of conflicts, and
// applying a lease's routers and MTU.

// arpFrom builds an ARP frame from mac with the given sender and target.
func arpFrom(op uint16, mac MAC, sender, target netip.Addr) []byte {
	f := make([]byte, minFrame)
	EthernetHeader(f).Encode(BroadcastMAC, mac, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(op, mac, sender, MAC{}, target)
	return f
}

func TestBroadcastWithoutAddress(t *testing.T) {
	a := newTestHost(t, netip.Prefix{}, macA, nil)
	bcast := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	if err := a.Output(t0, udpPacket(300), ProtoUDP, netip.IPv4Unspecified(), bcast, false); err != nil {
		t.Fatalf("send from 0.0.0.0 to the broadcast: %v", err)
	}
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	h, _, err := ParseIPv4(out[0][EthernetHeaderLen:])
	if err != nil || EthernetHeader(out[0]).Dst() != BroadcastMAC || h.Src() != netip.IPv4Unspecified() || h.Dst() != bcast {
		t.Fatalf("frame to %v, %v→%v (%v)", EthernetHeader(out[0]).Dst(), h.Src(), h.Dst(), err)
	}
	// A server's broadcast answer reaches UDP though we have no address.
	f := make([]byte, Headroom+8)
	EthernetHeader(f).Encode(BroadcastMAC, macB, EtherTypeIPv4)
	encodeIPv4(f[EthernetHeaderLen:], IPv4MinHeaderLen+8, 1, false, 0, false, 64, ProtoUDP, addrB, bcast)
	a.Input(t0, f)
	if len(a.udp) != 1 {
		t.Fatalf("broadcast not delivered: %+v", a.st.IPv4)
	}
	// A unicast one is not ours yet.
	if err := a.Output(t0, udpPacket(10), ProtoUDP, netip.IPv4Unspecified(), addrB, false); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("unicast with no address and no route: %v", err)
	}
}

func TestProbeConflict(t *testing.T) {
	var conflicts []netip.Addr
	a := newTestHost(t, netip.Prefix{}, macA, nil)
	a.h.ARPConflict = func(x netip.Addr) { conflicts = append(conflicts, x) }
	offered := netip.MustParseAddr("198.18.0.77")
	a.Probe(offered)
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames", len(out))
	}
	p := ARPPacket(out[0][EthernetHeaderLen:])
	if EthernetHeader(out[0]).Dst() != BroadcastMAC || p.Op() != ARPOpRequest || p.SenderIP() != netip.IPv4Unspecified() ||
		p.SenderMAC() != macA || p.TargetIP() != offered {
		t.Fatalf("probe: op %d %v/%v → %v", p.Op(), p.SenderIP(), p.SenderMAC(), p.TargetIP())
	}
	// An ARP from the address, another host's probe for it: conflicts. An
	// ARP from us (a looped-back probe) and one about another address are
	// not.
	a.Input(t0, arpFrom(ARPOpRequest, macA, netip.IPv4Unspecified(), offered))
	a.Input(t0, arpFrom(ARPOpRequest, macB, addrB, addrA))
	if len(conflicts) != 0 {
		t.Fatalf("conflicts %v from no conflict", conflicts)
	}
	a.Input(t0, arpFrom(ARPOpReply, macB, offered, netip.IPv4Unspecified()))
	a.Input(t0, arpFrom(ARPOpRequest, macB, netip.IPv4Unspecified(), offered))
	if !slices.Equal(conflicts, []netip.Addr{offered, offered}) || a.st.ARP.Conflicts != 2 || a.st.ARP.Probes != 1 {
		t.Fatalf("conflicts %v, stats %+v", conflicts, a.st.ARP)
	}
	a.Unwatch()
	a.Input(t0, arpFrom(ARPOpReply, macB, offered, netip.IPv4Unspecified()))
	if len(conflicts) != 2 {
		t.Fatal("conflict reported after Unwatch")
	}
	// The probe taught no neighbour anything: its sender is 0.0.0.0.
	if _, ok := a.Neighbour(netip.IPv4Unspecified()); ok {
		t.Fatal("learnt the unspecified address")
	}
}

func TestLeaseRouters(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	r1, r2 := netip.MustParseAddr("198.18.0.254"), netip.MustParseAddr("198.18.0.253")
	far := netip.MustParseAddr("203.0.113.9")
	a.SetLeaseRouters([]netip.Addr{r1, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.18.0.255"), r2}, prefixA) // off the subnet, its broadcast
	var got []netip.Addr
	for _, r := range a.Routes() {
		if r.Origin == RouteDHCP {
			got = append(got, r.Gateway)
		}
	}
	if !slices.Equal(got, []netip.Addr{r1, r2}) {
		t.Fatalf("lease routes by %v, want %v: %v", got, []netip.Addr{r1, r2}, a.Routes())
	}
	if hop, err := a.route(far); err != nil || hop != r1 {
		t.Fatalf("next hop %v %v, want %v", hop, err, r1)
	}
	// What Routes returned sets back without the lease's routes becoming
	// static ones.
	if err := a.SetRoutes(a.Routes()); err != nil {
		t.Fatal(err)
	}
	a.SetLeaseRouters(nil, netip.Prefix{})
	if _, err := a.route(far); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("route after the lease went: %v (table %v)", err, a.Routes())
	}
}

func TestLinkMTU4(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.neigh.learn(addrB, macB, t0, true)
	a.SetLinkMTU4(1400)
	if m := a.PathMTU(t0, addrB); m != 1400 {
		t.Fatalf("path MTU %d, want the lease's 1400", m)
	}
	if err := a.Output(t0, udpPacket(1400), ProtoUDP, addrA, addrB, true); !errors.Is(err, syscall.EMSGSIZE) {
		t.Fatalf("DF packet above the lease's MTU: %v", err)
	}
	if err := a.Output(t0, udpPacket(1400), ProtoUDP, addrA, addrB, false); err != nil {
		t.Fatal(err)
	}
	for _, f := range a.take() {
		if n := len(f) - EthernetHeaderLen; n > 1400 {
			t.Fatalf("fragment of %d bytes above the MTU of 1400", n)
		}
	}
	for _, c := range []struct{ set, want int }{{9000, 1500}, {0, 1500}, {10, MinIPv4MTU}} {
		a.SetLinkMTU4(c.set)
		if m := a.PathMTU(t0, addrB); m != c.want {
			t.Errorf("SetLinkMTU4(%d): %d, want %d", c.set, m, c.want)
		}
	}
}

func TestResolveAhead(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	b := newTestHost(t, prefixB, macB, nil)
	a.Resolve(t0, addrB)
	a.Resolve(t0, addrB) // resolving already: nothing more
	if got := arpTargets(a.out); !slices.Equal(got, []netip.Addr{addrB}) {
		t.Fatalf("requests for %v", got)
	}
	exchange(t0, a, b)
	if mac, ok := a.Neighbour(addrB); !ok || mac != macB {
		t.Fatalf("neighbour %v %v", mac, ok)
	}
}
