package pair

import (
	"context"
	"io"
	"net"
	"net/netip"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/bench/internal/memlink"
	"github.com/gotcpip/netstack/bench/internal/netns"
)

// Netstack is two netstack Stacks (198.18.0.1 client, .2 server) joined by
// a memlink cable.
func Netstack(mtu int) (*Pair, error) {
	if mtu == 0 {
		mtu = 1500
	}
	a, b := memlink.New(mtu, memlink.DefaultDepth)
	p := &Pair{}
	cli, err := netstack.New(netstack.Config{Link: a, Addr: netip.MustParsePrefix("198.18.0.1/24"), MTU: mtu})
	if err != nil {
		return nil, err
	}
	p.onClose(cli.Close)
	srv, err := netstack.New(netstack.Config{Link: b, Addr: netip.MustParsePrefix("198.18.0.2/24"), MTU: mtu})
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(srv.Close)
	p.Listener, err = srv.Listen("tcp", "198.18.0.2:5001")
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Dial = func(ctx context.Context) (net.Conn, error) { return cli.DialContext(ctx, "tcp", "198.18.0.2:5001") }
	p.URL = "http://198.18.0.2:5001/"
	return p, nil
}

// NetstackTAP is a netstack Stack on a TAP device (server side) with the
// kernel in a namespace as the client.
func NetstackTAP(int) (*Pair, error) {
	var l netstack.Link
	t, err := netns.NewTAP(func(dev string) (io.Closer, error) {
		var err error
		l, err = netstack.OpenTAP(dev)
		return l, err
	})
	if err != nil {
		return nil, err
	}
	p := &Pair{ClientNS: t.NS}
	p.onClose(t.NS.Close)
	s, err := netstack.New(netstack.Config{Link: l, Addr: netip.MustParsePrefix(t.StackAddr + "/24")})
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(s.Close)
	return kernelClient(p, t, func(addr string) (net.Listener, error) { return s.Listen("tcp", addr) })
}

func kernelClient(p *Pair, t *netns.TAP, listen func(string) (net.Listener, error)) (*Pair, error) {
	addr := t.StackAddr + ":5001"
	var err error
	p.Listener, err = listen(addr)
	if err != nil {
		p.Close()
		return nil, err
	}
	w, err := newWorker(t.NS)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(w.stop)
	p.Dial = kernelDialer(w, addr)
	p.URL = "http://" + addr + "/"
	return p, nil
}
