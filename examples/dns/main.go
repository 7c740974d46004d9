// Command dns serves and queries DNS over a netstack stack with
// github.com/miekg/dns, unmodified: its server runs on the stack's
// net.PacketConn (UDP) and net.Listener (TCP), and its client exchanges
// messages over a net.Conn dialed through the stack.
//
// The zone it serves holds name.test (A 198.18.0.53) and big.name.test, a
// TXT record of about 2000 bytes: too big for a UDP answer even with EDNS0's
// 1232 bytes, so the UDP answer comes back truncated (TC set) and clients
// retry over TCP.
//
// With no flags it runs two stacks in one process joined by an in-memory
// cable (netstack.Pipe): the server on one, the client on the other. It
// queries over UDP and TCP with miekg/dns, then resolves through the
// client stack's Resolver (Go's own resolver, whose DNS traffic goes
// over the stack), prints what it got and exits. No root needed.
//
// With -tap it serves on a Linux TAP device until interrupted:
//
//	sudo go run ./examples/dns -tap tap0 -addr 198.18.0.2/24
//	sudo ip addr add 198.18.0.1/24 dev tap0 && sudo ip link set tap0 up
//	dig @198.18.0.2 name.test A +short
//	dig +tcp @198.18.0.2 name.test A +short
//	dig @198.18.0.2 big.name.test TXT
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/gotcpip/netstack"
)

// The zone served in both modes.
const (
	zoneName = "name.test."
	bigName  = "big.name.test."
)

// nameAddr is the address of name.test.
var nameAddr = netip.MustParseAddr("198.18.0.53")

// bigTXT returns the strings of big.name.test's TXT record: eight of 250
// bytes, 2000 in all.
func bigTXT() []string {
	txt := make([]string, 8)
	for i := range txt {
		head := fmt.Sprintf("part %d of big.name.test: ", i+1)
		txt[i] = head + strings.Repeat(string(rune('a'+i)), 250-len(head))
	}
	return txt
}

func main() {
	tap := flag.String("tap", "", "serve on this TAP device instead of the in-memory demo")
	addr := flag.String("addr", "198.18.0.2/24", "the stack's address and subnet on the TAP device")
	flag.Parse()
	if *tap != "" {
		if err := serveTAP(*tap, *addr); err != nil {
			log.Fatal(err)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := demo(ctx, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// zone is an authoritative DNS handler for a few records. It answers
// every name it holds and NXDOMAIN for the rest, and counts the queries
// it answers per transport. Its methods are safe for concurrent use.
type zone struct {
	mu  sync.RWMutex
	rrs map[string][]dns.RR // by lower-case FQDN

	udp, tcp atomic.Int64 // queries answered
}

// newZone returns the zone name.test with its A and big TXT records.
func newZone() *zone {
	z := &zone{rrs: make(map[string][]dns.RR)}
	z.add(&dns.SOA{
		Hdr: dns.RR_Header{Name: zoneName, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
		Ns:  "ns." + zoneName, Mbox: "hostmaster." + zoneName,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
	})
	z.addA(zoneName, nameAddr)
	z.add(&dns.TXT{
		Hdr: dns.RR_Header{Name: bigName, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
		Txt: bigTXT(),
	})
	return z
}

// add adds rr to the zone.
func (z *zone) add(rr dns.RR) {
	name := strings.ToLower(rr.Header().Name)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rrs[name] = append(z.rrs[name], rr)
}

// addA adds an A record for name.
func (z *zone) addA(name string, a netip.Addr) {
	z.add(&dns.A{
		Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
		A:   a.AsSlice(),
	})
}

// soa returns the SOA record of the zone holding name, if the zone has one.
func (z *zone) soa(name string) dns.RR {
	for _, rr := range z.rrs[zoneName] {
		if rr.Header().Rrtype == dns.TypeSOA && dns.IsSubDomain(zoneName, name) {
			return rr
		}
	}
	return nil
}

// ServeDNS answers r. Over UDP the answer is cut to the size the client
// can take (512 bytes, or its EDNS0 buffer size) and marked truncated if
// records had to go (RFC 1035 §4.2.1, RFC 6891 §6.2.5).
func (z *zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, overTCP := w.RemoteAddr().(*net.TCPAddr)
	if overTCP {
		z.tcp.Add(1)
	} else {
		z.udp.Add(1)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if len(r.Question) != 1 || r.Opcode != dns.OpcodeQuery {
		m.SetRcode(r, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	z.mu.RLock()
	rrs, ok := z.rrs[name]
	for _, rr := range rrs {
		if t := rr.Header().Rrtype; t == q.Qtype || q.Qtype == dns.TypeANY {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if len(m.Answer) == 0 {
		if soa := z.soa(name); soa != nil {
			m.Ns = append(m.Ns, dns.Copy(soa)) // for negative caching, RFC 2308
		}
	}
	z.mu.RUnlock()
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	size := dns.MinMsgSize
	if overTCP {
		size = dns.MaxMsgSize
	}
	if opt := r.IsEdns0(); opt != nil {
		if !overTCP {
			size = max(int(opt.UDPSize()), dns.MinMsgSize)
		}
		m.SetEdns0(1232, false)
	}
	m.Truncate(size)
	w.WriteMsg(m)
}

// serve answers DNS queries for h on port 53 of s, over UDP and TCP, until
// stop is called. stop shuts both servers down and waits for them.
func serve(s *netstack.Stack, h dns.Handler) (stop func() error, err error) {
	pc, err := s.ListenPacket("udp", ":53")
	if err != nil {
		return nil, err
	}
	ln, err := s.Listen("tcp", ":53")
	if err != nil {
		pc.Close()
		return nil, err
	}
	return startServers(pc, ln, h)
}

// startServers runs a dns.Server on pc and another on ln, whatever their
// kind: the stack's or the kernel's. They take ownership of pc and ln.
func startServers(pc net.PacketConn, ln net.Listener, h dns.Handler) (stop func() error, err error) {
	servers := []*dns.Server{
		{PacketConn: pc, Handler: h},
		{Listener: ln, Handler: h},
	}
	done := make(chan error, len(servers))
	running := 0
	stop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var first error
		for _, srv := range servers[:running] {
			if err := srv.ShutdownContext(ctx); err != nil && first == nil {
				first = err
			}
		}
		for range running {
			if err := <-done; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
			running++
		case err := <-done:
			stop()
			pc.Close()
			ln.Close()
			return nil, err
		}
	}
	return stop, nil
}

// exchange sends one query for name and qtype to server over network
// ("udp" or "tcp"), with a miekg/dns client on a connection dialed
// through s.
func exchange(ctx context.Context, s *netstack.Stack, network, server, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	c, err := s.DialContext(ctx, network, server)
	if err != nil {
		return nil, 0, err
	}
	defer c.Close()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	cl := &dns.Client{Net: network, Timeout: 5 * time.Second}
	return cl.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: c})
}

// describe summarises an answer in one line.
func describe(m *dns.Msg) string {
	var parts []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			parts = append(parts, rr.A.String())
		case *dns.TXT:
			parts = append(parts, fmt.Sprintf("TXT of %d bytes", len(strings.Join(rr.Txt, ""))))
		default:
			parts = append(parts, rr.String())
		}
	}
	s := dns.RcodeToString[m.Rcode] + " [" + strings.Join(parts, ", ") + "]"
	if m.Truncated {
		s += " truncated"
	}
	return s
}

// demo runs the server and the client on two stacks joined by a Pipe.
func demo(ctx context.Context, out io.Writer) error {
	la, lb := netstack.Pipe()
	serverAddr := netip.MustParsePrefix("198.18.0.1/24")
	server, err := netstack.New(netstack.Config{Link: la, Addr: serverAddr})
	if err != nil {
		lb.Close()
		return err
	}
	defer server.Close()
	dnsServer := netip.AddrPortFrom(serverAddr.Addr(), 53)
	client, err := netstack.New(netstack.Config{
		Link: lb,
		Addr: netip.MustParsePrefix("198.18.0.2/24"),
		DNS:  []netip.AddrPort{dnsServer},
	})
	if err != nil {
		return err
	}
	defer client.Close()

	z := newZone()
	stop, err := serve(server, z)
	if err != nil {
		return err
	}
	defer stop()

	for _, q := range []struct {
		network, name string
		qtype         uint16
	}{
		{"udp", zoneName, dns.TypeA},
		{"tcp", zoneName, dns.TypeA},
		{"udp", bigName, dns.TypeTXT},
		{"tcp", bigName, dns.TypeTXT},
	} {
		m, rtt, err := exchange(ctx, client, q.network, dnsServer.String(), q.name, q.qtype)
		if err != nil {
			return fmt.Errorf("%s query for %s %s: %w", q.network, q.name, dns.TypeToString[q.qtype], err)
		}
		fmt.Fprintf(out, "miekg/dns over %s: %s %s: %s (%v)\n",
			q.network, q.name, dns.TypeToString[q.qtype], describe(m), rtt.Round(time.Microsecond))
	}

	r := client.Resolver()
	addrs, err := r.LookupHost(ctx, "name.test")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Resolver.LookupHost(name.test): %v\n", addrs)
	before := z.tcp.Load()
	txt, err := r.LookupTXT(ctx, "big.name.test")
	if err != nil {
		return err
	}
	var lens []int
	for _, t := range txt {
		lens = append(lens, len(t))
	}
	fmt.Fprintf(out, "Resolver.LookupTXT(big.name.test): %d record(s) of %v bytes, %d TCP query(ies) after truncation\n",
		len(txt), lens, z.tcp.Load()-before)
	fmt.Fprintf(out, "server answered %d queries over UDP and %d over TCP\n", z.udp.Load(), z.tcp.Load())
	return nil
}

// serveTAP serves the zone on a TAP device until SIGINT.
func serveTAP(name, cidr string) error {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return err
	}
	dev, err := netstack.OpenTAP(name)
	if err != nil {
		return err
	}
	s, err := netstack.New(netstack.Config{Link: dev, Addr: prefix})
	if err != nil {
		dev.Close()
		return err
	}
	defer s.Close()
	stop, err := serve(s, newZone())
	if err != nil {
		return err
	}
	log.Printf("serving DNS for %s on %v:53 (UDP and TCP) on %s (%v); try: dig @%v name.test A +short",
		zoneName, prefix.Addr(), name, s.HardwareAddr(), prefix.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	<-sig
	signal.Stop(sig)
	if err := stop(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
