package pair

import (
	"context"
	"io"
	"net"
	"net/netip"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/bench/internal/netns"
)

// Netstack is two netstack Stacks (198.18.0.1 client, .2 server) joined
// back to back in memory by two PacketLinks carrying Ethernet frames, each
// queueing 1024 frames and dropping (counting) what does not fit, as
// gVisor's channel.Endpoint does. Each stack's Output injects its frames
// into the other's queue: one copy per frame, as the gVisor side's pump
// makes; the receiving stack reads the queued frame where it lies.
func Netstack(mtu int) (*Pair, error) {
	if mtu == 0 {
		mtu = 1500
	}
	var a, b *netstack.PacketLink
	a = netstack.NewPacketLink(netstack.PacketLinkConfig{MTU: mtu, Ethernet: true, Depth: 1024,
		Output: func(f []byte) { b.Inject(f) }})
	b = netstack.NewPacketLink(netstack.PacketLinkConfig{MTU: mtu, Ethernet: true, Depth: 1024,
		Output: func(f []byte) { a.Inject(f) }})
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
func NetstackTAP(int) (*Pair, error) { return netstackTAP(-1, true) }

// NetstackLossyTAP is NetstackTAP behind netns.NewLossyTAP's bridge. The
// device is opened by netstack.OpenTAP (virtio-net header, checksum
// offload), but with gso false the stack is not shown the device's
// WriteGSO, so it sends MTU-sized segments that the bridge can drop one by
// one; with gso true it writes TCP super-segments of up to 64 KiB, which
// cross the bridge, and its drop rule, whole.
func NetstackLossyTAP(loss int, gso bool) Factory {
	return func(int) (*Pair, error) { return netstackTAP(loss, gso) }
}

// plainLink hides every method of the Link beyond netstack.Link (Offload,
// WriteGSO), so the stack does not segment through the device.
type plainLink struct{ netstack.Link }

func netstackTAP(loss int, gso bool) (*Pair, error) {
	var l netstack.Link
	open := func(dev string) (io.Closer, error) {
		var err error
		l, err = netstack.OpenTAP(dev)
		return l, err
	}
	t, err := netns.NewTAPLoss(open, loss)
	if err != nil {
		return nil, err
	}
	if !gso {
		l = plainLink{l}
	}
	p := &Pair{ClientNS: t.NS, Lossy: t.Lossy}
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
