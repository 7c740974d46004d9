package stack

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// Forward makes the stack take TCP connections and UDP flows addressed to
// any address, not only its own, and hand each new one to a handler on a
// goroutine of its own; see netstack.Forwarder.
type Forward struct {
	TCP            func(r *TCPRequest)  // nil: no TCP forwarding
	UDP            func(r *UDPRequest)  // nil: no UDP forwarding
	Echo           func(r *EchoRequest) // nil: no echo forwarding
	MaxPending     int                  // TCP requests awaiting an answer; 0: 1024
	MaxPendingEcho int                  // echo requests awaiting an answer; 0: 1024
	UDPIdleTimeout time.Duration        // 0: 60 s
	FullConeUDP    bool                 // UDP flows keyed by source alone (RFC 4787 endpoint-independent)
}

// forwarding reports whether the stack takes packets for any address.
func (f *Forward) forwarding() bool {
	return f != nil && (f.TCP != nil || f.UDP != nil || f.Echo != nil)
}

// A TCPRequest is a SYN for an address and port nobody listens on, which
// a Forward handler accepts or refuses.
type TCPRequest struct {
	s        *Stack
	src, dst netip.AddrPort
	syn      tcp.Segment  // the SYN, payload dropped
	mss      atomic.Int32 // SetMSS; 0: the stack's
	once     sync.Once
}

// SetMSS caps the segment size of the connection Accept makes, both
// ways: its SYN-ACK advertises at most mss, and it sends no larger.
func (r *TCPRequest) SetMSS(mss int) error {
	if mss < 88 || mss > 65495 {
		return syscall.EINVAL // as Linux's TCP_MAXSEG
	}
	r.mss.Store(int32(mss))
	return nil
}

// Source returns the address the connection comes from.
func (r *TCPRequest) Source() netip.AddrPort { return r.src }

// Destination returns the address the peer asked for.
func (r *TCPRequest) Destination() netip.AddrPort { return r.dst }

// Accept completes the handshake and returns the connection. It fails if
// ctx ends first, the peer gives up or resets, or the request was already
// answered (net.ErrClosed).
func (r *TCPRequest) Accept(ctx context.Context) (*TCPEndpoint, error) {
	var c *TCPEndpoint
	var err error = net.ErrClosed
	r.once.Do(func() { c, err = r.accept(ctx) })
	return c, err
}

func (r *TCPRequest) accept(ctx context.Context) (*TCPEndpoint, error) {
	s := r.s
	defer s.forgetPending(r)
	now := time.Now()
	c := s.newEndpoint(r.dst, r.src, nil)
	cfg := s.tcpConfig(r.dst.Addr())
	if mss := int(r.mss.Load()); mss > 0 && mss < cfg.MSS {
		clamped := *cfg
		clamped.MSS = mss
		cfg = &clamped
	}
	c.core = tcp.AcceptSYN(cfg, r.dst, r.src, tcp.ISN(s.tcp.secret, r.dst, r.src, now), now, &r.syn, c)
	c.core.SetKeepAlive(now, tcp.KeepAlive{Enable: true})
	s.applyPathMTU(now, c)
	old, ok := s.registerConn(c)
	s.evict(old)
	if !ok {
		return nil, syscall.ENOBUFS
	}
	stats.Inc(&s.st.TCP.PassiveOpens)
	c.mu.Lock()
	c.finish(now)
	if !c.AwaitHandshake(ctx.Done()) {
		if ctx.Err() == nil {
			return nil, net.ErrClosed
		}
		c.Abort()
		return nil, ctx.Err()
	}
	if err := c.HandshakeErr(); err != nil {
		return nil, err
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
	f := s.cfg.Forward
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
	switch {
	case len(t.pending) >= limit:
		t.mu.Unlock()
		stats.Inc(&s.st.TCP.DropForwardPending)
		return true
	case !s.roomFor(len(t.pending) + 1):
		// No room for the connection Accept would make: drop the SYN
		// before a handler starts, as a listener does (the peer retries).
		t.mu.Unlock()
		stats.Inc(&s.st.TCP.DropConnLimit)
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

// A UDPRequest is the first datagram of a new flow, which a Forward
// handler accepts or refuses.
type UDPRequest struct {
	c    *UDPEndpoint
	once sync.Once
	data []byte // the first datagram, for Refuse's ICMP quote
}

// Source returns the address the flow comes from.
func (r *UDPRequest) Source() netip.AddrPort { return r.c.raddr }

// Destination returns the address the datagram was sent to.
func (r *UDPRequest) Destination() netip.AddrPort { return r.c.laddr }

// Accept returns the flow as a connected socket whose reads return the
// flow's datagrams, the first one included, and whose writes answer from
// the original destination. It fails with net.ErrClosed if the request
// was already answered.
func (r *UDPRequest) Accept() (*UDPEndpoint, error) {
	ok := false
	r.once.Do(func() { ok = true; r.data = nil })
	if !ok {
		return nil, net.ErrClosed
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

// forwardUDP delivers a datagram to its flow, making the flow if the
// forwarder wants new ones and Limits.ForwardedUDPFlows allows. dgram is
// the whole UDP datagram. A flow is keyed by both ends, or with
// FullConeUDP by its source alone (an empty local half), and then
// queues each datagram with its destination.
func (s *Stack) forwardUDP(from, to netip.AddrPort, payload, dgram []byte) bool {
	f := s.cfg.Forward
	cone := f != nil && f.FullConeUDP
	key, peer := keyOf(to, from), from
	if cone {
		key, peer = keyOf(netip.AddrPort{}, from), to
	}
	s.udp.mu.RLock()
	c := s.udp.flows[key]
	s.udp.mu.RUnlock()
	if c != nil {
		c.touch()
		c.deliver(peer, payload)
		return true
	}
	if f == nil || f.UDP == nil {
		return false
	}
	// A new flow is made with its first datagram queued and its idle
	// timer set before it is published: input workers may deliver to it
	// at once (a full-cone flow spans 4-tuples, so workers), and one of
	// them may find another's flow already made.
	idle := f.UDPIdleTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	n := &UDPEndpoint{s: s, laddr: to, raddr: from, flow: true, cone: cone, idle: idle,
		packetQueue: newPacketQueue(s.cfg.Limits.UDPReceiveBuffer)}
	n.touch()
	queued := n.packetQueue.deliver(peer, payload) // counted once n is the flow
	s.udp.mu.Lock()
	if c = s.udp.flows[key]; c != nil {
		s.udp.mu.Unlock()
		c.touch()
		c.deliver(peer, payload)
		return true
	}
	if len(s.udp.flows) >= s.cfg.Limits.ForwardedUDPFlows {
		s.udp.mu.Unlock()
		stats.Inc(&s.st.UDP.DropFlowLimit)
		return true // dropped: no ICMP, which a flood would turn into a reflector
	}
	if s.udp.flows == nil {
		s.udp.flows = make(map[tcpKey]*UDPEndpoint)
	}
	c = n
	s.udp.flows[key] = c
	c.idleTimer = time.AfterFunc(idle, c.checkIdle) // under the table's lock, which Close takes first
	s.udp.mu.Unlock()
	if !queued {
		stats.Inc(&s.st.UDP.DropQueueFull)
	}
	r := &UDPRequest{c: c, data: append([]byte(nil), dgram...)}
	go func() {
		defer r.Refuse()
		f.UDP(r)
	}()
	return true
}

// touch records activity on a flow.
func (c *UDPEndpoint) touch() {
	if c.flow {
		c.lastActive.Store(time.Now().UnixNano())
	}
}

// checkIdle closes a flow idle for its timeout, or re-arms.
func (c *UDPEndpoint) checkIdle() {
	idleFor := time.Duration(time.Now().UnixNano() - c.lastActive.Load())
	if idleFor < c.idle {
		c.idleTimer.Reset(c.idle - idleFor)
		return
	}
	c.Close()
}

// An EchoRequest is an ICMP or ICMPv6 echo request to an address not the
// stack's, which a Forward handler answers, refuses or lets go
// unanswered.
type EchoRequest struct {
	s        *Stack
	src, dst netip.Addr
	id, seq  uint16
	data     []byte
	once     sync.Once
}

// Source returns the address the request comes from.
func (r *EchoRequest) Source() netip.Addr { return r.src }

// Destination returns the address the request was sent to.
func (r *EchoRequest) Destination() netip.Addr { return r.dst }

// ID and Seq return the request's identifier and sequence number.
func (r *EchoRequest) ID() uint16  { return r.id }
func (r *EchoRequest) Seq() uint16 { return r.seq }

// Data returns the request's data, which a reply carries back.
func (r *EchoRequest) Data() []byte { return r.data }

// Reply answers the request with an echo reply from its destination. It
// fails with net.ErrClosed if the request was already answered.
func (r *EchoRequest) Reply() error {
	err := net.ErrClosed
	r.once.Do(func() {
		err = r.s.host.SendEchoReply(time.Now(), r.dst, r.src, r.id, r.seq, r.data)
		switch {
		case err != nil:
		case r.dst.Is6():
			stats.Inc(&r.s.st.ICMPv6.EchoRepliesOut)
		default:
			stats.Inc(&r.s.st.ICMP.EchoRepliesOut)
		}
	})
	return err
}

// Refuse answers the request with a destination unreachable from its
// destination: host unreachable (ICMPv6: address unreachable).
func (r *EchoRequest) Refuse() {
	r.once.Do(func() {
		v6 := r.dst.Is6()
		m := make([]byte, 8+len(r.data))
		m[0] = ip.ICMPEchoRequest
		proto := uint8(ip.ProtoICMP)
		if v6 {
			m[0], proto = ip.ICMPv6EchoRequest, ip.ProtoICMPv6
		}
		binary.BigEndian.PutUint16(m[4:6], r.id)
		binary.BigEndian.PutUint16(m[6:8], r.seq)
		copy(m[8:], r.data)
		r.s.host.SendUnreachableFor(time.Now(), ip.CodeHostUnreach, proto, r.src, r.dst, m)
	})
}

// forwardEcho is the IP layer's ForwardEcho handler: it hands the request
// to Forward.Echo on a goroutine of its own, unless MaxPendingEcho
// requests await an answer already.
func (s *Stack) forwardEcho(now time.Time, src, dst netip.Addr, id, seq uint16, data []byte) {
	f := s.cfg.Forward
	limit := int32(f.MaxPendingEcho)
	if limit <= 0 {
		limit = 1024
	}
	if s.echoPending.Add(1) > limit {
		s.echoPending.Add(-1)
		stats.Inc(&s.st.ICMP.DropEchoPending)
		return
	}
	r := &EchoRequest{s: s, src: src, dst: dst, id: id, seq: seq, data: append([]byte(nil), data...)}
	// Not counted in s.wg: a handler runs user code that Close cannot stop.
	go func() {
		defer s.echoPending.Add(-1)
		f.Echo(r)
	}()
}
