package netstack

import (
	"context"
	"net"
)

// Resolver returns a Go resolver (PreferGo) whose DNS traffic goes over this
// stack to Config.DNS: queries over UDP, and over TCP when an answer comes
// back truncated, as Go's resolver does. Each query goes to the next server
// of Config.DNS in turn. With no Config.DNS, lookups fail.
//
// Go's resolver still reads the host's /etc/hosts and the options of its
// /etc/resolv.conf (search list, ndots, timeout, attempts); only where the
// queries go is ours. Its error messages name the server from the host's
// resolv.conf, not the one in Config.DNS that was asked.
func (s *Stack) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: s.dialDNS}
}

// dialDNS ignores the server Go's resolver picked from /etc/resolv.conf
// and dials one of ours instead, rotating on each call so a dead server
// does not stall every lookup.
func (s *Stack) dialDNS(ctx context.Context, network, _ string) (net.Conn, error) {
	if len(s.cfg.DNS) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errNoDNS}
	}
	i := int(s.dnsNext.Add(1)-1) % len(s.cfg.DNS)
	return s.DialContext(ctx, network, s.cfg.DNS[i].String())
}

var errNoDNS = &net.DNSError{Err: "no DNS servers in netstack.Config.DNS", IsNotFound: false}
