package ip

import (
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// IPv6 addresses, routers, prefixes and DNS servers of a Host.
//
// Interface identifiers are RFC 7217 stable-privacy ones: the first 64 bits
// of SHA-256 over the prefix, the MAC (the network interface), the DAD
// counter and a 16-byte secret (Config.StableSecret, random when zero), so
// that an address is stable on one network for one secret and does not
// reveal the MAC (RFC 7721).

type addrState uint8

const (
	addrTentative addrState = iota // DAD running (RFC 4862 §5.4)
	addrOK                         // usable
	addrDuplicate                  // DAD found it in use: never used
)

type addr6 struct {
	p          netip.Prefix
	state      addrState
	dadLeft    int       // NS still to send
	dadAt      time.Time // next NS or, with none left, the end of DAD
	slaac      bool
	deprecated bool      // preferred lifetime over (RFC 4862 §5.5.4)
	validUntil time.Time // zero: forever
	prefUntil  time.Time
	reported   bool // MLD report sent for its solicited-node group
	dadCounter uint8
}

// idgenRetries is RFC 7217 §7's IDGEN_RETRIES: SLAAC addresses found
// duplicate are made again with the next DAD counter this many times.
const idgenRetries = 3

type router6 struct {
	addr  netip.Addr
	until time.Time // zero: static
}

type prefix6 struct {
	p     netip.Prefix
	until time.Time
}

type dns6 struct {
	addr  netip.Addr
	until time.Time
}

type v6State struct {
	mu       sync.RWMutex
	addrs    []*addr6
	routers  []router6 // learnt from RAs
	onlink   []prefix6 // learnt from RAs
	rdnss    []dns6
	dup      []netip.Addr
	started  bool
	lastMLD  time.Time // last report answering a query
	rsLeft   int
	rsAt     time.Time
	linkMTU  atomic.Int32 // the link MTU for IPv6: the link's, or lower by an RA MTU option
	hopLimit atomic.Int32
	flowKey  uint64
	secret   [16]byte
	nonce    [6]byte // of our DAD solicitations (RFC 7527)
}

// dadInterval is RetransTimer for duplicate address detection: a router
// advertisement's, else RETRANS_TIMER.
func (h *Host) dadInterval() time.Duration {
	if d := h.neigh.retrans6.Load(); d != 0 {
		return time.Duration(d)
	}
	return retransTimer
}

func (h *Host) initV6(seed uint64) {
	v := &h.v6
	v.hopLimit.Store(DefaultHopLimit)
	v.linkMTU.Store(int32(h.cfg.MTU))
	v.flowKey = seed*0x9e3779b97f4a7c15 + 1
	v.secret = h.cfg.StableSecret
	if v.secret == ([16]byte{}) {
		rand.Read(v.secret[:])
	}
	rand.Read(v.nonce[:])
	dad := h.cfg.Ethernet && h.cfg.DADTransmits > 0
	add := func(p netip.Prefix) {
		if slices.ContainsFunc(v.addrs, func(a *addr6) bool { return a.p.Addr() == p.Addr() }) {
			return
		}
		a := &addr6{p: p, state: addrOK}
		if dad {
			a.state, a.dadLeft = addrTentative, h.cfg.DADTransmits
		}
		v.addrs = append(v.addrs, a)
	}
	for _, p := range h.cfg.Addrs {
		if p.IsValid() && p.Addr().Is6() && !p.Addr().Is4In6() {
			add(p)
		}
	}
	if h.cfg.Ethernet && !h.cfg.NoLinkLocal {
		add(netip.PrefixFrom(h.stableAddr(netip.MustParsePrefix("fe80::/64"), 0), 64))
	}
	v.rsLeft = 0
	if h.cfg.Ethernet && !h.cfg.NoRS {
		v.rsLeft = maxRtrSolicitations
	}
}

// RFC 4861 §10 host constants. We send RFC 4861's 3 solicitations; Linux
// since 4.9 keeps soliciting with RFC 7559's backoff (up to an hour apart)
// until a router answers.
const (
	maxRtrSolicitations   = 3
	rtrSolicitationPeriod = 4 * time.Second
	retransTimer          = time.Second // RETRANS_TIMER, Linux's retrans_time_ms
)

// stableAddr returns the address of prefix (a /64) with the RFC 7217
// interface identifier for dadCounter.
func (h *Host) stableAddr(prefix netip.Prefix, dadCounter uint8) netip.Addr {
	p := prefix.Masked().Addr().As16()
	s := sha256.New()
	s.Write(p[:8])
	s.Write(h.cfg.MAC[:])
	s.Write([]byte{dadCounter})
	s.Write(h.v6.secret[:])
	sum := s.Sum(nil)
	copy(p[8:], sum[:8])
	return netip.AddrFrom16(p)
}

// solicitedNode returns the solicited-node multicast group of a
// (RFC 4291 §2.7.1): ff02::1:ff00:0/104 and its low 24 bits.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// multicastMAC returns the Ethernet address of an IPv6 group
// (RFC 2464 §7): 33:33 and its low 32 bits.
func multicastMAC(g netip.Addr) MAC {
	b := g.As16()
	return MAC{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allRouters  = netip.MustParseAddr("ff02::2")
	allMLDv2    = netip.MustParseAddr("ff02::16")
	allNodesMAC = multicastMAC(allNodes)
)

// joined reports whether we belong to the group g: all-nodes, or the
// solicited-node group of one of our addresses (tentative ones included,
// RFC 4862 §5.4.2).
func (h *Host) joined(g netip.Addr) bool {
	if g == allNodes || g == netip.MustParseAddr("ff01::1") {
		return true
	}
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, a := range v.addrs {
		if a.state != addrDuplicate && solicitedNode(a.p.Addr()) == g {
			return true
		}
	}
	return false
}

// joinedMAC reports whether frames to the multicast MAC m are for a group
// we joined.
func (h *Host) joinedMAC(m MAC) bool {
	if m[0] != 0x33 || m[1] != 0x33 {
		return false
	}
	if m == allNodesMAC {
		return true
	}
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, a := range v.addrs {
		if a.state != addrDuplicate && multicastMAC(solicitedNode(a.p.Addr())) == m {
			return true
		}
	}
	return false
}

// addrState returns the state of our IPv6 address a.
func (h *Host) addrState(a netip.Addr) (addrState, bool) {
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, x := range v.addrs {
		if x.p.Addr() == a {
			return x.state, true
		}
	}
	return 0, false
}

// Addrs returns the addresses usable now with their on-link prefixes: the
// IPv4 ones, then the IPv6 ones past DAD (static, link-local, SLAAC, in
// the order they were made).
func (h *Host) Addrs() []netip.Prefix {
	out := slices.Clone(h.v4.Load().prefixes)
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, a := range v.addrs {
		if a.state == addrOK {
			out = append(out, a.p)
		}
	}
	return out
}

// HasAddr reports whether a is one of our usable addresses.
func (h *Host) HasAddr(a netip.Addr) bool {
	if a.Is4() {
		return h.v4.Load().has(be32(a))
	}
	st, ok := h.addrState(a)
	return ok && st == addrOK
}

// DADFailed returns the addresses duplicate address detection found in use
// by another node (RFC 4862 §5.4.5).
func (h *Host) DADFailed() []netip.Addr {
	h.v6.mu.RLock()
	defer h.v6.mu.RUnlock()
	return slices.Clone(h.v6.dup)
}

// DNSServers returns the DNS servers learnt from router advertisements
// (RFC 8106 RDNSS) whose lifetime has not run out, in the order learnt.
func (h *Host) DNSServers() []netip.Addr {
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]netip.Addr, 0, len(v.rdnss))
	for _, d := range v.rdnss {
		out = append(out, d.addr)
	}
	return out
}

// Routers returns the gateways of the IPv6 default routes, in the order
// the table tries them: the static ones, then those learnt from router
// advertisements.
func (h *Host) Routers() []netip.Addr {
	var out []netip.Addr
	for _, r := range h.routes.cur.Load().v6 {
		if r.Dst.Bits() == 0 && r.Gateway.IsValid() {
			out = append(out, r.Gateway)
		}
	}
	return out
}

// scope6 returns the RFC 6724 §3.1 scope of a: 2 link-local, 14 global
// (ULAs included), a multicast address's own scope.
func scope6(a netip.Addr) int {
	switch {
	case a.IsMulticast():
		return int(a.As16()[1] & 0xf)
	case a.IsLinkLocalUnicast(), a.IsLoopback():
		return 2
	}
	return 14
}

// commonPrefix returns the number of leading bits a and b share.
func commonPrefix(a, b netip.Addr) int {
	x, y := a.As16(), b.As16()
	for i := range 16 {
		if d := x[i] ^ y[i]; d != 0 {
			n := i * 8
			for d&0x80 == 0 {
				n++
				d <<= 1
			}
			return n
		}
	}
	return 128
}

// SourceAddr returns the address to send from to dst: the source of the
// route to dst when it has one we have. Else, for IPv4, the address whose
// subnet holds the next hop (the route's gateway, or dst), else the first. For IPv6 it applies the
// rules of RFC 6724 §5 that matter for a host with one interface: the
// destination itself (rule 1), the appropriate scope (rule 2, so a
// link-local destination gets the link-local address), not deprecated
// (rule 3), the longest matching prefix (rule 8). ok is false with no
// usable address of dst's family.
func (h *Host) SourceAddr(dst netip.Addr) (netip.Addr, bool) {
	r := h.routes.cur.Load().lookup(dst.Unmap())
	if r != nil && r.Src.IsValid() && h.HasAddr(r.Src) {
		return r.Src, true
	}
	if dst.Is4() || dst.Is4In6() {
		dst = dst.Unmap()
		hop := dst
		if r != nil && r.Gateway.IsValid() {
			hop = r.Gateway
		}
		v4 := h.v4.Load().prefixes
		for _, p := range v4 {
			if p.Contains(hop) {
				return p.Addr(), true
			}
		}
		if len(v4) > 0 {
			return v4[0].Addr(), true
		}
		return netip.Addr{}, false
	}
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	var best *addr6
	ds := scope6(dst)
	better := func(a, b *addr6) bool { // a preferred to b
		if a.p.Addr() == dst || b.p.Addr() == dst {
			return a.p.Addr() == dst
		}
		if sa, sb := scope6(a.p.Addr()), scope6(b.p.Addr()); sa != sb {
			if sa < sb {
				return sa >= ds
			}
			return sb < ds
		}
		if a.deprecated != b.deprecated {
			return !a.deprecated
		}
		return commonPrefix(a.p.Addr(), dst) > commonPrefix(b.p.Addr(), dst)
	}
	for _, a := range v.addrs {
		if a.state != addrOK {
			continue
		}
		if best == nil || better(a, best) {
			best = a
		}
	}
	if best == nil {
		return netip.Addr{}, false
	}
	return best.p.Addr(), true
}

// linkLocal returns our usable link-local address, or the unspecified
// address.
func (h *Host) linkLocal() netip.Addr {
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, a := range v.addrs {
		if a.state == addrOK && a.p.Addr().IsLinkLocalUnicast() {
			return a.p.Addr()
		}
	}
	return netip.IPv6Unspecified()
}

// v6Work is what timerV6 decided to send once v6.mu is released.
type v6Work struct {
	dad      []netip.Addr // DAD solicitations
	mld      []netip.Addr // groups to report
	rs       bool
	dnsMoved bool
	addrUp   bool // an address passed DAD
}

// timerV6 runs the IPv6 deadlines: the start (MLD reports, DAD, router
// solicitation), DAD steps, router solicitations, and lifetimes.
func (h *Host) timerV6(now time.Time) {
	if !h.cfg.Ethernet {
		return
	}
	var w v6Work
	v := &h.v6
	v.mu.Lock()
	if !v.started {
		v.started = true
		v.rsAt = now
		for _, a := range v.addrs {
			a.dadAt = now
		}
	}
	for _, a := range v.addrs {
		if !a.reported && a.state != addrDuplicate {
			a.reported = true
			w.mld = append(w.mld, solicitedNode(a.p.Addr()))
		}
		if a.state != addrTentative || now.Before(a.dadAt) {
			continue
		}
		if a.dadLeft > 0 {
			if a.dadLeft == h.cfg.DADTransmits {
				stats.Inc(&h.st.NDP.DADStarted)
			}
			a.dadLeft--
			a.dadAt = now.Add(h.dadInterval())
			w.dad = append(w.dad, a.p.Addr())
			continue
		}
		// RFC 4862 §5.4: no answer for RetransTimer after the last NS.
		a.state = addrOK
		w.addrUp = true
		stats.Inc(&h.st.NDP.DADSucceeded)
		if a.p.Addr().IsLinkLocalUnicast() && v.rsLeft > 0 {
			v.rsAt = now // Linux solicits once the link-local address is usable
		}
	}
	if v.rsLeft > 0 && !now.Before(v.rsAt) && h.linkLocalReadyLocked() {
		v.rsLeft--
		v.rsAt = now.Add(rtrSolicitationPeriod)
		w.rs = true
	}
	var routesMoved bool
	w.dnsMoved, routesMoved = v.expireLocked(now)
	v.mu.Unlock()
	if routesMoved {
		h.rebuild()
	}
	h.doV6Work(now, &w)
}

// linkLocalReadyLocked reports whether router solicitation may go: the
// link-local address is past DAD, or there is none to wait for.
func (h *Host) linkLocalReadyLocked() bool {
	for _, a := range h.v6.addrs {
		if a.p.Addr().IsLinkLocalUnicast() {
			return a.state == addrOK
		}
	}
	return true
}

// expireLocked drops what outlived its lifetime and reports whether the
// DNS servers changed and whether routes did.
func (v *v6State) expireLocked(now time.Time) (dns, routes bool) {
	gone := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	n := len(v.routers) + len(v.onlink) + len(v.addrs)
	v.routers = slices.DeleteFunc(v.routers, func(r router6) bool { return gone(r.until) })
	v.onlink = slices.DeleteFunc(v.onlink, func(p prefix6) bool { return gone(p.until) })
	v.addrs = slices.DeleteFunc(v.addrs, func(a *addr6) bool { return a.slaac && gone(a.validUntil) })
	routes = n != len(v.routers)+len(v.onlink)+len(v.addrs)
	for _, a := range v.addrs {
		if gone(a.prefUntil) {
			a.deprecated = true
		}
	}
	n = len(v.rdnss)
	v.rdnss = slices.DeleteFunc(v.rdnss, func(d dns6) bool { return gone(d.until) })
	return n != len(v.rdnss), routes
}

func (h *Host) doV6Work(now time.Time, w *v6Work) {
	if len(w.mld) > 0 {
		h.sendMLDReport(now, w.mld)
	}
	for _, a := range w.dad {
		h.sendNS(now, a, MAC{}, false, true)
	}
	if w.rs {
		h.sendRS(now)
	}
	if w.dnsMoved && h.h.DNSChanged != nil {
		h.h.DNSChanged()
	}
	if w.addrUp && h.h.AddrsChanged != nil {
		h.h.AddrsChanged()
	}
}

// nextDeadlineV6 returns the earliest IPv6 deadline, or the zero time.
func (h *Host) nextDeadlineV6() time.Time {
	if !h.cfg.Ethernet {
		return time.Time{}
	}
	v := &h.v6
	v.mu.RLock()
	defer v.mu.RUnlock()
	if !v.started {
		if len(v.addrs) > 0 || v.rsLeft > 0 {
			return time.Unix(1, 0) // at once: the first Timer starts DAD and RS
		}
		return time.Time{}
	}
	var d time.Time
	for _, a := range v.addrs {
		if a.state == addrTentative {
			d = earliest(d, a.dadAt)
		}
		if a.slaac {
			d = earliest(d, a.validUntil)
			if !a.deprecated {
				d = earliest(d, a.prefUntil)
			}
		}
	}
	// A solicitation waiting for the link-local address's DAD is due when
	// that ends, a deadline already counted: never a past one to spin on.
	if v.rsLeft > 0 && h.linkLocalReadyLocked() {
		d = earliest(d, v.rsAt)
	}
	for _, r := range v.routers {
		d = earliest(d, r.until)
	}
	for _, p := range v.onlink {
		d = earliest(d, p.until)
	}
	for _, r := range v.rdnss {
		d = earliest(d, r.until)
	}
	return d
}

// dadConflict marks our tentative address a duplicate (RFC 4862 §5.4.5):
// it is never used and is reported.
func (h *Host) dadConflict(a netip.Addr) {
	v := &h.v6
	v.mu.Lock()
	found := false
	var retry *addr6
	for _, x := range v.addrs {
		if x.p.Addr() == a && x.state == addrTentative {
			x.state = addrDuplicate
			found = true
			if x.slaac && x.dadCounter < idgenRetries {
				// RFC 7217 §6: a new identifier from the next counter.
				r := *x
				r.dadCounter++
				r.p = netip.PrefixFrom(h.stableAddr(x.p.Masked(), r.dadCounter), 64)
				r.state, r.dadLeft, r.reported = addrTentative, h.cfg.DADTransmits, false
				retry = &r
			}
		}
	}
	if retry != nil {
		v.addrs = append(v.addrs, retry)
	}
	if found {
		v.dup = append(v.dup, a)
	}
	v.mu.Unlock()
	if !found {
		return
	}
	h.rebuild()
	h.wake() // a retry's DAD
	stats.Inc(&h.st.NDP.DADConflicts)
	if h.h.DADConflict != nil {
		h.h.DADConflict(a)
	}
}

// lifetime returns now plus a lifetime in seconds from an RA, or the zero
// time for infinity (0xffffffff, RFC 4861 §4.6.2).
func lifetime(now time.Time, secs uint32) time.Time {
	if secs == 0xffffffff {
		return time.Time{}
	}
	return now.Add(time.Duration(secs) * time.Second)
}
