package netstack

import (
	"context"
	"net"
	"net/netip"
	"slices"

	"github.com/gotcpip/netstack/internal/resolve"
)

// A Resolver looks up names in the DNS, over its stack, at the servers of
// Config.DNS. Its methods have the names, arguments and results of
// net.Resolver's, so code written against package net's resolver works
// with it unchanged.
//
// A stack is a host of its own, not the machine the program runs on, so
// none of that machine's resolver configuration applies: /etc/hosts is not
// read, and names are looked up as given, as if they ended with a dot (no
// search list, so no ndots either). Each query goes over UDP, and again
// over TCP when the answer comes back truncated; a server that does not
// answer within 5 s, or answers with a failure, passes the query to the
// next one, twice round the list (resolv.conf's timeout and attempts
// defaults). Errors are *net.DNSError values naming the server asked.
//
// For Go's own resolver, which reads the host's files, use GoResolver.
// A Resolver is safe for concurrent use.
type Resolver struct{ r resolve.Resolver }

// Resolver returns the stack's resolver; Dial and Dialer resolve names
// through it. Each lookup asks the servers of the moment: Config.DNS, then
// those router advertisements have announced so far.
func (s *Stack) Resolver() *Resolver {
	return &Resolver{resolve.Resolver{Dial: s.DialContext, Servers: s.dnsServers, Next: &s.dnsNext, Timeout: errTimeout}}
}

// dnsServers returns the servers of Config.DNS, then those router
// advertisements announced (RFC 8106 RDNSS, port 53), a link-local one
// with the link's zone.
func (s *Stack) dnsServers() []netip.AddrPort {
	learnt := s.e.DNSServers()
	if len(learnt) == 0 {
		return s.cfg.DNS
	}
	out := append([]netip.AddrPort(nil), s.cfg.DNS...)
	for _, a := range learnt {
		ap := netip.AddrPortFrom(s.zoned(a), 53)
		if !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	return out
}

// GoResolver returns Go's resolver (PreferGo) with its DNS traffic going
// over this stack to Config.DNS, for code that needs a *net.Resolver. It is
// the opt-in to the host's configuration: it reads the host's /etc/hosts
// and the options of its /etc/resolv.conf (search list, ndots, timeout,
// attempts), and its error messages name the server of the host's
// resolv.conf rather than the one of Config.DNS that was asked.
func (s *Stack) GoResolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: s.dialDNS}
}

// dialDNS ignores the server Go's resolver picked from /etc/resolv.conf
// and dials one of ours instead, rotating on each call so a dead server
// does not stall every lookup.
func (s *Stack) dialDNS(ctx context.Context, network, _ string) (net.Conn, error) {
	servers := s.dnsServers()
	if len(servers) == 0 {
		return nil, opError("dial", network, nil, nil, errNoDNS)
	}
	i := int(s.dnsNext.Add(1)-1) % len(servers)
	return s.DialContext(ctx, network, servers[i].String())
}

var errNoDNS = resolve.ErrNoServers

// LookupHost looks up host and returns its addresses as strings. An IP
// literal is returned as it is.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	return r.r.LookupHost(ctx, host)
}

// LookupIPAddr looks up host's IPv4 and IPv6 addresses.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return r.r.LookupIPAddr(ctx, host)
}

// LookupIP looks up host's addresses of network "ip", "ip4" or "ip6".
func (r *Resolver) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	return r.r.LookupIP(ctx, network, host)
}

// LookupNetIP looks up host's addresses of network "ip" (A and AAAA
// records, IPv4 first), "ip4" (A) or "ip6" (AAAA).
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return r.r.LookupNetIP(ctx, network, host)
}

// LookupAddr looks up the names of addr (PTR records).
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return r.r.LookupAddr(ctx, addr)
}

// LookupCNAME returns the canonical name of host, with its final dot,
// following the CNAME records of an A query.
func (r *Resolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	return r.r.LookupCNAME(ctx, host)
}

// LookupMX returns the MX records of name, sorted by preference.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return r.r.LookupMX(ctx, name)
}

// LookupNS returns the NS records of name.
func (r *Resolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	return r.r.LookupNS(ctx, name)
}

// LookupSRV looks up the SRV records of _service._proto.name, or of name
// itself when service and proto are both empty, sorted by priority. It
// returns the canonical name it found them under.
func (r *Resolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	return r.r.LookupSRV(ctx, service, proto, name)
}

// LookupTXT returns the TXT records of name, the strings of each record
// joined, as package net's does.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return r.r.LookupTXT(ctx, name)
}
