// Package resolve is a DNS stub resolver that talks to its servers over
// whatever its Dial connects through (in netstack, a Stack). It follows
// package net's resolver in its results and errors, and reads none of the
// host's configuration: names are looked up as given, at Servers only.
package resolve

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// A Resolver asks Servers, in turn, starting at the one after the last
// asked. Its methods are safe for concurrent use.
type Resolver struct {
	// Dial connects to a server over "udp" or "tcp".
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Servers returns the servers to ask, in turn; it is called for each
	// lookup, so servers learnt later (router advertisements) are asked.
	Servers func() []netip.AddrPort
	// Next counts queries, to rotate through Servers; it may be shared.
	Next *atomic.Uint32
	// Timeout is the error a timed-out exchange unwraps to (the caller's
	// timeout value, which matches context.DeadlineExceeded).
	Timeout error
}

// ErrNoServers is the error of a lookup with no servers.
var ErrNoServers = errors.New("no DNS servers in netstack.Config.DNS")

const (
	dnsTimeout  = 5 * time.Second // for one query to one server
	dnsAttempts = 2               // times round the server list
	dnsUDPSize  = 1232            // EDNS(0) payload size, as Go's resolver offers (DNS flag day 2020)
)

// LookupHost looks up host and returns its addresses as strings. An IP
// literal is returned as it is.
func (r *Resolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out, nil
}

// LookupIPAddr looks up host's IPv4 and IPv6 addresses.
func (r *Resolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]net.IPAddr, len(addrs))
	for i, a := range addrs {
		out[i] = net.IPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	return out, nil
}

// LookupIP looks up host's addresses of network "ip", "ip4" or "ip6".
func (r *Resolver) LookupIP(ctx context.Context, network, host string) ([]net.IP, error) {
	addrs, err := r.LookupNetIP(ctx, network, host)
	if err != nil {
		return nil, err
	}
	out := make([]net.IP, len(addrs))
	for i, a := range addrs {
		out[i] = a.AsSlice()
	}
	return out, nil
}

// LookupNetIP looks up host's addresses of network "ip" (A and AAAA
// records, IPv4 first), "ip4" (A) or "ip6" (AAAA).
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var qtypes []uint16
	switch network {
	case "ip":
		qtypes = []uint16{dns.TypeA, dns.TypeAAAA}
	case "ip4":
		qtypes = []uint16{dns.TypeA}
	case "ip6":
		qtypes = []uint16{dns.TypeAAAA}
	default:
		return nil, net.UnknownNetworkError(network)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if network == "ip4" && !a.Unmap().Is4() || network == "ip6" && !a.Is6() {
			return nil, &net.DNSError{Err: "no suitable address", Name: host, IsNotFound: true}
		}
		return []netip.Addr{a}, nil
	}
	var out []netip.Addr
	var firstErr error
	for _, qt := range qtypes {
		rrs, _, err := r.lookup(ctx, host, qt)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range rrs {
			switch rr := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
					out = append(out, a)
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(rr.AAAA.To16()); ok {
					out = append(out, a)
				}
			}
		}
	}
	if len(out) == 0 {
		if firstErr == nil {
			firstErr = &net.DNSError{Err: errNoSuchHost, Name: host, IsNotFound: true}
		}
		return nil, firstErr
	}
	return out, nil
}

// LookupAddr looks up the names of addr (PTR records).
func (r *Resolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	rev, err := dns.ReverseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	rrs, _, err := r.lookup(ctx, rev, dns.TypePTR)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if p, ok := rr.(*dns.PTR); ok {
			out = append(out, p.Ptr)
		}
	}
	return out, nil
}

// LookupCNAME returns the canonical name of host, with its final dot,
// following the CNAME records of an A query.
func (r *Resolver) LookupCNAME(ctx context.Context, host string) (string, error) {
	_, canonical, err := r.lookup(ctx, host, dns.TypeA)
	if err != nil {
		return "", err
	}
	return canonical, nil
}

// LookupMX returns the MX records of name, sorted by preference.
func (r *Resolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeMX)
	if err != nil {
		return nil, err
	}
	var out []*net.MX
	for _, rr := range rrs {
		if mx, ok := rr.(*dns.MX); ok {
			out = append(out, &net.MX{Host: mx.Mx, Pref: mx.Preference})
		}
	}
	slices.SortStableFunc(out, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) })
	return out, nil
}

// LookupNS returns the NS records of name.
func (r *Resolver) LookupNS(ctx context.Context, name string) ([]*net.NS, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeNS)
	if err != nil {
		return nil, err
	}
	var out []*net.NS
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			out = append(out, &net.NS{Host: ns.Ns})
		}
	}
	return out, nil
}

// LookupSRV looks up the SRV records of _service._proto.name, or of name
// itself when service and proto are both empty, sorted by priority. It
// returns the canonical name it found them under.
func (r *Resolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	target := name
	if service != "" || proto != "" {
		target = "_" + service + "._" + proto + "." + name
	}
	rrs, cname, err := r.lookup(ctx, target, dns.TypeSRV)
	if err != nil {
		return "", nil, err
	}
	var out []*net.SRV
	for _, rr := range rrs {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
		}
	}
	slices.SortStableFunc(out, func(a, b *net.SRV) int { return cmp.Compare(a.Priority, b.Priority) })
	return cname, out, nil
}

// LookupTXT returns the TXT records of name, the strings of each record
// joined, as package net's does.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	rrs, _, err := r.lookup(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

// errNoSuchHost is package net's text for a name that does not exist.
const errNoSuchHost = "no such host"

// lookup asks the servers of Config.DNS for the records of type qtype at
// name, following CNAMEs within the answer. It returns the records and the
// canonical name they are at.
func (r *Resolver) lookup(ctx context.Context, name string, qtype uint16) ([]dns.RR, string, error) {
	servers := r.Servers()
	if len(servers) == 0 {
		return nil, "", &net.DNSError{Err: ErrNoServers.Error(), Name: name, UnwrapErr: ErrNoServers}
	}
	fqdn := dns.Fqdn(name)
	if _, ok := dns.IsDomainName(fqdn); !ok || len(fqdn) > 254 {
		return nil, "", &net.DNSError{Err: errNoSuchHost, Name: name, IsNotFound: true}
	}
	q := new(dns.Msg)
	q.SetQuestion(fqdn, qtype)
	q.SetEdns0(dnsUDPSize, false)
	var lastErr error
	start := int(r.Next.Add(1) - 1)
	for i := range dnsAttempts * len(servers) {
		server := servers[(start+i)%len(servers)]
		q.Id = dns.Id()
		resp, err := r.exchange(ctx, server, q)
		if err == nil {
			switch resp.Rcode {
			case dns.RcodeSuccess:
				rrs, canonical := answersFor(resp, fqdn, qtype)
				if len(rrs) == 0 && qtype != dns.TypeA {
					return nil, "", &net.DNSError{Err: errNoSuchHost, Name: name, Server: server.String(), IsNotFound: true}
				}
				return rrs, canonical, nil
			case dns.RcodeNameError:
				return nil, "", &net.DNSError{Err: errNoSuchHost, Name: name, Server: server.String(), IsNotFound: true}
			default: // SERVFAIL, REFUSED, ...: as Go, try the next server
				err = &net.DNSError{Err: "server misbehaving", Name: name, Server: server.String(), IsTemporary: true}
			}
		} else {
			err = dnsError(err, name, server, r.Timeout)
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", lastErr
}

// answersFor picks the records of type qtype for name out of an answer,
// following the CNAME chain from name. An A query that ends on a CNAME
// with no address still reports where the chain ends.
func answersFor(m *dns.Msg, name string, qtype uint16) ([]dns.RR, string) {
	canonical := name
	for range 16 { // bound the chain: a loop in the answer must not spin
		next := ""
		for _, rr := range m.Answer {
			if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, canonical) && qtype != dns.TypeCNAME {
				next = c.Target
				break
			}
		}
		if next == "" {
			break
		}
		canonical = next
	}
	var out []dns.RR
	for _, rr := range m.Answer {
		if rr.Header().Rrtype == qtype && strings.EqualFold(rr.Header().Name, canonical) {
			out = append(out, rr)
		}
	}
	return out, canonical
}

// dnsError describes a failed exchange with server as package net does.
func dnsError(err error, name string, server netip.AddrPort, timeout error) *net.DNSError {
	de := &net.DNSError{Err: err.Error(), Name: name, Server: server.String(), UnwrapErr: err}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		de.Err, de.IsTimeout, de.UnwrapErr = "i/o timeout", true, timeout
	}
	if errors.Is(err, context.Canceled) {
		de.Err, de.UnwrapErr = "operation was canceled", context.Canceled
	}
	return de
}

// exchange sends q to server over UDP, and over TCP if the answer is
// truncated, within dnsTimeout and ctx.
func (r *Resolver) exchange(ctx context.Context, server netip.AddrPort, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	resp, err := r.exchangeOver(ctx, "udp", server, q, wire)
	if err != nil || !resp.Truncated {
		return resp, err
	}
	return r.exchangeOver(ctx, "tcp", server, q, wire)
}

func (r *Resolver) exchangeOver(ctx context.Context, network string, server netip.AddrPort, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	c, err := r.Dial(ctx, network, server.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) (*dns.Msg, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if network == "tcp" {
		msg := make([]byte, 2+len(wire))
		binary.BigEndian.PutUint16(msg, uint16(len(wire)))
		copy(msg[2:], wire)
		if _, err := c.Write(msg); err != nil {
			return fail(err)
		}
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return fail(err)
		}
		buf := make([]byte, binary.BigEndian.Uint16(n[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return fail(err)
		}
		return parseReply(q, buf)
	}
	if _, err := c.Write(wire); err != nil {
		return fail(err)
	}
	buf := make([]byte, 65535)
	for {
		// RFC 5452 §9.1: an answer whose ID or question does not match
		// ours is not the answer; keep waiting for it, as Go's resolver
		// does.
		n, err := c.Read(buf)
		if err != nil {
			return fail(err)
		}
		if resp, err := parseReply(q, buf[:n]); err == nil {
			return resp, nil
		}
	}
}

// parseReply parses b as the answer to q.
func parseReply(q *dns.Msg, b []byte) (*dns.Msg, error) {
	resp := new(dns.Msg)
	if err := resp.Unpack(b); err != nil {
		return nil, err
	}
	if !resp.Response || resp.Id != q.Id || len(resp.Question) != 1 ||
		resp.Question[0].Qtype != q.Question[0].Qtype || !strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) {
		return nil, errors.New("DNS reply does not match the query")
	}
	return resp, nil
}
