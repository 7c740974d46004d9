package stack

import (
	"net/netip"
	"slices"
	"syscall"

	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/tcp"
)

// The stack's addresses, of either family. Config.Addrs are the static
// ones; the IP layer adds those it configures itself (IPv6 link-local and
// SLAAC) and tells which are usable now.

// headroom returns where a transport message starts in a frame to dst:
// behind the Ethernet header and the IPv4 or IPv6 header, which the IP
// layer fills in place.
func headroom(dst netip.Addr) int {
	if dst.Is4() {
		return ip.Headroom
	}
	return ip.Headroom6
}

// ipAddrConfig puts the stack's static addresses and gateways into the IP
// layer's configuration.
func ipAddrConfig(c *ip.Config, addrs []netip.Prefix, gws []netip.Addr) error {
	c.Addrs, c.Gateways = addrs, gws
	return nil
}

// Addrs returns the stack's usable addresses and their on-link prefixes:
// IPv4, then IPv6 past duplicate address detection (static, link-local,
// SLAAC).
func (s *Stack) Addrs() []netip.Prefix { return s.host.Addrs() }

// HasAddr reports whether a (without a zone) is one of the stack's usable
// addresses.
func (s *Stack) HasAddr(a netip.Addr) bool { return s.host.HasAddr(a) }

// SourceAddr returns the address to send from to dst, as connect(2)
// picks it: for IPv6 by RFC 6724 §5's rules, for IPv4 the address whose
// subnet holds dst, else the first. It fails with ENETUNREACH when the
// stack has no usable address of dst's family or no route to dst, as
// connect(2) fails at once.
func (s *Stack) SourceAddr(dst netip.Addr) (netip.Addr, error) {
	if a, ok := s.host.SourceAddr(dst); ok && s.host.Routable(dst) {
		return a, nil
	}
	return netip.Addr{}, syscall.ENETUNREACH
}

// DNSServers returns the DNS servers of the DHCP lease, then those the IP
// layer learnt from router advertisements (RFC 8106 RDNSS).
func (s *Stack) DNSServers() []netip.Addr {
	if s.dhcp == nil {
		return s.host.DNSServers()
	}
	return append(s.dhcp.dns(), s.host.DNSServers()...)
}

// arpConflict hands the DHCP client what ARP showed of the address it
// probes.
func (s *Stack) arpConflict(a netip.Addr) {
	if s.dhcp != nil {
		select {
		case s.dhcp.conflict <- a:
		default: // one pending tells the client all it needs
		}
	}
}

// Routers returns the IPv6 default routers: the configured ones, then
// those learnt from router advertisements.
func (s *Stack) Routers() []netip.Addr { return s.host.Routers() }

// DADFailed returns the addresses duplicate address detection found in
// use by another node (RFC 4862 §5.4.5), which the stack does not use.
func (s *Stack) DADFailed() []netip.Addr { return s.host.DADFailed() }

// hasFamily reports whether the stack has an address of a's family.
func (s *Stack) hasFamily(v4 bool) bool {
	return slices.ContainsFunc(s.Addrs(), func(p netip.Prefix) bool { return p.Addr().Is4() == v4 })
}

// ipv6HeaderLen is the fixed IPv6 header's length (RFC 8200 §3).
const ipv6HeaderLen = 40

// AddAddr adds an address while the stack runs (see ip.Host.AddAddr).
func (s *Stack) AddAddr(p netip.Prefix) error {
	s.staticMu.Lock()
	defer s.staticMu.Unlock()
	if err := s.host.AddAddr(p); err != nil {
		return err
	}
	static := append(slices.Clone(*s.static.Load()), p)
	s.static.Store(&static)
	return nil
}

// RemoveAddr removes the address a while the stack runs, as Linux acts on
// the sockets of an address that goes (tcp_abort, as Android's netd asks
// of it): each TCP connection from a is reset, and its user's next call
// fails with ECONNABORTED; listeners bound to a stop, their Accept failing
// the same way; UDP sockets bound to a get the error once. Wildcard
// listeners and sockets stay, and so do connections from other addresses.
func (s *Stack) RemoveAddr(a netip.Addr) error {
	s.staticMu.Lock()
	defer s.staticMu.Unlock()
	if err := s.removeAddr(a); err != nil {
		return err
	}
	static := slices.DeleteFunc(slices.Clone(*s.static.Load()), func(p netip.Prefix) bool { return p.Addr() == a })
	s.static.Store(&static)
	return nil
}

// removeAddr takes a from the IP layer and aborts what used it. The
// connections are reset while a and its subnet's route are still there,
// so that their resets reach the peers, and once more after, for any
// that came in between.
func (s *Stack) removeAddr(a netip.Addr) error {
	if s.host.HasAddr(a) {
		s.abortAddr(a)
	}
	if err := s.host.RemoveAddr(a); err != nil {
		return err
	}
	s.abortAddr(a)
	return nil
}

// abortAddr resets the TCP connections from a, stops the listeners bound
// to it and leaves the error on its UDP sockets: a has gone.
func (s *Stack) abortAddr(a netip.Addr) {
	var conns []*TCPEndpoint
	var ls []*Listener
	s.tcp.mu.RLock()
	for c := range s.tcp.conns.all() {
		if c.local == a {
			conns = append(conns, c)
		}
	}
	for _, pl := range s.tcp.listeners {
		for _, l := range pl {
			if l.bind.Addr == a {
				ls = append(ls, l)
			}
		}
	}
	s.tcp.mu.RUnlock()
	for _, l := range ls {
		l.shut(tcp.ErrAborted)
	}
	for _, c := range conns {
		c.Kill()
	}
	s.udp.mu.RLock()
	for _, socks := range s.udp.socks {
		for _, u := range socks {
			if u.bind.Addr == a || u.laddr.Addr() == a {
				u.setSoftErr(tcp.ErrAborted)
			}
		}
	}
	s.udp.mu.RUnlock()
}

// Routes returns the routing table (see ip.Host.Routes).
func (s *Stack) Routes() []ip.Route { return s.host.Routes() }

// SetRoutes replaces the static routes.
func (s *Stack) SetRoutes(rs []ip.Route) error { return s.host.SetRoutes(rs) }

// AddRoute adds a static route.
func (s *Stack) AddRoute(r ip.Route) error { return s.host.AddRoute(r) }

// RemoveRoute removes a static route.
func (s *Stack) RemoveRoute(r ip.Route) error { return s.host.RemoveRoute(r) }

// addrsMoved tells watchAddrs the addresses may have changed.
func (s *Stack) addrsMoved() {
	if s.addrSig == nil {
		return
	}
	select {
	case s.addrSig <- struct{}{}:
	default: // a signal is pending: it covers this change too
	}
}

// watchAddrs runs Config.AddrsChanged, one call at a time, each time the
// usable addresses differ from those it last reported (starting from
// last). Changes that come close together may be reported together.
func (s *Stack) watchAddrs(last []netip.Prefix) {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.addrSig:
		}
		if now := s.Addrs(); !slices.Equal(now, last) {
			last = now
			s.cfg.AddrsChanged(slices.Clone(now))
		}
	}
}
