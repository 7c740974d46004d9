package netstack

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/stack"
	"github.com/gotcpip/netstack/internal/tcp"
)

// TCPConn is a TCP connection on a Stack. It implements net.Conn and the
// extras of *net.TCPConn: half-close, socket options and io.ReaderFrom.
//
// Its methods are safe for concurrent use: one goroutine may Read while
// another Writes and a third Closes. Write returns once its data is in the
// send buffer, blocking while the buffer is full. Close returns at once;
// data still queued is sent, then a FIN, in the background. Errors are
// *net.OpError: ECONNRESET after a reset, ETIMEDOUT when the peer stopped
// answering, net.ErrClosed after Close (which wins over an expired
// deadline, as in package net), os.ErrDeadlineExceeded when a deadline
// passes; Read returns io.EOF, unwrapped, after the peer's FIN.
type TCPConn struct {
	ep     *stack.TCPEndpoint
	v      *addrView // how LocalAddr and RemoteAddr show the ends; shared (internView)
	rd, wd deadline
}

func newTCPConn(ep *stack.TCPEndpoint, v addrView) *TCPConn {
	return &TCPConn{ep: ep, v: internView(v)}
}

// Read reads data into b. It blocks until data arrives, the peer closes
// (io.EOF), the connection fails, or the read deadline passes.
func (c *TCPConn) Read(b []byte) (int, error) {
	for {
		if err := unusable(c.ep.Closed(), &c.rd); err != nil {
			return 0, c.opErr("read", err)
		}
		n, err, ready := c.ep.Read(b)
		switch {
		case n > 0:
			return n, nil
		case err == io.EOF:
			return 0, io.EOF
		case err != nil:
			return 0, c.opErr("read", failure(err))
		case len(b) == 0:
			return 0, nil
		}
		select {
		case <-ready:
		case <-c.rd.wait(): // the loop tells a Close from the deadline
		case <-c.ep.Done():
			return 0, c.opErr("read", net.ErrClosed)
		}
	}
}

// Write writes b to the connection. It returns when all of b is in the send
// buffer, or with the count written so far when the connection fails or
// the write deadline passes.
func (c *TCPConn) Write(b []byte) (int, error) {
	written := 0
	for {
		if err := unusable(c.ep.Closed(), &c.wd); err != nil {
			return written, c.opErr("write", err)
		}
		n, err, ready := c.ep.Write(b[written:])
		written += n
		switch {
		case err != nil:
			return written, c.opErr("write", failure(err))
		case written == len(b):
			return written, nil
		}
		select {
		case <-ready:
		case <-c.wd.wait(): // the loop tells a Close from the deadline
		case <-c.ep.Done():
			return written, c.opErr("write", net.ErrClosed)
		}
	}
}

// ReadFrom copies r into the connection until EOF (io.ReaderFrom, used by
// io.Copy).
func (c *TCPConn) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w, werr := c.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close closes the connection. Queued data is still sent, then a FIN; if
// unread data remains, or SetLinger(0) was called, the connection is reset
// instead, as Linux does. Blocked Read and Write calls return net.ErrClosed.
func (c *TCPConn) Close() error {
	if err := c.ep.Close(); err != nil {
		return c.opErr("close", err)
	}
	c.rd.stop()
	c.wd.stop()
	return nil
}

// CloseRead shuts down the reading side: further reads return io.EOF and
// data that arrives is discarded.
func (c *TCPConn) CloseRead() error { return c.opErr("close", c.ep.CloseRead()) }

// CloseWrite shuts down the writing side: queued data is sent, then a FIN.
// The peer reads io.EOF while it can still send to us.
func (c *TCPConn) CloseWrite() error { return c.opErr("close", c.ep.CloseWrite()) }

// LocalAddr returns the local address, a *net.TCPAddr.
func (c *TCPConn) LocalAddr() net.Addr { return c.v.tcp(c.ep.LocalAddr()) }

// RemoteAddr returns the peer's address, a *net.TCPAddr.
func (c *TCPConn) RemoteAddr() net.Addr { return c.v.tcp(c.ep.RemoteAddr()) }

// SetDeadline sets the read and write deadlines. A zero t means none.
// After Close it fails with net.ErrClosed.
func (c *TCPConn) SetDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.rd, &c.wd))
}

// SetReadDeadline sets the deadline for future and pending Reads.
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.rd))
}

// SetWriteDeadline sets the deadline for future and pending Writes.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	return c.opErr("set", setDeadline(c.ep.Closed(), t, &c.wd))
}

// SetNoDelay controls Nagle's algorithm: true (the default, as in package
// net) sends small writes at once.
func (c *TCPConn) SetNoDelay(noDelay bool) error { return c.opErr("set", c.ep.SetNoDelay(noDelay)) }

// SetKeepAlive turns keep-alive probes on or off.
func (c *TCPConn) SetKeepAlive(keepalive bool) error {
	return c.opErr("set", c.ep.SetKeepAlive(tcp.KeepAlive{Enable: keepalive}))
}

// SetKeepAlivePeriod turns keep-alive on with d as both the idle time and
// the interval between probes, as package net does on Linux.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	return c.opErr("set", c.ep.SetKeepAlive(tcp.KeepAlive{Enable: true, Idle: d, Interval: d}))
}

// SetKeepAliveConfig configures keep-alive probes as net.TCPConn's does:
// zero fields take the defaults (15 s, 15 s, 9), negative ones too.
func (c *TCPConn) SetKeepAliveConfig(config net.KeepAliveConfig) error {
	return c.opErr("set", c.ep.SetKeepAlive(keepAliveOf(config)))
}

func keepAliveOf(k net.KeepAliveConfig) tcp.KeepAlive {
	return tcp.KeepAlive{Enable: k.Enable, Idle: max(k.Idle, 0), Interval: max(k.Interval, 0), Count: max(k.Count, 0)}
}

// dialKeepAlive is the keep-alive of a Dialer's connection, with the
// defaults of package net: on, 15 s, unless period is negative.
func dialKeepAlive(period time.Duration, cfg net.KeepAliveConfig) tcp.KeepAlive {
	if cfg.Enable {
		return keepAliveOf(cfg)
	}
	return tcp.KeepAlive{Enable: period >= 0, Idle: max(period, 0), Interval: max(period, 0)}
}

// SetLinger sets what Close does with unsent data: sec < 0 (the default)
// sends it in the background; sec == 0 discards it and resets the
// connection. A positive sec behaves like the default: Close never blocks.
func (c *TCPConn) SetLinger(sec int) error { return c.opErr("set", c.ep.SetLinger(sec)) }

// SetReadBuffer sets the size of the receive buffer, which bounds the
// window offered to the peer.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	return c.opErr("set", c.ep.SetRecvBuf(bytes))
}

// SetWriteBuffer sets the size of the send buffer.
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	return c.opErr("set", c.ep.SetSendBuf(bytes))
}

// TCPInfo describes a connection's state, as Linux's TCP_INFO does: round
// trip, windows, buffers, and what was sent, retransmitted, SACKed and lost.
type TCPInfo = tcp.Info

// TCPBBRInfo is the state of a connection's BBR congestion control
// (TCPInfo.BBR), as Linux's tcp_bbr_info: its state, bandwidth estimate,
// minimum RTT, pacing rate and gains, and the bounds of its flight.
type TCPBBRInfo = tcp.BBRInfo

// Info returns a snapshot of the connection's state.
func (c *TCPConn) Info() TCPInfo { return c.ep.Info() }

// SetCongestionControl changes the connection's congestion control:
// "cubic", "reno" or "bbr".
func (c *TCPConn) SetCongestionControl(name string) error {
	cc, err := stack.CCByName(name)
	if err != nil {
		return c.opErr("set", err)
	}
	return c.opErr("set", c.ep.SetCC(cc))
}

// failure maps a core error from Read or Write: a write after CloseWrite
// is EPIPE, as write(2) reports after shutdown(SHUT_WR).
func failure(err error) error {
	if err == tcp.ErrClosed {
		return syscall.EPIPE
	}
	return err
}

// opErr wraps err, if any, for op.
func (c *TCPConn) opErr(op string, err error) error {
	if err == nil {
		// The common case, and a hot one (net/http sets the read
		// deadline several times a request): build no addresses.
		return nil
	}
	return opError(op, "tcp", c.LocalAddr(), c.RemoteAddr(), err)
}

// dialTCP opens a connection from laddr (port 0: ephemeral) to raddr and
// waits for the handshake, ctx, or failure.
func (s *Stack) dialTCP(ctx context.Context, network string, laddr, raddr netip.AddrPort, ka tcp.KeepAlive) (net.Conn, error) {
	v := s.view()
	fail := func(src netip.AddrPort, err error) (net.Conn, error) {
		var sa net.Addr
		if src.IsValid() && src.Port() != 0 {
			sa = v.tcp(src)
		}
		return nil, opError("dial", network, sa, v.tcp(raddr), err)
	}
	if err := s.e.BindAddr(laddr.Addr(), true); err != nil {
		return fail(laddr, err)
	}
	if raddr.Port() == 0 {
		return fail(laddr, &net.AddrError{Err: "missing port", Addr: raddr.String()})
	}
	ep, err := s.e.Connect(laddr, raddr, ka)
	if err != nil {
		return fail(laddr, err)
	}
	if !ep.AwaitHandshake(ctx.Done()) {
		ep.Abort()
		if ctx.Err() == nil {
			return fail(ep.LocalAddr(), net.ErrClosed) // the stack closed
		}
		return fail(ep.LocalAddr(), ctx.Err())
	}
	if err := ep.HandshakeErr(); err != nil {
		return fail(ep.LocalAddr(), err)
	}
	return newTCPConn(ep, v), nil
}

// TCPListener is a TCP listener on a Stack; it implements net.Listener.
// Its methods are safe for concurrent use. Accepted connections have
// keep-alive on with package net's defaults.
type TCPListener struct {
	l   *stack.Listener
	v   addrView
	net string
	dl  deadline
}

// Listen announces on the local address, as net.Listen does. network is
// "tcp", "tcp4" or "tcp6"; address is "host:port" where host is empty, an
// unspecified address (0.0.0.0 or [::]) or one of the stack's addresses
// (a link-local one with or without a zone naming the link), and port 0
// picks an ephemeral port. With "tcp" an unspecified host listens on
// both families at once and Addr is [::]:port; "tcp4" listens on IPv4
// only (0.0.0.0:port), "tcp6" on IPv6 only. Connections from IPv4 peers
// to a dual-stack listener have IPv4-mapped local and remote addresses,
// as package net's do.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	l, err := s.ListenTCP(network, address)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListenTCP is Listen returning the concrete type.
func (s *Stack) ListenTCP(network, address string) (*TCPListener, error) {
	b, port, err := s.listenBinding(network, "tcp", address)
	if err != nil {
		return nil, opError("listen", network, nil, nil, err)
	}
	l, err := s.e.Listen(b, port)
	if err != nil {
		return nil, opError("listen", network, nil, s.view().tcp(netip.AddrPortFrom(b.Addr, port)), err)
	}
	return &TCPListener{l: l, v: addrView{zone: s.zone, mapped: b.Dual}, net: network}, nil
}

// Accept waits for and returns the next connection.
func (l *TCPListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP is Accept returning a *TCPConn. It fails with net.ErrClosed
// after Close, and os.ErrDeadlineExceeded when the deadline passes.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	for {
		// Closing wins over the deadline, and the deadline over a ready
		// connection, as in package net.
		switch {
		case isClosed(l.l.Done()), isClosed(l.l.StackDone()):
			if err := l.l.Err(); err != nil {
				return nil, l.opErr("accept", err) // its address went
			}
			return nil, l.opErr("accept", net.ErrClosed)
		case l.dl.passed():
			return nil, l.opErr("accept", os.ErrDeadlineExceeded)
		}
		select {
		case ep := <-l.l.Queue():
			if l.l.Accept(ep) {
				return newTCPConn(ep, l.v), nil
			}
		case <-l.l.Done():
		case <-l.dl.wait(): // the loop tells a Close from the deadline
		case <-l.l.StackDone():
		}
	}
}

// Close stops listening. Connections not yet accepted are reset; those
// already accepted are not affected.
func (l *TCPListener) Close() error {
	if err := l.l.Close(); err != nil {
		return l.opErr("close", err)
	}
	l.dl.stop()
	return nil
}

// Addr returns the listener's address, a *net.TCPAddr: [::]:port for a
// dual-stack listener, 0.0.0.0:port for "tcp4" on any address.
func (l *TCPListener) Addr() net.Addr {
	ap := l.l.Addr()
	if ap.Addr().Is4() {
		return addrView{zone: l.v.zone}.tcp(ap)
	}
	return l.v.tcp(ap)
}

// SetDeadline sets the deadline for Accept. A zero t means none. After
// Close it fails with net.ErrClosed.
func (l *TCPListener) SetDeadline(t time.Time) error {
	return l.opErr("set", setDeadline(isClosed(l.l.Done()), t, &l.dl))
}

func (l *TCPListener) opErr(op string, err error) error {
	return opError(op, l.net, nil, l.Addr(), err)
}

func tcpAddr(ap netip.AddrPort) *net.TCPAddr { return net.TCPAddrFromAddrPort(ap) }
