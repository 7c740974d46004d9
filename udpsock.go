package netstack

import (
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/stack"
)

// UDPConn is a UDP socket on a Stack: a net.PacketConn, and when made by
// Dial a net.Conn too, as *net.UDPConn is. Its methods are safe for
// concurrent use. Each socket queues up to its read buffer (SetReadBuffer)
// of received payload and drops, and counts, what does not fit.
type UDPConn struct {
	ep     *stack.UDPEndpoint
	v      addrView // how addresses show: mapped on a dual-stack socket
	net    string
	rd, wd deadline
}

// ListenPacket announces on the local address, as net.ListenPacket does.
// For network "udp", "udp4" or "udp6", address is "host:port" where host
// is empty, an unspecified address or one of the stack's addresses, and
// port 0 picks an ephemeral port; the result is a *UDPConn. As with
// Listen, "udp" with an unspecified host is a dual-stack socket
// (LocalAddr [::]:port) that receives from and sends to both families,
// IPv4 peers' addresses in their IPv4-mapped form. For "ip4:icmp" (or
// "ip4:1") and "ip6:ipv6-icmp" (or "ip6:58"), address is a host alone
// and the result is an ICMP or ICMPv6 socket, an *IPConn.
func (s *Stack) ListenPacket(network, address string) (net.PacketConn, error) {
	if _, _, isIP := icmpNetwork(network); isIP {
		c, err := s.listenICMP("listen", network, address, netip.Addr{})
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := s.ListenUDP(network, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ListenUDP is ListenPacket returning the concrete type.
func (s *Stack) ListenUDP(network, address string) (*UDPConn, error) {
	b, port, err := s.listenBinding(network, "udp", address)
	if err != nil {
		return nil, opError("listen", network, nil, nil, err)
	}
	ep, err := s.e.ListenUDP(b, port, netip.AddrPort{})
	if err != nil {
		return nil, opError("listen", network, nil, s.view().udp(netip.AddrPortFrom(b.Addr, port)), err)
	}
	return &UDPConn{ep: ep, v: addrView{zone: s.zone, mapped: b.Dual}, net: network}, nil
}

// dialUDP makes a connected socket from laddr (unspecified: the source
// address for raddr) to raddr.
func (s *Stack) dialUDP(network string, laddr, raddr netip.AddrPort) (*UDPConn, error) {
	v := s.view()
	fail := func(err error) (*UDPConn, error) {
		return nil, opError("dial", network, nil, v.udp(raddr), err)
	}
	if raddr.Port() == 0 {
		return fail(&net.AddrError{Err: "missing port", Addr: raddr.String()})
	}
	if err := s.e.BindAddr(laddr.Addr(), true); err != nil {
		return fail(err)
	}
	ep, err := s.e.ListenUDP(stack.Binding{Addr: laddr.Addr()}, laddr.Port(), raddr)
	if err != nil {
		return fail(err)
	}
	return &UDPConn{ep: ep, v: v, net: network}, nil
}

// ReadFromUDPAddrPort reads one datagram into b, returning its size and
// source. A datagram larger than b is truncated, as recvfrom(2) without
// MSG_TRUNC does. It blocks until a datagram arrives, the read deadline
// passes (os.ErrDeadlineExceeded), or the socket closes (net.ErrClosed). On
// a connected socket an ICMP port unreachable from the peer makes the next
// read fail with ECONNREFUSED.
func (c *UDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		if err := unusable(c.ep.Closed(), &c.rd); err != nil {
			return 0, netip.AddrPort{}, c.opErr("read", err)
		}
		n, from, err, ready := c.ep.Read(b)
		switch {
		case err != nil:
			return 0, netip.AddrPort{}, c.opErr("read", err)
		case ready == nil:
			return n, c.v.addrPort(from), nil
		}
		select {
		case <-ready:
		case <-c.rd.wait(): // the loop tells a Close from the deadline
		case <-c.ep.Done():
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

// WriteToUDPAddrPort sends b as one datagram to addr. Datagrams go without
// DF, as Go's own UDP sockets send them: one larger than the MTU (or than
// the path MTU, once an ICMP message has taught it) is fragmented; larger
// than 65507 bytes to IPv4 (65527 to IPv6) it fails with EMSGSIZE.
// It does not block. On a connected socket it fails with EISCONN, as
// package net's does.
func (c *UDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	a, err := c.v.unzonePort(addr)
	if err != nil {
		return 0, c.opErrTo("write", addr, err)
	}
	if raddr := c.ep.RemoteAddr(); raddr.IsValid() && a != raddr && !c.ep.Cone() {
		return 0, c.opErrTo("write", addr, syscall.EISCONN)
	}
	return c.writeTo(b, a)
}

func (c *UDPConn) writeTo(b []byte, addr netip.AddrPort) (int, error) {
	err := unusable(c.ep.Closed(), &c.wd)
	if err == nil {
		err = c.ep.WriteTo(b, addr)
	}
	if err != nil {
		return 0, c.opErrTo("write", addr, err)
	}
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

// Write sends b to the peer of a connected socket (net.Conn); on a
// full-cone flow, from its LocalAddr.
func (c *UDPConn) Write(b []byte) (int, error) {
	raddr := c.ep.RemoteAddr()
	switch {
	case !raddr.IsValid():
		return 0, c.opErr("write", syscall.EDESTADDRREQ)
	case c.ep.Cone():
		raddr = c.ep.LocalAddr()
	}
	return c.writeTo(b, raddr)
}

// Close closes the socket; blocked reads return net.ErrClosed.
func (c *UDPConn) Close() error {
	if err := c.ep.Close(); err != nil {
		return c.opErr("close", err)
	}
	c.rd.stop()
	c.wd.stop()
	return nil
}

// LocalAddr returns the local address, a *net.UDPAddr.
func (c *UDPConn) LocalAddr() net.Addr {
	ap := c.ep.LocalAddr()
	if ap.Addr().IsUnspecified() {
		return addrView{}.udp(ap) // 0.0.0.0 or [::], never mapped
	}
	return c.v.udp(ap)
}

// RemoteAddr returns the peer of a connected socket, or nil.
func (c *UDPConn) RemoteAddr() net.Addr {
	raddr := c.ep.RemoteAddr()
	if !raddr.IsValid() {
		return nil
	}
	return c.v.udp(raddr)
}

// SetDeadline sets the read and write deadlines. After Close it fails with
// net.ErrClosed.
func (c *UDPConn) SetDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.rd, &c.wd))
}

// SetReadDeadline sets the deadline for future and pending reads.
func (c *UDPConn) SetReadDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.rd))
}

// SetWriteDeadline sets the deadline for writes. Writes never block, so it
// only makes writes after t fail.
func (c *UDPConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.wd))
}

// SetReadBuffer sets how many bytes of payload the socket queues.
func (c *UDPConn) SetReadBuffer(n int) error {
	if n <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	c.ep.SetReadBuffer(n)
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
	return c.opErrTo(op, c.ep.RemoteAddr(), err)
}

func (c *UDPConn) opErrTo(op string, to netip.AddrPort, err error) error {
	if err == nil {
		return nil // build no addresses: the setters call this on success
	}
	var addr net.Addr
	if to.IsValid() {
		addr = c.v.udp(to)
	}
	return opError(op, c.net, c.LocalAddr(), addr, err)
}

func udpAddr(ap netip.AddrPort) *net.UDPAddr { return net.UDPAddrFromAddrPort(ap) }
