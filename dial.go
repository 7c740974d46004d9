package netstack

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/gotcpip/netstack/internal/eyeballs"
	"github.com/gotcpip/netstack/internal/tcp"
)

// A Dialer holds options for connecting through a Stack, as net.Dialer
// does for the kernel's sockets. The zero value of each option means no
// timeout, no deadline, a local address chosen by the stack, the
// keep-alive defaults of package net and Happy Eyeballs with Go's delay.
type Dialer struct {
	// Stack is the stack to dial through. Required.
	Stack *Stack
	// Timeout is the longest a dial may take, name resolution included.
	Timeout time.Duration
	// Deadline is the time after which a dial fails.
	Deadline time.Time
	// LocalAddr is the local address to use: a *net.TCPAddr or
	// *net.UDPAddr whose IP is unspecified or one of the stack's (with a
	// Forwarder, any unicast address), and whose port is 0 for an
	// ephemeral one. A specific IP restricts the dial to addresses of its
	// family.
	LocalAddr net.Addr
	// FallbackDelay is how long a "tcp" dial waits for a connection to the
	// preferred family before it also tries the other (RFC 8305 Happy
	// Eyeballs, as net.Dialer's): 0 means 300 ms, negative disables the
	// race, so the addresses are tried one after another.
	FallbackDelay time.Duration
	// KeepAlive is the keep-alive period for TCP connections, as in
	// net.Dialer: 0 means the default (15 s), negative disables.
	KeepAlive time.Duration
	// KeepAliveConfig, when Enable is set, overrides KeepAlive.
	KeepAliveConfig net.KeepAliveConfig
}

// Dial connects to address on network ("tcp", "tcp4", "tcp6", "udp",
// "udp4", "udp6", or an ICMP network of ListenPacket) through the stack,
// as net.Dial does.
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
// resolved through the stack's Resolver, A and AAAA records for "tcp" and
// "udp", and the addresses are ordered as RFC 6724 §6 orders destinations
// (those of a family the stack has no address of last, then by the
// precedence of its default policy table). For "tcp" with addresses of
// both families, as net.Dialer does (RFC 8305): the addresses of the
// first one's family are tried in turn, and if no connection is made
// within FallbackDelay, or they all fail sooner, those of the other family
// are tried alongside; the first connection made wins, the other attempt
// is abandoned (its handshake aborted with a RST). Otherwise each address
// is tried in turn until one connects. If ctx ends before the connection
// is made, the dial fails; a TCP handshake in progress is aborted with a
// RST.
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
	var proto string
	var fam family
	var err error
	switch network {
	case "tcp", "tcp4", "tcp6":
		proto = "tcp"
	case "udp", "udp4", "udp6":
		proto = "udp"
	default:
		if _, _, isIP := icmpNetwork(network); isIP {
			return s.dialICMP(ctx, network, address)
		}
		return nil, opError("dial", network, nil, nil, net.UnknownNetworkError(network))
	}
	fam, _ = networkFamily(network, proto)
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
	if laddr, err = s.view().unzonePort(laddr); err != nil {
		return nil, opError("dial", network, nil, nil, err)
	}
	if a := laddr.Addr(); a.IsValid() && !a.IsUnspecified() {
		// As Go's resolveAddrList: a local IP picks the remote family.
		if !fam.takes(a) {
			return nil, opError("dial", network, nil, nil, errNoSuitableAddress(a.String()))
		}
		fam = 4
		if a.Is6() {
			fam = 6
		}
	} else {
		laddr = netip.AddrPortFrom(netip.Addr{}, laddr.Port())
	}
	targets, err := s.resolveTargets(ctx, network, fam, address)
	if err != nil {
		return nil, opError("dial", network, nil, nil, err)
	}
	plan := dialPlan{s: s, network: network, proto: proto, laddr: laddr, keepAlive: dialKeepAlive(d.KeepAlive, d.KeepAliveConfig)}
	primaries, fallbacks := targets, []netip.AddrPort(nil)
	if network == "tcp" && d.FallbackDelay >= 0 {
		primaries, fallbacks = eyeballs.Partition(targets)
	}
	if len(targets) == 1 {
		return plan.dial(ctx, targets[0]) // nearly every dial: no allocation here
	}
	several := plan // a copy, moved to the heap: the attempts go through a function value
	if len(fallbacks) == 0 {
		return eyeballs.Serial(ctx, targets, several.dial)
	}
	delay := d.FallbackDelay
	if delay == 0 {
		delay = eyeballs.DefaultFallbackDelay
	}
	return eyeballs.Parallel(ctx, primaries, fallbacks, delay, several.dial)
}

// dialPlan is what the attempts of one DialContext call share.
type dialPlan struct {
	s              *Stack
	network, proto string
	laddr          netip.AddrPort
	keepAlive      tcp.KeepAlive
}

// dial makes one attempt, to raddr.
func (p *dialPlan) dial(ctx context.Context, raddr netip.AddrPort) (net.Conn, error) {
	if p.proto == "udp" {
		return p.s.dialUDP(p.network, p.laddr, raddr)
	}
	return p.s.dialTCP(ctx, p.network, p.laddr, raddr, p.keepAlive)
}

// resolveTargets turns "host:port" into addresses of family fam to try:
// an IP literal as is, a name through the stack's Resolver, in the order
// of RFC 6724 §6 (sortDestinations). An empty or unspecified host is this
// host, as Linux connects such a dial.
func (s *Stack) resolveTargets(ctx context.Context, network string, fam family, address string) ([]netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	_, ap, err := s.parseHostPort(network, net.JoinHostPort("", port))
	if err != nil {
		return nil, err
	}
	self := func(f family) ([]netip.AddrPort, error) {
		a, ok := s.selfAddr(f)
		if !ok {
			return nil, errNoSuitableAddress(host)
		}
		return []netip.AddrPort{netip.AddrPortFrom(a, ap.Port())}, nil
	}
	if host == "" {
		return self(fam)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a, err = s.unzone(a); err != nil {
			return nil, err
		}
		if !fam.takes(a) {
			return nil, errNoSuitableAddress(host)
		}
		if a.IsUnspecified() {
			f := family(6)
			if a.Is4() {
				f = 4
			}
			return self(f)
		}
		return []netip.AddrPort{netip.AddrPortFrom(a, ap.Port())}, nil
	}
	lnet := "ip"
	switch fam {
	case 4:
		lnet = "ip4"
	case 6:
		lnet = "ip6"
	}
	addrs, err := s.Resolver().LookupNetIP(ctx, lnet, host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		if a = a.Unmap(); fam.takes(a) {
			out = append(out, netip.AddrPortFrom(a, ap.Port()))
		}
	}
	if len(out) == 0 {
		return nil, errNoSuitableAddress(host)
	}
	s.sortDestinations(out)
	return out, nil
}

// sortDestinations orders addresses as RFC 6724 §6 does, by the rules
// that tell apart the destinations of one host on one link: Rule 1, avoid
// unusable destinations (a family the stack has no address of), then Rule
// 6, higher precedence in the default policy table (§2.1). The sort is
// stable, so the resolver's order breaks ties.
func (s *Stack) sortDestinations(addrs []netip.AddrPort) {
	usable := func(a netip.Addr) int {
		if _, err := s.e.SourceAddr(a); err == nil {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(addrs, func(x, y netip.AddrPort) int {
		if d := usable(x.Addr()) - usable(y.Addr()); d != 0 {
			return d
		}
		return precedence(y.Addr()) - precedence(x.Addr())
	})
}

// policyTable is RFC 6724 §2.1's default policy table: prefixes and their
// precedence, longest prefix first.
var policyTable = []struct {
	p    netip.Prefix
	prec int
}{
	{netip.MustParsePrefix("::1/128"), 50},
	{netip.MustParsePrefix("::ffff:0:0/96"), 35},
	{netip.MustParsePrefix("2001::/32"), 5},
	{netip.MustParsePrefix("2002::/16"), 30},
	{netip.MustParsePrefix("::/96"), 1},
	{netip.MustParsePrefix("fec0::/10"), 1},
	{netip.MustParsePrefix("3ffe::/16"), 1},
	{netip.MustParsePrefix("fc00::/7"), 3},
	{netip.MustParsePrefix("::/0"), 40},
}

// precedence returns a's precedence in the policy table, an IPv4 address
// taken in its IPv4-mapped form (§2.1).
func precedence(a netip.Addr) int {
	m := netip.AddrFrom16(a.As16())
	for _, e := range policyTable {
		if e.p.Contains(m) {
			return e.prec
		}
	}
	return 40
}

// dialICMP makes an ICMP socket connected to address, an IP literal or a
// name resolved through the stack's Resolver (A records for IPv4 ICMP,
// AAAA for ICMPv6).
func (s *Stack) dialICMP(ctx context.Context, network, address string) (net.Conn, error) {
	_, v6, _ := icmpNetwork(network)
	raddr, err := netip.ParseAddr(address)
	if err == nil {
		raddr, err = s.unzone(raddr)
		if err != nil {
			return nil, opError("dial", network, nil, nil, err)
		}
	} else {
		lnet := "ip4"
		if v6 {
			lnet = "ip6"
		}
		addrs, lerr := s.Resolver().LookupNetIP(ctx, lnet, address)
		if lerr != nil {
			return nil, opError("dial", network, nil, nil, lerr)
		}
		raddr = addrs[0].Unmap()
	}
	c, err := s.listenICMP("dial", network, "", raddr)
	if err != nil {
		return nil, err
	}
	return c, nil
}
