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
	"github.com/gotcpip/netstack/internal/udp"
)

// udpTable demultiplexes datagrams to sockets by local port, and to
// forwarded flows by both ends.
type udpTable struct {
	mu    sync.RWMutex
	ports portTable
	socks map[uint16]*UDPEndpoint
	flows map[tcpKey]*UDPEndpoint // forwarded flows (Config.Forward)
}

// A UDPEndpoint is a UDP socket: a bounded queue of received datagrams
// and, when connected, the soft error an ICMP message left for it.
type UDPEndpoint struct {
	s     *Stack
	laddr netip.AddrPort
	raddr netip.AddrPort // valid when connected
	packetQueue

	// A forwarded flow (Forward.UDP) is keyed by both ends and expires.
	flow       bool
	idle       time.Duration
	idleTimer  *time.Timer
	lastActive atomic.Int64 // unix nanoseconds
}

// ListenUDP binds port (0: an ephemeral one) of the stack's address; with
// raddr valid the socket is connected to it.
func (s *Stack) ListenUDP(port uint16, raddr netip.AddrPort) (*UDPEndpoint, error) {
	if s.isDone() {
		return nil, net.ErrClosed
	}
	t := &s.udp
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.ports.take(port, s.rand32)
	if err != nil {
		return nil, err
	}
	c := &UDPEndpoint{
		s:           s,
		laddr:       netip.AddrPortFrom(s.Addr(), p),
		raddr:       raddr,
		packetQueue: newPacketQueue(s.cfg.Limits.UDPReceiveBuffer),
	}
	if t.socks == nil {
		t.socks = make(map[uint16]*UDPEndpoint)
	}
	t.socks[p] = c
	return c, nil
}

// LocalAddr returns the socket's address.
func (c *UDPEndpoint) LocalAddr() netip.AddrPort { return c.laddr }

// RemoteAddr returns the peer of a connected socket; invalid otherwise.
func (c *UDPEndpoint) RemoteAddr() netip.AddrPort { return c.raddr }

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
	var c *UDPEndpoint
	if dst == s.Addr() || !s.cfg.Forward.forwarding() {
		s.udp.mu.RLock()
		c = s.udp.socks[h.DstPort()]
		s.udp.mu.RUnlock()
	}
	if (c == nil || (c.raddr.IsValid() && c.raddr != from)) && s.cfg.Forward != nil {
		if s.forwardUDP(from, netip.AddrPortFrom(dst, h.DstPort()), payload, b[:h.Length()]) {
			return false
		}
	}
	if c == nil || (c.raddr.IsValid() && c.raddr != from) {
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
	s.udp.mu.RLock()
	c := s.udp.socks[h.SrcPort()]
	s.udp.mu.RUnlock()
	if c == nil || c.raddr != netip.AddrPortFrom(e.Dst, h.DstPort()) {
		return
	}
	c.setSoftErr(e.Errno)
}

// WriteTo sends b as one datagram to addr, fragmented when larger than the
// MTU. It fails with net.ErrClosed after Close, with a connected socket's
// pending soft error, and with EMSGSIZE beyond udp.MaxPayload.
func (c *UDPEndpoint) WriteTo(b []byte, addr netip.AddrPort) error {
	closed, softErr := c.writeState(c.raddr.IsValid())
	switch {
	case closed:
		return net.ErrClosed
	case softErr != nil:
		return softErr
	case !addr.Addr().Is4() || addr.Port() == 0:
		return &net.AddrError{Err: "invalid IPv4 address or port", Addr: addr.String()}
	case len(b) > udp.MaxPayload:
		return syscall.EMSGSIZE
	}
	buf := c.s.frames.Get(ip.Headroom + udp.HeaderLen + len(b))
	pkt := (*buf)[:ip.Headroom+udp.HeaderLen+len(b)]
	copy(pkt[ip.Headroom+udp.HeaderLen:], b)
	dg := pkt[ip.Headroom:]
	udp.Encode(dg, c.laddr.Port(), addr.Port(), checksum.Pseudo(c.laddr.Addr(), addr.Addr(), ip.ProtoUDP, len(dg)))
	err := c.s.host.Output(time.Now(), pkt, ip.ProtoUDP, c.laddr.Addr(), addr.Addr(), false)
	c.s.frames.Put(buf)
	if err != nil {
		return err
	}
	stats.Inc(&c.s.st.UDP.DatagramsOut)
	c.touch()
	return nil
}

// Close closes the socket and wakes its readers. A second Close returns
// net.ErrClosed.
func (c *UDPEndpoint) Close() error {
	if !c.close() {
		return net.ErrClosed
	}
	t := &c.s.udp
	t.mu.Lock()
	if c.flow {
		delete(t.flows, keyOf(c.laddr, c.raddr))
	} else {
		delete(t.socks, c.laddr.Port())
		t.ports.release(c.laddr.Port())
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
