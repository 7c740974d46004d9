package netstack

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// A Dialer holds options for connecting through a Stack, as net.Dialer
// does for the kernel's sockets. The zero value of each option means no
// timeout, no deadline, a local address chosen by the stack, and the
// keep-alive defaults of package net.
type Dialer struct {
	// Stack is the stack to dial through. Required.
	Stack *Stack
	// Timeout is the longest a dial may take, name resolution included.
	Timeout time.Duration
	// Deadline is the time after which a dial fails.
	Deadline time.Time
	// LocalAddr is the local address to use: a *net.TCPAddr or
	// *net.UDPAddr whose IP is zero or the stack's, and whose port is 0
	// for an ephemeral one.
	LocalAddr net.Addr
	// KeepAlive is the keep-alive period for TCP connections, as in
	// net.Dialer: 0 means the default (15 s), negative disables.
	KeepAlive time.Duration
	// KeepAliveConfig, when Enable is set, overrides KeepAlive.
	KeepAliveConfig net.KeepAliveConfig
}

// Dial connects to address on network ("tcp", "tcp4", "udp", "udp4")
// through the stack, as net.Dial does.
func (s *Stack) Dial(network, address string) (net.Conn, error) {
	d := Dialer{Stack: s}
	return d.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context. Its signature matches
// http.Transport.DialContext and net.Resolver's Dial.
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d := Dialer{Stack: s}
	return d.DialContext(ctx, network, address)
}

// Dial connects to address on network; see DialContext.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address on network. A host name in address is
// resolved through the stack's Resolver; each address it returns is tried
// in turn until one connects. If ctx ends before the connection is made,
// the dial fails; a TCP handshake in progress is aborted with a RST.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	s := d.Stack
	if s == nil {
		return nil, opError("dial", network, nil, nil, net.UnknownNetworkError("nil Stack in Dialer"))
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	if !d.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Deadline)
		defer cancel()
	}
	proto := network
	switch network {
	case "tcp", "tcp4":
		proto = "tcp"
	case "udp", "udp4":
		proto = "udp"
	default:
		if _, isIP := icmpNetwork(network); isIP {
			return s.dialICMP(ctx, network, address)
		}
		return nil, opError("dial", network, nil, nil, net.UnknownNetworkError(network))
	}
	targets, err := s.resolveTargets(ctx, network, address)
	if err != nil {
		return nil, opError("dial", network, nil, nil, err)
	}
	var laddr netip.AddrPort
	switch la := d.LocalAddr.(type) {
	case nil:
	case *net.TCPAddr:
		laddr = la.AddrPort()
	case *net.UDPAddr:
		laddr = la.AddrPort()
	default:
		return nil, opError("dial", network, nil, nil, &net.AddrError{Err: "unexpected local address type", Addr: la.String()})
	}
	laddr = netip.AddrPortFrom(laddr.Addr().Unmap(), laddr.Port())
	if !laddr.Addr().IsValid() {
		laddr = netip.AddrPortFrom(netip.IPv4Unspecified(), laddr.Port())
	}
	var first error
	for _, raddr := range targets {
		var c net.Conn
		if proto == "udp" {
			c, err = s.dialUDP(network, laddr, raddr)
		} else {
			c, err = s.dialTCP(ctx, d, network, laddr, raddr)
		}
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// resolveTargets turns "host:port" into addresses to try: an IP literal as
// is, a name through the stack's Resolver.
func (s *Stack) resolveTargets(ctx context.Context, network, address string) ([]netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ap, err := parseHostPort(network, net.JoinHostPort("", port))
	if err != nil {
		return nil, err
	}
	if host == "" {
		return []netip.AddrPort{netip.AddrPortFrom(s.Addr(), ap.Port())}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if !a.Is4() {
			return nil, &net.AddrError{Err: "IPv6 is not supported yet", Addr: host}
		}
		return []netip.AddrPort{netip.AddrPortFrom(a, ap.Port())}, nil
	}
	addrs, err := s.Resolver().LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, netip.AddrPortFrom(a.Unmap(), ap.Port()))
	}
	return out, nil
}

// dialICMP makes an ICMP socket connected to address, an IP literal or a
// name resolved through the stack's Resolver.
func (s *Stack) dialICMP(ctx context.Context, network, address string) (net.Conn, error) {
	raddr, err := netip.ParseAddr(address)
	if err != nil {
		addrs, lerr := s.Resolver().LookupNetIP(ctx, "ip4", address)
		if lerr != nil {
			return nil, opError("dial", network, nil, nil, lerr)
		}
		raddr = addrs[0]
	}
	c, err := s.listenICMP("dial", network, "", raddr.Unmap())
	if err != nil {
		return nil, err
	}
	return c, nil
}
