package ip

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

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

// route picks the next hop: on-link destinations directly, the rest via the
// gateway; ENETUNREACH when neither fits, as Linux reports with no route.
func (h *Host) route(dst netip.Addr) (netip.Addr, error) {
	switch {
	case !dst.Is4():
		return netip.Addr{}, ErrNoRoute
	case !h.cfg.Ethernet:
		// A point-to-point IP link (TUN): everything goes out of it.
		return dst, nil
	case dst.As4() == [4]byte{255, 255, 255, 255}:
		return dst, nil
	case h.onLink4(dst):
		return dst, nil
	case h.cfg.Gateway.IsValid():
		return h.cfg.Gateway, nil
	}
	return netip.Addr{}, ErrNoRoute
}

// addrs4 is the set of our IPv4 addresses. The Host replaces it whole
// when an address comes or goes (copy on write), so that the data path
// reads it without a lock.
type addrs4 struct {
	prefixes []netip.Prefix // in the order added; the first is Addr
	bcasts   []netip.Addr   // the subnet-directed broadcasts of prefixes
}

func newAddrs4(ps []netip.Prefix) *addrs4 {
	v := &addrs4{prefixes: ps}
	for _, p := range ps {
		if b := broadcastOf(p); b.IsValid() {
			v.bcasts = append(v.bcasts, b)
		}
	}
	return v
}

// onLink4 reports whether a is on the subnet of one of our IPv4
// addresses.
func (h *Host) onLink4(a netip.Addr) bool {
	return slices.ContainsFunc(h.v4.Load().prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
}

// isBroadcast reports whether a is the limited broadcast address or the
// broadcast address of one of our subnets (RFC 1122 §3.2.1.3).
func (h *Host) isBroadcast(a netip.Addr) bool {
	return a.As4() == [4]byte{255, 255, 255, 255} || slices.Contains(h.v4.Load().bcasts, a)
}

// notUnicast reports whether a is a broadcast or multicast address: never
// a source, and a destination no error is sent about (RFC 1122 §3.2.1.3,
// §3.2.2).
func (h *Host) notUnicast(a netip.Addr) bool {
	return a.IsMulticast() || h.isBroadcast(a)
}
