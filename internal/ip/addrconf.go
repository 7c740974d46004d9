package ip

import (
	"net/netip"
	"slices"
	"syscall"
)

// Addresses added and removed while the Host runs. IPv4 addresses live in
// a set replaced whole (addrs4), which the data path loads without a lock;
// IPv6 ones in the list v6.mu guards, with the SLAAC ones.

// AddAddr adds p, an address with its on-link prefix. An IPv4 address is
// usable at once and announced with a gratuitous ARP (RFC 5227 §3); an
// IPv6 one first passes duplicate address detection, as the configured
// ones do, and its solicited-node group is reported (MLD). It fails with
// EEXIST when the Host has the address already.
func (h *Host) AddAddr(p netip.Prefix) error {
	a := p.Addr()
	if a.Is4() {
		h.addrMu.Lock()
		old := h.v4.Load().prefixes
		if slices.ContainsFunc(old, func(q netip.Prefix) bool { return q.Addr() == a }) {
			h.addrMu.Unlock()
			return syscall.EEXIST
		}
		h.v4.Store(newAddrs4(append(slices.Clone(old), p)))
		h.addrMu.Unlock()
		h.rebuild()
		h.announce(a)
		return nil
	}
	v := &h.v6
	v.mu.Lock()
	if slices.ContainsFunc(v.addrs, func(x *addr6) bool { return x.p.Addr() == a }) {
		v.mu.Unlock()
		return syscall.EEXIST
	}
	x := &addr6{p: p, state: addrOK}
	if h.cfg.Ethernet && h.cfg.DADTransmits > 0 {
		x.state, x.dadLeft = addrTentative, h.cfg.DADTransmits
	}
	v.addrs = append(v.addrs, x)
	v.dup = slices.DeleteFunc(v.dup, func(d netip.Addr) bool { return d == a }) // tried again
	v.mu.Unlock()
	h.rebuild()
	h.wake() // DAD and the MLD report are due
	return nil
}

// RemoveAddr removes the address a (static, link-local or SLAAC). Packets
// to it are no longer ours from then on; the caller deals with the
// sockets bound to it. It fails with EADDRNOTAVAIL when the Host does not
// have it.
func (h *Host) RemoveAddr(a netip.Addr) error {
	if a.Is4() {
		h.addrMu.Lock()
		defer h.addrMu.Unlock()
		old := h.v4.Load().prefixes
		i := slices.IndexFunc(old, func(q netip.Prefix) bool { return q.Addr() == a })
		if i < 0 {
			return syscall.EADDRNOTAVAIL
		}
		h.v4.Store(newAddrs4(slices.Delete(slices.Clone(old), i, i+1)))
		h.rebuild()
		return nil
	}
	v := &h.v6
	v.mu.Lock()
	i := slices.IndexFunc(v.addrs, func(x *addr6) bool { return x.p.Addr() == a })
	if i < 0 {
		v.mu.Unlock()
		return syscall.EADDRNOTAVAIL
	}
	v.addrs = slices.Delete(v.addrs, i, i+1)
	v.mu.Unlock()
	h.rebuild()
	return nil
}
