package netstack

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// Ping sends one ICMP echo request to addr and waits for the reply, the
// context's end, or an error: EHOSTUNREACH when the next hop never answers
// ARP (after about three seconds, as Linux), an ICMP error from a router,
// or net.ErrClosed when the stack closes. It returns the round-trip time.
// Errors are *net.OpError; a context deadline gives a timeout that matches
// os.ErrDeadlineExceeded and context.DeadlineExceeded.
func (s *Stack) Ping(ctx context.Context, addr netip.Addr) (time.Duration, error) {
	rtt, err := s.e.Ping(ctx, addr)
	if err != nil {
		return 0, opError("ping", "ip4:icmp", &net.IPAddr{IP: s.Addr().AsSlice()}, &net.IPAddr{IP: addr.AsSlice()}, err)
	}
	return rtt, nil
}
