package ip

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// The routing table. Its routes come from three places: the connected
// routes of our addresses (each address's subnet, on-link, from that
// address), the static routes the caller sets (Config.Gateways become
// default routes), and, for IPv6, what router advertisements teach (a
// default route by each router, the on-link prefixes). The table is
// rebuilt whole when any of them changes and published through an atomic
// pointer, so that the data path looks a route up without a lock.
//
// A lookup takes the longest prefix that holds the destination and, among
// the routes of that length, the lowest metric whose gateway is not known
// to be dead. A gateway is dead when its neighbour entry failed (no answer
// to ARP or neighbour solicitations, RFC 4861 §7.3.3's unreachability
// detection, which RFC 1122 §3.3.1.4 asks for dead gateways); it comes back
// when it is heard from again, and a dead gateway is solicited every
// deadProbeInterval to find out (Linux's rtr_probe_interval). When every
// route of the best length has a dead gateway, the lowest metric is used
// all the same.

// Route is one entry of the routing table: packets to Dst go to Gateway,
// or straight to the destination (on-link) when Gateway is the zero Addr,
// from Src when it is valid.
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	Metric  int
	Src     netip.Addr
	// Origin tells where the route comes from.
	Origin RouteOrigin
}

// RouteOrigin tells where a route comes from.
type RouteOrigin uint8

// The origins of routes.
const (
	RouteStatic    RouteOrigin = iota // set by the caller
	RouteConnected                    // the subnet of one of our addresses
	RouteRA                           // learnt from an IPv6 router advertisement
	RouteDHCP                         // a router of a DHCP lease
)

// Metrics of the routes the Host makes itself, as Linux's: 0 for IPv4
// subnets, 256 for IPv6 prefixes, 1024 for routers from advertisements.
const (
	metricConnected4 = 0
	metricConnected6 = 256
	metricRA         = 1024
)

// deadProbeInterval is how often a dead gateway is solicited again.
const deadProbeInterval = time.Minute

// routeTable is one published state of the table.
type routeTable struct {
	v4, v6 []Route      // longest prefix first, then lowest metric, then as added
	nets4  []net4       // v4's destinations as numbers, for lookup4
	dead   []netip.Addr // gateways whose neighbour entry failed
}

// net4 is an IPv4 prefix as numbers: a holds it when a&mask == addr.
type net4 struct{ addr, mask uint32 }

func net4Of(p netip.Prefix) net4 {
	m := ^uint32(0) << (32 - p.Bits()) // 0 for /0: Go shifts every bit out
	return net4{be32(p.Addr()) & m, m}
}

// be32 is the IPv4 address a as a number.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// routes is the Host's table and what it is built from.
type routes struct {
	cur     atomic.Pointer[routeTable]
	mu      sync.Mutex // serializes rebuilds; guards what follows
	static  []Route
	lease   []Route // RouteDHCP: the routers of the DHCP lease
	dead    []netip.Addr
	probeAt time.Time // next solicitation of the dead gateways
}

// lookup returns the route to dst, or nil.
func (t *routeTable) lookup(dst netip.Addr) *Route {
	if dst.Is4() {
		return t.lookup4(be32(dst))
	}
	rs := t.v4
	if dst.Is6() {
		rs = t.v6
	}
	first := -1
	for i := range rs {
		r := &rs[i]
		if !r.Dst.Contains(dst) {
			continue
		}
		if first < 0 {
			first = i
		} else if r.Dst.Bits() != rs[first].Dst.Bits() {
			break
		}
		if !r.Gateway.IsValid() || len(t.dead) == 0 || !slices.Contains(t.dead, r.Gateway) {
			return r
		}
	}
	if first < 0 {
		return nil
	}
	return &rs[first]
}

// lookup4 is lookup for the IPv4 address a, on the data path: the same
// choice, made with numbers.
func (t *routeTable) lookup4(a uint32) *Route {
	first := -1
	for i, n := range t.nets4 {
		if a&n.mask != n.addr {
			continue
		}
		if first < 0 {
			first = i
		} else if n.mask != t.nets4[first].mask {
			break
		}
		if r := &t.v4[i]; !r.Gateway.IsValid() || len(t.dead) == 0 || !slices.Contains(t.dead, r.Gateway) {
			return r
		}
	}
	if first < 0 {
		return nil
	}
	return &t.v4[first]
}

// Route returns the route to dst, and false when there is none.
func (h *Host) Route(dst netip.Addr) (Route, bool) {
	if r := h.routes.cur.Load().lookup(dst.Unmap()); r != nil {
		return *r, true
	}
	return Route{}, false
}

// Routable reports whether the Host has a route to dst.
func (h *Host) Routable(dst netip.Addr) bool {
	var err error
	if dst = dst.Unmap(); dst.Is4() {
		_, err = h.route(dst)
	} else {
		_, err = h.route6(dst)
	}
	return err == nil
}

// route picks the IPv4 next hop: the gateway of the route to dst, or dst
// itself on-link; ENETUNREACH when no route holds it, as Linux reports.
func (h *Host) route(dst netip.Addr) (netip.Addr, error) {
	switch {
	case !dst.Is4():
		return netip.Addr{}, ErrNoRoute
	case dst.As4() == [4]byte{255, 255, 255, 255}:
		return dst, nil
	}
	return h.nextHop(dst)
}

// nextHop returns the gateway of the route to dst, or dst itself on-link.
func (h *Host) nextHop(dst netip.Addr) (netip.Addr, error) {
	r := h.routes.cur.Load().lookup(dst)
	switch {
	case r == nil:
		return netip.Addr{}, ErrNoRoute
	case r.Gateway.IsValid() && h.cfg.Ethernet:
		return r.Gateway, nil
	}
	return dst, nil
}

// route6 picks the IPv6 next hop, as route does; link-local and multicast
// destinations are on the link.
func (h *Host) route6(dst netip.Addr) (netip.Addr, error) {
	if dst.IsMulticast() || dst.IsLinkLocalUnicast() {
		return dst, nil
	}
	return h.nextHop(dst)
}

// Routes returns the routing table, most specific first.
func (h *Host) Routes() []Route {
	t := h.routes.cur.Load()
	return append(slices.Clone(t.v4), t.v6...)
}

// SetRoutes replaces the static routes. A route the Host makes itself
// (connected or learnt) given again is skipped, so that what Routes
// returned may be set back. It fails with EINVAL for a malformed route,
// and with ENETUNREACH for a gateway the Host cannot reach on the link.
func (h *Host) SetRoutes(rs []Route) error {
	h.routes.mu.Lock()
	defer h.routes.mu.Unlock()
	cur := h.routes.cur.Load()
	derived := func(r Route) bool {
		return slices.ContainsFunc(slices.Concat(cur.v4, cur.v6), func(o Route) bool { return o.Origin != RouteStatic && o.same(r) })
	}
	var static []Route
	for _, r := range rs {
		r.Origin = RouteStatic
		if derived(r) {
			continue
		}
		if err := h.checkRoute(r); err != nil {
			return err
		}
		if !slices.ContainsFunc(static, r.same) {
			static = append(static, r)
		}
	}
	h.routes.static = static
	h.rebuildLocked()
	return nil
}

// AddRoute adds a static route. It fails with EEXIST if the table has one
// with the same destination, gateway and metric, and as SetRoutes does.
func (h *Host) AddRoute(r Route) error {
	h.routes.mu.Lock()
	defer h.routes.mu.Unlock()
	r.Origin = RouteStatic
	if err := h.checkRoute(r); err != nil {
		return err
	}
	if slices.ContainsFunc(h.routes.static, r.same) {
		return syscall.EEXIST
	}
	h.routes.static = append(slices.Clone(h.routes.static), r)
	h.rebuildLocked()
	return nil
}

// RemoveRoute removes the static route with r's destination, gateway and
// metric. It fails with ESRCH, as Linux's ip route del, when there is
// none.
func (h *Host) RemoveRoute(r Route) error {
	h.routes.mu.Lock()
	defer h.routes.mu.Unlock()
	i := slices.IndexFunc(h.routes.static, r.same)
	if i < 0 {
		return syscall.ESRCH
	}
	h.routes.static = slices.Delete(slices.Clone(h.routes.static), i, i+1)
	h.rebuildLocked()
	return nil
}

// SetLeaseRouters makes the routers of a DHCP lease for an address on
// subnet the default routes of origin RouteDHCP, of metric 0 in the
// order given (RFC 2132 §3.5: in order of preference), replacing those of
// the last call; nil removes them. A router off subnet is left out. The
// routes may be set before the address is added, so that they are in
// place when it is.
func (h *Host) SetLeaseRouters(gws []netip.Addr, subnet netip.Prefix) {
	h.routes.mu.Lock()
	defer h.routes.mu.Unlock()
	var rs []Route
	for _, g := range gws {
		if g.Is4() && subnet.Contains(g) && g != broadcastOf(subnet) && g != subnet.Masked().Addr() {
			rs = append(rs, Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: g, Origin: RouteDHCP})
		}
	}
	h.routes.lease = rs
	h.rebuildLocked()
}

// same reports whether r and o name the same route.
func (r Route) same(o Route) bool {
	return r.Dst == o.Dst && r.Gateway == o.Gateway && r.Metric == o.Metric
}

// checkRoute validates a static route: a masked prefix, a unicast gateway
// of its family on the link (link-local, or held by an on-link route), a
// source of its family.
func (h *Host) checkRoute(r Route) error {
	d, gw := r.Dst, r.Gateway
	switch {
	case !d.IsValid() || d != d.Masked() || d.Addr().Zone() != "" || d.Addr().Is4In6():
		return syscall.EINVAL
	case r.Metric < 0:
		return syscall.EINVAL
	case r.Src.IsValid() && (r.Src.Is4() != d.Addr().Is4() || r.Src.Zone() != ""):
		return syscall.EINVAL
	case !gw.IsValid():
		return nil
	case gw.Is4() != d.Addr().Is4() || gw.Zone() != "" || gw.IsUnspecified() || gw.IsMulticast() || gw.Is4In6():
		return syscall.EINVAL
	case !h.cfg.Ethernet || gw.IsLinkLocalUnicast():
		return nil // a point-to-point link's gateway is its other end
	}
	if on := h.routes.cur.Load().lookup(gw); on == nil || on.Gateway.IsValid() {
		return syscall.ENETUNREACH // as Linux's "Nexthop has invalid gateway"
	}
	return nil
}

// rebuild publishes the table anew from the addresses, the static routes
// and what router advertisements taught, and tells of a possible change
// of addresses. The caller must not hold v6.mu.
func (h *Host) rebuild() {
	h.routes.mu.Lock()
	h.rebuildLocked()
	h.routes.mu.Unlock()
	if h.h.AddrsChanged != nil {
		h.h.AddrsChanged()
	}
}

func (h *Host) rebuildLocked() {
	t := &routeTable{dead: slices.Clone(h.routes.dead)}
	add := func(r Route) {
		rs := &t.v4
		if r.Dst.Addr().Is6() {
			rs = &t.v6
		}
		if !slices.ContainsFunc(*rs, func(o Route) bool { return o.Dst == r.Dst && o.Origin != RouteStatic && o.Gateway == r.Gateway }) {
			*rs = append(*rs, r)
		}
	}
	for _, p := range h.v4.Load().prefixes {
		if p.Bits() < 32 {
			add(Route{Dst: p.Masked(), Metric: metricConnected4, Src: p.Addr(), Origin: RouteConnected})
		}
	}
	v := &h.v6
	v.mu.RLock()
	for _, a := range v.addrs {
		if a.p.Bits() < 128 && a.state != addrDuplicate {
			// No source: RFC 6724 picks among the prefix's addresses.
			add(Route{Dst: a.p.Masked(), Metric: metricConnected6, Origin: RouteConnected})
		}
	}
	for _, p := range v.onlink {
		add(Route{Dst: p.p, Metric: metricConnected6, Origin: RouteRA})
	}
	for _, r := range v.routers {
		add(Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gateway: r.addr, Metric: metricRA, Origin: RouteRA})
	}
	v.mu.RUnlock()
	for _, r := range h.routes.lease {
		add(r)
	}
	for _, r := range h.routes.static {
		if r.Dst.Addr().Is6() {
			t.v6 = append(t.v6, r)
		} else {
			t.v4 = append(t.v4, r)
		}
	}
	order := func(a, b Route) int {
		if c := cmp.Compare(b.Dst.Bits(), a.Dst.Bits()); c != 0 {
			return c
		}
		return cmp.Compare(a.Metric, b.Metric)
	}
	slices.SortStableFunc(t.v4, order)
	slices.SortStableFunc(t.v6, order)
	for _, r := range t.v4 {
		t.nets4 = append(t.nets4, net4Of(r.Dst))
	}
	h.routes.cur.Store(t)
}

// initRoutes makes the static routes of the configuration: a default
// route by each gateway, in the order given; on a link without Ethernet
// headers (TUN), a default route on the link for each family without one,
// as everything leaves by its other end.
func (h *Host) initRoutes() {
	var static []Route
	has4, has6 := false, false
	for _, g := range append([]netip.Addr{h.cfg.Gateway}, h.cfg.Gateways...) {
		if !g.IsValid() || g.IsUnspecified() || g.Is4In6() {
			continue
		}
		r := Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Gateway: g}
		if g.Is4() {
			r.Dst, has4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0), true
		} else {
			has6 = true
		}
		if !slices.ContainsFunc(static, r.same) {
			static = append(static, r)
		}
	}
	if !h.cfg.Ethernet {
		if !has4 {
			static = append(static, Route{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0)})
		}
		if !has6 {
			static = append(static, Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0)})
		}
	}
	h.routes.static = static
	h.rebuildLocked()
}

// gatewayFailed marks addr dead if it is a gateway of the table: its
// neighbour entry failed.
func (h *Host) gatewayFailed(now time.Time, addr netip.Addr) {
	t := h.routes.cur.Load()
	if slices.Contains(t.dead, addr) || !slices.ContainsFunc(slices.Concat(t.v4, t.v6), func(r Route) bool { return r.Gateway == addr }) {
		return
	}
	h.routes.mu.Lock()
	if !slices.Contains(h.routes.dead, addr) {
		h.routes.dead = append(slices.Clone(h.routes.dead), addr)
		if len(h.routes.dead) == 1 {
			h.routes.probeAt = now.Add(deadProbeInterval)
		}
		stats.Inc(&h.st.ARP.GatewayDead)
		h.rebuildLocked()
	}
	h.routes.mu.Unlock()
	h.wake()
}

// heardFrom revives addr if it is a dead gateway: it answered.
func (h *Host) heardFrom(addr netip.Addr) {
	if t := h.routes.cur.Load(); len(t.dead) == 0 || !slices.Contains(t.dead, addr) {
		return
	}
	h.routes.mu.Lock()
	if i := slices.Index(h.routes.dead, addr); i >= 0 {
		h.routes.dead = slices.Delete(slices.Clone(h.routes.dead), i, i+1)
		stats.Inc(&h.st.ARP.GatewayRevived)
		h.rebuildLocked()
	}
	h.routes.mu.Unlock()
}

// probeDead solicits the dead gateways when it is time.
func (h *Host) probeDead(now time.Time) {
	h.routes.mu.Lock()
	if len(h.routes.dead) == 0 || now.Before(h.routes.probeAt) {
		h.routes.mu.Unlock()
		return
	}
	h.routes.probeAt = now.Add(deadProbeInterval)
	dead := h.routes.dead
	h.routes.mu.Unlock()
	for _, g := range dead {
		if h.neigh.probe(g, now) {
			h.solicit(now, g, MAC{}, false)
		}
	}
}

// nextDeadProbe returns when the dead gateways are solicited next, or the
// zero time.
func (h *Host) nextDeadProbe() time.Time {
	h.routes.mu.Lock()
	defer h.routes.mu.Unlock()
	if len(h.routes.dead) == 0 {
		return time.Time{}
	}
	return h.routes.probeAt
}

// broadcastOf returns the subnet-directed broadcast address of p, or the
// zero Addr when p has none (/31 and /32, RFC 3021).
func broadcastOf(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() || p.Bits() >= 31 {
		return netip.Addr{}
	}
	a := p.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// addrs4 is the set of our IPv4 addresses. The Host replaces it whole
// when an address comes or goes (copy on write), so that the data path
// reads it without a lock.
type addrs4 struct {
	prefixes []netip.Prefix // in the order added; the first is Addr
	bcasts   []netip.Addr   // the subnet-directed broadcasts of prefixes
	// The same as numbers, for the data path: the prefixes' addresses,
	// and the limited broadcast followed by bcasts.
	addrs32, bcasts32 []uint32
}

func newAddrs4(ps []netip.Prefix) *addrs4 {
	v := &addrs4{prefixes: ps, bcasts32: []uint32{0xffffffff}}
	for _, p := range ps {
		v.addrs32 = append(v.addrs32, be32(p.Addr()))
		if b := broadcastOf(p); b.IsValid() {
			v.bcasts = append(v.bcasts, b)
			v.bcasts32 = append(v.bcasts32, be32(b))
		}
	}
	return v
}

// has reports whether a is one of the addresses.
func (v *addrs4) has(a uint32) bool { return slices.Contains(v.addrs32, a) }

// broadcast reports whether a is the limited broadcast address or the
// broadcast address of one of the subnets (RFC 1122 §3.2.1.3).
func (v *addrs4) broadcast(a uint32) bool { return slices.Contains(v.bcasts32, a) }

// notUnicast reports whether a is a broadcast or multicast address: never
// a source, and a destination no error is sent about (RFC 1122 §3.2.1.3,
// §3.2.2).
func (v *addrs4) notUnicast(a uint32) bool { return a>>28 == 0xe || v.broadcast(a) }

// onLink4 reports whether a is on the subnet of one of our IPv4
// addresses.
func (h *Host) onLink4(a netip.Addr) bool {
	return slices.ContainsFunc(h.v4.Load().prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
}

// isBroadcast reports whether the IPv4 address a is the limited broadcast
// address or the broadcast address of one of our subnets.
func (h *Host) isBroadcast(a netip.Addr) bool { return h.v4.Load().broadcast(be32(a)) }

// notUnicast reports whether the IPv4 address a is a broadcast or
// multicast address.
func (h *Host) notUnicast(a netip.Addr) bool { return h.v4.Load().notUnicast(be32(a)) }
