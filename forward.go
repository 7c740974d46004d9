package netstack

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// Forwarder turns a stack into the far end of a tunnel: it accepts TCP
// connections and UDP flows addressed to any address and port, not only its
// own, and hands each new one to a handler that sees the original source
// and destination. This is what VPN clients and tun2socks-style tools do
// with the packets a TUN device gives them. Set it in Config.Forwarder.
//
// Segments and datagrams for the stack's own address still go to its
// listeners and sockets first.
type Forwarder struct {
	// TCP is called, each time on a new goroutine, for a SYN to an address
	// and port with no listener. The handler must call Accept or Refuse;
	// returning without either refuses.
	TCP func(r *TCPRequest)
	// UDP is called, each time on a new goroutine, for the first datagram of
	// a new flow (a source and destination pair with no socket). The handler
	// must call Accept or Refuse; returning without either refuses.
	UDP func(r *UDPRequest)
	// MaxPending bounds the TCP requests waiting for Accept or Refuse;
	// further SYNs are dropped (the peer retries). 0 means 1024.
	MaxPending int
	// UDPIdleTimeout closes a UDP flow that has seen no datagram either
	// way for this long. 0 means 60 s.
	UDPIdleTimeout time.Duration
}

// TCPRequest is a connection attempt seen by a Forwarder: a SYN not yet
// answered.
type TCPRequest struct {
	s        *Stack
	src, dst netip.AddrPort
	syn      tcp.Segment // the SYN, payload dropped
	once     sync.Once
}

// Source returns the address the connection comes from.
func (r *TCPRequest) Source() netip.AddrPort { return r.src }

// Destination returns the address the peer asked for.
func (r *TCPRequest) Destination() netip.AddrPort { return r.dst }

// Accept completes the handshake and returns the connection, whose
// LocalAddr is the original destination. It fails if ctx ends first, or the
// peer gives up or resets.
func (r *TCPRequest) Accept(ctx context.Context) (*TCPConn, error) {
	var c *TCPConn
	var err error = net.ErrClosed
	r.once.Do(func() { c, err = r.accept(ctx) })
	if err != nil {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Source: tcpAddr(r.dst), Addr: tcpAddr(r.src), Err: errorFor(err)}
	}
	return c, nil
}

func (r *TCPRequest) accept(ctx context.Context) (*TCPConn, error) {
	s := r.s
	defer s.forgetPending(r)
	now := time.Now()
	l := tcp.NewListener(s.tcpConfig(), r.dst, 1, randSource{s})
	c := s.newTCPConn(r.dst, r.src, nil)
	core := l.Input(now, &r.syn, r.src, c.emit)
	if core == nil {
		return nil, net.ErrClosed
	}
	c.core = core
	c.core.SetKeepAlive(now, tcp.KeepAlive{Enable: true})
	if !s.registerConn(c) {
		return nil, syscall.ENOBUFS
	}
	stats.Inc(&s.st.TCP.PassiveOpens)
	c.mu.Lock()
	handshake := make(chan struct{})
	c.handshake = handshake
	c.afterLocked(now)
	c.unlockAndSend(now)
	select {
	case <-handshake:
	case <-ctx.Done():
		c.abort()
		return nil, ctx.Err()
	case <-s.done:
		return nil, net.ErrClosed
	}
	c.mu.Lock()
	err := c.core.Err()
	c.mu.Unlock()
	if err != nil {
		return nil, mapTCPError(err)
	}
	return c, nil
}

// Refuse answers the SYN with a RST, as a closed port does.
func (r *TCPRequest) Refuse() {
	r.once.Do(func() {
		defer r.s.forgetPending(r)
		if rst, ok := tcp.RstFor(&r.syn); ok {
			r.s.sendSegment(time.Now(), &rst, r.dst, r.src)
		}
	})
}

// forwardTCP takes a SYN for which nothing listens.
func (s *Stack) forwardTCP(seg *tcp.Segment, key tcpKey, local, remote netip.AddrPort) bool {
	f := s.cfg.Forwarder
	if f == nil || f.TCP == nil || seg.Flags&(tcp.FlagSYN|tcp.FlagACK|tcp.FlagRST) != tcp.FlagSYN {
		return false
	}
	t := &s.tcp
	t.mu.Lock()
	if _, dup := t.pending[key]; dup {
		t.mu.Unlock()
		return true // a retransmitted SYN while the handler decides
	}
	limit := f.MaxPending
	if limit <= 0 {
		limit = 1024
	}
	if len(t.pending) >= limit {
		t.mu.Unlock()
		stats.Inc(&s.st.TCP.DropListenOverflow)
		return true
	}
	r := &TCPRequest{s: s, src: remote, dst: local, syn: *seg}
	r.syn.Payload = nil
	if t.pending == nil {
		t.pending = make(map[tcpKey]*TCPRequest)
	}
	t.pending[key] = r
	t.mu.Unlock()
	// Not counted in s.wg: a handler runs user code that Close cannot stop.
	go func() {
		defer r.Refuse()
		f.TCP(r)
	}()
	return true
}

func (s *Stack) forgetPending(r *TCPRequest) {
	s.tcp.mu.Lock()
	delete(s.tcp.pending, keyOf(r.dst, r.src))
	s.tcp.mu.Unlock()
}

// UDPRequest is the first datagram of a new flow seen by a Forwarder.
type UDPRequest struct {
	c    *UDPConn
	once sync.Once
	data []byte // the first datagram, for Refuse's ICMP quote
}

// Source returns the address the flow comes from.
func (r *UDPRequest) Source() netip.AddrPort { return r.c.raddr }

// Destination returns the address the datagram was sent to.
func (r *UDPRequest) Destination() netip.AddrPort { return r.c.laddr }

// Accept returns the flow as a connected socket: Read returns the
// datagrams of the flow, the first one included, and Write answers from
// the original destination. The flow closes after the idle timeout;
// a blocked Read then returns net.ErrClosed.
func (r *UDPRequest) Accept() (*UDPConn, error) {
	ok := false
	r.once.Do(func() { ok = true; r.data = nil })
	if !ok {
		return nil, r.c.opErr("accept", net.ErrClosed)
	}
	return r.c, nil
}

// Refuse closes the flow and answers its first datagram with ICMP port
// unreachable.
func (r *UDPRequest) Refuse() {
	r.once.Do(func() {
		c := r.c
		c.Close()
		c.s.host.SendUnreachableFor(time.Now(), ip.CodePortUnreach, ip.ProtoUDP, c.raddr.Addr(), c.laddr.Addr(), r.data)
		r.data = nil
	})
}

// flowKey names a forwarded UDP flow.
type flowKey = tcpKey

// forwardUDP delivers a datagram to its flow, making the flow if the
// forwarder wants new ones. dgram is the whole UDP datagram.
func (s *Stack) forwardUDP(from, to netip.AddrPort, payload, dgram []byte) bool {
	f := s.cfg.Forwarder
	key := keyOf(to, from)
	s.udp.mu.RLock()
	c := s.udp.flows[key]
	s.udp.mu.RUnlock()
	if c != nil {
		c.touch()
		c.deliver(from, payload)
		return true
	}
	if f == nil || f.UDP == nil {
		return false
	}
	s.udp.mu.Lock()
	if c = s.udp.flows[key]; c == nil {
		c = &UDPConn{
			s: s, laddr: to, raddr: from, flow: true,
			ready:  make(chan struct{}, 1),
			rcvBuf: s.cfg.Limits.UDPReceiveBuffer,
		}
		if s.udp.flows == nil {
			s.udp.flows = make(map[flowKey]*UDPConn)
		}
		s.udp.flows[key] = c
	}
	s.udp.mu.Unlock()
	c.touch()
	c.deliver(from, payload)
	idle := f.UDPIdleTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	c.idle = idle
	c.idleTimer = time.AfterFunc(idle, c.checkIdle)
	r := &UDPRequest{c: c, data: append([]byte(nil), dgram...)}
	go func() {
		defer r.Refuse()
		f.UDP(r)
	}()
	return true
}

// touch records activity on a flow.
func (c *UDPConn) touch() {
	if c.flow {
		c.lastActive.Store(time.Now().UnixNano())
	}
}

// checkIdle closes a flow idle for its timeout, or re-arms.
func (c *UDPConn) checkIdle() {
	idleFor := time.Duration(time.Now().UnixNano() - c.lastActive.Load())
	if idleFor < c.idle {
		c.idleTimer.Reset(c.idle - idleFor)
		return
	}
	c.Close()
}
