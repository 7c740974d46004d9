package stack

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
)

// An ICMPEndpoint is an ICMP socket, as a raw IPPROTO_ICMP socket is on
// Linux: it receives a copy of every ICMP message addressed to the stack
// (from its peer only, when connected), without the IP header, and sends
// the ICMP messages it is given, checksum and all, as the payload of an
// IPv4 packet. The stack still answers echo requests itself.
type ICMPEndpoint struct {
	s     *Stack
	raddr netip.Addr // valid when connected
	packetQueue
}

// icmpTable holds the ICMP sockets; each gets every message.
type icmpTable struct {
	n     atomic.Int32 // len(socks), read without the lock on every message
	mu    sync.RWMutex
	socks map[*ICMPEndpoint]struct{}
}

// ListenICMP opens an ICMP socket; with raddr valid it takes only that
// peer's messages and sends to it.
func (s *Stack) ListenICMP(raddr netip.Addr) (*ICMPEndpoint, error) {
	if s.isDone() {
		return nil, net.ErrClosed
	}
	c := &ICMPEndpoint{s: s, raddr: raddr, packetQueue: newPacketQueue(s.cfg.Limits.UDPReceiveBuffer)}
	s.icmp.mu.Lock()
	if s.icmp.socks == nil {
		s.icmp.socks = make(map[*ICMPEndpoint]struct{})
	}
	s.icmp.socks[c] = struct{}{}
	s.icmp.n.Store(int32(len(s.icmp.socks)))
	s.icmp.mu.Unlock()
	return c, nil
}

// LocalAddr returns the stack's address.
func (c *ICMPEndpoint) LocalAddr() netip.Addr { return c.s.Addr() }

// RemoteAddr returns the peer of a connected socket; invalid otherwise.
func (c *ICMPEndpoint) RemoteAddr() netip.Addr { return c.raddr }

// Done is closed when the stack closes.
func (c *ICMPEndpoint) Done() <-chan struct{} { return c.s.done }

// inputICMP gives every ICMP socket a copy of msg, an ICMP message from
// src; the IP layer has checked it and goes on to handle it itself.
func (s *Stack) inputICMP(now time.Time, src, dst netip.Addr, msg []byte) {
	if s.icmp.n.Load() == 0 {
		return
	}
	s.icmp.mu.RLock()
	defer s.icmp.mu.RUnlock()
	for c := range s.icmp.socks {
		if c.raddr.IsValid() && c.raddr != src {
			continue
		}
		if !c.deliver(netip.AddrPortFrom(src, 0), msg) {
			stats.Inc(&s.st.ICMP.DropSocketFull)
		}
	}
}

// WriteTo sends msg, a whole ICMP message, to addr.
func (c *ICMPEndpoint) WriteTo(msg []byte, addr netip.Addr) error {
	closed, softErr := c.writeState(c.raddr.IsValid())
	switch {
	case closed:
		return net.ErrClosed
	case softErr != nil:
		return softErr
	case !addr.Is4():
		return &net.AddrError{Err: "invalid IPv4 address", Addr: addr.String()}
	case len(msg) < ip.ICMPHeaderLen:
		return &net.AddrError{Err: "ICMP message shorter than its header", Addr: addr.String()}
	case len(msg) > ip.IPv4MaxLen-ip.IPv4MinHeaderLen:
		return syscall.EMSGSIZE
	}
	buf := c.s.frames.Get(ip.Headroom + len(msg))
	pkt := (*buf)[:ip.Headroom+len(msg)]
	copy(pkt[ip.Headroom:], msg)
	err := c.s.host.Output(time.Now(), pkt, ip.ProtoICMP, c.s.Addr(), addr, false)
	c.s.frames.Put(buf)
	return err
}

// Close closes the socket and wakes its readers. A second Close returns
// net.ErrClosed.
func (c *ICMPEndpoint) Close() error {
	if !c.close() {
		return net.ErrClosed
	}
	c.s.icmp.mu.Lock()
	delete(c.s.icmp.socks, c)
	c.s.icmp.n.Store(int32(len(c.s.icmp.socks)))
	c.s.icmp.mu.Unlock()
	return nil
}
