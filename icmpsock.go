package netstack

import (
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/stack"
)

// IPConn is an ICMP socket on a Stack, what ListenPacket("ip4:icmp", ...)
// or ListenPacket("ip6:ipv6-icmp", ...) returns: a net.PacketConn as
// package net's *net.IPConn is for that network, so golang.org/x/net/icmp
// works over it. ReadFrom returns each ICMP message of the socket's family
// addressed to the stack (a copy: the stack still answers echo requests
// itself), without its IP header; WriteTo sends an ICMP message to a
// *net.IPAddr: for IPv4 checksum included, for ICMPv6 with the checksum
// computed by the stack, as Linux does (x/net/icmp leaves it zero). Made
// by Dial, it is a net.Conn that takes and sends only its peer's
// messages. Its methods are safe for concurrent use.
type IPConn struct {
	ep     *stack.ICMPEndpoint
	v      addrView
	net    string
	rd, wd deadline
}

// icmpNetwork reports whether network names ICMP as package net spells
// it ("ip4:icmp" and "ip4:1" for IPv4, "ip6:ipv6-icmp" and "ip6:58" for
// ICMPv6, with "ip:" for the family the protocol implies), which family
// (v6), and whether it is an IP network at all.
func icmpNetwork(network string) (icmp, v6, isIP bool) {
	fam, proto, ok := strings.Cut(network, ":")
	if !ok || fam != "ip" && fam != "ip4" && fam != "ip6" {
		return false, false, false
	}
	switch proto {
	case "icmp", "1":
		return fam != "ip6", false, true
	case "ipv6-icmp", "58":
		return fam != "ip4", true, true
	}
	return false, false, true
}

// listenICMP opens an ICMP socket bound to address (empty, unspecified or
// one of the stack's addresses), connected to raddr if it is valid.
func (s *Stack) listenICMP(op, network, address string, raddr netip.Addr) (*IPConn, error) {
	v := s.view()
	fail := func(err error) (*IPConn, error) {
		var to net.Addr
		if raddr.IsValid() {
			to = v.ip(raddr)
		}
		return nil, opError(op, network, nil, to, err)
	}
	icmp, v6, _ := icmpNetwork(network)
	if !icmp {
		return fail(net.UnknownNetworkError(network))
	}
	var laddr netip.Addr
	if address != "" {
		a, err := s.parseAddr(address)
		if err != nil {
			return fail(err)
		}
		if !a.IsUnspecified() && a.Is6() != v6 {
			return fail(errNoSuitableAddress(address))
		}
		if err := s.e.BindAddr(a, false); err != nil {
			return fail(err)
		}
		laddr = a
	}
	if raddr.IsValid() && raddr.Is6() != v6 {
		return fail(errNoSuitableAddress(raddr.String()))
	}
	ep, err := s.e.ListenICMP(v6, laddr, raddr)
	if err != nil {
		return fail(err)
	}
	return &IPConn{ep: ep, v: v, net: network}, nil
}

// ReadFrom reads one ICMP message into b, truncated if longer, and returns
// its size and sender, a *net.IPAddr. It blocks until a message arrives,
// the read deadline passes or the socket closes.
func (c *IPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.read(b)
	if err != nil {
		return n, nil, err
	}
	return n, from, nil
}

// Read reads one ICMP message from a connected socket (net.Conn).
func (c *IPConn) Read(b []byte) (int, error) {
	n, _, err := c.read(b)
	return n, err
}

func (c *IPConn) read(b []byte) (int, *net.IPAddr, error) {
	for {
		if err := unusable(c.ep.Closed(), &c.rd); err != nil {
			return 0, nil, c.opErr("read", err)
		}
		n, from, err, ready := c.ep.Read(b)
		switch {
		case err != nil:
			return 0, nil, c.opErr("read", err)
		case ready == nil:
			return n, c.v.ip(from.Addr()), nil
		}
		select {
		case <-ready:
		case <-c.rd.wait(): // the loop tells a Close from the deadline
		case <-c.ep.Done():
			return 0, nil, c.opErr("read", net.ErrClosed)
		}
	}
}

// WriteTo sends b, a whole ICMP message, to addr, a *net.IPAddr. On a
// connected socket it fails with EISCONN, as package net's does.
func (c *IPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ia, ok := addr.(*net.IPAddr)
	if !ok {
		return 0, c.opErr("write", &net.AddrError{Err: "not a *net.IPAddr", Addr: addr.String()})
	}
	a, ok := netip.AddrFromSlice(ia.IP)
	if !ok {
		return 0, c.opErr("write", &net.AddrError{Err: "invalid IP address", Addr: ia.String()})
	}
	a, err := c.v.unzone(a.WithZone(ia.Zone))
	if err != nil {
		return 0, c.opErr("write", err)
	}
	if c.ep.RemoteAddr().IsValid() {
		return 0, c.opErr("write", syscall.EISCONN)
	}
	return c.writeTo(b, a)
}

// Write sends b, a whole ICMP message, to the peer of a connected socket.
func (c *IPConn) Write(b []byte) (int, error) {
	raddr := c.ep.RemoteAddr()
	if !raddr.IsValid() {
		return 0, c.opErr("write", syscall.EDESTADDRREQ)
	}
	return c.writeTo(b, raddr)
}

func (c *IPConn) writeTo(b []byte, addr netip.Addr) (int, error) {
	err := unusable(c.ep.Closed(), &c.wd)
	if err == nil {
		err = c.ep.WriteTo(b, addr)
	}
	if err != nil {
		return 0, opError("write", c.net, c.LocalAddr(), c.v.ip(addr), err)
	}
	return len(b), nil
}

// Close closes the socket; blocked reads return net.ErrClosed.
func (c *IPConn) Close() error {
	if err := c.ep.Close(); err != nil {
		return c.opErr("close", err)
	}
	c.rd.stop()
	c.wd.stop()
	return nil
}

// LocalAddr returns the socket's address, a *net.IPAddr: the bound one,
// else the stack's first of the family.
func (c *IPConn) LocalAddr() net.Addr { return c.v.ip(c.ep.LocalAddr()) }

// RemoteAddr returns the peer of a connected socket, or nil.
func (c *IPConn) RemoteAddr() net.Addr {
	if raddr := c.ep.RemoteAddr(); raddr.IsValid() {
		return c.v.ip(raddr)
	}
	return nil
}

// SetDeadline sets the read and write deadlines. After Close it fails with
// net.ErrClosed.
func (c *IPConn) SetDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.rd, &c.wd))
}

// SetReadDeadline sets the deadline for future and pending reads.
func (c *IPConn) SetReadDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.rd))
}

// SetWriteDeadline sets the deadline for writes, which never block.
func (c *IPConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.wd))
}

// SetReadBuffer sets how many bytes of messages the socket queues.
func (c *IPConn) SetReadBuffer(n int) error {
	if n <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	c.ep.SetReadBuffer(n)
	return nil
}

func (c *IPConn) opErr(op string, err error) error {
	if err == nil {
		return nil // build no addresses: the setters call this on success
	}
	return opError(op, c.net, c.LocalAddr(), c.RemoteAddr(), err)
}
