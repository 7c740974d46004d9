package pair

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/gotcpip/netstack/bench/internal/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

const nic = 1

// gstack makes a gVisor stack with IPv4, ARP and TCP on ep at addr/24,
// with gVisor's default TCP buffers and SACK on (netstack does SACK).
func gstack(ep stack.LinkEndpoint, addr string) (*stack.Stack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(nic, ep); err != nil {
		return nil, fmt.Errorf("gvisor CreateNIC: %v", err)
	}
	pfx := netip.MustParsePrefix(addr + "/24")
	a := tcpip.AddrFrom4(pfx.Addr().As4())
	if err := s.AddProtocolAddress(nic, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: a, PrefixLen: 24},
	}, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("gvisor AddProtocolAddress: %v", err)
	}
	sub, _ := tcpip.NewSubnet(tcpip.AddrFrom4(pfx.Masked().Addr().As4()), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
	s.SetRouteTable([]tcpip.Route{{Destination: sub, NIC: nic}})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	return s, nil
}

func fullAddr(addr string, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nic, Addr: tcpip.AddrFrom4(netip.MustParseAddr(addr).As4()), Port: port}
}

// pump moves frames from one channel endpoint's transmit queue into the
// other's receive path: one goroutine per direction, one copy per frame
// (serializing the outgoing PacketBuffer into a fresh view).
func pump(ctx context.Context, from, to *channel.Endpoint) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		v := pkt.ToView()
		pkt.DecRef()
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
		to.InjectInbound(0, in)
		in.DecRef()
	}
}

// GVisor is two gVisor stacks (198.18.0.1 client, .2 server), each on an
// ethernet.Endpoint over a channel.Endpoint queueing 1024 frames, joined by
// a pump goroutine per direction; connections through gonet.
func GVisor(mtu int) (*Pair, error) {
	if mtu == 0 {
		mtu = 1500
	}
	p := &Pair{}
	ctx, cancel := context.WithCancel(context.Background())
	ca := channel.New(1024, uint32(mtu), tcpip.LinkAddress("\x02\x00\x00\x00\x00\x01"))
	cb := channel.New(1024, uint32(mtu), tcpip.LinkAddress("\x02\x00\x00\x00\x00\x02"))
	cli, err := gstack(ethernet.New(ca), "198.18.0.1")
	if err != nil {
		cancel()
		return nil, err
	}
	srv, err := gstack(ethernet.New(cb), "198.18.0.2")
	if err != nil {
		cancel()
		return nil, err
	}
	go pump(ctx, ca, cb)
	go pump(ctx, cb, ca)
	p.onClose(func() error { cancel(); return nil })
	p.onClose(func() error { cli.Close(); srv.Close(); cli.Wait(); srv.Wait(); return nil })
	l, err := gonet.ListenTCP(srv, fullAddr("198.18.0.2", 5001), ipv4.ProtocolNumber)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Listener = l
	p.Dial = func(ctx context.Context) (net.Conn, error) {
		return gonet.DialContextTCP(ctx, cli, fullAddr("198.18.0.2", 5001), ipv4.ProtocolNumber)
	}
	p.URL = "http://198.18.0.2:5001/"
	return p, nil
}

type fdCloser int

func (f fdCloser) Close() error { return unix.Close(int(f)) }

// GVisorTAP is a gVisor stack on a TAP device through fdbased (server side)
// with the kernel in a namespace as the client.
func GVisorTAP(int) (*Pair, error) { return gvisorTAP(-1) }

// GVisorLossyTAP is GVisorTAP behind netns.NewLossyTAP's bridge (fdbased
// without GSO, as in GVisorTAP: MTU-sized frames each way).
func GVisorLossyTAP(loss int) Factory {
	return func(int) (*Pair, error) { return gvisorTAP(loss) }
}

func gvisorTAP(loss int) (*Pair, error) {
	fd := -1
	open := func(dev string) (io.Closer, error) {
		var err error
		fd, err = netns.OpenTAPFD(dev)
		return fdCloser(fd), err
	}
	t, err := netns.NewTAPLoss(open, loss)
	if err != nil {
		return nil, err
	}
	p := &Pair{ClientNS: t.NS, Lossy: t.Lossy}
	p.onClose(t.NS.Close)
	ep, err := fdbased.New(&fdbased.Options{
		FDs: []int{fd}, MTU: 1500, EthernetHeader: true,
		Address: tcpip.LinkAddress("\x02\x00\x00\x00\x01\x02"),
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	s, err := gstack(ep, t.StackAddr)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(func() error { s.Close(); s.Wait(); return nil })
	port := uint16(5001)
	return kernelClient(p, t, func(string) (net.Listener, error) {
		return gonet.ListenTCP(s, fullAddr(t.StackAddr, port), ipv4.ProtocolNumber)
	})
}

var _ = header.EthernetMinimumSize
