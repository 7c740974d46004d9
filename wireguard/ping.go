package netstack

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	ns "github.com/gotcpip/netstack"
)

// PingAddr is the address of a ping socket: an IP address, as
// wireguard-go's netstack.PingAddr is.
type PingAddr struct{ addr netip.Addr }

// PingAddrFromAddr returns the PingAddr of addr.
func PingAddrFromAddr(addr netip.Addr) *PingAddr { return &PingAddr{addr} }

// String returns the address, as netip.Addr's String does.
func (a PingAddr) String() string { return a.addr.String() }

// Network returns "ping4" for an IPv4 address, "ping6" for an IPv6 one and
// "ping" for the zero PingAddr.
func (a PingAddr) Network() string {
	switch {
	case a.addr.Is4():
		return "ping4"
	case a.addr.Is6():
		return "ping6"
	}
	return "ping"
}

// Addr returns the address.
func (a PingAddr) Addr() netip.Addr { return a.addr }

// PingConn is a ping socket, as Linux's unprivileged ICMP sockets
// (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6) and wireguard-go's
// netstack.PingConn are: a net.Conn and net.PacketConn that sends ICMP
// echo requests and receives the echo replies to them, over IPv4 (ICMP,
// RFC 792) or IPv6 (ICMPv6, RFC 4443), one family per socket. Its methods
// are safe for concurrent use.
//
// Each PingConn has its own echo identifier, picked at random when it is
// made and unique among the PingConns of its Net. Write and WriteTo take a
// whole ICMP message, header included, which must be an echo request (type
// 8 for IPv4, 128 for IPv6; code 0); they replace its identifier with the
// socket's and fill in its checksum (for ICMPv6 the stack computes it over
// the pseudo-header), so the caller sets only the sequence number and
// data. Read and ReadFrom return the echo replies (type 0 for IPv4, 129
// for IPv6) that carry the socket's identifier, header included and
// without the IP header, each from its sender, a *PingAddr; a connected
// PingConn (DialPing with a remote address) takes only its peer's. Every
// other ICMP message is not for the socket: the stack answers echo
// requests itself.
//
// Deadlines and errors are package net's: a Read past its deadline fails
// with an error wrapping os.ErrDeadlineExceeded, one after Close with
// net.ErrClosed, each a *net.OpError. There wireguard-go's differs:
// its errors are strings, SetWriteDeadline is not implemented, a Read
// after Close reports the deadline, a second Close returns nil, and a
// reply queued before ReadFrom is called waits there for the next one.
// WriteTo here also takes the PingAddr value RemoteAddr returns.
type PingConn struct {
	ipc          *ns.IPConn
	n            *Net
	id           uint16
	v6           bool // ICMPv6
	laddr, raddr PingAddr
}

// DialPingAddr returns a ping socket bound to laddr (its address must be
// zero, unspecified or one of the Net's) and, when raddr is valid,
// connected to it, so that Write sends to raddr and Read returns its
// replies only. At least one of the two must be valid; the socket's family
// is theirs (both given, they must be of one family, else the dial fails
// with EAFNOSUPPORT): ICMPv6 for IPv6, ICMP for IPv4.
func (n *Net) DialPingAddr(laddr, raddr netip.Addr) (*PingConn, error) {
	laddr, raddr = laddr.Unmap(), raddr.Unmap()
	v6 := laddr.Is6() || raddr.Is6()
	fail := func(err error) (*PingConn, error) {
		oe := &net.OpError{Op: "dial", Net: pingNetwork(v6), Err: err}
		if laddr.IsValid() {
			oe.Source = PingAddr{laddr}
		}
		if raddr.IsValid() {
			oe.Addr = PingAddr{raddr}
		}
		return nil, oe
	}
	switch {
	case !laddr.IsValid() && !raddr.IsValid():
		return fail(errMissingAddress)
	case laddr.IsValid() && raddr.IsValid() && laddr.Is6() != raddr.Is6():
		return fail(syscall.EAFNOSUPPORT)
	}
	bind := ""
	switch {
	case laddr.IsValid():
		bind = laddr.String()
	case v6:
		laddr = netip.IPv6Unspecified()
	default:
		laddr = netip.IPv4Unspecified()
	}
	network := "ip4:icmp"
	if v6 {
		network = "ip6:ipv6-icmp"
	}
	// An unconnected socket for either case: PingConn filters by peer
	// itself, so that WriteTo also works on a connected one, as on Linux.
	pc, err := n.stack.ListenPacket(network, bind)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err
		}
		return fail(err)
	}
	id, ok := n.pingIDs.take()
	if !ok {
		pc.Close()
		return fail(syscall.EADDRINUSE)
	}
	c := &PingConn{ipc: pc.(*ns.IPConn), n: n, id: id, v6: v6, laddr: PingAddr{laddr}}
	if raddr.IsValid() {
		c.raddr = PingAddr{raddr}
	}
	return c, nil
}

// ListenPingAddr returns a ping socket bound to laddr (unspecified or one
// of the Net's addresses), which exchanges messages with any address of
// laddr's family through ReadFrom and WriteTo. As with wireguard-go's, the
// zero laddr is an error: pass netip.IPv4Unspecified() or
// netip.IPv6Unspecified() to listen on any address of the family.
func (n *Net) ListenPingAddr(laddr netip.Addr) (*PingConn, error) {
	return n.DialPingAddr(laddr, netip.Addr{})
}

// DialPing is DialPingAddr with *PingAddr values; nil means the zero
// address.
func (n *Net) DialPing(laddr, raddr *PingAddr) (*PingConn, error) {
	return n.DialPingAddr(pingAddr(laddr), pingAddr(raddr))
}

// ListenPing is ListenPingAddr with a *PingAddr.
func (n *Net) ListenPing(laddr *PingAddr) (*PingConn, error) {
	return n.ListenPingAddr(pingAddr(laddr))
}

func pingAddr(a *PingAddr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	return a.addr
}

// LocalAddr returns the address the socket was bound to, a PingAddr
// (0.0.0.0 or :: when none was given), as wireguard-go's does.
func (c *PingConn) LocalAddr() net.Addr { return c.laddr }

// RemoteAddr returns the peer of a connected socket, a PingAddr; the zero
// PingAddr when it is not connected, as wireguard-go's does.
func (c *PingConn) RemoteAddr() net.Addr { return c.raddr }

// ReadFrom reads one echo reply to the socket into p, the ICMP header
// first, truncated if longer than p, and returns its size and sender, a
// *PingAddr. It blocks until a reply arrives, the read deadline passes or
// the socket closes.
func (c *PingConn) ReadFrom(p []byte) (int, net.Addr, error) {
	var small [icmpEchoLen]byte
	buf := p
	if len(p) < icmpEchoLen {
		buf = small[:] // room to see the identifier
	}
	for {
		n, from, err := c.ipc.ReadFrom(buf)
		if err != nil {
			return 0, nil, c.opErr("read", nil, err)
		}
		ia := from.(*net.IPAddr)
		src, _ := netip.AddrFromSlice(ia.IP)
		src = src.Unmap()
		// RFC 792, RFC 4443 §4.2: an echo reply carries the identifier of
		// its request; like Linux's ping sockets (net/ipv4/ping.c,
		// ping_lookup) and gVisor's, only echo replies with the socket's
		// identifier are its, and a connected socket's come from its peer.
		m := buf[:min(n, len(buf))]
		if len(m) < icmpEchoLen || m[0] != c.echoReply() ||
			binary.BigEndian.Uint16(m[4:6]) != c.id ||
			c.raddr.addr.IsValid() && src != c.raddr.addr.WithZone("") {
			continue
		}
		if src.Is6() {
			src = src.WithZone(ia.Zone)
		}
		if len(p) < icmpEchoLen {
			n = copy(p, m)
		}
		return min(n, len(p)), &PingAddr{src}, nil
	}
}

// Read reads one echo reply into p; see ReadFrom.
func (c *PingConn) Read(p []byte) (int, error) {
	n, _, err := c.ReadFrom(p)
	return n, err
}

// WriteTo sends p, an ICMP echo request with its header, to addr, a
// *PingAddr, PingAddr or *net.IPAddr of the socket's family, with the
// socket's identifier and the checksum filled in. It fails, as Linux's
// ping sockets do, with EINVAL if p is shorter than the header or not an
// echo request of the socket's family, and with EAFNOSUPPORT if addr is of
// the other family. Writes do not block.
func (c *PingConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	var to netip.Addr
	switch a := addr.(type) {
	case *PingAddr:
		if a != nil {
			to = a.addr
		}
	case PingAddr:
		to = a.addr
	case *net.IPAddr:
		if a != nil {
			to, _ = netip.AddrFromSlice(a.IP)
		}
	default:
		return 0, c.opErr("write", addr, errors.New("wrong net.Addr type"))
	}
	to = to.Unmap()
	switch {
	case !to.IsValid():
		return 0, c.opErr("write", addr, errMissingAddress)
	case to.Is6() != c.v6:
		// Linux's ping_v4_sendmsg and ping_v6_sendmsg.
		return 0, c.opErr("write", addr, syscall.EAFNOSUPPORT)
	}
	// Linux's ping_common_sendmsg (net/ipv4/ping.c) and gVisor's send4 and
	// send6 accept only an echo request, code 0, with a whole header.
	if len(p) < icmpEchoLen || p[0] != c.echoRequest() || p[1] != 0 {
		return 0, c.opErr("write", addr, syscall.EINVAL)
	}
	m := append([]byte(nil), p...)
	binary.BigEndian.PutUint16(m[4:6], c.id)
	m[2], m[3] = 0, 0
	if !c.v6 {
		// ICMPv6's checksum covers the pseudo-header (RFC 4443 §2.3):
		// the stack's ICMPv6 socket computes it, as Linux's does.
		binary.BigEndian.PutUint16(m[2:4], icmpChecksum(m))
	}
	ip := &net.IPAddr{IP: to.AsSlice(), Zone: to.Zone()}
	if _, err := c.ipc.WriteTo(m, ip); err != nil {
		return 0, c.opErr("write", PingAddr{to}, err)
	}
	return len(p), nil
}

// Write sends p, an echo request, to the peer of a connected socket; see
// WriteTo. On a socket that is not connected it fails with EDESTADDRREQ.
func (c *PingConn) Write(p []byte) (int, error) {
	if !c.raddr.addr.IsValid() {
		return 0, c.opErr("write", nil, syscall.EDESTADDRREQ)
	}
	return c.WriteTo(p, c.raddr)
}

// Close closes the socket: blocked reads return net.ErrClosed, and its
// identifier is free for a new PingConn.
func (c *PingConn) Close() error {
	if err := c.ipc.Close(); err != nil {
		return c.opErr("close", nil, err)
	}
	c.n.pingIDs.put(c.id)
	return nil
}

// SetDeadline sets the read and write deadlines.
func (c *PingConn) SetDeadline(t time.Time) error {
	return c.opErr("set", nil, c.ipc.SetDeadline(t))
}

// SetReadDeadline sets the deadline for future and pending reads.
func (c *PingConn) SetReadDeadline(t time.Time) error {
	return c.opErr("set", nil, c.ipc.SetReadDeadline(t))
}

// SetWriteDeadline sets the deadline for writes, which never block: a
// write after it fails with os.ErrDeadlineExceeded.
func (c *PingConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set", nil, c.ipc.SetWriteDeadline(t))
}

// opErr returns err, or the error inside the IPConn's *net.OpError, as a
// *net.OpError of network "ping4" or "ping6" with the socket's addresses
// (to, when given, as the remote one).
func (c *PingConn) opErr(op string, to net.Addr, err error) error {
	if err == nil {
		return nil
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	if to == nil && c.raddr.addr.IsValid() {
		to = c.raddr
	}
	return &net.OpError{Op: op, Net: pingNetwork(c.v6), Source: c.laddr, Addr: to, Err: err}
}

// pingNetwork returns the network of a ping socket, for errors.
func pingNetwork(v6 bool) string {
	if v6 {
		return "ping6"
	}
	return "ping4"
}

// RFC 792 and RFC 4443 §4.1, §4.2: the echo and echo reply header, the
// same in both: type, code, checksum, identifier, sequence number.
const (
	icmpEchoLen       = 8
	icmpEchoReply     = 0
	icmpEchoRequest   = 8
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
)

// echoRequest and echoReply return the socket's family's echo types.
func (c *PingConn) echoRequest() byte {
	if c.v6 {
		return icmpv6EchoRequest
	}
	return icmpEchoRequest
}

func (c *PingConn) echoReply() byte {
	if c.v6 {
		return icmpv6EchoReply
	}
	return icmpEchoReply
}

// icmpChecksum returns the RFC 792 checksum of m (whose checksum field is
// zero): the one's complement of the one's complement sum of its 16-bit
// words (RFC 1071 §1), an odd last byte padded with zero.
func icmpChecksum(m []byte) uint16 {
	var sum uint32
	for len(m) >= 2 {
		sum += uint32(m[0])<<8 | uint32(m[1])
		m = m[2:]
	}
	if len(m) == 1 {
		sum += uint32(m[0]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// echoIDs hands out the echo identifiers of a Net's PingConns: random, as
// gVisor's ephemeral ones are, and unique while in use.
type echoIDs struct {
	mu    sync.Mutex
	inUse map[uint16]bool
}

func (e *echoIDs) take() (uint16, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.inUse == nil {
		e.inUse = make(map[uint16]bool)
	}
	// With at most a few thousand sockets open, a random pick is free at
	// once nearly always; the scan ends it when the space is full.
	for range 64 {
		if id := uint16(rand.Uint32()); !e.inUse[id] {
			e.inUse[id] = true
			return id, true
		}
	}
	for id := range 1 << 16 {
		if !e.inUse[uint16(id)] {
			e.inUse[uint16(id)] = true
			return uint16(id), true
		}
	}
	return 0, false
}

func (e *echoIDs) put(id uint16) {
	e.mu.Lock()
	delete(e.inUse, id)
	e.mu.Unlock()
}
