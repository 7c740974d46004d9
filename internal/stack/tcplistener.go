package stack

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// A Listener is a listening TCP port on a Binding: the core's listeners
// (half-open connections, SYN cookies, the backlog), one per local address
// that SYNs arrive at, made at the first, and the queue of established
// children waiting to be accepted. A wildcard listener takes connections
// to any of the stack's addresses of its family (both, if dual), each
// child's local address being the one its SYN was sent to.
type Listener struct {
	s     *Stack
	bind  Binding
	port  uint16
	ready chan *TCPEndpoint // established, not yet accepted
	done  chan struct{}     // closed by Close
	once  sync.Once

	mu     sync.Mutex // guards cores, closed and err
	cores  map[netip.Addr]*tcp.Listener
	closed bool
	err    error // why the stack closed it (its address went); nil after Close
	// userClosed: Close was called (it fails the second time).
	userClosed bool
}

// Listen listens on port (0: an ephemeral one) of b.
func (s *Stack) Listen(b Binding, port uint16) (*Listener, error) {
	if s.isDone() {
		return nil, net.ErrClosed
	}
	t := &s.tcp
	t.mu.Lock()
	defer t.mu.Unlock()
	port, err := t.ports.take(port, b, s.rand32)
	if err != nil {
		return nil, err
	}
	l := &Listener{
		s:     s,
		bind:  b,
		port:  port,
		ready: make(chan *TCPEndpoint, s.cfg.Limits.Backlog),
		done:  make(chan struct{}),
		cores: make(map[netip.Addr]*tcp.Listener, 1),
	}
	if t.listeners == nil {
		t.listeners = make(map[uint16][]*Listener)
	}
	t.listeners[port] = append(t.listeners[port], l)
	return l, nil
}

// lookupListener returns the listener on port that takes a segment to dst,
// one of our addresses; nil if none.
func (s *Stack) lookupListener(port uint16, dst netip.Addr) *Listener {
	s.tcp.mu.RLock()
	defer s.tcp.mu.RUnlock()
	if len(s.tcp.listeners[port]) == 0 {
		return nil
	}
	// A forwarder's stack sees SYNs to every address: a wildcard takes
	// only its own, a listener bound to a foreign address (transparent)
	// that one.
	l := s.tcp.listenerFor(port, dst)
	if l != nil && l.bind.Addr.IsUnspecified() && !s.HasAddr(dst) {
		return nil
	}
	return l
}

// listenerFor returns the listener on port that takes a SYN to dst, the
// closest bound if several do; nil if none. t.mu is held.
func (t *tcpTable) listenerFor(port uint16, dst netip.Addr) *Listener {
	var best *Listener
	for _, l := range t.listeners[port] {
		if l.bind.Takes(dst) && (best == nil || l.bind.better(best.bind)) {
			best = l
		}
	}
	return best
}

// core returns the core listener for segments to local, made at the
// first. l.mu is held.
func (l *Listener) core(local netip.AddrPort) *tcp.Listener {
	c := l.cores[local.Addr()]
	if c == nil {
		c = tcp.NewListener(l.s.tcpConfig(local.Addr()), local, l.s.cfg.Limits.Backlog, randSource{l.s})
		l.cores[local.Addr()] = c
	}
	return c
}

// Addr returns the listener's address: the bound address (unspecified
// for a wildcard) and port.
func (l *Listener) Addr() netip.AddrPort { return netip.AddrPortFrom(l.bind.Addr, l.port) }

// Binding returns what the listener is bound to.
func (l *Listener) Binding() Binding { return l.bind }

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
	l.core(c.LocalAddr()).Accepted()
	l.mu.Unlock()
	return !c.Closed()
}

// input handles a segment to local, on the listening port, with no
// connection.
func (l *Listener) input(now time.Time, seg *tcp.Segment, local, remote netip.AddrPort) {
	c := l.s.newEndpoint(local, remote, l)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		if rst, ok := tcp.RstFor(seg); ok {
			l.s.sendSegment(now, &rst, local, remote)
		}
		return
	}
	lc := l.core(local)
	if seg.Flags&(tcp.FlagSYN|tcp.FlagACK|tcp.FlagRST) == tcp.FlagSYN && !l.s.hasRoom() {
		l.mu.Unlock()
		stats.Inc(&l.s.st.TCP.DropConnLimit)
		return
	}
	core := lc.Input(now, seg, remote, c)
	var old *TCPEndpoint // a connection in TIME-WAIT that made room
	switch lc.LastOutcome() {
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
		var ok bool
		if old, ok = l.s.registerConn(c); ok {
			stats.Inc(&l.s.st.TCP.PassiveOpens)
		} else {
			// At Limits.MaxConnections (a connection completed from a SYN
			// cookie gets here without a SYN check): reset it.
			c.closed = true
			c.core.Abort(now)
		}
	}
	l.mu.Unlock()
	l.s.evict(old)
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
	if !l.shut(nil) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil && !l.userClosed {
			l.userClosed = true
			return nil // the stack closed it first; the user's Close is its first
		}
		return net.ErrClosed
	}
	return nil
}

// Err returns why the stack closed the listener under its user
// (ECONNABORTED when its address was removed), or nil.
func (l *Listener) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// shut closes the listener, recording err as the reason when the stack
// does it; false if it was closed already.
func (l *Listener) shut(err error) bool {
	first := false
	l.once.Do(func() {
		first = true
		l.mu.Lock()
		l.closed = true
		l.err = err
		l.userClosed = err == nil
		close(l.done)
		l.mu.Unlock()
		t := &l.s.tcp
		t.mu.Lock()
		ls := t.listeners[l.port]
		if i := slices.Index(ls, l); i >= 0 {
			if ls = slices.Delete(ls, i, i+1); len(ls) == 0 {
				delete(t.listeners, l.port)
			} else {
				t.listeners[l.port] = ls
			}
			t.ports.release(l.port, l.bind)
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
	return first
}
