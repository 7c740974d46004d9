package ip

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"
	"time"
)

// arpTargets returns the addresses the ARP frames among fs ask for.
func arpTargets(fs [][]byte) []netip.Addr {
	var out []netip.Addr
	for _, f := range fs {
		if EthernetHeader(f).Type() == EtherTypeARP {
			out = append(out, ARPPacket(f[EthernetHeaderLen:]).TargetIP())
		}
	}
	return out
}

func TestRouteLookup(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Gateway = netip.MustParseAddr("198.18.0.254") })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	gw := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	must(a.AddRoute(Route{Dst: netip.MustParsePrefix("198.19.0.0/16"), Gateway: gw("198.18.0.253")}))
	must(a.AddRoute(Route{Dst: netip.MustParsePrefix("198.19.5.0/24"), Gateway: gw("198.18.0.252"), Metric: 10}))
	must(a.AddRoute(Route{Dst: netip.MustParsePrefix("198.19.5.0/24"), Gateway: gw("198.18.0.251"), Metric: 5}))
	for _, c := range []struct{ dst, hop string }{
		{"198.18.0.7", "198.18.0.7"},    // connected
		{"198.19.9.9", "198.18.0.253"},  // the /16
		{"198.19.5.9", "198.18.0.251"},  // the /24, lowest metric
		{"203.0.113.1", "198.18.0.254"}, // default
	} {
		hop, err := a.route(gw(c.dst))
		if err != nil || hop != gw(c.hop) {
			t.Errorf("next hop to %s: %v %v, want %s", c.dst, hop, err, c.hop)
		}
	}
	rs := a.Routes()
	if len(rs) != 5 || rs[0].Dst.Bits() != 24 || rs[0].Origin != RouteConnected || rs[0].Src != addrA || rs[len(rs)-1].Dst.Bits() != 0 {
		t.Fatalf("table %v", rs)
	}
	// What Routes returned sets back unchanged.
	must(a.SetRoutes(rs))
	if got := a.Routes(); !slices.Equal(got, rs) {
		t.Fatalf("after SetRoutes(Routes()): %v, want %v", got, rs)
	}
	must(a.RemoveRoute(Route{Dst: netip.MustParsePrefix("198.19.5.0/24"), Gateway: gw("198.18.0.251"), Metric: 5}))
	if hop, _ := a.route(gw("198.19.5.9")); hop != gw("198.18.0.252") {
		t.Fatalf("after removal: %v", hop)
	}
	must(a.SetRoutes(nil))
	if _, err := a.route(gw("203.0.113.1")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("no default route: %v", err)
	}
	if hop, err := a.route(gw("198.18.0.7")); err != nil || hop != gw("198.18.0.7") {
		t.Fatalf("connected route went with the static ones: %v %v", hop, err)
	}
}

func TestRouteErrors(t *testing.T) {
	a := newHost6(t, prefixA, netip.MustParseAddr("fd00::1"), macA, nil)
	p := netip.MustParsePrefix
	g := netip.MustParseAddr
	ok := Route{Dst: p("198.19.0.0/16"), Gateway: g("198.18.0.9")}
	if err := a.AddRoute(ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		r    Route
		want error
	}{
		{ok, syscall.EEXIST},
		{Route{Dst: p("198.19.0.1/16")}, syscall.EINVAL},                                // not masked
		{Route{}, syscall.EINVAL},                                                       // no destination
		{Route{Dst: p("198.19.0.0/16"), Metric: -1}, syscall.EINVAL},                    // metric
		{Route{Dst: p("198.19.0.0/16"), Gateway: g("fd00::9")}, syscall.EINVAL},         // family
		{Route{Dst: p("198.19.0.0/16"), Gateway: g("224.0.0.1")}, syscall.EINVAL},       // multicast gateway
		{Route{Dst: p("198.19.0.0/16"), Src: g("fd00::1")}, syscall.EINVAL},             // source family
		{Route{Dst: p("198.20.0.0/16"), Gateway: g("198.19.0.1")}, syscall.ENETUNREACH}, // not on the link
		{Route{Dst: p("2001:db8::/32"), Gateway: g("2001:db8:9::1")}, syscall.ENETUNREACH},
	} {
		if err := a.AddRoute(c.r); !errors.Is(err, c.want) {
			t.Errorf("AddRoute(%v): %v, want %v", c.r, err, c.want)
		}
	}
	if err := a.AddRoute(Route{Dst: p("2001:db8::/32"), Gateway: g("fe80::1")}); err != nil {
		t.Errorf("link-local gateway: %v", err)
	}
	if err := a.AddRoute(Route{Dst: p("2001:db8:1::/48"), Gateway: g("fd00::9")}); err != nil {
		t.Errorf("gateway on an on-link prefix: %v", err)
	}
	if err := a.RemoveRoute(Route{Dst: p("198.21.0.0/16")}); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("removing a missing route: %v", err)
	}
	before := a.Routes()
	if err := a.SetRoutes([]Route{{Dst: p("198.22.0.0/16"), Gateway: g("198.18.0.9")}, {Dst: p("198.23.0.1/16")}}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("SetRoutes with a bad route: %v", err)
	}
	if got := a.Routes(); !slices.Equal(got, before) {
		t.Errorf("a failed SetRoutes changed the table: %v, was %v", got, before)
	}
}

func TestConnectedRoutesFollowAddrs(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	extra := netip.MustParsePrefix("198.19.7.1/24")
	has := func() bool {
		return slices.ContainsFunc(a.Routes(), func(r Route) bool { return r.Dst == extra.Masked() && r.Origin == RouteConnected })
	}
	if has() {
		t.Fatal("route before the address")
	}
	if err := a.AddAddr(extra); err != nil {
		t.Fatal(err)
	}
	if !has() {
		t.Fatalf("no route for the added address: %v", a.Routes())
	}
	if src, ok := a.SourceAddr(netip.MustParseAddr("198.19.7.9")); !ok || src != extra.Addr() {
		t.Fatalf("source to the new subnet %v", src)
	}
	if err := a.RemoveAddr(extra.Addr()); err != nil {
		t.Fatal(err)
	}
	if has() {
		t.Fatal("route outlived its address")
	}
	if _, err := a.route(netip.MustParseAddr("198.19.7.9")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("removed subnet still routed: %v", err)
	}
}

func TestRouteSource(t *testing.T) {
	second := netip.MustParsePrefix("198.18.1.1/24")
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Addrs = []netip.Prefix{second} })
	g := netip.MustParseAddr
	// Via a gateway on the second subnet: that subnet's address.
	if err := a.AddRoute(Route{Dst: netip.MustParsePrefix("198.19.0.0/16"), Gateway: g("198.18.1.254")}); err != nil {
		t.Fatal(err)
	}
	if src, _ := a.SourceAddr(g("198.19.0.5")); src != second.Addr() {
		t.Fatalf("source via a gateway on the second subnet: %v", src)
	}
	// The route's own source wins.
	if err := a.AddRoute(Route{Dst: netip.MustParsePrefix("198.20.0.0/16"), Gateway: g("198.18.1.254"), Src: addrA}); err != nil {
		t.Fatal(err)
	}
	if src, _ := a.SourceAddr(g("198.20.0.5")); src != addrA {
		t.Fatalf("source of a route with Src: %v", src)
	}
}

func TestTUNDefaultRoutes(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Ethernet = false })
	rs := a.Routes()
	if len(rs) != 3 || rs[1].Dst.Bits() != 0 || rs[1].Gateway.IsValid() || rs[2].Dst != netip.PrefixFrom(netip.IPv6Unspecified(), 0) {
		t.Fatalf("TUN table %v", rs)
	}
	far := netip.MustParseAddr("203.0.113.1")
	if hop, err := a.route(far); err != nil || hop != far {
		t.Fatalf("TUN next hop %v %v", hop, err)
	}
	if err := a.RemoveRoute(Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0)}); err != nil {
		t.Fatal(err)
	}
	if err := a.Output(t0, udpPacket(4), ProtoUDP, addrA, far, true); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("without the default route: %v", err)
	}
}

// TestGatewayFailover: of two default gateways the first is used until
// it stops answering ARP; then the second; once the first answers the
// probe sent a minute later, it is used again.
func TestGatewayFailover(t *testing.T) {
	g1, g2 := netip.MustParseAddr("198.18.0.251"), netip.MustParseAddr("198.18.0.252")
	mac1, mac2 := MAC{2, 0, 0, 0, 0, 0xf1}, MAC{2, 0, 0, 0, 0, 0xf2}
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Gateways = []netip.Addr{g1, g2} })
	far := netip.MustParseAddr("198.19.0.1")
	send := func(now time.Time) {
		t.Helper()
		if err := a.Output(now, udpPacket(4), ProtoUDP, addrA, far, true); err != nil {
			t.Fatal(err)
		}
	}
	reply := func(now time.Time, ip netip.Addr, mac MAC) {
		var f [minFrame]byte
		EthernetHeader(f[:]).Encode(macA, mac, EtherTypeARP)
		ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpReply, mac, ip, macA, addrA)
		a.Input(now, f[:])
	}
	// g1 answers and carries the traffic.
	send(t0)
	if got := arpTargets(a.take()); !slices.Equal(got, []netip.Addr{g1}) {
		t.Fatalf("first resolution asked %v, want g1", got)
	}
	reply(t0, g1, mac1)
	if out := a.take(); len(out) != 1 || EthernetHeader(out[0]).Dst() != mac1 {
		t.Fatal("queued packet not sent to g1")
	}
	// g1 goes silent: past its reachable time the entry is probed, and
	// the probes go unanswered.
	now := t0.Add(31 * time.Second)
	send(now)
	for range 10 {
		now = now.Add(time.Second)
		a.Timer(now)
	}
	if a.st.ARP.GatewayDead != 1 {
		t.Fatalf("gateway dead count %d", a.st.ARP.GatewayDead)
	}
	a.take()
	send(now)
	if got := arpTargets(a.take()); !slices.Equal(got, []netip.Addr{g2}) {
		t.Fatalf("after g1 died, resolution asked %v, want g2", got)
	}
	reply(now, g2, mac2)
	if out := a.take(); len(out) != 1 || EthernetHeader(out[0]).Dst() != mac2 {
		t.Fatal("packet not sent to g2")
	}
	// A minute later g1 is asked again; its answer brings it back.
	probe := a.NextDeadline()
	if probe.IsZero() || probe.After(now.Add(deadProbeInterval)) {
		t.Fatalf("dead gateway probe at %v, now %v", probe, now)
	}
	a.Timer(probe)
	if got := arpTargets(a.take()); !slices.Contains(got, g1) {
		t.Fatalf("probe asked %v, want g1", got)
	}
	reply(probe, g1, mac1)
	if a.st.ARP.GatewayRevived != 1 {
		t.Fatalf("revived %d", a.st.ARP.GatewayRevived)
	}
	send(probe)
	if out := a.take(); len(out) != 1 || EthernetHeader(out[0]).Dst() != mac1 {
		t.Fatal("traffic did not return to g1")
	}
}

// TestRARouteInTable: a router advertisement's router and on-link prefix
// are routes, until their lifetimes end.
func TestRARouteInTable(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.NoLinkLocal = false })
	a.Timer(t0)
	a.Timer(t0.Add(time.Second))
	a.take()
	pfx := netip.MustParsePrefix("2001:db8:1::/64")
	a.Input(t0.Add(time.Second), frame6(allNodesMAC, macR, llR, allNodes, 255, ProtoICMPv6,
		ra(64, 30, prefixOpt(pfx, 0x80, 60, 60))))
	rs := a.Routes()
	if !slices.ContainsFunc(rs, func(r Route) bool {
		return r.Dst.Bits() == 0 && r.Gateway == llR && r.Metric == 1024 && r.Origin == RouteRA
	}) ||
		!slices.ContainsFunc(rs, func(r Route) bool { return r.Dst == pfx && r.Origin == RouteRA }) {
		t.Fatalf("table after the RA: %v", rs)
	}
	if hop, err := a.route6(netip.MustParseAddr("2001:db8:1::9")); err != nil || hop != netip.MustParseAddr("2001:db8:1::9") {
		t.Fatalf("on-link prefix: %v %v", hop, err)
	}
	if hop, err := a.route6(netip.MustParseAddr("2001:db8:9::9")); err != nil || hop != llR {
		t.Fatalf("default router: %v %v", hop, err)
	}
	// Past the router's lifetime the route goes.
	a.Timer(t0.Add(time.Minute))
	if _, err := a.route6(netip.MustParseAddr("2001:db8:9::9")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("expired router still routes: %v (%v)", err, a.Routes())
	}
}

// TestGatewayFailover6: an IPv6 gateway that never answers neighbour
// solicitations is passed over for the next.
func TestGatewayFailover6(t *testing.T) {
	silent := netip.MustParseAddr("fe80::dead")
	a := newHost6(t, prefixA, v6A, macA, func(c *Config) { c.Gateways = []netip.Addr{silent, v6B} })
	b := newHost6(t, prefixB, v6B, macB, nil)
	a.Timer(t0) // its MLD report
	b.Timer(t0)
	a.take()
	b.take()
	far := netip.MustParseAddr("2001:db8:99::1")
	if err := a.SendEcho(t0, far, 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	out := a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames, want a solicitation of the first gateway", len(out))
	}
	if _, _, m := parse6(t, out[0]); m[0] != ICMPv6NeighSolicit || netip.AddrFrom16([16]byte(m[8:24])) != silent {
		t.Fatalf("first solicitation %x", m[:24])
	}
	now := t0
	for range 4 {
		now = now.Add(time.Second)
		a.Timer(now)
	}
	if a.st.ARP.GatewayDead != 1 {
		t.Fatalf("dead gateways %d", a.st.ARP.GatewayDead)
	}
	a.take()
	if err := a.SendEcho(now, far, 1, 2, nil); err != nil {
		t.Fatal(err)
	}
	out = a.take()
	if len(out) != 1 {
		t.Fatalf("%d frames, want a solicitation of the second gateway", len(out))
	}
	if _, _, m := parse6(t, out[0]); m[0] != ICMPv6NeighSolicit || netip.AddrFrom16([16]byte(m[8:24])) != v6B {
		t.Fatalf("second solicitation %x", m[:24])
	}
	b.Input(now, out[0])
	deliverAll(now, b, a)
	out = a.take()
	if len(out) != 1 || EthernetHeader(out[0]).Dst() != macB {
		t.Fatalf("echo not sent to the second gateway: %d frames", len(out))
	}
}

// lookup4, the data path's IPv4 lookup with numbers, picks the route the
// prefixes themselves pick, at every prefix length and across a dead
// gateway.
func TestRouteLookup4MatchesPrefixes(t *testing.T) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Gateway = netip.MustParseAddr("198.18.0.254") })
	for _, r := range []struct {
		dst, gw string
		metric  int
	}{
		{"198.19.0.0/16", "198.18.0.253", 0},
		{"198.19.5.0/24", "198.18.0.252", 10},
		{"198.19.5.0/24", "198.18.0.251", 5},
		{"198.19.5.128/25", "198.18.0.250", 0},
		{"198.19.5.77/32", "198.18.0.249", 0},
		{"128.0.0.0/1", "198.18.0.248", 0},
	} {
		if err := a.AddRoute(Route{Dst: netip.MustParsePrefix(r.dst), Gateway: netip.MustParseAddr(r.gw), Metric: r.metric}); err != nil {
			t.Fatal(err)
		}
	}
	a.routes.mu.Lock()
	a.routes.dead = []netip.Addr{netip.MustParseAddr("198.18.0.251")}
	a.rebuildLocked()
	a.routes.mu.Unlock()
	tb := a.routes.cur.Load()
	// The generic lookup, on prefixes, that lookup4 replaces for IPv4.
	want := func(dst netip.Addr) *Route {
		first := -1
		for i := range tb.v4 {
			r := &tb.v4[i]
			if !r.Dst.Contains(dst) {
				continue
			}
			if first < 0 {
				first = i
			} else if r.Dst.Bits() != tb.v4[first].Dst.Bits() {
				break
			}
			if !r.Gateway.IsValid() || !slices.Contains(tb.dead, r.Gateway) {
				return r
			}
		}
		if first < 0 {
			return nil
		}
		return &tb.v4[first]
	}
	dsts := []string{"198.18.0.7", "198.18.1.7", "198.19.9.9", "198.19.5.9", "198.19.5.200", "198.19.5.77",
		"198.19.5.78", "203.0.113.1", "10.0.0.1", "0.0.0.0", "255.255.255.255", "127.0.0.1"}
	for _, s := range dsts {
		dst := netip.MustParseAddr(s)
		if got, w := tb.lookup(dst), want(dst); got != w {
			t.Errorf("lookup(%v) = %+v, want %+v", dst, got, w)
		}
	}
	if r := tb.lookup(netip.MustParseAddr("198.19.5.9")); r == nil || r.Gateway != netip.MustParseAddr("198.18.0.252") {
		t.Errorf("the /24 with the dead gateway chosen: %+v", r)
	}
}
