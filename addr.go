package netstack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/gotcpip/netstack/internal/stack"
)

// Address parsing for Listen, ListenPacket and Dial, and the addresses
// the stack hands back, with package net's semantics for the networks of
// each family.

// family is the address family a network name asks for: 0 either, 4 or 6.
type family int

// networkFamily checks network against proto ("tcp" or "udp") and returns
// the family it names.
func networkFamily(network, proto string) (family, error) {
	switch network {
	case proto:
		return 0, nil
	case proto + "4":
		return 4, nil
	case proto + "6":
		return 6, nil
	}
	return 0, net.UnknownNetworkError(network)
}

// takes reports whether an address a (unmapped) is of family f, as Go's
// address filters for "tcp4" and "tcp6" judge it: an IPv4-mapped IPv6
// address counts as IPv4.
func (f family) takes(a netip.Addr) bool {
	return f == 0 || (f == 4) == a.Is4()
}

// errNoSuitableAddress is package net's error for an address of a family
// the network does not take.
func errNoSuitableAddress(host string) error {
	return &net.AddrError{Err: "no suitable address found", Addr: host}
}

// parseHostPort parses "host:port" where host is an IP literal (IPv6 in
// brackets, with an optional zone) or empty (any address). The address is
// returned unmapped and without its zone, which must name the stack's
// link. Names go through the Resolver in Dialer, not here.
func (s *Stack) parseHostPort(network, address string) (host string, ap netip.AddrPort, err error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		lp, err2 := net.LookupPort(network, port)
		if err2 != nil {
			return "", netip.AddrPort{}, &net.AddrError{Err: "invalid port", Addr: address}
		}
		p = uint64(lp)
	}
	if host == "" {
		return host, netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil
	}
	a, err := s.parseAddr(host)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	return host, netip.AddrPortFrom(a, uint16(p)), nil
}

// parseAddr parses an IP literal, unmapped, its zone checked and removed.
func (s *Stack) parseAddr(host string) (netip.Addr, error) {
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, &net.AddrError{Err: "not an IP address (names are resolved by Dialer)", Addr: host}
	}
	return s.unzone(a)
}

// unzone checks a's zone and returns a unmapped, without it.
func (s *Stack) unzone(a netip.Addr) (netip.Addr, error) { return s.view().unzone(a) }

// unzone checks a's zone and returns a unmapped, without it. A stack has
// one link, so a zone may only name it: the link's name (Zone), "1" (its
// index on a one-interface host), or nothing.
func (v addrView) unzone(a netip.Addr) (netip.Addr, error) {
	if z := a.Zone(); z != "" && z != v.zone && z != "1" {
		return netip.Addr{}, &net.AddrError{Err: "no such network interface", Addr: a.String()}
	}
	return a.WithZone("").Unmap(), nil
}

// unzonePort is unzone for an address and port.
func (v addrView) unzonePort(ap netip.AddrPort) (netip.AddrPort, error) {
	a, err := v.unzone(ap.Addr())
	return netip.AddrPortFrom(a, ap.Port()), err
}

// zoned returns a as the stack hands it out: a link-local IPv6 address
// with the link's name as its zone, as Go's carry their interface's name.
func (s *Stack) zoned(a netip.Addr) netip.Addr {
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return a.WithZone(s.zone)
	}
	return a
}

// listenBinding checks network against proto and parses address as a
// local address to bind, as Listen and ListenPacket take it, with Go's
// family rules on Linux: "tcp" with a wildcard host (empty, 0.0.0.0 or
// [::]) is a dual-stack IPv6 wildcard (an AF_INET6 socket with
// IPV6_V6ONLY off), "tcp6" with one an IPv6-only wildcard, "tcp4" an IPv4
// wildcard; a specific address binds its own family.
func (s *Stack) listenBinding(network, proto, address string) (stack.Binding, uint16, error) {
	fam, err := networkFamily(network, proto)
	if err != nil {
		return stack.Binding{}, 0, err
	}
	host, ap, err := s.parseHostPort(network, address)
	if err != nil {
		return stack.Binding{}, 0, err
	}
	a := ap.Addr()
	var b stack.Binding
	switch {
	case !a.IsValid() || a.IsUnspecified():
		switch fam {
		case 4:
			b = stack.Binding{Addr: netip.IPv4Unspecified()}
		case 6:
			b = stack.Binding{Addr: netip.IPv6Unspecified()}
		default:
			b = stack.Binding{Addr: netip.IPv6Unspecified(), Dual: true}
		}
	case !fam.takes(a):
		return stack.Binding{}, 0, errNoSuitableAddress(host)
	default:
		b = stack.Binding{Addr: a}
	}
	return b, ap.Port(), s.e.BindAddr(b.Addr, true)
}

// addrView turns the engine's addresses into those a socket shows: with
// the link's zone on link-local ones and, on a dual-stack socket, IPv4
// addresses in their IPv4-mapped form, as Linux reports them through an
// AF_INET6 socket (::ffff:198.18.0.1, whose net.IP is 16 bytes and prints
// as 198.18.0.1).
type addrView struct {
	zone   string
	mapped bool
}

// views holds one copy of each addrView a TCP connection was made with:
// they are few (a link's zone, mapped or not), and a pointer to a shared
// one keeps each connection smaller than a copy would.
var views sync.Map // addrView → *addrView

// plainViews are the views without a zone, mapped or not: those of links
// without a name, which need no look-up.
var plainViews = [2]addrView{{}, {mapped: true}}

// internView returns the shared copy of v.
func internView(v addrView) *addrView {
	if v.zone == "" {
		if v.mapped {
			return &plainViews[1]
		}
		return &plainViews[0]
	}
	if p, ok := views.Load(v); ok {
		return p.(*addrView)
	}
	p, _ := views.LoadOrStore(v, &v)
	return p.(*addrView)
}

func (v addrView) addr(a netip.Addr) netip.Addr {
	switch {
	case a.Is4() && v.mapped:
		return netip.AddrFrom16(a.As16())
	case a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()):
		return a.WithZone(v.zone)
	}
	return a
}

func (v addrView) addrPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(v.addr(ap.Addr()), ap.Port())
}

func (v addrView) tcp(ap netip.AddrPort) *net.TCPAddr { return net.TCPAddrFromAddrPort(v.addrPort(ap)) }

func (v addrView) udp(ap netip.AddrPort) *net.UDPAddr { return net.UDPAddrFromAddrPort(v.addrPort(ap)) }

func (v addrView) ip(a netip.Addr) *net.IPAddr {
	a = v.addr(a)
	return &net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
}

// view returns the plain view of the stack's addresses (no mapping).
func (s *Stack) view() addrView { return addrView{zone: s.zone} }

// selfAddr returns the address a dial to an unspecified host (or to no
// host) reaches, as Linux connects such a dial to the host itself: the
// stack's first address of the family, IPv4 first for either.
func (s *Stack) selfAddr(fam family) (netip.Addr, bool) {
	var v6 netip.Addr
	for _, p := range s.e.Addrs() {
		a := p.Addr()
		if a.Is4() && fam != 6 {
			return a, true
		}
		if a.Is6() && fam != 4 && !v6.IsValid() {
			v6 = a
		}
	}
	return v6, v6.IsValid()
}

// linkZone returns the name of link, for zones: a device's name, "link"
// for links without one.
func linkZone(l Link) string {
	type named interface{ Name() string }
	if n, ok := l.(named); ok && n.Name() != "" {
		return n.Name()
	}
	return "link"
}

// checkAddrs validates the addresses and gateways of cfg and returns them
// with the shorthands folded in.
// checkPrefix tells what is wrong with p as an address of the stack, as
// the end of a sentence about it.
func checkPrefix(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return errors.New("is not a valid prefix")
	case a.Is4In6():
		return errors.New("is an IPv4-mapped address; give it as IPv4")
	case a.IsUnspecified(), a.IsMulticast(), a.IsLoopback():
		return errors.New("is not a unicast address")
	}
	return nil
}

func checkAddrs(cfg *Config) ([]netip.Prefix, []netip.Addr, error) {
	var addrs []netip.Prefix
	if cfg.Addr.IsValid() || cfg.Addr != (netip.Prefix{}) {
		addrs = append(addrs, cfg.Addr)
	}
	addrs = append(addrs, cfg.Addrs...)
	for i, p := range addrs {
		a := p.Addr()
		if err := checkPrefix(p); err != nil {
			return nil, nil, fmt.Errorf("netstack: Config.Addrs: %v %w", p, err)
		}
		for _, q := range addrs[:i] {
			if q.Addr() == a {
				return nil, nil, fmt.Errorf("netstack: Config.Addrs: %v given twice", a)
			}
		}
	}
	if cfg.DHCP && !cfg.Link.Ethernet() {
		return nil, nil, errors.New("netstack: Config.DHCP needs an Ethernet link")
	}
	if len(addrs) == 0 && !cfg.Link.Ethernet() {
		// Without Ethernet there is no link-local address nor neighbor
		// discovery, so nothing could give the stack an address.
		return nil, nil, errors.New("netstack: Config.Addrs is empty on a link without Ethernet")
	}
	var gws []netip.Addr
	if cfg.Gateway.IsValid() {
		gws = append(gws, cfg.Gateway)
	}
	gws = append(gws, cfg.Gateways...)
	for i, g := range gws {
		g = g.WithZone("").Unmap()
		gws[i] = g
		onLink := g.Is6() && g.IsLinkLocalUnicast()
		for _, p := range addrs {
			if p.Contains(g) {
				onLink = true
			}
		}
		switch {
		case !g.IsValid() || g.IsUnspecified() || g.IsMulticast():
			return nil, nil, fmt.Errorf("netstack: Config.Gateways: %v is not a unicast address", g)
		case !onLink:
			return nil, nil, fmt.Errorf("netstack: gateway %v is not on a subnet of Config.Addrs", g)
		}
	}
	return addrs, gws, nil
}

// ipv6MinMTU is the smallest link MTU IPv6 allows (RFC 8200 §5).
const ipv6MinMTU = 1280
