package stack

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/udp"
)

// maxUDPPayload6 is the largest UDP payload over IPv6 without a
// jumbogram: a 65535-byte IPv6 payload less the 8-byte UDP header.
const maxUDPPayload6 = 0xffff - udp.HeaderLen

// udpTable demultiplexes datagrams to sockets by local port and address,
// and to forwarded flows by both ends.
type udpTable struct {
	mu    sync.RWMutex
	ports portTable
	socks map[uint16][]*UDPEndpoint // a port's sockets, on different bindings
	flows map[tcpKey]*UDPEndpoint   // forwarded flows (Config.Forward)
}

// sockFor returns the socket on port that takes a datagram from→dst: as
// Linux scores them (udp4_lib_lookup2), one connected to from before one
// that is not, a specific address before a wildcard; nil if none. With
// exact, only a socket bound to dst itself takes it (dst is not the
// stack's: a forwarder's). t.mu is held.
func (t *udpTable) sockFor(port uint16, from netip.AddrPort, dst netip.Addr, exact bool) *UDPEndpoint {
	var best *UDPEndpoint
	bestScore := -1
	for _, c := range t.socks[port] {
		if !c.bind.Takes(dst) || c.raddr.IsValid() && c.raddr != from || exact && c.bind.Addr != dst {
			continue
		}
		score := 0
		if !c.bind.Addr.IsUnspecified() {
			score += 2
		} else if !c.bind.Dual {
			score++
		}
		if c.raddr.IsValid() {
			score += 4
		}
		if score > bestScore {
			best, bestScore = c, score
		}
	}
	return best
}

// A UDPEndpoint is a UDP socket: a bounded queue of received datagrams
// and, when connected, the soft error an ICMP message left for it.
type UDPEndpoint struct {
	s     *Stack
	bind  Binding
	laddr netip.AddrPort // the bound address and port; for a connected socket, the source address to raddr
	raddr netip.AddrPort // valid when connected
	packetQueue

	// A forwarded flow (Forward.UDP) is keyed by both ends and expires; a
	// full-cone one by its source (raddr) alone, and its datagrams are
	// queued with their destinations, which its writes send from.
	flow       bool
	cone       bool
	idle       time.Duration
	idleTimer  *time.Timer
	lastActive atomic.Int64 // unix nanoseconds
}

// ListenUDP binds port (0: an ephemeral one) of b; with raddr valid the
// socket is connected to it and, as connect(2) does, a wildcard b narrows
// to the source address SourceAddr picks for raddr.
func (s *Stack) ListenUDP(b Binding, port uint16, raddr netip.AddrPort) (*UDPEndpoint, error) {
	if s.isDone() {
		return nil, net.ErrClosed
	}
	if raddr.IsValid() {
		switch {
		case !b.Addr.IsValid() || b.Addr.IsUnspecified():
			src, err := s.SourceAddr(raddr.Addr())
			if err != nil {
				return nil, err
			}
			b = Binding{Addr: src}
		case b.Addr.Is4() != raddr.Addr().Is4():
			return nil, syscall.EAFNOSUPPORT
		}
	}
	t := &s.udp
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.ports.take(port, b, s.rand32)
	if err != nil {
		return nil, err
	}
	c := &UDPEndpoint{
		s:           s,
		bind:        b,
		laddr:       netip.AddrPortFrom(b.Addr, p),
		raddr:       raddr,
		packetQueue: newPacketQueue(s.cfg.Limits.UDPReceiveBuffer),
	}
	if t.socks == nil {
		t.socks = make(map[uint16][]*UDPEndpoint)
	}
	t.socks[p] = append(t.socks[p], c)
	return c, nil
}

// LocalAddr returns the socket's address.
func (c *UDPEndpoint) LocalAddr() netip.AddrPort { return c.laddr }

// RemoteAddr returns the peer of a connected socket; invalid otherwise.
func (c *UDPEndpoint) RemoteAddr() netip.AddrPort { return c.raddr }

// Cone reports whether the socket is a full-cone forwarded flow: it reads
// datagrams with their destinations and writes to its source from any
// address.
func (c *UDPEndpoint) Cone() bool { return c.cone }

// Done is closed when the stack closes.
func (c *UDPEndpoint) Done() <-chan struct{} { return c.s.done }

// inputUDP is the IP layer's UDP handler. It reports true when no socket
// has the port, so the IP layer answers with port unreachable.
func (s *Stack) inputUDP(now time.Time, src, dst netip.Addr, b []byte) bool {
	h, payload, err := udp.Parse(b, func(n int) uint32 { return checksum.Pseudo(src, dst, ip.ProtoUDP, n) })
	if err != nil {
		if err == udp.ErrBadChecksum {
			stats.Inc(&s.st.UDP.DropBadChecksum)
		} else {
			stats.Inc(&s.st.UDP.DropMalformed)
		}
		return false
	}
	stats.Inc(&s.st.UDP.DatagramsIn)
	from := netip.AddrPortFrom(src, h.SrcPort())
	s.udp.mu.RLock()
	c := s.udp.sockFor(h.DstPort(), from, dst, s.cfg.Forward.forwarding() && !s.HasAddr(dst))
	s.udp.mu.RUnlock()
	if c == nil && s.cfg.Forward != nil {
		if s.forwardUDP(from, netip.AddrPortFrom(dst, h.DstPort()), payload, b[:h.Length()]) {
			return false
		}
	}
	if c == nil {
		stats.Inc(&s.st.UDP.DropNoPort)
		return true
	}
	c.deliver(from, payload)
	return false
}

func (c *UDPEndpoint) deliver(from netip.AddrPort, payload []byte) {
	if !c.packetQueue.deliver(from, payload) {
		stats.Inc(&c.s.st.UDP.DropQueueFull)
	}
}

// udpError delivers an ICMP error to a connected socket whose peer it names
// (Linux reports errors only to connected UDP sockets unless IP_RECVERR).
func (s *Stack) udpError(e *ip.ErrorInfo) {
	if len(e.Transport) < udp.HeaderLen {
		return
	}
	h := udp.Header(e.Transport[:udp.HeaderLen])
	to := netip.AddrPortFrom(e.Dst, h.DstPort())
	s.udp.mu.RLock()
	var c *UDPEndpoint
	for _, sc := range s.udp.socks[h.SrcPort()] {
		if sc.raddr == to && sc.laddr.Addr() == e.Src {
			c = sc
		}
	}
	s.udp.mu.RUnlock()
	if c != nil {
		c.setSoftErr(e.Errno)
	}
}

// WriteTo sends b as one datagram to addr, fragmented when larger than the
// MTU, from the socket's address (from a wildcard, the one SourceAddr
// picks). It fails with net.ErrClosed after Close, with a connected
// socket's pending soft error, with EAFNOSUPPORT to a family the socket
// does not take, and with EMSGSIZE beyond the largest payload of addr's
// family: udp.MaxPayload for IPv4, 65527 for IPv6, whose payload length
// does not count its 40-byte header (RFC 8200 §3; no jumbograms). A
// full-cone flow sends b to its source from addr instead.
func (c *UDPEndpoint) WriteTo(b []byte, addr netip.AddrPort) error {
	closed, softErr := c.writeState(c.raddr.IsValid())
	switch {
	case closed:
		return net.ErrClosed
	case softErr != nil:
		return softErr
	case !addr.Addr().IsValid() || addr.Port() == 0,
		c.cone && (addr.Addr().IsMulticast() || addr.Addr().IsUnspecified()):
		return &net.AddrError{Err: "invalid address or port", Addr: addr.String()}
	case !c.flow && c.bind.Addr.Is4() != addr.Addr().Is4() && !(c.bind.Dual && addr.Addr().Is4()),
		c.cone && addr.Addr().Is4() != c.raddr.Addr().Is4():
		return syscall.EAFNOSUPPORT
	case len(b) > udp.MaxPayload && addr.Addr().Is4() || len(b) > maxUDPPayload6:
		return syscall.EMSGSIZE
	}
	if c.cone {
		// A full-cone flow answers its source from addr.
		if err := c.s.sendUDP(addr, c.raddr, b); err != nil {
			return err
		}
		c.touch()
		return nil
	}
	src := c.laddr.Addr()
	if src.IsUnspecified() {
		var err error
		if src, err = c.s.SourceAddr(addr.Addr()); err != nil {
			return err
		}
	}
	if err := c.s.sendUDP(netip.AddrPortFrom(src, c.laddr.Port()), addr, b); err != nil {
		return err
	}
	c.touch()
	return nil
}

// sendUDP sends b as one datagram from→to. from's address is used as it
// is, the unspecified one too (a DHCP client's before it has a lease).
func (s *Stack) sendUDP(from, to netip.AddrPort, b []byte) error {
	hr := headroom(to.Addr())
	buf := s.frames.Get(hr + udp.HeaderLen + len(b))
	pkt := (*buf)[:hr+udp.HeaderLen+len(b)]
	copy(pkt[hr+udp.HeaderLen:], b)
	dg := pkt[hr:]
	udp.Encode(dg, from.Port(), to.Port(), checksum.Pseudo(from.Addr(), to.Addr(), ip.ProtoUDP, len(dg)))
	err := s.host.Output(time.Now(), pkt, ip.ProtoUDP, from.Addr(), to.Addr(), false)
	s.frames.Put(buf)
	err = lostIfFull(err)
	if err == nil {
		stats.Inc(&s.st.UDP.DatagramsOut)
	}
	return err
}

// Close closes the socket and wakes its readers. A second Close returns
// net.ErrClosed.
func (c *UDPEndpoint) Close() error {
	if !c.close() {
		return net.ErrClosed
	}
	t := &c.s.udp
	t.mu.Lock()
	switch {
	case c.cone:
		delete(t.flows, keyOf(netip.AddrPort{}, c.raddr))
	case c.flow:
		delete(t.flows, keyOf(c.laddr, c.raddr))
	default:
		p := c.laddr.Port()
		if ss := t.socks[p]; len(ss) > 0 {
			if ss = slices.DeleteFunc(ss, func(o *UDPEndpoint) bool { return o == c }); len(ss) == 0 {
				delete(t.socks, p)
			} else {
				t.socks[p] = ss
			}
		}
		t.ports.release(p, c.bind)
	}
	t.mu.Unlock()
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
	return nil
}

// FlowCount returns the number of forwarded UDP flows.
func (s *Stack) FlowCount() int {
	s.udp.mu.RLock()
	defer s.udp.mu.RUnlock()
	return len(s.udp.flows)
}
