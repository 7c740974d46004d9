package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsPair returns a client stack whose Config.DNS is the server stack's
// port 53, and the server stack.
func dnsPair(t *testing.T) (client, server *Stack) {
	t.Helper()
	la, lb := Pipe()
	server, err := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	client, err = New(Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24"),
		DNS: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:53")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// serveZone runs a miekg/dns server on s's UDP port 53 that knows
// web.test (A 198.18.0.80, a CNAME www.test → web.test) and nothing else,
// and records the names it was asked.
// startDNS serves DNS queries on pc with h until the test ends.
func startDNS(t testing.TB, pc net.PacketConn, h dns.HandlerFunc) {
	t.Helper()
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
}

func serveZone(t *testing.T, s *Stack) (asked func() []string) {
	t.Helper()
	pc, err := s.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var names []string
	startDNS(t, pc, func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := q.Question[0].Name
		mu.Lock()
		names = append(names, name)
		mu.Unlock()
		switch name {
		case "www.test.":
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "web.test."})
			fallthrough
		case "web.test.":
			if q.Question[0].Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "web.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(198, 18, 0, 80)})
			}
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(names)
	}
}

// TestResolverLooksUpAsGiven: names go to Config.DNS exactly as given —
// no search list, no /etc/hosts (localhost is asked for, not answered from
// the host's files) — and CNAME chains are followed.
func TestResolverLooksUpAsGiven(t *testing.T) {
	checkGoroutines(t)
	client, server := dnsPair(t)
	asked := serveZone(t, server)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := client.Resolver()
	if addrs, err := r.LookupHost(ctx, "web.test"); err != nil || !slices.Equal(addrs, []string{"198.18.0.80"}) {
		t.Fatalf("LookupHost(web.test) = %v, %v", addrs, err)
	}
	if addrs, err := r.LookupNetIP(ctx, "ip4", "www.test"); err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("198.18.0.80") {
		t.Fatalf("LookupNetIP(www.test) = %v, %v", addrs, err)
	}
	if cname, err := r.LookupCNAME(ctx, "www.test"); err != nil || cname != "web.test." {
		t.Fatalf("LookupCNAME(www.test) = %q, %v", cname, err)
	}
	_, err := r.LookupHost(ctx, "localhost")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("LookupHost(localhost) = %v; want not found from the server, not the host's /etc/hosts", err)
	}
	_, err = r.LookupHost(ctx, "web")
	if !errors.As(err, &de) || !de.IsNotFound || de.Server != "198.18.0.1:53" {
		t.Fatalf("LookupHost(web) = %v, want not found at 198.18.0.1:53", err)
	}
	for _, name := range asked() {
		switch name {
		case "web.test.", "www.test.", "localhost.", "web.":
		default:
			t.Errorf("the server was asked %q: a search list or the host's configuration leaked in", name)
		}
	}
}

// TestResolverErrorsNameTheServerAsked: a refused, a timed-out and a
// not-found lookup each name the server of Config.DNS that was asked; the
// timeout is a net.Error with Timeout true that matches
// context.DeadlineExceeded.
func TestResolverErrorsNameTheServerAsked(t *testing.T) {
	checkGoroutines(t)
	client, server := dnsPair(t)
	r := client.Resolver()
	var de *net.DNSError

	// Nothing on port 53: ICMP port unreachable refuses each query.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := r.LookupHost(ctx, "web.test")
	if !errors.As(err, &de) || de.Server != "198.18.0.1:53" || de.Name != "web.test" {
		t.Fatalf("refused lookup: %#v", err)
	}

	// A socket that takes the queries and never answers.
	pc, err := server.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, err = r.LookupHost(short, "web.test")
	var ne net.Error
	if !errors.As(err, &de) || de.Server != "198.18.0.1:53" || !de.IsTimeout ||
		!errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out lookup: %#v", err)
	}
	pc.Close()

	serveZone(t, server)
	_, err = r.LookupHost(ctx, "nothere.test")
	if !errors.As(err, &de) || de.Server != "198.18.0.1:53" || !de.IsNotFound {
		t.Fatalf("not-found lookup: %#v", err)
	}
	if want := "lookup nothere.test on 198.18.0.1:53: no such host"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// TestResolverNoServers: without Config.DNS a lookup fails at once.
func TestResolverNoServers(t *testing.T) {
	a, _ := newPipePair(t)
	_, err := a.Resolver().LookupHost(context.Background(), "web.test")
	if !errors.Is(err, errNoDNS) {
		t.Fatalf("got %v", err)
	}
}
