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
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

const nic = 1

// gstack makes a gVisor stack with TCP on ep at pfx (its address and
// on-link subnet, the one route) with gVisor's default TCP buffers and SACK
// on (netstack does SACK). An IPv4 pfx gets IPv4 and ARP; an IPv6 one
// IPv6 alone (neighbor discovery; no duplicate address detection, which
// ipv6.NewProtocol leaves off, so the address is usable at once).
func gstack(ep stack.LinkEndpoint, pfx netip.Prefix) (*stack.Stack, error) {
	protos := []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol}
	if pfx.Addr().Is6() {
		protos = []stack.NetworkProtocolFactory{ipv6.NewProtocol}
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   protos,
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	if err := s.CreateNIC(nic, ep); err != nil {
		return nil, fmt.Errorf("gvisor CreateNIC: %v", err)
	}
	if err := s.AddProtocolAddress(nic, tcpip.ProtocolAddress{
		Protocol:          protoOf(pfx.Addr()),
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(pfx.Addr().AsSlice()), PrefixLen: pfx.Bits()},
	}, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("gvisor AddProtocolAddress: %v", err)
	}
	m := pfx.Masked().Addr()
	sub, err := tcpip.NewSubnet(tcpip.AddrFromSlice(m.AsSlice()), tcpip.MaskFromBytes(net.CIDRMask(pfx.Bits(), m.BitLen())))
	if err != nil {
		return nil, fmt.Errorf("gvisor NewSubnet: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: sub, NIC: nic}})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	return s, nil
}

// protoOf is a's network protocol number.
func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is6() {
		return ipv6.ProtocolNumber
	}
	return ipv4.ProtocolNumber
}

func fullAddr(a netip.Addr, port uint16) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nic, Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: port}
}

// pump moves frames from one channel endpoint's transmit queue into the
// other's receive path: one goroutine per direction, one copy per frame
// (serializing the outgoing PacketBuffer into a fresh view).
func pump(ctx context.Context, from, to *channel.Endpoint) {
	drain(ctx, from, func(v *buffer.View) { injectView(to, v) })
}

// drain hands each frame from's stack sends to deliver as a view of its
// own, until ctx ends.
func drain(ctx context.Context, from *channel.Endpoint, deliver func(v *buffer.View)) {
	for {
		pkt := from.ReadContext(ctx)
		if pkt == nil {
			return
		}
		v := pkt.ToView()
		pkt.DecRef()
		deliver(v)
	}
}

// injectView hands the frame v, which it takes over, to to's stack.
func injectView(to *channel.Endpoint, v *buffer.View) {
	in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
	to.InjectInbound(0, in)
	in.DecRef()
}

// GVisor is two gVisor stacks (198.18.0.1 client, .2 server), each on an
// ethernet.Endpoint over a channel.Endpoint queueing 1024 frames, joined by
// a pump goroutine per direction; connections through gonet.
func GVisor(mtu int) (*Pair, error) { return gvisorMem(mtu, false) }

// GVisor6 is GVisor over IPv6: fd00::1 (client) and fd00::2 (server), /64.
func GVisor6(mtu int) (*Pair, error) { return gvisorMem(mtu, true) }

func gvisorMem(mtu int, v6 bool) (*Pair, error) {
	if mtu == 0 {
		mtu = 1500
	}
	ca, sa := netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	if v6 {
		ca, sa = netip.MustParsePrefix("fd00::1/64"), netip.MustParsePrefix("fd00::2/64")
	}
	p := &Pair{}
	ctx, cancel := context.WithCancel(context.Background())
	ea := channel.New(1024, uint32(mtu), tcpip.LinkAddress("\x02\x00\x00\x00\x00\x01"))
	eb := channel.New(1024, uint32(mtu), tcpip.LinkAddress("\x02\x00\x00\x00\x00\x02"))
	cli, err := gstack(ethernet.New(ea), ca)
	if err != nil {
		cancel()
		return nil, err
	}
	srv, err := gstack(ethernet.New(eb), sa)
	if err != nil {
		cancel()
		return nil, err
	}
	go pump(ctx, ea, eb)
	go pump(ctx, eb, ea)
	p.onClose(func() error { cancel(); return nil })
	p.onClose(func() error { cli.Close(); srv.Close(); cli.Wait(); srv.Wait(); return nil })
	to := fullAddr(sa.Addr(), 5001)
	l, err := gonet.ListenTCP(srv, to, protoOf(sa.Addr()))
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Listener = l
	p.Dial = func(ctx context.Context) (net.Conn, error) {
		return gonet.DialContextTCP(ctx, cli, to, protoOf(sa.Addr()))
	}
	p.URL = "http://" + netip.AddrPortFrom(sa.Addr(), 5001).String() + "/"
	return p, nil
}

type fdCloser int

func (f fdCloser) Close() error { return unix.Close(int(f)) }

// GVisorTAP is a gVisor stack on a TAP device through fdbased (server side)
// with the kernel in a namespace as the client.
func GVisorTAP(int) (*Pair, error) { return gvisorTAP(-1, false) }

// GVisorTAP6 is GVisorTAP over IPv6 (netns.NewTAP6).
func GVisorTAP6(int) (*Pair, error) { return gvisorTAP(-1, true) }

// GVisorLossyTAP is GVisorTAP behind netns.NewLossyTAP's bridge (fdbased
// without GSO, as in GVisorTAP: MTU-sized frames each way).
func GVisorLossyTAP(loss int) Factory {
	return func(int) (*Pair, error) { return gvisorTAP(loss, false) }
}

func gvisorTAP(loss int, v6 bool) (*Pair, error) {
	fd := -1
	open := func(dev string) (io.Closer, error) {
		var err error
		fd, err = netns.OpenTAPFD(dev)
		return fdCloser(fd), err
	}
	t, err := newTAP(open, loss, v6)
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
	sa := netip.MustParseAddr(t.StackAddr)
	s, err := gstack(ep, netip.PrefixFrom(sa, t.Bits))
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(func() error { s.Close(); s.Wait(); return nil })
	port := uint16(5001)
	return kernelClient(p, t, func(string) (net.Listener, error) {
		return gonet.ListenTCP(s, fullAddr(sa, port), protoOf(sa))
	})
}

var _ = header.EthernetMinimumSize
