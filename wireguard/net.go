package netstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	ns "github.com/gotcpip/netstack"
)

// Net is the network inside the tunnel: it dials, listens and resolves
// names over the stack behind the Device that CreateNetTUN returned with
// it. Its methods have the names and parameters of wireguard-go's
// netstack.Net and are safe for concurrent use. Connections are
// *netstack.TCPConn, *netstack.TCPListener and *netstack.UDPConn of
// package github.com/gotcpip/netstack, where wireguard-go's are gVisor's
// gonet types, and ping sockets this package's *PingConn; they behave as
// package net's, errors included.
type Net struct {
	stack        *ns.Stack
	dev          *Device
	hasV4, hasV6 bool // the Net has an address of the family
	dnsServers   []netip.Addr
	pingIDs      echoIDs
}

// CreateNetTUN returns a tun.Device for wireguard-go's device.NewDevice and
// the Net that uses it. The stack has every address in localAddresses, of
// either family and as many as given, each a /32 or /128 as wireguard-go's
// netstack makes them (at least one is needed; an IPv4-mapped IPv6 address
// counts as IPv4, and a zone is ignored), and sends every packet into the
// tunnel, as wireguard-go's netstack does with its default routes; the
// device passes IPv4 and IPv6 packets both ways. dnsServers, of either
// family, are the servers LookupHost asks, on port 53; mtu is the largest
// IP packet, 1420 in wireguard-go's usual setup, and at least 1280 (IPv6's
// minimum, RFC 8200 §5) when an IPv6 address is given.
//
// The device's Events channel holds tun.EventUp, so the WireGuard device
// comes up by itself. Closing the device (device.Close does it) closes the
// stack and every connection of the Net.
func CreateNetTUN(localAddresses, dnsServers []netip.Addr, mtu int) (tun.Device, *Net, error) {
	n := &Net{}
	var prefixes []netip.Prefix
	for _, a := range localAddresses {
		a = a.Unmap().WithZone("")
		switch {
		case a.Is4():
			prefixes = append(prefixes, netip.PrefixFrom(a, 32))
			n.hasV4 = true
		case a.Is6():
			prefixes = append(prefixes, netip.PrefixFrom(a, 128))
			n.hasV6 = true
		default:
			return nil, nil, fmt.Errorf("netstack: invalid local address %v", a)
		}
	}
	if len(prefixes) == 0 {
		return nil, nil, errors.New("netstack: no local address")
	}
	if mtu <= 0 {
		return nil, nil, fmt.Errorf("netstack: invalid MTU %d", mtu)
	}
	var dns []netip.AddrPort
	for _, a := range dnsServers {
		a = a.Unmap()
		if a.IsValid() {
			dns = append(dns, netip.AddrPortFrom(a, 53))
			n.dnsServers = append(n.dnsServers, a)
		}
	}
	dev := newDevice(mtu)
	// /32s and /128s: the link is point to point, and the stack sends every
	// packet into it whatever its destination (the core routes so on IP
	// links, for both families).
	s, err := ns.New(ns.Config{Link: stackLink{dev.link, dev}, Addrs: prefixes, DNS: dns})
	if err != nil {
		dev.link.Close()
		return nil, nil, err
	}
	dev.stack = s
	dev.events <- tun.EventUp
	n.stack, n.dev = s, dev
	return dev, n, nil
}

// Stack returns the stack behind n, for what Net does not offer: Stats,
// Ping, Listen by network name, a Resolver, a Dialer with options.
func (n *Net) Stack() *ns.Stack { return n.stack }

// DialContextTCPAddrPort connects to addr over TCP. If ctx ends before the
// connection is made, the dial fails; once made, ctx no longer matters.
func (n *Net) DialContextTCPAddrPort(ctx context.Context, addr netip.AddrPort) (*ns.TCPConn, error) {
	if !addr.IsValid() {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errMissingAddress}
	}
	c, err := n.stack.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	return c.(*ns.TCPConn), nil
}

// DialContextTCP is DialContextTCPAddrPort with a *net.TCPAddr.
func (n *Net) DialContextTCP(ctx context.Context, addr *net.TCPAddr) (*ns.TCPConn, error) {
	return n.DialContextTCPAddrPort(ctx, tcpAddrPort(addr))
}

// DialTCPAddrPort connects to addr over TCP.
func (n *Net) DialTCPAddrPort(addr netip.AddrPort) (*ns.TCPConn, error) {
	return n.DialContextTCPAddrPort(context.Background(), addr)
}

// DialTCP is DialTCPAddrPort with a *net.TCPAddr.
func (n *Net) DialTCP(addr *net.TCPAddr) (*ns.TCPConn, error) {
	return n.DialContextTCPAddrPort(context.Background(), tcpAddrPort(addr))
}

// ListenTCPAddrPort listens for TCP connections on addr. Its address must
// be zero, unspecified or one of the Net's; port 0 picks an ephemeral port.
// As with wireguard-go's, the zero address listens on every family the Net
// has (a Net with both: one dual-stack listener, as package net's "tcp"
// with no host, whose IPv4 peers show in their IPv4-mapped form, which
// prints as IPv4), 0.0.0.0 on IPv4 only and :: on IPv6 only.
func (n *Net) ListenTCPAddrPort(addr netip.AddrPort) (*ns.TCPListener, error) {
	network, address := n.bindNetwork("tcp", addr)
	return n.stack.ListenTCP(network, address)
}

// ListenTCP is ListenTCPAddrPort with a *net.TCPAddr; nil listens on an
// ephemeral port.
func (n *Net) ListenTCP(addr *net.TCPAddr) (*ns.TCPListener, error) {
	return n.ListenTCPAddrPort(tcpAddrPort(addr))
}

// DialUDPAddrPort returns a UDP socket bound to laddr (the zero value: an
// ephemeral port) and, when raddr is valid, connected to it, so that Read
// and Write exchange datagrams with raddr only, of either family. Without
// raddr it is ListenUDPAddrPort.
func (n *Net) DialUDPAddrPort(laddr, raddr netip.AddrPort) (*ns.UDPConn, error) {
	if !raddr.IsValid() {
		network, address := n.bindNetwork("udp", laddr)
		return n.stack.ListenUDP(network, address)
	}
	d := ns.Dialer{Stack: n.stack}
	if laddr.Addr().IsValid() || laddr.Port() != 0 {
		a := laddr.Addr().Unmap()
		if !a.IsValid() {
			a = netip.IPv4Unspecified()
			if raddr.Addr().Unmap().Is6() {
				a = netip.IPv6Unspecified()
			}
		}
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, laddr.Port()))
	}
	c, err := d.DialContext(context.Background(), "udp", raddr.String())
	if err != nil {
		return nil, err
	}
	return c.(*ns.UDPConn), nil
}

// ListenUDPAddrPort returns a UDP socket bound to laddr (the zero value: an
// ephemeral port), which exchanges datagrams with any address through
// ReadFrom and WriteTo. Its families are ListenTCPAddrPort's: the zero
// address takes every family the Net has, 0.0.0.0 IPv4 and :: IPv6 only.
func (n *Net) ListenUDPAddrPort(laddr netip.AddrPort) (*ns.UDPConn, error) {
	return n.DialUDPAddrPort(laddr, netip.AddrPort{})
}

// DialUDP is DialUDPAddrPort with *net.UDPAddr values; nil means the zero
// address.
func (n *Net) DialUDP(laddr, raddr *net.UDPAddr) (*ns.UDPConn, error) {
	return n.DialUDPAddrPort(udpAddrPort(laddr), udpAddrPort(raddr))
}

// ListenUDP is ListenUDPAddrPort with a *net.UDPAddr.
func (n *Net) ListenUDP(laddr *net.UDPAddr) (*ns.UDPConn, error) {
	return n.DialUDPAddrPort(udpAddrPort(laddr), netip.AddrPort{})
}

// Dial connects to address on network; see DialContext.
func (n *Net) Dial(network, address string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, address)
}

// DialContext connects to address on network, as net.Dialer's DialContext
// does, and suits http.Transport.DialContext. network is "tcp", "udp" or
// "ping" for either family, or one of them with "4" or "6" for that family
// only. address is "host:port" with a numeric port, or for "ping" networks
// a host alone, which gives a connected *PingConn (DialPingAddr). A host
// name is resolved with LookupContextHost, which asks only for the
// families the Net has addresses of, IPv6 first when it has one, as
// wireguard-go's does; each address found that network allows is tried in
// that order, each with an equal share of the time left before ctx's
// deadline (at least 2 s), until one connects.
func (n *Net) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	proto, want4, want6 := splitNetwork(network)
	if proto == "" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	host, port := address, uint64(0) // a ping address is a host alone
	if proto != "ping" {
		var sport string
		var err error
		host, sport, err = net.SplitHostPort(address)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		port, err = strconv.ParseUint(sport, 10, 16)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errNumericPort}
		}
	}
	hosts, err := n.LookupContextHost(ctx, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var addrs []netip.AddrPort
	for _, h := range hosts {
		a, err := netip.ParseAddr(h)
		if err == nil && (a.Is4() && want4 || a.Is6() && want6) {
			addrs = append(addrs, netip.AddrPortFrom(a, uint16(port)))
		}
	}
	if len(addrs) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errNoSuitableAddress}
	}
	var first error
	for i, a := range addrs {
		if ctx.Err() != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
		}
		c, err := n.dialOne(ctx, proto, a, len(addrs)-i)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// dialOne dials one address with its share of ctx's time left (as package
// net splits a deadline among a name's addresses).
func (n *Net) dialOne(ctx context.Context, proto string, a netip.AddrPort, remaining int) (net.Conn, error) {
	switch proto {
	case "udp":
		return n.DialUDPAddrPort(netip.AddrPort{}, a)
	case "ping":
		return n.DialPingAddr(netip.Addr{}, a.Addr())
	}
	if dl, ok := ctx.Deadline(); ok && remaining > 1 {
		const minShare = 2 * time.Second
		left := time.Until(dl)
		share := max(left/time.Duration(remaining), min(minShare, left))
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	return n.DialContextTCPAddrPort(ctx, a)
}

// splitNetwork parses "tcp", "udp" or "ping" with an optional "4" or "6".
func splitNetwork(network string) (proto string, want4, want6 bool) {
	for _, p := range []string{"tcp", "udp", "ping"} {
		switch network {
		case p:
			return p, true, true
		case p + "4":
			return p, true, false
		case p + "6":
			return p, false, true
		}
	}
	return "", false, false
}

var (
	errMissingAddress    = errors.New("missing address")
	errNumericPort       = errors.New("port must be numeric")
	errNoSuitableAddress = errors.New("no suitable address found")
)

func tcpAddrPort(a *net.TCPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	return a.AddrPort()
}

func udpAddrPort(a *net.UDPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	return a.AddrPort()
}

// bindNetwork returns the network and address to listen on for a, as
// ListenTCPAddrPort describes: the zero address is "tcp4" or "tcp6" on a
// Net of one family, the dual-stack "tcp" with no host on one with both; a
// given address is its own family's network, so that peers appear as
// wireguard-go's netstack shows them, never IPv4-mapped.
func (n *Net) bindNetwork(proto string, a netip.AddrPort) (network, address string) {
	ip := a.Addr().Unmap()
	switch {
	case ip.IsValid():
	case n.hasV4 && n.hasV6:
		return proto, net.JoinHostPort("", strconv.Itoa(int(a.Port())))
	case n.hasV6:
		ip = netip.IPv6Unspecified()
	default:
		ip = netip.IPv4Unspecified()
	}
	if ip.Is4() {
		proto += "4"
	} else {
		proto += "6"
	}
	return proto, netip.AddrPortFrom(ip, a.Port()).String()
}
