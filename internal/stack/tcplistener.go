package stack

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// A Listener is a listening TCP port: the core's listener (half-open
// connections, SYN cookies, the backlog) and the queue of established
// children waiting to be accepted.
type Listener struct {
	s     *Stack
	laddr netip.AddrPort
	ready chan *TCPEndpoint // established, not yet accepted
	done  chan struct{}     // closed by Close
	once  sync.Once

	mu     sync.Mutex // guards core and closed
	core   *tcp.Listener
	closed bool
}

// Listen listens on port (0: an ephemeral one) of the stack's address.
func (s *Stack) Listen(port uint16) (*Listener, error) {
	if s.isDone() {
		return nil, net.ErrClosed
	}
	t := &s.tcp
	t.mu.Lock()
	defer t.mu.Unlock()
	port, err := t.ports.take(port, s.rand32)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		s:     s,
		laddr: netip.AddrPortFrom(s.Addr(), port),
		ready: make(chan *TCPEndpoint, s.cfg.Limits.Backlog),
		done:  make(chan struct{}),
	}
	l.core = tcp.NewListener(s.tcpCfg, l.laddr, s.cfg.Limits.Backlog, randSource{s})
	if t.listeners == nil {
		t.listeners = make(map[uint16]*Listener)
	}
	t.listeners[port] = l
	return l, nil
}

// Addr returns the listener's address.
func (l *Listener) Addr() netip.AddrPort { return l.laddr }

// Done is closed by Close.
func (l *Listener) Done() <-chan struct{} { return l.done }

// StackDone is closed when the stack closes.
func (l *Listener) StackDone() <-chan struct{} { return l.s.done }

// Queue delivers the established connections in the order they completed.
// Pass each one received to Accept.
func (l *Listener) Queue() <-chan *TCPEndpoint { return l.ready }

// Accept takes c, received from Queue, off the backlog. It reports false if
// c was reset meanwhile; take the next one then.
func (l *Listener) Accept(c *TCPEndpoint) bool {
	l.mu.Lock()
	l.core.Accepted()
	l.mu.Unlock()
	return !c.Closed()
}

// input handles a segment for the listening port with no connection.
func (l *Listener) input(now time.Time, seg *tcp.Segment, remote netip.AddrPort) {
	c := l.s.newEndpoint(l.laddr, remote, l)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if rst, ok := tcp.RstFor(seg); ok {
			l.s.sendSegment(now, &rst, l.laddr, remote)
		}
		return
	}
	if seg.Flags&(tcp.FlagSYN|tcp.FlagACK|tcp.FlagRST) == tcp.FlagSYN && l.s.ConnCount() >= l.s.cfg.Limits.MaxConnections {
		l.mu.Unlock()
		stats.Inc(&l.s.st.TCP.DropConnLimit)
		return
	}
	core := l.core.Input(now, seg, remote, c.emit)
	switch l.core.LastOutcome() {
	case tcp.CookieSent:
		stats.Inc(&l.s.st.TCP.SynCookiesSent)
	case tcp.CookieValid:
		stats.Inc(&l.s.st.TCP.SynCookiesValid)
	case tcp.CookieRejected:
		stats.Inc(&l.s.st.TCP.SynCookiesInvalid)
	case tcp.DropAcceptFull:
		stats.Inc(&l.s.st.TCP.DropListenOverflow)
	case tcp.DropSynFin:
		stats.Inc(&l.s.st.TCP.DropSynFin)
	}
	if core != nil {
		c.core = core
		l.s.applyPathMTU(now, c)
		// Accepted connections keep alive with package net's defaults.
		c.core.SetKeepAlive(now, tcp.KeepAlive{Enable: true})
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
func (l *Listener) established(c *TCPEndpoint) {
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

// Close stops listening. Connections not yet accepted are reset; those
// already accepted are not affected. A second Close returns
// net.ErrClosed.
func (l *Listener) Close() error {
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
		for {
			select {
			case c := <-l.ready:
				c.Abort()
				continue
			default:
			}
			break
		}
	})
	if !first {
		return net.ErrClosed
	}
	return nil
}
