package netstack

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/udp"
)

// defaultUDPReadBuffer is Linux's net.core.rmem_default: the bytes of
// payload a socket queues before it drops.
const defaultUDPReadBuffer = 212992

// udpTable demultiplexes datagrams to sockets by local port.
type udpTable struct {
	mu    sync.RWMutex
	ports portTable
	socks map[uint16]*UDPConn
	flows map[flowKey]*UDPConn // forwarded flows (Config.Forwarder)
}

// UDPConn is a UDP socket on a Stack: a net.PacketConn, and when made by
// Dial a net.Conn too, as *net.UDPConn is. Its methods are safe for
// concurrent use. Each socket queues up to its read buffer (SetReadBuffer)
// of received payload and drops, and counts, what does not fit.
type UDPConn struct {
	s      *Stack
	laddr  netip.AddrPort
	raddr  netip.AddrPort // valid when connected
	ready  chan struct{}  // a datagram or an error arrived
	rd, wd deadline

	mu      sync.Mutex
	queue   []datagram // FIFO; head at queue[0]
	queued  int        // payload bytes in queue
	rcvBuf  int
	softErr error // an ICMP error for a connected socket, reported once
	closed  bool

	// A forwarded flow (Forwarder.UDP) is keyed by both ends and expires.
	flow       bool
	idle       time.Duration
	idleTimer  *time.Timer
	lastActive atomic.Int64 // unix nanoseconds
}

type datagram struct {
	from netip.AddrPort
	data []byte
}

// ListenPacket announces on the local address. network must be "udp" or
// "udp4"; address is "host:port" where host is empty, 0.0.0.0 or the
// stack's address, and port 0 picks an ephemeral port.
func (s *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := s.ListenUDP(network, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenUDP is ListenPacket returning the concrete type.
func (s *Stack) ListenUDP(network, address string) (*UDPConn, error) {
	fail := func(err error) (*UDPConn, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ap, err := s.listenAddr(network, "udp", address)
	if err != nil {
		return fail(err)
	}
	c, err := s.newUDPConn(ap.Port(), netip.AddrPort{})
	if err != nil {
		return fail(err)
	}
	return c, nil
}

// dialUDP makes a connected socket to raddr.
func (s *Stack) dialUDP(network string, laddr, raddr netip.AddrPort) (*UDPConn, error) {
	if raddr.Addr().IsUnspecified() {
		// As Linux, a zero destination means this host.
		raddr = netip.AddrPortFrom(s.Addr(), raddr.Port())
	}
	if raddr.Port() == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: udpAddr(raddr), Err: &net.AddrError{Err: "missing port", Addr: raddr.String()}}
	}
	if err := s.bindAddr(laddr.Addr()); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: udpAddr(raddr), Err: err}
	}
	c, err := s.newUDPConn(laddr.Port(), raddr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: udpAddr(raddr), Err: err}
	}
	return c, nil
}

func (s *Stack) newUDPConn(port uint16, raddr netip.AddrPort) (*UDPConn, error) {
	select {
	case <-s.done:
		return nil, net.ErrClosed
	default:
	}
	t := &s.udp
	t.mu.Lock()
	defer t.mu.Unlock()
	p, err := t.ports.take(port, s.rand32)
	if err != nil {
		return nil, err
	}
	c := &UDPConn{
		s:      s,
		laddr:  netip.AddrPortFrom(s.Addr(), p),
		raddr:  raddr,
		ready:  make(chan struct{}, 1),
		rcvBuf: s.cfg.Limits.UDPReceiveBuffer,
	}
	if t.socks == nil {
		t.socks = make(map[uint16]*UDPConn)
	}
	t.socks[p] = c
	return c, nil
}

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
	var c *UDPConn
	if dst == s.Addr() || !s.cfg.forwarding() {
		s.udp.mu.RLock()
		c = s.udp.socks[h.DstPort()]
		s.udp.mu.RUnlock()
	}
	if (c == nil || (c.raddr.IsValid() && c.raddr != from)) && s.cfg.Forwarder != nil {
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

func (c *UDPConn) deliver(from netip.AddrPort, payload []byte) {
	c.mu.Lock()
	if c.closed || c.queued+len(payload) > c.rcvBuf {
		c.mu.Unlock()
		stats.Inc(&c.s.st.UDP.DropQueueFull)
		return
	}
	c.queue = append(c.queue, datagram{from: from, data: append([]byte(nil), payload...)})
	c.queued += len(payload)
	c.mu.Unlock()
	signal(c.ready)
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
	c.mu.Lock()
	c.softErr = e.Errno
	c.mu.Unlock()
	signal(c.ready)
}

// ReadFromUDPAddrPort reads one datagram into b, returning its size and
// source. A datagram larger than b is truncated, as recvfrom(2) without
// MSG_TRUNC does. It blocks until a datagram arrives, the read deadline
// passes (os.ErrDeadlineExceeded), or the socket closes (net.ErrClosed). On
// a connected socket an ICMP port unreachable from the peer makes the next
// read fail with ECONNREFUSED.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		c.mu.Lock()
		if c.closed { // closing wins over the deadline, as in package net
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opErr("read", net.ErrClosed)
		}
		if c.rd.passed() {
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if err := c.softErr; err != nil {
			c.softErr = nil
			c.mu.Unlock()
			return 0, netip.AddrPort{}, c.opErr("read", err)
		}
		if len(c.queue) > 0 {
			d := c.queue[0]
			c.queue[0] = datagram{}
			c.queue = c.queue[1:]
			c.queued -= len(d.data)
			more := len(c.queue) > 0
			c.mu.Unlock()
			if more {
				signal(c.ready) // let another reader in
			}
			return copy(b, d.data), d.from, nil
		}
		c.mu.Unlock()
		select {
		case <-c.ready:
		case <-c.rd.wait(): // the loop tells a Close from the deadline
		case <-c.s.done:
			return 0, netip.AddrPort{}, c.opErr("read", net.ErrClosed)
		}
	}
}

// ReadFrom implements net.PacketConn.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, udpAddr(from), nil
}

// ReadFromUDP is ReadFrom returning a *net.UDPAddr.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, from, err := c.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, udpAddr(from), nil
}

// Read reads a datagram from a connected socket (net.Conn).
func (c *UDPConn) Read(b []byte) (int, error) {
	n, _, err := c.ReadFromUDPAddrPort(b)
	return n, err
}

// WriteToUDPAddrPort sends b as one datagram to addr. Datagrams larger than
// the MTU are fragmented; larger than 65507 bytes they fail with EMSGSIZE.
// It does not block. On a connected socket it fails with EISCONN, as
// package net's does.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if c.raddr.IsValid() && addr != c.raddr {
		return 0, c.opErrTo("write", addr, syscall.EISCONN)
	}
	return c.writeTo(b, addr)
}

func (c *UDPConn) writeTo(b []byte, addr netip.AddrPort) (int, error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	c.mu.Lock()
	closed := c.closed
	softErr := c.softErr
	if softErr != nil && c.raddr.IsValid() {
		c.softErr = nil
	}
	c.mu.Unlock()
	switch {
	case closed:
		return 0, c.opErrTo("write", addr, net.ErrClosed)
	case c.wd.passed():
		return 0, c.opErrTo("write", addr, os.ErrDeadlineExceeded)
	case softErr != nil && c.raddr.IsValid():
		return 0, c.opErrTo("write", addr, softErr)
	case !addr.Addr().Is4() || addr.Port() == 0:
		return 0, c.opErrTo("write", addr, &net.AddrError{Err: "invalid IPv4 address or port", Addr: addr.String()})
	case len(b) > udp.MaxPayload:
		return 0, c.opErrTo("write", addr, syscall.EMSGSIZE)
	}
	buf := c.s.getBuf(ip.Headroom + udp.HeaderLen + len(b))
	pkt := (*buf)[:ip.Headroom+udp.HeaderLen+len(b)]
	copy(pkt[ip.Headroom+udp.HeaderLen:], b)
	dg := pkt[ip.Headroom:]
	udp.Encode(dg, c.laddr.Port(), addr.Port(), checksum.Pseudo(c.laddr.Addr(), addr.Addr(), ip.ProtoUDP, len(dg)))
	err := c.s.host.Output(time.Now(), pkt, ip.ProtoUDP, c.laddr.Addr(), addr.Addr(), false)
	c.s.putBuf(buf)
	if err != nil {
		return 0, c.opErrTo("write", addr, err)
	}
	stats.Inc(&c.s.st.UDP.DatagramsOut)
	c.touch()
	return len(b), nil
}

// WriteTo implements net.PacketConn; addr must be a *net.UDPAddr.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.opErrTo("write", netip.AddrPort{}, &net.AddrError{Err: "not a *net.UDPAddr", Addr: addr.String()})
	}
	return c.WriteToUDPAddrPort(b, ua.AddrPort())
}

// WriteToUDP is WriteTo taking a *net.UDPAddr.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	return c.WriteToUDPAddrPort(b, addr.AddrPort())
}

// Write sends b to the peer of a connected socket (net.Conn).
func (c *UDPConn) Write(b []byte) (int, error) {
	if !c.raddr.IsValid() {
		return 0, c.opErr("write", syscall.EDESTADDRREQ)
	}
	return c.writeTo(b, c.raddr)
}

// Close closes the socket; blocked reads return net.ErrClosed.
func (c *UDPConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.closed = true
	c.queue, c.queued = nil, 0
	c.mu.Unlock()
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
	c.rd.stop()
	c.wd.stop()
	signal(c.ready)
	return nil
}

// LocalAddr returns the local address, a *net.UDPAddr.
func (c *UDPConn) LocalAddr() net.Addr { return udpAddr(c.laddr) }

// RemoteAddr returns the peer of a connected socket, or nil.
func (c *UDPConn) RemoteAddr() net.Addr {
	if !c.raddr.IsValid() {
		return nil
	}
	return udpAddr(c.raddr)
}

// SetDeadline sets the read and write deadlines. After Close it fails with
// net.ErrClosed.
func (c *UDPConn) SetDeadline(t time.Time) error { return c.setDeadline(t, &c.rd, &c.wd) }

// SetReadDeadline sets the deadline for future and pending reads.
func (c *UDPConn) SetReadDeadline(t time.Time) error { return c.setDeadline(t, &c.rd) }

// SetWriteDeadline sets the deadline for writes. Writes never block, so it
// only makes writes after t fail.
func (c *UDPConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, &c.wd) }

func (c *UDPConn) setDeadline(t time.Time, ds ...*deadline) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return c.opErr("set", net.ErrClosed)
	}
	for _, d := range ds {
		d.set(t)
	}
	return nil
}

// SetReadBuffer sets how many bytes of payload the socket queues.
func (c *UDPConn) SetReadBuffer(n int) error {
	if n <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	c.mu.Lock()
	c.rcvBuf = n
	c.mu.Unlock()
	return nil
}

// SetWriteBuffer is accepted for compatibility; sends are not buffered.
func (c *UDPConn) SetWriteBuffer(n int) error {
	if n <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	return nil
}

func (c *UDPConn) opErr(op string, err error) error {
	return c.opErrTo(op, c.raddr, err)
}

func (c *UDPConn) opErrTo(op string, to netip.AddrPort, err error) error {
	var addr net.Addr
	if to.IsValid() {
		addr = udpAddr(to)
	}
	return &net.OpError{Op: op, Net: "udp", Source: udpAddr(c.laddr), Addr: addr, Err: errorFor(err)}
}

func udpAddr(ap netip.AddrPort) *net.UDPAddr { return net.UDPAddrFromAddrPort(ap) }
