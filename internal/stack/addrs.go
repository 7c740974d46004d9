package stack

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"

	"github.com/gotcpip/netstack/internal/ip"
)

// The stack's addresses, of either family. Config.Addrs are the static
// ones; the IP layer adds those it configures itself (IPv6 link-local and
// SLAAC) and tells which are usable now.

// ProtoICMPv6 is the IP protocol number of ICMPv6 (RFC 4443).
const ProtoICMPv6 = 58

// icmpv6EchoRequest is ICMPv6's Echo Request type (RFC 4443 §4.1).
const icmpv6EchoRequest = 128

// ipAddrConfig puts the stack's static addresses and gateways into the IP
// layer's configuration.
func ipAddrConfig(c *ip.Config, addrs []netip.Prefix, gws []netip.Addr) error {
	for _, p := range addrs {
		if p.Addr().Is4() {
			c.Addr = p
			break
		}
	}
	if !c.Addr.IsValid() {
		return errors.New("netstack: this IP layer needs an IPv4 address")
	}
	for _, g := range gws {
		if g.Is4() {
			c.Gateway = g
			break
		}
	}
	return nil
}

// Addrs returns the stack's usable addresses and their on-link prefixes.
func (s *Stack) Addrs() []netip.Prefix {
	var out []netip.Prefix
	if a := s.host.Addr(); a.IsValid() {
		for _, p := range s.cfg.Addrs {
			if p.Addr() == a {
				out = append(out, p)
			}
		}
	}
	return out
}

// HasAddr reports whether a (without a zone) is one of the stack's usable
// addresses.
func (s *Stack) HasAddr(a netip.Addr) bool {
	return a.IsValid() && a == s.host.Addr()
}

// SourceAddr returns the address to send from to dst, as connect(2)
// picks it: for IPv6 by RFC 6724's rules, for IPv4 the address whose
// subnet holds dst, else the first. It fails with ENETUNREACH when the
// stack has no address of dst's family.
func (s *Stack) SourceAddr(dst netip.Addr) (netip.Addr, error) {
	if s.HasAddr(dst) {
		return dst, nil
	}
	var first netip.Addr
	for _, p := range s.Addrs() {
		if p.Addr().Is4() != dst.Is4() {
			continue
		}
		if p.Contains(dst) {
			return p.Addr(), nil
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	if !first.IsValid() {
		return netip.Addr{}, syscall.ENETUNREACH
	}
	return first, nil
}

// DNSServers returns the DNS servers the IP layer learnt from router
// advertisements (RFC 8106 RDNSS), newest first.
func (s *Stack) DNSServers() []netip.Addr { return nil }

// hasFamily reports whether the stack has an address of a's family.
func (s *Stack) hasFamily(v4 bool) bool {
	return slices.ContainsFunc(s.Addrs(), func(p netip.Prefix) bool { return p.Addr().Is4() == v4 })
}

// ipv6HeaderLen is the fixed IPv6 header's length (RFC 8200 §3).
const ipv6HeaderLen = 40
