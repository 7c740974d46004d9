package ip

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// Neighbour discovery (RFC 4861), address autoconfiguration (RFC 4862)
// and MLDv2 reports (RFC 3810) for the groups we join.
//
// IPv6 next hops share the ARP neighbour table and its queueing, states
// and timers (INCOMPLETE while soliciting, REACHABLE for
// NeighReachable after an advertisement, then used while a unicast
// solicitation confirms it, deleted when that goes unanswered).

// NDP option types (RFC 4861 §4.6, RFC 8106 §5.1).
const (
	ndOptSourceLL = 1
	ndOptTargetLL = 2
	ndOptPrefix   = 3
	ndOptMTU      = 5
	ndOptRDNSS    = 25
	ndOptNonce    = 14 // RFC 3971 §5.3.2, used by RFC 7527 enhanced DAD
)

// ndOptions are the options of one NDP message that we use.
type ndOptions struct {
	sll, tll       MAC
	hasSLL, hasTLL bool
	nonce          []byte
	mtu            uint32
	prefixes       [][]byte // prefix information options, 32 bytes each
	rdnss          [][]byte
}

// maxNDOptions bounds the prefix and RDNSS options looked at in one
// message, so a crafted RA costs bounded work.
const maxNDOptions = 32

// parseNDOptions checks and reads the options in b (RFC 4861 §4.6): a
// zero length or one past the end invalidates the message (§6.1, §7.1).
func parseNDOptions(b []byte) (o ndOptions, ok bool) {
	for len(b) > 0 {
		if len(b) < 2 || b[1] == 0 || int(b[1])*8 > len(b) {
			return o, false
		}
		l := int(b[1]) * 8
		opt := b[:l]
		switch b[0] {
		case ndOptSourceLL:
			o.sll, o.hasSLL = MAC(opt[2:8]), true
		case ndOptTargetLL:
			o.tll, o.hasTLL = MAC(opt[2:8]), true
		case ndOptNonce:
			o.nonce = opt[2:]
		case ndOptMTU:
			o.mtu = binary.BigEndian.Uint32(opt[4:8])
		case ndOptPrefix:
			if l == 32 && len(o.prefixes) < maxNDOptions {
				o.prefixes = append(o.prefixes, opt)
			}
		case ndOptRDNSS:
			if l >= 24 && len(o.rdnss) < maxNDOptions {
				o.rdnss = append(o.rdnss, opt)
			}
		}
		b = b[l:]
	}
	return o, true
}

// inputNDP validates an NS, NA or RA (RFC 4861 §6.1.2, §7.1.1, §7.1.2)
// and handles it.
func (h *Host) inputNDP(now time.Time, hdr IPv6Header, msg []byte, mcast bool) {
	if !h.cfg.Ethernet {
		stats.Inc(&h.st.ICMPv6.DropUnhandled)
		return
	}
	// The hop limit of 255 proves the sender is on the link.
	if hdr.HopLimit() != 255 {
		stats.Inc(&h.st.NDP.DropBadHopLimit)
		return
	}
	if msg[1] != 0 {
		stats.Inc(&h.st.NDP.DropBadCode)
		return
	}
	fixed := 24
	if msg[0] == ICMPv6RouterAdvert {
		fixed = 16
	}
	if len(msg) < fixed {
		stats.Inc(&h.st.NDP.DropMalformed)
		return
	}
	o, ok := parseNDOptions(msg[fixed:])
	if !ok {
		stats.Inc(&h.st.NDP.DropBadOption)
		return
	}
	src, dst := hdr.Src(), hdr.Dst()
	switch msg[0] {
	case ICMPv6NeighSolicit:
		stats.Inc(&h.st.NDP.NSIn)
		target := netip.AddrFrom16([16]byte(msg[8:24]))
		if target.IsMulticast() {
			stats.Inc(&h.st.NDP.DropMalformed)
			return
		}
		// §7.1.1: from the unspecified address only to a solicited-node
		// group, and without a source link-layer address.
		if src.IsUnspecified() && (!isSolicitedNode(dst) || o.hasSLL) {
			stats.Inc(&h.st.NDP.DropBadOption)
			return
		}
		h.inputNS(now, src, target, o)
	case ICMPv6NeighAdvert:
		stats.Inc(&h.st.NDP.NAIn)
		target := netip.AddrFrom16([16]byte(msg[8:24]))
		solicited := msg[4]&0x40 != 0
		if target.IsMulticast() || (mcast && solicited) {
			stats.Inc(&h.st.NDP.DropMalformed)
			return
		}
		h.inputNA(now, target, msg[4]&0x20 != 0, o)
	case ICMPv6RouterAdvert:
		stats.Inc(&h.st.NDP.RAIn)
		if !src.IsLinkLocalUnicast() { // §6.1.2
			stats.Inc(&h.st.NDP.DropMalformed)
			return
		}
		h.inputRA(now, src, msg, o)
	}
}

// isSolicitedNode reports whether a is in ff02::1:ff00:0/104.
func isSolicitedNode(a netip.Addr) bool { return a == solicitedNode(a) }

func (h *Host) inputNS(now time.Time, src, target netip.Addr, o ndOptions) {
	st, ours := h.addrState(target)
	if !ours {
		stats.Inc(&h.st.NDP.DropNotForUs)
		return
	}
	switch st {
	case addrTentative:
		// RFC 4862 §5.4.3: another node's DAD for the same address
		// (from ::) means a duplicate; a unicast-sourced NS is ignored.
		if src.IsUnspecified() {
			if string(o.nonce) == string(h.v6.nonce[:]) {
				stats.Inc(&h.st.NDP.DADLoopedBack) // RFC 7527 §4.2: our own
				return
			}
			h.dadConflict(target)
		}
		return
	case addrDuplicate:
		return
	}
	if o.hasSLL && !src.IsUnspecified() && !o.sll.IsMulticast() {
		h.flush(src, o.sll, h.neigh.learn(src, o.sll, now, true))
	}
	// RFC 4861 §7.2.4: answer to the asker, or to all nodes from DAD.
	dst, solicited := src, true
	if src.IsUnspecified() {
		dst, solicited = allNodes, false
	}
	h.sendNA(now, target, dst, solicited)
}

func (h *Host) inputNA(now time.Time, target netip.Addr, override bool, o ndOptions) {
	if st, ours := h.addrState(target); ours {
		// RFC 4862 §5.4.4: an advertisement for our tentative address
		// means it is taken. For one in use, Linux only logs.
		if st == addrTentative {
			h.dadConflict(target)
		}
		return
	}
	if !o.hasTLL || o.tll.IsMulticast() {
		return // §7.2.5: nothing to learn
	}
	mac, st, ok := h.neigh.get(target)
	if !ok {
		return // §7.2.5: unsolicited advertisements create no entry
	}
	// §7.2.5: without the override flag an advertisement changes no
	// known link-layer address.
	if !override && st != neighIncomplete && mac != o.tll {
		return
	}
	h.flush(target, o.tll, h.neigh.learn(target, o.tll, now, false))
}

// flush sends the frames that waited for addr's resolution to mac.
func (h *Host) flush(addr netip.Addr, mac MAC, frames [][]byte) {
	typ := uint16(EtherTypeIPv4)
	if addr.Is6() {
		typ = EtherTypeIPv6
	}
	h.heardFrom(addr)
	// Frames sent to addr meanwhile queued behind these (the entry is
	// draining): send them after, until none is left, so none overtakes
	// another.
	for len(frames) > 0 {
		for _, f := range frames {
			stats.Inc(&h.st.ARP.PendingFlushed)
			EthernetHeader(f).Encode(mac, h.cfg.MAC, typ)
			h.writeFrame(f)
		}
		frames = h.neigh.drained(addr)
	}
}

// inputRA processes a router advertisement (RFC 4861 §6.3.4, RFC 4862
// §5.5.3, RFC 8106 §5.3.1).
func (h *Host) inputRA(now time.Time, src netip.Addr, msg []byte, o ndOptions) {
	if o.hasSLL && !o.sll.IsMulticast() {
		h.flush(src, o.sll, h.neigh.learn(src, o.sll, now, true))
	}
	newAddrs := 0
	dnsChanged := false
	v := &h.v6
	v.mu.Lock()
	v.rsLeft = 0 // §6.3.7: answered
	if msg[4] != 0 {
		v.hopLimit.Store(int32(msg[4]))
	}
	// Reachable Time and Retrans Timer, in ms. One above RFC 4861 §10's
	// MAX_REACHABLE_TIME (an hour), or a Retrans Timer above a minute, is
	// a broken or hostile router's and ignored, so that one RA cannot
	// make a neighbour trusted for days or a resolution take as long.
	reach := time.Duration(binary.BigEndian.Uint32(msg[8:12])) * time.Millisecond
	retrans := time.Duration(binary.BigEndian.Uint32(msg[12:16])) * time.Millisecond
	if reach > time.Hour {
		reach = 0
		stats.Inc(&h.st.NDP.TimerIgnored)
	}
	if retrans > time.Minute {
		retrans = 0
		stats.Inc(&h.st.NDP.TimerIgnored)
	}
	h.neigh.setND6(reach, retrans)
	// Default router list.
	life := binary.BigEndian.Uint16(msg[6:8])
	i := slices.IndexFunc(v.routers, func(r router6) bool { return r.addr == src })
	switch {
	case life == 0 && i >= 0:
		v.routers = slices.Delete(v.routers, i, i+1)
	case life > 0 && i >= 0:
		v.routers[i].until = now.Add(time.Duration(life) * time.Second)
	case life > 0 && len(v.routers) < h.cfg.MaxRouters:
		v.routers = append(v.routers, router6{addr: src, until: now.Add(time.Duration(life) * time.Second)})
	case life > 0:
		stats.Inc(&h.st.NDP.RouterLimit)
	}
	// MTU option: lower the IPv6 link MTU, never above the link's
	// (§6.3.4) nor below 1280.
	if o.mtu != 0 {
		if o.mtu >= IPv6MinMTU && o.mtu <= uint32(h.cfg.MTU) {
			v.linkMTU.Store(int32(o.mtu))
		} else {
			stats.Inc(&h.st.NDP.MTUOptionIgnored)
		}
	}
	for _, p := range o.prefixes {
		if h.prefixInfoLocked(now, p) {
			newAddrs++
		}
	}
	for _, r := range o.rdnss {
		if h.rdnssLocked(now, r) {
			dnsChanged = true
		}
	}
	v.mu.Unlock()
	h.rebuild()
	if newAddrs > 0 {
		stats.Add(&h.st.NDP.SLAACAddrs, uint64(newAddrs))
		h.wake() // DAD and the MLD report of each are due
	}
	if dnsChanged && h.h.DNSChanged != nil {
		h.h.DNSChanged()
	}
}

// twoHours is RFC 4862 §5.5.3 (e)'s bound on lifetimes an unauthenticated
// RA may shorten.
const twoHours = 2 * time.Hour

// prefixInfoLocked handles one prefix information option: the on-link
// prefix list (L flag) and SLAAC (A flag), and reports whether it formed a new address (DAD then checks
// it).
func (h *Host) prefixInfoLocked(now time.Time, opt []byte) bool {
	v := &h.v6
	bits := int(opt[2])
	onLink, auto := opt[3]&0x80 != 0, opt[3]&0x40 != 0
	valid, pref := binary.BigEndian.Uint32(opt[4:8]), binary.BigEndian.Uint32(opt[8:12])
	p, err := netip.AddrFrom16([16]byte(opt[16:32])).Prefix(min(bits, 128))
	if err != nil || bits > 128 || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() || pref > valid {
		return false // §5.5.3 (b), (c)
	}
	if onLink {
		i := slices.IndexFunc(v.onlink, func(x prefix6) bool { return x.p == p })
		switch {
		case valid == 0 && i >= 0:
			v.onlink = slices.Delete(v.onlink, i, i+1)
		case valid > 0 && i >= 0:
			v.onlink[i].until = lifetime(now, valid)
		case valid > 0 && len(v.onlink) < h.cfg.MaxPrefixes:
			v.onlink = append(v.onlink, prefix6{p: p, until: lifetime(now, valid)})
		case valid > 0:
			stats.Inc(&h.st.NDP.PrefixLimit)
		}
	}
	if !auto || h.cfg.NoSLAAC || bits != 64 {
		return false // §5.5.3 (d): interface identifiers are 64 bits
	}
	for _, a := range v.addrs {
		if !a.slaac || !p.Contains(a.p.Addr()) {
			continue
		}
		// §5.5.3 (e): the two-hour rule.
		until := lifetime(now, valid)
		remaining := time.Duration(1 << 62)
		if !a.validUntil.IsZero() {
			remaining = a.validUntil.Sub(now)
		}
		switch {
		case until.IsZero() || time.Duration(valid)*time.Second > twoHours || until.After(a.validUntil) && !a.validUntil.IsZero():
			a.validUntil = until
		case remaining <= twoHours:
			// ignored
		default:
			a.validUntil = now.Add(twoHours)
		}
		a.prefUntil = lifetime(now, pref)
		a.deprecated = pref == 0
		return false
	}
	if valid == 0 {
		return false
	}
	n := 0
	for _, a := range v.addrs {
		if a.slaac {
			n++
		}
	}
	if n >= h.cfg.MaxPrefixes {
		stats.Inc(&h.st.NDP.PrefixLimit)
		return false
	}
	a := &addr6{p: netip.PrefixFrom(h.stableAddr(p, 0), 64), slaac: true, state: addrOK, dadAt: now,
		validUntil: lifetime(now, valid), prefUntil: lifetime(now, pref), deprecated: pref == 0}
	if h.cfg.DADTransmits > 0 {
		a.state, a.dadLeft = addrTentative, h.cfg.DADTransmits
	}
	v.addrs = append(v.addrs, a)
	return true
}

// rdnssLocked handles one RDNSS option (RFC 8106 §5.1, §5.3.1) and reports
// whether the server list changed.
func (h *Host) rdnssLocked(now time.Time, opt []byte) bool {
	v := &h.v6
	if (len(opt)-8)%16 != 0 {
		return false
	}
	life := binary.BigEndian.Uint32(opt[4:8])
	changed := false
	for b := opt[8:]; len(b) >= 16; b = b[16:] {
		a := netip.AddrFrom16([16]byte(b[:16]))
		if a.IsMulticast() || a.IsUnspecified() {
			continue
		}
		i := slices.IndexFunc(v.rdnss, func(d dns6) bool { return d.addr == a })
		switch {
		case life == 0 && i >= 0:
			v.rdnss = slices.Delete(v.rdnss, i, i+1)
			changed = true
		case life > 0 && i >= 0:
			v.rdnss[i].until = lifetime(now, life)
		case life > 0 && len(v.rdnss) < h.cfg.MaxRDNSS:
			v.rdnss = append(v.rdnss, dns6{addr: a, until: lifetime(now, life)})
			changed = true
		case life > 0:
			stats.Inc(&h.st.NDP.RDNSSLimit)
		}
	}
	return changed
}

// solicit asks for the link-layer address of target: an ARP request for
// IPv4, a neighbour solicitation for IPv6.
func (h *Host) solicit(now time.Time, target netip.Addr, mac MAC, unicast bool) {
	if target.Is4() {
		h.sendARPRequest(target, mac, unicast)
		return
	}
	h.sendNS(now, target, mac, unicast, false)
}

// sendNS sends a neighbour solicitation for target (RFC 4861 §7.2.2): to
// its solicited-node group, or a unicast probe to mac; for DAD from the
// unspecified address without a source link-layer option (RFC 4862
// §5.4.2).
func (h *Host) sendNS(now time.Time, target netip.Addr, mac MAC, unicast, dad bool) {
	var b [Headroom6 + 32]byte
	m := b[Headroom6:]
	m[0] = ICMPv6NeighSolicit
	t := target.As16()
	copy(m[8:24], t[:])
	src := netip.IPv6Unspecified()
	if !dad {
		var ok bool
		if src, ok = h.SourceAddr(target); !ok {
			src = netip.IPv6Unspecified()
		}
	}
	switch {
	case !src.IsUnspecified():
		m[24], m[25] = ndOptSourceLL, 1
		copy(m[26:32], h.cfg.MAC[:])
	case dad:
		// RFC 7527 §4.1 (Linux's enhanced_dad, on by default): a nonce,
		// so that our own solicitation looped back by the link is not
		// taken for another node's.
		m[24], m[25] = ndOptNonce, 1
		copy(m[26:32], h.v6.nonce[:])
	default:
		m = m[:24]
	}
	dst := solicitedNode(target)
	if unicast {
		dst = target
	}
	checksum6(m, 2, ProtoICMPv6, src, dst)
	stats.Inc(&h.st.NDP.NSOut)
	h.sendNDP(now, b[:Headroom6+len(m)], src, dst, mac, unicast)
}

// sendNA advertises our target to dst (RFC 4861 §7.2.4): override set,
// solicited as asked, with our link-layer address.
func (h *Host) sendNA(now time.Time, target, dst netip.Addr, solicited bool) {
	var b [Headroom6 + 32]byte
	m := b[Headroom6:]
	m[0] = ICMPv6NeighAdvert
	m[4] = 0x20 // override
	if solicited {
		m[4] |= 0x40
	}
	t := target.As16()
	copy(m[8:24], t[:])
	m[24], m[25] = ndOptTargetLL, 1
	copy(m[26:32], h.cfg.MAC[:])
	checksum6(m, 2, ProtoICMPv6, target, dst)
	stats.Inc(&h.st.NDP.NAOut)
	h.output6(now, b[:], ProtoICMPv6, target, dst, 255, 0)
}

// sendRS solicits routers (RFC 4861 §6.3.7), from the link-local address
// with our link-layer address, or from :: without it.
func (h *Host) sendRS(now time.Time) {
	var b [Headroom6 + 16]byte
	m := b[Headroom6:]
	m[0] = ICMPv6RouterSolicit
	src := h.linkLocal()
	if src.IsUnspecified() {
		m = m[:8]
	} else {
		m[8], m[9] = ndOptSourceLL, 1
		copy(m[10:16], h.cfg.MAC[:])
	}
	checksum6(m, 2, ProtoICMPv6, src, allRouters)
	stats.Inc(&h.st.NDP.RSOut)
	h.sendNDP(now, b[:Headroom6+len(m)], src, allRouters, MAC{}, false)
}

// sendNDP sends an NDP message with hop limit 255. Multicast needs no
// resolution; a unicast probe goes to the MAC we already hold.
func (h *Host) sendNDP(now time.Time, pkt []byte, src, dst netip.Addr, mac MAC, unicast bool) {
	encodeIPv6(pkt[EthernetHeaderLen:], len(pkt)-Headroom6, 0, ProtoICMPv6, 255, src, dst)
	stats.Inc(&h.st.IPv6.Sent)
	if !unicast {
		mac = multicastMAC(dst)
	}
	EthernetHeader(pkt).Encode(mac, h.cfg.MAC, EtherTypeIPv6)
	h.writeFrame(pkt)
}

// inputMLDQuery answers an MLD query (RFC 3810 §6.2; an MLDv1 query,
// RFC 2710, too) with a report of all our groups, so that snooping
// bridges keep passing solicitations to us. Queries must come from a
// link-local address with hop limit 1 (§5.1.14). We answer at once rather
// than after a random delay up to the maximum response delay, and at most
// once a second, so a flood of queries costs at most one report a second.
func (h *Host) inputMLDQuery(now time.Time, hdr IPv6Header, msg []byte) {
	if !h.cfg.Ethernet || !hdr.Src().IsLinkLocalUnicast() || hdr.HopLimit() != 1 || len(msg) < 24 {
		stats.Inc(&h.st.NDP.MLDQueriesIgnored)
		return
	}
	var groups []netip.Addr
	v := &h.v6
	v.mu.Lock()
	if !v.lastMLD.IsZero() && now.Sub(v.lastMLD) < time.Second {
		v.mu.Unlock()
		stats.Inc(&h.st.NDP.MLDQueriesIgnored)
		return
	}
	v.lastMLD = now
	for _, a := range v.addrs {
		if g := solicitedNode(a.p.Addr()); a.state != addrDuplicate && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	v.mu.Unlock()
	stats.Inc(&h.st.NDP.MLDQueriesIn)
	if len(groups) > 0 {
		h.sendMLDReport(now, groups)
	}
}

// sendMLDReport reports our membership of groups (RFC 3810 §5.2, state
// change records CHANGE_TO_EXCLUDE_MODE with no sources) to ff02::16, hop
// limit 1, behind a hop-by-hop header with the router alert option
// (§5.2.14). All-nodes is never reported (§6).
func (h *Host) sendMLDReport(now time.Time, groups []netip.Addr) {
	const rec = 20
	groups = groups[:min(len(groups), (IPv6MinMTU-IPv6HeaderLen-8-8)/rec)]
	n := Headroom6 + 8 + 8 + rec*len(groups)
	bp := h.pool.Get(n)
	defer h.pool.Put(bp)
	pkt := (*bp)[:n]
	hbh := pkt[Headroom6 : Headroom6+8]
	copy(hbh, []byte{ProtoICMPv6, 0, 5, 2, 0, 0, 1, 0}) // router alert (MLD), PadN
	m := pkt[Headroom6+8:]
	clear(m[:8])
	m[0] = ICMPv6MLDv2Report
	binary.BigEndian.PutUint16(m[6:8], uint16(len(groups)))
	for i, g := range groups {
		r := m[8+i*rec : 8+(i+1)*rec]
		r[0], r[1], r[2], r[3] = 4, 0, 0, 0 // CHANGE_TO_EXCLUDE_MODE, no aux data, no sources
		a := g.As16()
		copy(r[4:], a[:])
	}
	src := h.linkLocal() // or :: while it is tentative (§5.2.13)
	checksum6(m, 2, ProtoICMPv6, src, allMLDv2)
	encodeIPv6(pkt[EthernetHeaderLen:], len(pkt)-Headroom6, 0, ProtoHopByHop, 1, src, allMLDv2)
	EthernetHeader(pkt).Encode(multicastMAC(allMLDv2), h.cfg.MAC, EtherTypeIPv6)
	stats.Inc(&h.st.IPv6.Sent)
	stats.Inc(&h.st.NDP.MLDReportsOut)
	h.writeFrame(pkt)
}
