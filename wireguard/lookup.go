package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// exchangeTimeout bounds one query to one server, as wireguard-go's
// netstack does.
const exchangeTimeout = 5 * time.Second

// LookupHost looks up host through the tunnel; see LookupContextHost.
func (n *Net) LookupHost(host string) (addrs []string, err error) {
	return n.LookupContextHost(context.Background(), host)
}

// LookupContextHost returns the addresses of host, asking the DNS servers
// given to CreateNetTUN through the tunnel, as wireguard-go's does: an A
// query when the Net has an IPv4 address and an AAAA query when it has an
// IPv6 one, both at once, for host as a fully qualified name (no search
// list, no /etc/hosts), over UDP and again over TCP when the answer is
// truncated (RFC 1035 §4.2.1, RFC 7766 §5). The IPv6 addresses come first
// when the Net has an IPv6 address (no RFC 6724 sorting, as in
// wireguard-go), then the IPv4 ones. For each query, servers are tried in
// order, the list twice over, each for up to 5 s, until one answers. An IP
// literal is returned as it is.
//
// Errors are *net.DNSError, returned when no query found an address (that
// of the A query first): IsNotFound when the name does not exist or has no
// address of the type (the search for that type ends there, as the answer
// is authoritative), IsTimeout when the last server tried did not answer in
// time. The lookup ends early when ctx does.
func (n *Net) LookupContextHost(ctx context.Context, host string) ([]string, error) {
	if host == "" {
		return nil, &net.DNSError{Err: errNoSuchHost.Error(), Name: host, IsNotFound: true}
	}
	literal := host
	if i := strings.LastIndexByte(host, '%'); i >= 0 && strings.IndexByte(host, ':') >= 0 {
		literal = host[:i] // an IPv6 zone
	}
	if a, err := netip.ParseAddr(literal); err == nil {
		return []string{a.String()}, nil
	}
	if !isDomainName(host) {
		return nil, &net.DNSError{Err: errNoSuchHost.Error(), Name: host, IsNotFound: true}
	}
	type lane struct {
		qtype uint16
		addrs []string
		err   error
		done  chan struct{}
	}
	var lanes []*lane
	if n.hasV6 {
		lanes = append(lanes, &lane{qtype: dns.TypeAAAA})
	}
	if n.hasV4 {
		lanes = append(lanes, &lane{qtype: dns.TypeA})
	}
	for _, l := range lanes {
		l.done = make(chan struct{})
		go func() {
			defer close(l.done)
			l.addrs, l.err = n.lookupType(ctx, host, l.qtype)
		}()
	}
	var addrs []string
	var err error
	for _, l := range lanes {
		<-l.done
		addrs = append(addrs, l.addrs...)
		if l.err != nil && (err == nil || l.qtype == dns.TypeA) {
			err = l.err
		}
	}
	if len(addrs) == 0 {
		return nil, err
	}
	return addrs, nil
}

// lookupType asks the servers for host's records of type qtype (A or
// AAAA), as LookupContextHost describes.
func (n *Net) lookupType(ctx context.Context, host string, qtype uint16) ([]string, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(host), qtype)
	var last error = &net.DNSError{Err: "no DNS servers", Name: host}
	for range 2 {
		for _, server := range n.dnsServers {
			if ctx.Err() != nil {
				return nil, &net.DNSError{Err: ctx.Err().Error(), Name: host, Server: server.String(),
					IsTimeout: errors.Is(ctx.Err(), context.DeadlineExceeded)}
			}
			addrs, err := n.query(ctx, server, q)
			if err == nil {
				return addrs, nil
			}
			de := &net.DNSError{Err: err.Error(), Name: host, Server: server.String()}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				de.IsTimeout = true
			}
			switch {
			case errors.Is(err, errNoSuchHost):
				de.IsNotFound = true
				return nil, de
			case errors.Is(err, errServerFailure):
				de.IsTemporary = true
			}
			last = de
		}
	}
	return nil, last
}

var (
	errNoSuchHost    = errors.New("no such host")
	errServerFailure = errors.New("server misbehaving")
	errLameReferral  = errors.New("lame referral")
)

// query asks one server for q's records (A or AAAA): over UDP, then over
// TCP if the answer was truncated.
func (n *Net) query(ctx context.Context, server netip.Addr, q *dns.Msg) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	to := netip.AddrPortFrom(server, 53)
	q.Id = dns.Id()
	var r *dns.Msg
	for _, proto := range []string{"udp", "tcp"} {
		var c net.Conn
		var err error
		if proto == "udp" {
			c, err = n.DialUDPAddrPort(netip.AddrPort{}, to)
		} else {
			c, err = n.DialContextTCPAddrPort(ctx, to)
		}
		if err != nil {
			return nil, err
		}
		client := &dns.Client{Net: proto, Timeout: exchangeTimeout}
		r, _, err = client.ExchangeWithConnContext(ctx, q, &dns.Conn{Conn: c})
		c.Close()
		if err != nil {
			return nil, err
		}
		if !r.Truncated {
			break
		}
	}
	if r.Truncated {
		return nil, errors.New("answer truncated over TCP")
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) ||
		r.Question[0].Qtype != q.Question[0].Qtype {
		return nil, errors.New("answer to another question")
	}
	switch r.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, errNoSuchHost
	default:
		return nil, errServerFailure
	}
	var addrs []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(rr.A.To4()); ok && q.Question[0].Qtype == dns.TypeA {
				addrs = append(addrs, ip.String())
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok && q.Question[0].Qtype == dns.TypeAAAA {
				addrs = append(addrs, ip.String())
			}
		}
	}
	if len(addrs) == 0 {
		// RFC 2308 §2.2: NOERROR with no answer is NODATA, unless the
		// server neither is authoritative nor recurses (a referral we
		// cannot follow).
		if len(r.Answer) == 0 && !r.Authoritative && !r.RecursionAvailable && len(r.Ns) > 0 {
			return nil, errLameReferral
		}
		return nil, errNoSuchHost
	}
	return addrs, nil
}

// isDomainName reports whether s is a syntactically valid host name
// (RFC 1035 §2.3.1, with RFC 1123 §2.1's leading digits and the
// underscores found in practice): labels of 1 to 63 letters, digits,
// hyphens and underscores, not starting or ending with a hyphen, at most
// 253 characters without the final dot, and not all digits.
func isDomainName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	numeric := true
	for label := range strings.SplitSeq(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			switch c := label[i]; {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
				numeric = false
			default:
				return false
			}
		}
	}
	return !numeric
}
