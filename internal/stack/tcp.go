package stack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// The engine's side of TCP: the demultiplexing tables, segment input from
// the IP layer, and active opens. Endpoints are in tcpendpoint.go,
// listeners in tcplistener.go.

// tcpKey names a connection by its two ends, compactly: fixed-size
// arrays hash faster than netip.Addr (which holds a pointer) and take
// less room in the map. IPv4 addresses are stored mapped into 16 bytes
// beside IPv6 ones, which cannot collide: the stack never has a v4-mapped
// address of its own.
type tcpKey struct {
	localIP, remoteIP     [16]byte
	localPort, remotePort uint16
}

func keyOf(local, remote netip.AddrPort) tcpKey {
	return tcpKey{local.Addr().As16(), remote.Addr().As16(), local.Port(), remote.Port()}
}

type tcpTable struct {
	mu        sync.RWMutex
	conns     connTable              // by 4-tuple (conntable.go)
	listeners map[uint16][]*Listener // a port's listeners, on different bindings
	ports     portTable              // ports bound by listeners and by explicit binds
	pending   map[tcpKey]*TCPRequest // SYNs awaiting a Forwarder's answer
	timeWait  fifo[*TCPEndpoint]     // connections that entered TIME-WAIT, oldest first; some since gone
	secret    [16]byte               // RFC 6528 ISN key
	portKey   [16]byte               // RFC 6056 port offset key
	portSteps [256]uint32            // RFC 6056 §3.3.4's table of increments
	gone      stats.TCPConns         // counters of forgotten connections
}

// CCByName returns the congestion control called name ("" is CUBIC).
func CCByName(name string) (func(mss int) tcp.CongestionControl, error) {
	switch name {
	case "", "cubic":
		return tcp.NewCubic, nil
	case "reno", "newreno":
		return tcp.NewReno, nil
	case "bbr":
		return tcp.NewBBR, nil
	}
	return nil, fmt.Errorf("netstack: unknown congestion control %q (want cubic, reno or bbr)", name)
}

// inputTCP is the IP layer's TCP handler. It validates the segment and
// hands it, with the ECN field of its IP header, to its connection, its
// listener, or answers with a RST (RFC 9293 §3.10.7.1).
func (s *Stack) inputTCP(now time.Time, src, dst netip.Addr, ecn uint8, b []byte) {
	seg, err := tcp.Parse(b, checksum.Pseudo(src, dst, ip.ProtoTCP, len(b)))
	if err != nil {
		if errors.Is(err, tcp.ErrChecksum) {
			stats.Inc(&s.st.TCP.DropBadChecksum)
		} else {
			stats.Inc(&s.st.TCP.DropMalformed)
		}
		return
	}
	seg.ECN = ecn
	stats.Inc(&s.st.TCP.SegmentsIn)
	if seg.Flags&tcp.FlagRST != 0 {
		stats.Inc(&s.st.TCP.ResetsIn)
	}
	local, remote := netip.AddrPortFrom(dst, seg.DstPort), netip.AddrPortFrom(src, seg.SrcPort)
	key := keyOf(local, remote)
	s.tcp.mu.RLock()
	c := s.tcp.conns.get(key)
	s.tcp.mu.RUnlock()
	if c != nil && !c.input(now, &seg) {
		return
	}
	// No connection, or a TIME-WAIT connection ended by a new SYN that the
	// listener should take (RFC 9293 §3.10.7.4 note, RFC 6191). The
	// listener is looked up only then: most segments are for a connection.
	if l := s.lookupListener(seg.DstPort, dst); l != nil {
		l.input(now, &seg, local, remote)
		return
	}
	if s.forwardTCP(&seg, key, local, remote) {
		return
	}
	stats.Inc(&s.st.TCP.DropNoPort)
	if rst, ok := tcp.RstFor(&seg); ok {
		s.sendSegment(now, &rst, local, remote)
	}
}

// sendSegment encodes and sends one segment outside any connection (a RST
// for a closed port).
func (s *Stack) sendSegment(now time.Time, seg *tcp.Segment, local, remote netip.AddrPort) {
	hr := headroom(remote.Addr())
	n := hr + seg.HeaderLen() + len(seg.Payload)
	bp := s.frames.Get(n)
	pkt := (*bp)[:n]
	seg.Encode(pkt[hr:], checksum.Pseudo(local.Addr(), remote.Addr(), ip.ProtoTCP, n-hr))
	if seg.Flags&tcp.FlagRST != 0 {
		stats.Inc(&s.st.TCP.ResetsOut)
	}
	stats.Inc(&s.st.TCP.SegmentsOut)
	s.host.Output(now, pkt, ip.ProtoTCP, local.Addr(), remote.Addr(), true)
	s.frames.Put(bp)
}

// tcpError handles an ICMP error, or a local failure to resolve the next
// hop, for a segment we sent. As Linux (tcp_v4_err): during the handshake
// a hard error fails the connect with its errno; later it is ignored and
// retransmission decides. A fragmentation-needed goes to path MTU
// discovery.
func (s *Stack) tcpError(now time.Time, e *ip.ErrorInfo) {
	if len(e.Transport) < 8 {
		return
	}
	h := tcp.Header(e.Transport)
	key := keyOf(netip.AddrPortFrom(e.Src, h.SrcPort()), netip.AddrPortFrom(e.Dst, h.DstPort()))
	s.tcp.mu.RLock()
	c := s.tcp.conns.get(key)
	s.tcp.mu.RUnlock()
	if e.Errno == syscall.EMSGSIZE {
		s.fragNeeded(now, c, e.Dst, e.MTU, h.SeqNum())
		return
	}
	if c != nil {
		c.hardError(e.Errno)
	}
}

// fragNeeded handles an ICMP fragmentation-needed about a segment of c
// (nil: of no connection) to dst with sequence number seq. RFC 5927: only
// a message naming data in flight is believed; then the path MTU to dst
// falls, in the cache and for every connection to dst.
func (s *Stack) fragNeeded(now time.Time, c *TCPEndpoint, dst netip.Addr, mtu int, seq tcp.Seq) {
	stats.Inc(&s.st.TCP.FragNeeded)
	accepted := false
	if c != nil {
		c.mu.Lock()
		accepted = c.core.PathMTUError(now, mtu, seq)
		c.finish(now) // the retransmissions at the new size
	}
	if !accepted {
		stats.Inc(&s.st.TCP.FragNeededRejected)
		return
	}
	stats.Inc(&s.st.TCP.FragNeededAccepted)
	pmtu := s.host.SetPathMTU(now, dst, mtu)
	s.tcp.mu.RLock()
	var others []*TCPEndpoint
	for o := range s.tcp.conns.all() {
		if o != c && o.remote == dst {
			others = append(others, o)
		}
	}
	s.tcp.mu.RUnlock()
	for _, o := range others {
		o.mu.Lock()
		o.core.SetPathMTU(now, pmtu)
		o.finish(now)
	}
}

// applyPathMTU gives a new connection the path MTU known for its peer.
// c.mu is held, or c is not yet visible.
func (s *Stack) applyPathMTU(now time.Time, c *TCPEndpoint) {
	if pmtu := s.host.PathMTU(now, c.remote); pmtu < s.host.MTU() {
		c.core.SetPathMTU(now, pmtu)
	}
}

// Connect opens a connection from laddr to raddr with keep-alive ka, and
// sends its SYN. An unspecified address in laddr means the source address
// SourceAddr picks for raddr, port 0 an ephemeral port whose 4-tuple is
// free, as Linux's connect picks. Wait with the endpoint's HandshakeWait.
func (s *Stack) Connect(laddr, raddr netip.AddrPort, ka tcp.KeepAlive) (*TCPEndpoint, error) {
	now := time.Now()
	c, err := s.newActiveConn(laddr, raddr, now)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	s.applyPathMTU(now, c)
	c.core.SetKeepAlive(now, ka)
	c.core.Connect(now)
	c.afterLocked(now)
	c.unlockAndSend(now)
	stats.Inc(&s.st.TCP.ActiveOpens)
	return c, nil
}

// newActiveConn registers a connection to raddr from laddr (see Connect).
func (s *Stack) newActiveConn(laddr, raddr netip.AddrPort, now time.Time) (*TCPEndpoint, error) {
	if s.isDone() {
		return nil, net.ErrClosed
	}
	local, port := laddr.Addr(), laddr.Port()
	switch {
	case !local.IsValid() || local.IsUnspecified():
		src, err := s.SourceAddr(raddr.Addr())
		if err != nil {
			return nil, err
		}
		local = src
	case local.Is4() != raddr.Addr().Is4():
		return nil, syscall.EAFNOSUPPORT
	case !s.HasAddr(local) && !s.transparent():
		return nil, syscall.EADDRNOTAVAIL
	}
	t := &s.tcp
	var old *TCPEndpoint
	defer func() { s.evict(old) }() // after the unlock
	t.mu.Lock()
	defer t.mu.Unlock()
	var room bool
	if old, room = s.roomLocked(); !room {
		stats.Inc(&s.st.TCP.DropConnLimit)
		return nil, syscall.ENOBUFS
	}
	if port != 0 {
		if !s.portFreeLocked(local, port, raddr) {
			return nil, syscall.EADDRINUSE
		}
	} else if port = s.ephemeralLocked(local, raddr); port == 0 {
		return nil, syscall.EADDRNOTAVAIL
	}
	c := s.newEndpoint(netip.AddrPortFrom(local, port), raddr, nil)
	laddr = c.LocalAddr()
	isn := tcp.ISN(t.secret, laddr, raddr, now)
	c.core = tcp.NewConn(s.tcpConfig(local), laddr, raddr, isn, c)
	t.conns.put(c.key(), c)
	return c, nil
}

// portFreeLocked reports whether local:port→raddr is free: no connection
// has that 4-tuple and no socket is bound to port. s.tcp.mu is held.
func (s *Stack) portFreeLocked(local netip.Addr, port uint16, raddr netip.AddrPort) bool {
	t := &s.tcp
	if t.ports.inUse(port) {
		return false
	}
	busy := t.conns.get(keyOf(netip.AddrPortFrom(local, port), raddr)) != nil
	return !busy
}

// ephemeralLocked picks a free ephemeral port for a connection from local
// to raddr, 0 if there is none, as RFC 6056's double-hash algorithm
// (§3.3.4, what Linux does): the ports of one destination follow one
// another from an offset of a keyed hash of the addresses and remote
// port, a counter in a table (picked by more bits of that hash) advancing
// past each port tried. The next port tried for a destination is then the
// one it used longest ago, most likely out of TIME-WAIT, where a random
// pick meets more of the busy ones the fuller the range; and the ports a
// destination sees tell nothing of another's. s.tcp.mu is held.
func (s *Stack) ephemeralLocked(local netip.Addr, raddr netip.AddrPort) uint16 {
	t := &s.tcp
	h := tcp.TupleHash(t.portKey, netip.AddrPortFrom(local, 0), raddr)
	offset, step := uint32(h), &t.portSteps[h>>56]
	const n = EphemeralHigh - EphemeralLow + 1
	for range n {
		p := uint16(EphemeralLow + (offset+*step)%n)
		*step++
		if s.portFreeLocked(local, p, raddr) {
			return p
		}
	}
	return 0
}

// ConnCount returns the number of TCP connections in the demux.
func (s *Stack) ConnCount() int {
	s.tcp.mu.RLock()
	defer s.tcp.mu.RUnlock()
	return s.tcp.conns.len()
}

// registerConn adds a passive connection to the demux unless the
// connection limit is reached. The caller passes old, the connection in
// TIME-WAIT that made room if any, to evict, once it holds no lock.
func (s *Stack) registerConn(c *TCPEndpoint) (old *TCPEndpoint, ok bool) {
	s.tcp.mu.Lock()
	defer s.tcp.mu.Unlock()
	if old, ok = s.roomLocked(); ok {
		s.tcp.conns.put(c.key(), c)
	} else {
		stats.Inc(&s.st.TCP.DropConnLimit)
	}
	return old, ok
}

// hasRoom reports whether a new connection would fit.
func (s *Stack) hasRoom() bool {
	s.tcp.mu.RLock()
	defer s.tcp.mu.RUnlock()
	return s.roomFor(1)
}

// roomLocked reports whether one more connection fits under
// Limits.MaxConnections. At the limit it takes the oldest connection in
// TIME-WAIT out of the demux to make room, as Linux skips TIME-WAIT past
// tcp_max_tw_buckets, so that closed connections never lock new ones out;
// the caller passes it to evict once s.tcp.mu is released. s.tcp.mu is
// held.
func (s *Stack) roomLocked() (old *TCPEndpoint, room bool) {
	t := &s.tcp
	for t.conns.len() >= s.cfg.Limits.MaxConnections {
		if t.timeWait.len() == 0 {
			return nil, false
		}
		c := t.timeWait.front()
		t.timeWait.pop()
		if k := c.key(); t.conns.get(k) == c {
			t.conns.delete(k)
			old = c
		}
	}
	return old, true
}

// roomFor reports whether n more connections could fit, counting those in
// TIME-WAIT as room. s.tcp.mu is held.
func (s *Stack) roomFor(n int) bool {
	t := &s.tcp
	return t.conns.len()-t.timeWait.len()+n <= s.cfg.Limits.MaxConnections
}

// enteredTimeWait puts c on the list of connections in TIME-WAIT, which
// roomLocked takes from, and drops the gone ones at its head. c.mu is held.
func (s *Stack) enteredTimeWait(c *TCPEndpoint) {
	t := &s.tcp
	t.mu.Lock()
	for t.timeWait.len() > 0 {
		o := t.timeWait.front()
		if t.conns.get(o.key()) == o {
			break
		}
		t.timeWait.pop()
	}
	t.timeWait.push(c)
	t.mu.Unlock()
}

// evict ends c, a connection roomLocked took out of the demux in
// TIME-WAIT, without a segment, and keeps its counters. c may be nil.
func (s *Stack) evict(c *TCPEndpoint) {
	if c == nil {
		return
	}
	c.mu.Lock()
	now := time.Now()
	c.gone = true
	c.core.Abort(now) // no RST from TIME-WAIT
	st := c.core.Stats()
	c.finish(now)
	s.tcp.mu.Lock()
	addConnStats(&s.tcp.gone, &st)
	s.tcp.mu.Unlock()
	stats.Inc(&s.st.TCP.TimeWaitEvicted)
}

// forget removes a connection from the demux once it is closed for good,
// and folds its counters, final now, into the stack's. The connection's
// mu may be held.
func (s *Stack) forget(c *TCPEndpoint, st tcp.Stats) {
	s.tcp.mu.Lock()
	if k := c.key(); s.tcp.conns.get(k) == c {
		s.tcp.conns.delete(k)
		addConnStats(&s.tcp.gone, &st)
	}
	s.tcp.mu.Unlock()
}

// addConnStats adds the counters a connection's core keeps to dst.
func addConnStats(dst *stats.TCPConns, st *tcp.Stats) {
	dst.Timeouts += st.Timeouts
	dst.FastRetransmits += st.FastRetransmits
	dst.TLPs += st.TLPs
	dst.ChallengeAcks += st.ChallengeAcks
	dst.OutOfOrder += st.OutOfOrder
	dst.DropUnaccept += st.DropUnaccept
	dst.DropPAWS += st.DropPAWS
	dst.DropWindow += st.DropWindow
	dst.DropOOOFull += st.DropOOOFull
	dst.PLPMTUDFallbacks += st.PLPMTUDFallbacks
	dst.PLPMTUDProbes += st.PLPMTUDProbes
	dst.PLPMTUDProbesAcked += st.PLPMTUDProbesAcked
	dst.PLPMTUDProbesLost += st.PLPMTUDProbesLost
	dst.CEReceived += st.CEReceived
	dst.ECEReceived += st.ECEReceived
	dst.ECNReductions += st.ECNReductions
}

// connStats returns the counters of the stack's connections: those
// forgotten, and the live ones, each read under its own lock. A connection
// forgotten meanwhile is counted once, live, as it was listed before it
// was folded.
func (s *Stack) connStats() stats.TCPConns {
	s.tcp.mu.RLock()
	sum := s.tcp.gone
	conns := make([]*TCPEndpoint, 0, s.tcp.conns.len())
	for c := range s.tcp.conns.all() {
		conns = append(conns, c)
	}
	s.tcp.mu.RUnlock()
	for _, c := range conns {
		c.mu.Lock()
		st := c.core.Stats()
		c.mu.Unlock()
		addConnStats(&sum, &st)
	}
	return sum
}

// ConnInfo describes the connection local→remote, for diagnostics; false
// if there is none.
func (s *Stack) ConnInfo(local, remote netip.AddrPort) (tcp.Info, bool) {
	s.tcp.mu.RLock()
	c := s.tcp.conns.get(keyOf(local, remote))
	s.tcp.mu.RUnlock()
	if c == nil {
		return tcp.Info{}, false
	}
	return c.Info(), true
}

// closeTCP aborts every connection and closes every listener; part of
// Close.
func (s *Stack) closeTCP() {
	s.tcp.mu.RLock()
	conns := make([]*TCPEndpoint, 0, s.tcp.conns.len())
	for c := range s.tcp.conns.all() {
		conns = append(conns, c)
	}
	var ls []*Listener
	for _, pl := range s.tcp.listeners {
		ls = append(ls, pl...)
	}
	s.tcp.mu.RUnlock()
	for _, l := range ls {
		l.Close()
	}
	for _, c := range conns {
		c.Abort()
	}
}

// ConnSeqs returns SND.UNA, SND.NXT and RCV.NXT of the connection
// local→remote; false if there is none.
func (s *Stack) ConnSeqs(local, remote netip.AddrPort) (sndUna, sndNxt, rcvNxt tcp.Seq, ok bool) {
	s.tcp.mu.RLock()
	c := s.tcp.conns.get(keyOf(local, remote))
	s.tcp.mu.RUnlock()
	if c == nil {
		return 0, 0, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	sndUna, sndNxt, rcvNxt = c.core.Seqs()
	return sndUna, sndNxt, rcvNxt, true
}
