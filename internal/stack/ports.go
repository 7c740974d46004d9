package stack

import (
	"net/netip"
	"slices"
	"syscall"
)

// Linux's default net.ipv4.ip_local_port_range.
const (
	EphemeralLow  = 32768
	EphemeralHigh = 60999
)

// A Binding is the local address a socket is bound to, as bind(2) takes
// it: one of the stack's addresses, or the unspecified address of a family
// for all of that family's (a wildcard). An IPv6 wildcard with Dual set
// takes IPv4 too, as a Linux AF_INET6 socket with IPV6_V6ONLY off does
// (Go's Listen("tcp", ":80")).
type Binding struct {
	Addr netip.Addr // unmapped, without a zone
	Dual bool       // an IPv6 wildcard that also takes IPv4
}

// Takes reports whether a packet to dst belongs to b.
func (b Binding) Takes(dst netip.Addr) bool {
	if !b.Addr.IsUnspecified() {
		return b.Addr == dst
	}
	if dst.Is4() {
		return b.Addr.Is4() || b.Dual
	}
	return b.Addr.Is6()
}

// covers reports whether b, a wildcard, takes o's family.
func (b Binding) covers(o Binding) bool {
	return b.Addr.IsUnspecified() && (b.Addr.Is4() == o.Addr.Is4() || b.Dual && o.Addr.Is4())
}

// overlaps reports whether b and o may not share a port: as Linux's
// bind conflict check (inet_csk_bind_conflict, without SO_REUSEPORT), the
// same address, or a wildcard that takes the other's family.
func (b Binding) overlaps(o Binding) bool {
	return b.Addr == o.Addr || b.covers(o) || o.covers(b)
}

// better reports whether b is a closer match than o for a packet both
// take: a specific address beats a wildcard, and a single-family wildcard
// a dual one, as Linux scores its listeners (compute_score).
func (b Binding) better(o Binding) bool {
	rank := func(x Binding) int {
		switch {
		case !x.Addr.IsUnspecified():
			return 2
		case !x.Dual:
			return 1
		}
		return 0
	}
	return rank(b) > rank(o)
}

// portTable tracks the local ports in use by one protocol and the
// bindings on each.
type portTable struct {
	used map[uint16][]Binding
}

// take claims port for b, or a random ephemeral port free of any binding
// when port is 0, as Linux picks them (a random start, then the next free
// one). It fails with EADDRINUSE when b overlaps a binding on port and
// EADDRNOTAVAIL when the range is full.
func (p *portTable) take(port uint16, b Binding, rnd func() uint32) (uint16, error) {
	if p.used == nil {
		p.used = make(map[uint16][]Binding)
	}
	if port != 0 {
		if slices.ContainsFunc(p.used[port], b.overlaps) {
			return 0, syscall.EADDRINUSE
		}
		p.used[port] = append(p.used[port], b)
		return port, nil
	}
	n := uint32(EphemeralHigh - EphemeralLow + 1)
	start := rnd() % n
	for i := range n {
		cand := uint16(EphemeralLow + (start+i)%n)
		if len(p.used[cand]) == 0 {
			p.used[cand] = append(p.used[cand], b)
			return cand, nil
		}
	}
	return 0, syscall.EADDRNOTAVAIL
}

// inUse reports whether any socket is bound to port.
func (p *portTable) inUse(port uint16) bool { return len(p.used[port]) > 0 }

// release gives b's claim on port back.
func (p *portTable) release(port uint16, b Binding) {
	bs := p.used[port]
	if i := slices.Index(bs, b); i >= 0 {
		bs = slices.Delete(bs, i, i+1)
	}
	if len(bs) == 0 {
		delete(p.used, port)
	} else {
		p.used[port] = bs
	}
}

// BindAddr checks a local address to bind: unspecified (or invalid: none
// given) or ours, as bind(2) fails with EADDRNOTAVAIL otherwise. With
// transparent, a stack with a forwarder takes any unicast address too, as
// Linux's IP_TRANSPARENT does: the forwarder's stack takes packets to
// every address, so what comes back to a foreign one arrives.
func (s *Stack) BindAddr(a netip.Addr, transparent bool) error {
	if !a.IsValid() || a.IsUnspecified() || s.HasAddr(a.WithZone("")) ||
		transparent && s.transparent() && !a.IsMulticast() {
		return nil
	}
	return syscall.EADDRNOTAVAIL
}

// transparent reports whether sockets may use addresses not the stack's.
func (s *Stack) transparent() bool { return s.cfg.Forward.forwarding() }
