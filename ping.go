package netstack

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// Ping sends one echo request to addr, ICMP for IPv4 or ICMPv6 (RFC 4443
// §4.1) for IPv6 (a link-local address's zone, if any, must name the
// link), and waits for the reply, the context's end, or an error:
// ENETUNREACH when the stack has no address of addr's family, EHOSTUNREACH
// when the next hop never answers ARP or neighbor solicitation (after
// about three seconds, as Linux), an ICMP error from a router, or
// net.ErrClosed when the stack closes. It returns the round-trip time.
// Errors are *net.OpError; a context deadline gives a timeout that matches
// os.ErrDeadlineExceeded and context.DeadlineExceeded.
func (s *Stack) Ping(ctx context.Context, addr netip.Addr) (time.Duration, error) {
	v, network := s.view(), "ip4:icmp"
	dst, err := s.unzone(addr)
	if err == nil && dst.Is6() {
		network = "ip6:ipv6-icmp"
	}
	var src netip.Addr
	if err == nil {
		if src, err = s.e.SourceAddr(dst); err == nil {
			var rtt time.Duration
			if rtt, err = s.e.Ping(ctx, dst); err == nil {
				return rtt, nil
			}
		}
	}
	var from net.Addr
	if src.IsValid() {
		from = v.ip(src)
	}
	return 0, opError("ping", network, from, v.ip(addr.Unmap()), err)
}
