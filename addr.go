package netstack

import (
	"net"
	"net/netip"
	"strconv"
)

// Address parsing for Listen, ListenPacket and Dial.

// parseHostPort parses "host:port" where host is an IPv4 literal or empty
// (any address). Names go through the Resolver in Dialer, not here.
func parseHostPort(network, address string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		if p, err2 := net.LookupPort(network, port); err2 == nil {
			return addrPort(host, uint16(p))
		}
		return netip.AddrPort{}, &net.AddrError{Err: "invalid port", Addr: address}
	}
	return addrPort(host, uint16(p))
}

func addrPort(host string, port uint16) (netip.AddrPort, error) {
	if host == "" {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), port), nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, &net.AddrError{Err: "not an IP address (names are resolved by Dialer)", Addr: host}
	}
	a = a.Unmap()
	if !a.Is4() {
		return netip.AddrPort{}, &net.AddrError{Err: "IPv6 is not supported yet", Addr: host}
	}
	return netip.AddrPortFrom(a, port), nil
}

// checkNetwork accepts the IPv4 networks of proto ("tcp" or "udp").
func checkNetwork(network, proto string) error {
	if network == proto || network == proto+"4" {
		return nil
	}
	return net.UnknownNetworkError(network)
}

// listenAddr checks network against proto and parses address as a local
// address to bind, as Listen and ListenPacket take it.
func (s *Stack) listenAddr(network, proto, address string) (netip.AddrPort, error) {
	if err := checkNetwork(network, proto); err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := parseHostPort(network, address)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ap, s.e.BindAddr(ap.Addr())
}
