package netstack

import (
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// TCPListener is a TCP listener on a Stack; it implements net.Listener.
// Its methods are safe for concurrent use. Accepted connections have
// keep-alive on with package net's defaults.
type TCPListener struct {
	s      *Stack
	laddr  netip.AddrPort
	ready  chan *TCPConn // established, not yet accepted
	done   chan struct{} // closed by Close
	dl     deadline
	once   sync.Once
	mu     sync.Mutex // guards core
	core   *tcp.Listener
	closed bool
}

// Listen announces on the local address. network must be "tcp" or
// "tcp4"; address is "host:port" where host is empty, 0.0.0.0 or the
// stack's address, and port 0 picks an ephemeral port.
func (s *Stack) Listen(network, address string) (net.Listener, error) {
	l, err := s.ListenTCP(network, address)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListenTCP is Listen returning the concrete type.
func (s *Stack) ListenTCP(network, address string) (*TCPListener, error) {
	fail := func(err error) (*TCPListener, error) {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	ap, err := s.listenAddr(network, "tcp", address)
	if err != nil {
		return fail(err)
	}
	select {
	case <-s.done:
		return fail(net.ErrClosed)
	default:
	}
	t := &s.tcp
	t.mu.Lock()
	defer t.mu.Unlock()
	port, err := t.ports.take(ap.Port(), s.rand32)
	if err != nil {
		return fail(err)
	}
	l := &TCPListener{
		s:     s,
		laddr: netip.AddrPortFrom(s.Addr(), port),
		ready: make(chan *TCPConn, s.cfg.Limits.Backlog),
		done:  make(chan struct{}),
	}
	l.core = tcp.NewListener(s.tcpConfig(), l.laddr, s.cfg.Limits.Backlog, randSource{s})
	if t.listeners == nil {
		t.listeners = make(map[uint16]*TCPListener)
	}
	t.listeners[port] = l
	return l, nil
}

// randSource lends the stack's generator to the TCP core.
type randSource struct{ s *Stack }

func (r randSource) Uint32() uint32 { return r.s.rand32() }

// input handles a segment for the listening port with no connection.
func (l *TCPListener) input(now time.Time, seg *tcp.Segment, remote netip.AddrPort) {
	c := l.s.newTCPConn(l.laddr, remote, l)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if rst, ok := tcp.RstFor(seg); ok {
			l.s.sendSegment(now, &rst, l.laddr, remote)
		}
		return
	}
	if seg.Flags&(tcp.FlagSYN|tcp.FlagACK|tcp.FlagRST) == tcp.FlagSYN && l.s.connCount() >= l.s.cfg.Limits.MaxConnections {
		l.mu.Unlock()
		stats.Inc(&l.s.st.TCP.DropConnLimit)
		return
	}
	halfOpen, cookies := l.core.HalfOpen(), l.core.Stats()
	core := l.core.Input(now, seg, remote, c.emit)
	after := l.core.Stats()
	switch {
	case after.CookiesSent > cookies.CookiesSent:
		stats.Inc(&l.s.st.TCP.SynCookiesSent)
	case after.CookiesValidated > cookies.CookiesValidated:
		stats.Inc(&l.s.st.TCP.SynCookiesValid)
	case after.CookiesRejected > cookies.CookiesRejected:
		stats.Inc(&l.s.st.TCP.SynCookiesInvalid)
	case core == nil && seg.Flags&tcp.FlagSYN != 0 && l.core.HalfOpen() == halfOpen:
		stats.Inc(&l.s.st.TCP.DropListenOverflow)
	}
	if core != nil {
		c.core = core
		c.setKeepAliveLocked(now)
		if l.s.registerConn(c) {
			stats.Inc(&l.s.st.TCP.PassiveOpens)
		} else {
			// At Limits.MaxConnections (a connection completed from a SYN
			// cookie gets here without a SYN check): reset it.
			c.closed = true
			c.core.Abort(now)
		}
	}
	l.mu.Unlock()
	// The SYN-ACK (or a RST) was emitted into c's queue: send it.
	c.mu.Lock()
	if c.core != nil {
		c.afterLocked(now)
	}
	c.unlockAndSend(now)
}

// established queues a child whose handshake completed. Called with the
// child's lock held.
func (l *TCPListener) established(c *TCPConn) {
	select {
	case <-l.done:
	default:
		select {
		case l.ready <- c:
			return
		default:
		}
	}
	// Closed or full: reset it, as Linux resets the children of a closed
	// listener.
	stats.Inc(&l.s.st.TCP.DropAcceptOverflow)
	c.closed = true
	c.core.Abort(time.Now())
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
		case isClosed(l.done), isClosed(l.s.done):
			return nil, l.opErr("accept", net.ErrClosed)
		case l.dl.passed():
			return nil, l.opErr("accept", os.ErrDeadlineExceeded)
		}
		select {
		case c := <-l.ready:
			l.mu.Lock()
			l.core.Accepted()
			l.mu.Unlock()
			c.mu.Lock()
			dead := c.closed
			c.mu.Unlock()
			if dead {
				continue
			}
			return c, nil
		case <-l.done:
			return nil, l.opErr("accept", net.ErrClosed)
		case <-l.dl.wait(): // the loop tells a Close from the deadline
		case <-l.s.done:
			return nil, l.opErr("accept", net.ErrClosed)
		}
	}
}

// Close stops listening. Connections not yet accepted are reset; those
// already accepted are not affected.
func (l *TCPListener) Close() error {
	first := false
	l.once.Do(func() {
		first = true
		l.mu.Lock()
		l.closed = true
		close(l.done)
		l.mu.Unlock()
		t := &l.s.tcp
		t.mu.Lock()
		if t.listeners[l.laddr.Port()] == l {
			delete(t.listeners, l.laddr.Port())
			t.ports.release(l.laddr.Port())
		}
		t.mu.Unlock()
		l.dl.stop()
		for {
			select {
			case c := <-l.ready:
				c.abort()
				continue
			default:
			}
			break
		}
	})
	if !first {
		return l.opErr("close", net.ErrClosed)
	}
	return nil
}

// Addr returns the listener's address, a *net.TCPAddr.
func (l *TCPListener) Addr() net.Addr { return tcpAddr(l.laddr) }

// SetDeadline sets the deadline for Accept. A zero t means none. After
// Close it fails with net.ErrClosed.
func (l *TCPListener) SetDeadline(t time.Time) error {
	if isClosed(l.done) {
		return l.opErr("set", net.ErrClosed)
	}
	l.dl.set(t)
	return nil
}

func (l *TCPListener) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: tcpAddr(l.laddr), Err: err}
}

// setKeepAliveLocked gives an accepted connection package net's default
// keep-alive (on, 15 s). Called before the connection is visible.
func (c *TCPConn) setKeepAliveLocked(now time.Time) {
	c.core.SetKeepAlive(now, tcp.KeepAlive{Enable: true})
}
