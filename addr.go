package netstack

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// Address parsing and the ephemeral port pool shared by TCP and UDP.

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
	return ap, s.bindAddr(ap.Addr())
}

// bindAddr checks a local address for Listen/ListenPacket: unspecified or
// ours, as bind(2) fails with EADDRNOTAVAIL otherwise.
func (s *Stack) bindAddr(a netip.Addr) error {
	if a.IsUnspecified() || a == s.Addr() {
		return nil
	}
	return syscall.EADDRNOTAVAIL
}

// Linux's default net.ipv4.ip_local_port_range.
const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// portTable tracks the local ports in use by one protocol.
type portTable struct {
	used map[uint16]int // refcount
}

// take claims port, or a random free ephemeral port when port is 0, as
// Linux picks them (a random start, then the next free one). It fails with
// EADDRINUSE when port is taken and EADDRNOTAVAIL when the range is full.
func (p *portTable) take(port uint16, rnd func() uint32) (uint16, error) {
	if p.used == nil {
		p.used = make(map[uint16]int)
	}
	if port != 0 {
		if p.used[port] > 0 {
			return 0, syscall.EADDRINUSE
		}
		p.used[port]++
		return port, nil
	}
	n := uint32(ephemeralHigh - ephemeralLow + 1)
	start := rnd() % n
	for i := range n {
		cand := uint16(ephemeralLow + (start+i)%n)
		if p.used[cand] == 0 {
			p.used[cand]++
			return cand, nil
		}
	}
	return 0, syscall.EADDRNOTAVAIL
}

// release gives port back.
func (p *portTable) release(port uint16) {
	if p.used[port]--; p.used[port] <= 0 {
		delete(p.used, port)
	}
}
