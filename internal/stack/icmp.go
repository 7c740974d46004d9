package stack

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
)

// An ICMPEndpoint is an ICMP socket, as a raw IPPROTO_ICMP (or, for IPv6,
// IPPROTO_ICMPV6) socket is on Linux: it receives a copy of every ICMP
// message of its family addressed to the stack (from its peer only, when
// connected), without the IP header, and sends the ICMP messages it is
// given as the payload of an IP packet: ICMP for IPv4 checksum and all,
// ICMPv6 with its checksum computed here over the pseudo-header, as Linux
// does for every raw ICMPv6 socket (RFC 3542 §3.1). The stack still
// answers echo requests itself.
type ICMPEndpoint struct {
	s     *Stack
	v6    bool
	laddr netip.Addr // the bound address, or the stack's address of the family
	raddr netip.Addr // valid when connected
	packetQueue
}

// icmpTable holds the ICMP sockets; each gets every message.
type icmpTable struct {
	n     atomic.Int32 // len(socks), read without the lock on every message
	mu    sync.RWMutex
	socks map[*ICMPEndpoint]struct{}
}

// ListenICMP opens an ICMP socket of IPv6 (ICMPv6) or IPv4 bound to laddr
// (unspecified or invalid: any); with raddr valid it takes only that
// peer's messages and sends to it.
func (s *Stack) ListenICMP(v6 bool, laddr, raddr netip.Addr) (*ICMPEndpoint, error) {
	if s.isDone() {
		return nil, net.ErrClosed
	}
	if !laddr.IsValid() || laddr.IsUnspecified() {
		laddr = netip.IPv4Unspecified()
		if v6 {
			laddr = netip.IPv6Unspecified()
		}
		if raddr.IsValid() {
			if src, err := s.SourceAddr(raddr); err == nil {
				laddr = src
			}
		} else {
			for _, p := range s.Addrs() {
				if p.Addr().Is6() == v6 {
					laddr = p.Addr()
					break
				}
			}
		}
	}
	c := &ICMPEndpoint{s: s, v6: v6, laddr: laddr, raddr: raddr, packetQueue: newPacketQueue(s.cfg.Limits.UDPReceiveBuffer)}
	s.icmp.mu.Lock()
	if s.icmp.socks == nil {
		s.icmp.socks = make(map[*ICMPEndpoint]struct{})
	}
	s.icmp.socks[c] = struct{}{}
	s.icmp.n.Store(int32(len(s.icmp.socks)))
	s.icmp.mu.Unlock()
	return c, nil
}

// LocalAddr returns the socket's address.
func (c *ICMPEndpoint) LocalAddr() netip.Addr { return c.laddr }

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
		if c.v6 != src.Is6() || c.raddr.IsValid() && c.raddr != src {
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
	case !addr.IsValid() || addr.Is6() != c.v6:
		return &net.AddrError{Err: "address of the wrong family", Addr: addr.String()}
	case len(msg) < ip.ICMPHeaderLen:
		return &net.AddrError{Err: "ICMP message shorter than its header", Addr: addr.String()}
	case len(msg) > ip.IPv4MaxLen-ip.IPv4MinHeaderLen:
		return syscall.EMSGSIZE
	}
	src, proto := c.laddr, uint8(ip.ProtoICMP)
	if src.IsUnspecified() {
		var err error
		if src, err = c.s.SourceAddr(addr); err != nil {
			return err
		}
	}
	hr := headroom(addr)
	buf := c.s.frames.Get(hr + len(msg))
	pkt := (*buf)[:hr+len(msg)]
	m := pkt[hr:]
	copy(m, msg)
	if c.v6 {
		// RFC 4443 §2.3: the checksum covers the IPv6 pseudo-header.
		proto = ip.ProtoICMPv6
		m[2], m[3] = 0, 0
		sum := checksum.Checksum(m, checksum.Pseudo(src, addr, ip.ProtoICMPv6, len(m)))
		m[2], m[3] = byte(sum>>8), byte(sum)
	}
	err := c.s.host.Output(time.Now(), pkt, proto, src, addr, false)
	c.s.frames.Put(buf)
	return lostIfFull(err)
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
