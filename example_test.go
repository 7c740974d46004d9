package netstack_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"

	"github.com/gotcpip/netstack"
)

// twoStacks returns two stacks joined by an in-memory cable.
func twoStacks() (server, client *netstack.Stack) {
	la, lb := netstack.Pipe()
	server, err := netstack.New(netstack.Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		log.Fatal(err)
	}
	client, err = netstack.New(netstack.Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		log.Fatal(err)
	}
	return server, client
}

// Serve HTTP from a stack: Listen returns a net.Listener that
// http.Server takes as it is.
func ExampleStack_Listen() {
	server, client := twoStacks()
	defer server.Close()
	defer client.Close()

	ln, err := server.Listen("tcp", ":80")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from", r.Host)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	c, err := client.Dial("tcp", "198.18.0.1:80")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.0\r\nHost: example.test\r\n\r\n")
	resp, _ := io.ReadAll(c)
	fmt.Println(string(resp[:15]))
	// Output: HTTP/1.0 200 OK
}

// Dial through a stack from net/http: DialContext plugs into
// http.Transport.
func ExampleStack_DialContext() {
	server, client := twoStacks()
	defer server.Close()
	defer client.Close()
	ln, _ := server.Listen("tcp", ":8080")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "over netstack")
	})}
	go srv.Serve(ln)
	defer srv.Close()

	tr := &http.Transport{DialContext: client.DialContext}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	resp, err := hc.Get("http://198.18.0.1:8080/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, string(body))
	// Output: 200 OK over netstack
}

// Exchange datagrams: ListenPacket returns a net.PacketConn.
func ExampleStack_ListenPacket() {
	server, client := twoStacks()
	defer server.Close()
	defer client.Close()

	pc, err := server.ListenPacket("udp", ":5353")
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 1500)
		n, from, err := pc.ReadFrom(buf)
		if err == nil {
			pc.WriteTo([]byte("pong: "+string(buf[:n])), from)
		}
	}()

	c, err := client.Dial("udp", "198.18.0.1:5353")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 1500)
	n, _ := c.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: pong: ping
}

// Resolve names over a stack: the Resolver asks the servers of Config.DNS,
// over the stack.
func ExampleStack_Resolver() {
	la, lb := netstack.Pipe()
	dnsStack, _ := netstack.New(netstack.Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	defer dnsStack.Close()
	client, _ := netstack.New(netstack.Config{
		Link: lb,
		Addr: netip.MustParsePrefix("198.18.0.2/24"),
		DNS:  []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:53")},
	})
	defer client.Close()

	// A tiny DNS server answering every A query with 198.18.0.80.
	pc, _ := dnsStack.ListenPacket("udp", ":53")
	defer pc.Close()
	go answerA(pc, [4]byte{198, 18, 0, 80})

	addrs, err := client.Resolver().LookupHost(context.Background(), "www.example.test")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(addrs)
	// Output: [198.18.0.80]
}

// answerA answers DNS queries with one A record, written by hand to keep
// the example free of dependencies.
func answerA(pc net.PacketConn, a [4]byte) {
	buf := make([]byte, 512)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if n < 12 {
			continue
		}
		// Find the end of the question (name, type, class).
		i := 12
		for i < n && q[i] != 0 {
			i += int(q[i]) + 1
		}
		i += 5
		if i > n {
			continue
		}
		resp := append([]byte(nil), q[:i]...)
		resp[2], resp[3] = 0x81, 0x80 // response, recursion desired+available
		resp[10], resp[11] = 0, 0     // no additional records: drop the query's EDNS(0) OPT
		qtype := uint16(q[i-4])<<8 | uint16(q[i-3])
		if qtype == 1 {
			resp[7] = 1 // one answer
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, a[0], a[1], a[2], a[3])
		}
		pc.WriteTo(resp, from)
	}
}

// Ping another host on the link.
func ExampleStack_Ping() {
	server, client := twoStacks()
	defer server.Close()
	defer client.Close()
	if _, err := client.Ping(context.Background(), server.Addr()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("reply from", server.Addr())
	// Output: reply from 198.18.0.1
}

// Watch the stack's addresses: Config.AddrsChanged hears each change,
// here those AddAddr and RemoveAddr make (router advertisements and
// duplicate address detection report theirs the same way).
func ExampleConfig_addrsChanged() {
	changes := make(chan []netip.Prefix, 4)
	l, peer := netstack.Pipe()
	defer peer.Close()
	s, err := netstack.New(netstack.Config{
		Link:         l,
		Addr:         netip.MustParsePrefix("198.18.0.2/24"),
		DADTransmits: -1,
		AddrsChanged: func(addrs []netip.Prefix) { changes <- addrs },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ipv4 := func(addrs []netip.Prefix) (out []netip.Prefix) {
		for _, p := range addrs {
			if p.Addr().Is4() {
				out = append(out, p)
			}
		}
		return out
	}
	if err := s.AddAddr(netip.MustParsePrefix("198.18.0.3/24")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ipv4(<-changes))
	if err := s.RemoveAddr(netip.MustParsePrefix("198.18.0.2/24")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(ipv4(<-changes))
	// Output:
	// [198.18.0.2/24 198.18.0.3/24]
	// [198.18.0.3/24]
}

// A stack on a TAP device that takes its address from the DHCP server of
// the link, and serves HTTP on whatever address it leases. (Not run here:
// it needs root, a TAP device and a DHCP server.)
func ExampleConfig_dhcp() {
	tap, err := netstack.OpenTAP("tap0")
	if err != nil {
		log.Fatal(err)
	}
	s, err := netstack.New(netstack.Config{
		Link: tap,
		DHCP: true,
		AddrsChanged: func(addrs []netip.Prefix) {
			log.Printf("addresses now %v", addrs)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close() // releases the lease
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(ln, http.FileServer(http.Dir("."))))
}
