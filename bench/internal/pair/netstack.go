package pair

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/bench/internal/netns"
	"github.com/gotcpip/netstack/internal/link"
)

// Netstack is two netstack Stacks (198.18.0.1 client, .2 server) joined
// back to back in memory by two PacketLinks carrying Ethernet frames
// (NewPacketLinkPair), each queueing 1024 frames, as gVisor's
// channel.Endpoint does. Each stack's frames are copied into the other's
// queue: one copy per frame, as the gVisor side's pump makes; the
// receiving stack reads the queued frame where it lies. Unlike gVisor's
// endpoint, which drops what does not fit, a full queue holds the sending
// stack back (the Queue capability), so TCP loses nothing to it.
// Counters reports both stacks' TCP retransmissions.
func Netstack(mtu int) (*Pair, error) { return netstackMem(mtu, false, 0) }

// NetstackWorkers is Netstack with each stack's input spread over
// workers goroutines by flow (netstack.Config.InputWorkers).
func NetstackWorkers(workers int) Factory {
	return func(mtu int) (*Pair, error) { return netstackMem(mtu, false, workers) }
}

// Netstack6 is Netstack over IPv6: fd00::1 (client) and fd00::2 (server),
// /64, duplicate address detection off (DADTransmits -1), neighbor
// discovery in place of ARP.
func Netstack6(mtu int) (*Pair, error) { return netstackMem(mtu, true, 0) }

func netstackMem(mtu int, v6 bool, workers int) (*Pair, error) {
	p, cli, srv, sa, err := memStacks(mtu, v6, workers, netstack.Limits{})
	if err != nil {
		return nil, err
	}
	addr := netip.AddrPortFrom(sa, 5001).String()
	p.Listener, err = srv.Listen("tcp", addr)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Dial = func(ctx context.Context) (net.Conn, error) { return cli.DialContext(ctx, "tcp", addr) }
	p.URL = "http://" + addr + "/"
	return p, nil
}

// memStacks makes the two stacks of an in-memory pair, with limits, and
// returns the pair that closes them and the server's address.
func memStacks(mtu int, v6 bool, workers int, limits netstack.Limits) (p *Pair, cli, srv *netstack.Stack, saddr netip.Addr, err error) {
	if mtu == 0 {
		mtu = 1500
	}
	ca, sa := netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	dad := 0
	if v6 {
		ca, sa, dad = netip.MustParsePrefix("fd00::1/64"), netip.MustParsePrefix("fd00::2/64"), -1
	}
	a, b := netstack.NewPacketLinkPair(netstack.PacketLinkConfig{MTU: mtu, Ethernet: true, Depth: 1024})
	p = &Pair{}
	cli, err = netstack.New(netstack.Config{Link: a, Addr: ca, MTU: mtu, DADTransmits: dad, InputWorkers: workers, Limits: limits})
	if err != nil {
		return nil, nil, nil, saddr, err
	}
	p.onClose(cli.Close)
	srv, err = netstack.New(netstack.Config{Link: b, Addr: sa, MTU: mtu, DADTransmits: dad, InputWorkers: workers, Limits: limits})
	if err != nil {
		p.Close()
		return nil, nil, nil, saddr, err
	}
	p.onClose(srv.Close)
	p.Counters = func() string { return retransmits(cli, srv) }
	return p, cli, srv, sa.Addr(), nil
}

// NetstackTAP is a netstack Stack on a TAP device (server side) with the
// kernel in a namespace as the client.
func NetstackTAP(int) (*Pair, error) { return netstackTAP(-1, true, false, 1) }

// NetstackTAPQueues is NetstackTAP on a device opened with queues queues
// (netstack.OpenTAPQueues), each read by a goroutine of the stack.
func NetstackTAPQueues(queues int) Factory {
	return func(int) (*Pair, error) { return netstackTAP(-1, true, false, queues) }
}

// NetstackTAP6 is NetstackTAP over IPv6 (netns.NewTAP6), the stack's
// address usable at once (DADTransmits -1).
func NetstackTAP6(int) (*Pair, error) { return netstackTAP(-1, true, true, 1) }

// NetstackLossyTAP is NetstackTAP behind netns.NewLossyTAP's bridge. The
// device is opened by netstack.OpenTAP (virtio-net header, checksum
// offload), but with gso false the stack is not shown the device's
// WriteGSO, so it sends MTU-sized segments that the bridge can drop one by
// one; with gso true it writes TCP super-segments of up to 64 KiB, which
// cross the bridge, and its drop rule, whole.
func NetstackLossyTAP(loss int, gso bool) Factory {
	return func(int) (*Pair, error) { return netstackTAP(loss, gso, false, 1) }
}

// plainLink hides every method of the Link beyond netstack.Link (Offload,
// WriteGSO), so the stack does not segment through the device.
type plainLink struct{ netstack.Link }

func netstackTAP(loss int, gso, v6 bool, queues int) (*Pair, error) {
	var l netstack.Link
	open := func(dev string) (io.Closer, error) {
		var err error
		if queues > 1 {
			l, err = netstack.OpenTAPQueues(dev, queues)
		} else {
			l, err = netstack.OpenTAP(dev)
		}
		return l, err
	}
	t, err := newTAP(open, loss, v6)
	if err != nil {
		return nil, err
	}
	if !gso {
		l = plainLink{l}
	}
	p := &Pair{ClientNS: t.NS, Lossy: t.Lossy}
	p.onClose(t.NS.Close)
	cfg := netstack.Config{Link: l, Addr: netip.PrefixFrom(netip.MustParseAddr(t.StackAddr), t.Bits)}
	if v6 {
		cfg.DADTransmits = -1
	}
	s, err := netstack.New(cfg)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(s.Close)
	return kernelClient(p, t, func(addr string) (net.Listener, error) { return s.Listen("tcp", addr) })
}

// newTAP is netns.NewTAP6 for v6 (no lossy IPv6 workloads), else
// netns.NewTAPLoss.
func newTAP(open func(dev string) (io.Closer, error), loss int, v6 bool) (*netns.TAP, error) {
	if v6 {
		return netns.NewTAP6(open)
	}
	return netns.NewTAPLoss(open, loss)
}

func kernelClient(p *Pair, t *netns.TAP, listen func(string) (net.Listener, error)) (*Pair, error) {
	addr := net.JoinHostPort(t.StackAddr, "5001")
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

// NetstackMany is Netstack (IPv4) for n connections at once: both stacks'
// Limits.MaxConnections take n (and some room), and the server listens on
// enough ports (5001 up) that the client's 28,232 ephemeral ports to each
// give every connection its own 4-tuple, at most perPort per port. Listener
// accepts from all the ports; Dial goes to them in turn. Keep-alive is off
// at both ends (Dialer.KeepAlive -1; SetKeepAlive(false) on each accepted
// connection, as ListenConfig.KeepAlive -1 does in package net): with Go's
// 15-second default, a million connections held at both ends in one
// process probe 133,000 times a second once the first 15 seconds pass,
// which slows the opening of the rest past the run's time limit on a
// small machine.
func NetstackMany(n int) Factory {
	const perPort = 25000
	return func(mtu int) (*Pair, error) {
		p, cli, srv, sa, err := memStacks(mtu, false, 0, netstack.Limits{MaxConnections: n + 1024})
		if err != nil {
			return nil, err
		}
		var addrs []string
		for i := range max((n+perPort-1)/perPort, 1) {
			addr := netip.AddrPortFrom(sa, uint16(5001+i))
			l, err := srv.Listen("tcp", addr.String())
			if err != nil {
				p.Close()
				return nil, err
			}
			if p.Listener == nil {
				p.Listener = newHandoff(l.Addr())
			}
			p.onClose(l.Close)
			go acceptInto(l, p.Listener.(*handoff))
			addrs = append(addrs, addr.String())
		}
		var next atomic.Uint64
		d := &netstack.Dialer{Stack: cli, KeepAlive: -1}
		p.Dial = func(ctx context.Context) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addrs[next.Add(1)%uint64(len(addrs))])
		}
		return p, nil
	}
}

// acceptInto puts what l accepts into h, keep-alive off, until l is
// closed.
func acceptInto(l net.Listener, h *handoff) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.(*netstack.TCPConn).SetKeepAlive(false)
		h.put(c)
	}
}

// retransmits reports the TCP segments each stack sent again.
func retransmits(cli, srv *netstack.Stack) string {
	return fmt.Sprintf("retransmits client %d, server %d", cli.Stats().TCP.Retransmits, srv.Stats().TCP.Retransmits)
}

// The long, lossy path of NetstackLongPath: 100 Mbit/s, 100 ms round
// trip, 1 % random loss on the data's way, a FIFO of one BDP.
const (
	LongPathRate  = 12.5e6 // bytes per second
	LongPathDelay = 50 * time.Millisecond
	LongPathLoss  = 0.01
)

// NetstackLongPath is Netstack over a long, lossy path: each stack's
// frames pass a link.Impair on their way out, 50 ms each way; the
// client's (the data's way) also cross a 100 Mbit/s bottleneck whose
// FIFO holds one bandwidth-delay product and tail-drops beyond it, and
// lose 1 % at random. The server's way (the ACKs') has the delay alone.
func NetstackLongPath(int) (*Pair, error) {
	var a, b *netstack.PacketLink
	a = netstack.NewPacketLink(netstack.PacketLinkConfig{Ethernet: true, Depth: 1024, Output: func(f []byte) { b.Inject(f) }})
	b = netstack.NewPacketLink(netstack.PacketLinkConfig{Ethernet: true, Depth: 1024, Output: func(f []byte) { a.Inject(f) }})
	bdp := int(LongPathRate * (2 * LongPathDelay).Seconds())
	ca := link.NewImpair(a, link.ImpairConfig{Seed: 1, Egress: link.Impairment{
		Delay: LongPathDelay, Rate: LongPathRate, Queue: bdp, Drop: LongPathLoss}})
	sb := link.NewImpair(b, link.ImpairConfig{Seed: 2, Egress: link.Impairment{Delay: LongPathDelay}})
	p := &Pair{}
	p.onClose(ca.Close) // closed again by its stack: Impair.Close is idempotent
	p.onClose(sb.Close)
	var stacks [2]*netstack.Stack
	for i, l := range []netstack.Link{ca, sb} {
		s, err := netstack.New(netstack.Config{Link: l, Addr: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 24)})
		if err != nil {
			p.Close()
			return nil, err
		}
		p.onClose(s.Close)
		stacks[i] = s
	}
	cli, srv := stacks[0], stacks[1]
	addr := "198.18.0.2:5001"
	var err error
	if p.Listener, err = srv.Listen("tcp", addr); err != nil {
		p.Close()
		return nil, err
	}
	p.Dial = func(ctx context.Context) (net.Conn, error) { return cli.DialContext(ctx, "tcp", addr) }
	p.URL = "http://" + addr + "/"
	return p, nil
}
