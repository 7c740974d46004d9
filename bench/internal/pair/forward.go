package pair

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/gotcpip/netstack"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The forwarding pairs: a netstack client (198.18.0.1/24, its gateway
// 198.18.0.2) and a forwarding stack at 198.18.0.2 that accepts TCP for
// any destination. The client dials addresses in 198.19.0.0/16, off the
// forwarder's subnet, a new address and port for every connection. The
// forwarder's handler accepts each connection and hands it to Listener,
// so the workload's server side (sink, closer or holder) is the relay
// target, the same code for both stacks.
var (
	fwdClient = netip.MustParsePrefix("198.18.0.1/24")
	fwdAddr   = netip.MustParsePrefix("198.18.0.2/24")
)

// fwdDest is the destination of the forwarded connection number i: hosts
// 198.19.0.1 to 198.19.253.232, then the next port.
func fwdDest(i uint64) netip.AddrPort {
	const hosts = 65000
	h := 1 + i%hosts
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(h >> 8), byte(h)}), uint16(1000+i/hosts))
}

// handoff is a net.Listener whose connections are the ones a forwarder's
// handler put in.
type handoff struct {
	c    chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{c: make(chan net.Conn, 1024), done: make(chan struct{}), addr: addr}
}

// put hands c to Accept, or closes it if the listener is closed.
func (h *handoff) put(c net.Conn) {
	select {
	case h.c <- c:
	case <-h.done:
		c.Close()
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.c:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoff) Addr() net.Addr { return h.addr }

// fwdClientStack makes the netstack client of both forwarding pairs on
// link, and p's Dial, which reaches a new destination each call.
func fwdClientStack(p *Pair, link netstack.Link) (*netstack.Stack, error) {
	cli, err := netstack.New(netstack.Config{Link: link, Addr: fwdClient, Gateway: fwdAddr.Addr()})
	if err != nil {
		return nil, err
	}
	p.onClose(cli.Close)
	var n atomic.Uint64
	p.Dial = func(ctx context.Context) (net.Conn, error) {
		return cli.DialContext(ctx, "tcp", fwdDest(n.Add(1)-1).String())
	}
	return cli, nil
}

// NetstackForward is a netstack client and a netstack Stack with a
// Forwarder (Config.Forwarder), joined in memory as Netstack's two stacks
// are (NewPacketLinkPair, 1024 frames each way, a full queue holding the
// sender back rather than dropping). The Forwarder's TCP handler accepts
// every request and hands the connection to Listener. Counters reports
// both stacks' TCP retransmissions.
func NetstackForward(int) (*Pair, error) {
	a, b := netstack.NewPacketLinkPair(netstack.PacketLinkConfig{Ethernet: true, Depth: 1024})
	p := &Pair{}
	h := newHandoff(&net.TCPAddr{IP: net.IPv4(198, 19, 0, 0)})
	p.Listener = h
	fwd := &netstack.Forwarder{TCP: func(r *netstack.TCPRequest) {
		c, err := r.Accept(context.Background())
		if err != nil {
			return
		}
		h.put(c)
	}}
	srv, err := netstack.New(netstack.Config{Link: b, Addr: fwdAddr, Forwarder: fwd})
	if err != nil {
		return nil, err
	}
	p.onClose(srv.Close)
	cli, err := fwdClientStack(p, a)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Counters = func() string { return retransmits(cli, srv) }
	return p, nil
}

// GVisorForward is the same netstack client and a gVisor stack set up as
// tun2socks sets one up: promiscuous mode and spoofing on the NIC, a
// default route, and tcp.NewForwarder (default receive window, 1024
// requests in flight) whose handler creates the endpoint (the handshake),
// completes the request, turns keepalive on and hands gonet.NewTCPConn to
// Listener. The gVisor side is an ethernet.Endpoint over a
// channel.Endpoint queueing 1024 frames, as in GVisor; the client's frames
// go through a queue of 1024 frames (dropping when full) and one pump
// goroutine into the gVisor NIC, and a second pump carries gVisor's frames
// into the client's PacketLink: one copy per frame each way.
func GVisorForward(int) (*Pair, error) {
	p := &Pair{}
	ctx, cancel := context.WithCancel(context.Background())
	p.onClose(func() error { cancel(); return nil })
	eb := channel.New(1024, 1500, tcpip.LinkAddress("\x02\x00\x00\x00\x00\x02"))
	s, err := gstack(ethernet.New(eb), fwdAddr)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(func() error { s.Close(); s.Wait(); return nil })
	if err := s.SetPromiscuousMode(nic, true); err != nil {
		p.Close()
		return nil, fmt.Errorf("gvisor SetPromiscuousMode: %v", err)
	}
	if err := s.SetSpoofing(nic, true); err != nil {
		p.Close()
		return nil, fmt.Errorf("gvisor SetSpoofing: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: nic}})
	h := newHandoff(&net.TCPAddr{IP: net.IPv4(198, 19, 0, 0)})
	p.Listener = h
	f := tcp.NewForwarder(s, 0, 1024, func(r *tcp.ForwarderRequest) {
		var wq waiter.Queue
		ep, err := r.CreateEndpoint(&wq)
		if err != nil {
			r.Complete(true)
			return
		}
		r.Complete(false)
		ep.SocketOptions().SetKeepAlive(true)
		h.put(gonet.NewTCPConn(&wq, ep))
	})
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, f.HandlePacket)

	in := make(chan *buffer.View, 1024) // client → gVisor
	a := netstack.NewPacketLink(netstack.PacketLinkConfig{Ethernet: true, Depth: 1024,
		Output: func(f []byte) {
			v := buffer.NewViewWithData(f)
			select {
			case in <- v:
			default: // full: dropped, as the channel endpoint drops
				v.Release()
			}
		}})
	go func() {
		for {
			select {
			case v := <-in:
				injectView(eb, v)
			case <-ctx.Done():
				return
			}
		}
	}()
	go drain(ctx, eb, func(v *buffer.View) {
		a.Inject(v.AsSlice())
		v.Release()
	})
	if _, err := fwdClientStack(p, a); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}
