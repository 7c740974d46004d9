// Command http serves HTTP from a netstack stack.
//
// With no flags it runs two stacks in one process joined by an in-memory
// cable (netstack.Pipe): an http.Server on one, an http.Client on the
// other whose Transport dials through netstack. It pings the server, fetches
// a page, prints it with both stacks' counters, and exits. No root needed.
//
// With -tap it serves on a Linux TAP device until interrupted:
//
//	sudo go run ./examples/http -tap tap0 -addr 198.18.0.2/24
//	sudo ip addr add 198.18.0.1/24 dev tap0 && sudo ip link set tap0 up
//	curl http://198.18.0.2/
//
// With -dhcp as well it takes its address from a DHCP server on the TAP's
// link instead of -addr, and logs each address as it comes and goes:
//
//	sudo go run ./examples/http -tap tap0 -dhcp
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/examples/internal/addrflag"
)

func main() {
	tap := flag.String("tap", "", "serve on this TAP device instead of the in-memory demo")
	addr := flag.String("addr", "198.18.0.2/24", "the stack's addresses and subnets on the TAP device, comma-separated (198.18.0.2/24,fd00::2/64)")
	dhcp := flag.Bool("dhcp", false, "with -tap: lease an address from a DHCP server instead of -addr")
	flag.Parse()
	if *dhcp && *tap == "" {
		log.Fatal("-dhcp needs -tap")
	}
	if *tap != "" {
		if *dhcp {
			*addr = ""
		}
		if err := serveTAP(*tap, *addr, *dhcp); err != nil {
			log.Fatal(err)
		}
		return
	}
	if err := demo(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// handler is the site both modes serve.
func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from netstack!\nYou are %s, asking for %s over %s.\n", r.RemoteAddr, r.URL.Path, r.Proto)
	})
	return mux
}

// demo runs a server and a client on two stacks joined by a Pipe.
func demo(out io.Writer) error {
	la, lb := netstack.Pipe()
	server, err := netstack.New(netstack.Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		return err
	}
	defer server.Close()
	client, err := netstack.New(netstack.Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		return err
	}
	defer client.Close()

	ln, err := server.Listen("tcp", ":80")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler()}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rtt, err := client.Ping(ctx, server.Addr())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ping %v: %v\n", server.Addr(), rtt)

	hc := &http.Client{Transport: &http.Transport{DialContext: client.DialContext}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://198.18.0.1/hello", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "GET http://198.18.0.1/hello: %s\n%s", resp.Status, body)
	cs, ss := client.Stats(), server.Stats()
	fmt.Fprintf(out, "client: %d segments out, %d in; server: %d segments out, %d in\n",
		cs.TCP.SegmentsOut, cs.TCP.SegmentsIn, ss.TCP.SegmentsOut, ss.TCP.SegmentsIn)
	return nil
}

// serveTAP serves the site on a TAP device until SIGINT, on every
// address of cidrs (comma-separated prefixes of either family) and, with
// dhcp, on the address a DHCP server leases.
func serveTAP(name, cidrs string, dhcp bool) error {
	var prefixes []netip.Prefix
	if cidrs != "" {
		var err error
		if prefixes, err = addrflag.Parse(cidrs); err != nil {
			return err
		}
	}
	dev, err := netstack.OpenTAP(name)
	if err != nil {
		return err
	}
	s, err := netstack.New(netstack.Config{Link: dev, Addrs: prefixes, DHCP: dhcp,
		AddrsChanged: func(addrs []netip.Prefix) { log.Printf("addresses on %s: %v", name, addrs) }})
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler()}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt)
		<-sig
		srv.Shutdown(context.Background())
	}()
	for _, p := range s.Addrs() {
		log.Printf("serving http://%v/ on %s (%v)", netip.AddrPortFrom(p.Addr(), 80), name, s.HardwareAddr())
	}
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
