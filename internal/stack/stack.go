// Package stack is netstack's engine: it owns a link and drives the
// protocol layers over it. It reads frames from the link and hands them to
// the IP layer (internal/ip), demultiplexes TCP segments and UDP datagrams
// to endpoints by their addresses, allocates ports, runs each TCP
// connection's sans-I/O machine (internal/tcp) under its lock with one
// timer, sends what the machines emit, and keeps the counters.
//
// Endpoints here never block. Each operation takes its lock, does its work,
// and returns, with a readiness channel to wait on when there was nothing
// to do; the public package netstack turns that into the blocking,
// deadline-aware calls of package net. Errors are the sentinels of the
// layers (tcp.ErrReset, ...), syscall errnos and net.ErrClosed; the public
// package maps them to *net.OpError in one place.
//
// Goroutines: one reads the link (every input path runs on it, to the
// endpoint's wake-up; or, with Config.InputWorkers, on the workers it hands
// each flow's frames to; or one reads each queue of a link.MultiQueue),
// one runs the IP layer's timers, each TCP connection arms a runtime
// timer for its machine's earliest deadline when it is near (far ones,
// keep-alive and TIME-WAIT, wait in the stack's buckets under one timer:
// tcptimer.go), and on a link with the Queue capability one sends what its
// full queue held back and resumes the connections that waited
// (linkhold.go).
// Users' calls run on their own goroutines. Locks: the TCP and UDP tables
// each have a RWMutex; every endpoint has its own mutex. A table lock is
// never held while an endpoint's is taken; an endpoint's may be held while a
// table's is taken (to forget itself).
package stack

import (
	"crypto/rand"
	"errors"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// Config is what an engine is made of. The public package validates it.
type Config struct {
	Link         link.Link
	Addrs        []netip.Prefix // the static addresses, either family, and their on-link prefixes
	Gateways     []netip.Addr   // default routers, either family; none: on-link destinations only
	DADTransmits int            // RFC 4862 §5.1; 0: 1, negative: no DAD
	MTU          int            // the IP MTU, at most the link's
	MAC          [6]byte        // zero: random, locally administered
	Logger       *slog.Logger   // nil: silent
	Limits       Limits         // zero fields take defaults
	TCP          TCPConfig
	Forward      *Forward // nil: only the stack's own address
	// AddrsChanged, if set, hears the usable addresses each time they
	// change (see Stack.watchAddrs).
	AddrsChanged func([]netip.Prefix)
	// DHCP runs a DHCPv4 client on the link (see dhcpRunner), offering
	// HostName and DHCPClientID (nil: 1 and the MAC, RFC 2132 §9.14) and
	// probing an offered address with DHCPProbes ARP probes (0: 3, RFC
	// 5227; negative: none).
	DHCP         bool
	HostName     string
	DHCPClientID []byte
	DHCPProbes   int
	// InputWorkers, above 1, spreads the link's input over that many
	// goroutines by flow (see dispatcher); 0 or 1: the reader inputs
	// every frame itself. A link with several receive queues
	// (link.MultiQueue) gets a reader per queue instead.
	InputWorkers int
}

// TCPConfig holds the defaults of new TCP connections.
type TCPConfig struct {
	RecvBuf, SendBuf int // 0: autotuned
	TimeWait         time.Duration
	NoSACK           bool
	ECN              bool                                // RFC 3168 (tcp.Config.ECN)
	NewCC            func(mss int) tcp.CongestionControl // nil: CUBIC
}

// Limits bounds what the engine holds; see netstack.Limits.
type Limits struct {
	MaxConnections    int
	Backlog           int
	ReassemblyMemory  int
	NeighborCache     int
	NeighborQueue     int
	UDPReceiveBuffer  int
	TCPBufferMemory   int
	ForwardedUDPFlows int // forwarded UDP flows at once
	PathMTUCache      int // destinations with a learned path MTU
	Routers           int // default routers from RAs
	RDNSSServers      int // DNS servers from RAs
	Prefixes          int // on-link prefixes, and SLAAC addresses, from RAs
}

// DefaultBacklog is Linux's net.core.somaxconn since 5.4, which Go's
// Listen uses.
const DefaultBacklog = 4096

// DefaultUDPReadBuffer is Linux's net.core.rmem_default: the bytes of
// payload a socket queues before it drops.
const DefaultUDPReadBuffer = 212992

// WithDefaults returns l with its zero fields set to the defaults, which
// follow Linux's.
func (l Limits) WithDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxConnections, 65536)
	def(&l.Backlog, DefaultBacklog)
	def(&l.ReassemblyMemory, 4<<20)
	def(&l.NeighborCache, 512)
	def(&l.NeighborQueue, 16)
	def(&l.UDPReceiveBuffer, DefaultUDPReadBuffer)
	def(&l.TCPBufferMemory, 256<<20)
	def(&l.ForwardedUDPFlows, 65536)
	def(&l.PathMTUCache, 4096)
	def(&l.Routers, 8)
	def(&l.RDNSSServers, 8)
	def(&l.Prefixes, 16)
	return l
}

// A Stack is the engine of one host on one link.
type Stack struct {
	cfg    Config
	link   link.Link
	host   *ip.Host
	st     stats.Stats
	log    *slog.Logger
	mac    ip.MAC
	wake   chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once

	udp     udpTable
	tcp     tcpTable
	far     farTimers // TCP deadlines far away, without a timer each (tcptimer.go)
	icmp    icmpTable
	frames  *ip.FramePool // shared with the IP layer
	gsoOK   bool          // the link cuts TCP super-segments itself (TSO), or the stack does into a batch
	lender  link.Lender   // the link lends received frames; nil if it does not
	batcher link.Batcher  // the link moves frames in batches; nil if it does not
	// dispatch hands frames to Config.InputWorkers; nil: the reader
	// inputs them itself.
	dispatch *dispatcher
	// queueFrames counts the frames input from each receive queue of a
	// link.MultiQueue; nil on a link of one queue.
	queueFrames []atomic.Uint64
	hold        *linkHold // the link's queue holds TCP frames back when full; nil if it cannot
	cuts        sync.Pool // *cutBatch: frames a super-segment is cut into for batcher
	outPool     sync.Pool // *[]outFrame: connections' send queues, lent per call
	rndMu       sync.Mutex
	rnd         *mrand.ChaCha8

	tcpCfg  *tcp.Config // shared by every IPv4 connection
	tcpCfg6 *tcp.Config // shared by every IPv6 connection: 40-byte IP header
	tcpMem  *tcp.Budget // Limits.TCPBufferMemory, shared by every connection
	// linkMTU4 is the IPv4 MTU of the link now, for the MSS that TCP
	// advertises: the link's, or lower by a DHCP lease.
	linkMTU4 atomic.Int32

	static   atomic.Pointer[[]netip.Prefix] // Config.Addrs, as AddAddr and RemoveAddr change them
	staticMu sync.Mutex                     // serializes those changes

	addrSig     chan struct{} // a possible change of addresses, for watchAddrs
	echoPending atomic.Int32  // forwarded echo requests whose handler runs
	dhcp        *dhcpRunner   // Config.DHCP's client; nil without

	pingMu  sync.Mutex
	pingID  uint16
	pingSeq uint16
	pings   map[uint32]chan error // id<<16|seq → waiter
}

// New starts an engine on cfg.Link: it announces its address with a
// gratuitous ARP and starts its reader and timer goroutines.
func New(cfg Config) (*Stack, error) {
	cfg.Limits = cfg.Limits.WithDefaults()
	s := &Stack{
		cfg:   cfg,
		link:  cfg.Link,
		log:   cfg.Logger,
		mac:   ip.MAC(cfg.MAC),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		pings: make(map[uint32]chan error),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.AddrsChanged != nil {
		s.addrSig = make(chan struct{}, 1)
	}
	var gso func([]byte, int, int, int) error
	caps := link.CapabilitiesOf(cfg.Link)
	if caps.GSO {
		g, ok := cfg.Link.(link.GSOWriter)
		if !ok {
			return nil, errors.New("netstack: Config.Link reports GSO but has no WriteGSO method")
		}
		gso, s.gsoOK = g.WriteGSO, true
	}
	if caps.Lend {
		l, ok := cfg.Link.(link.Lender)
		if !ok {
			return nil, errors.New("netstack: Config.Link reports Lend but has no NextFrame and Release methods")
		}
		s.lender = l
	}
	if caps.Batch {
		b, ok := cfg.Link.(link.Batcher)
		if !ok {
			return nil, errors.New("netstack: Config.Link reports Batch but has no ReadFrames and WriteFrames methods")
		}
		s.batcher = b
		if !caps.GSO {
			// TCP builds super-segments as for a link with TSO; the stack
			// cuts each into a batch of frames and writes them in one call.
			gso, s.gsoOK = s.writeCut, true
			s.cuts.New = func() any { return new(cutBatch) }
		}
	}
	if caps.Queue {
		q, ok := cfg.Link.(link.Queuer)
		if !ok {
			return nil, errors.New("netstack: Config.Link reports Queue but has no Backpressure, NotifyRoom and Queued methods")
		}
		s.hold = newLinkHold(q)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	var seed [32]byte
	rand.Read(seed[:])
	s.rnd = mrand.NewChaCha8(seed)
	if s.mac == (ip.MAC{}) {
		copy(s.mac[:], rnd[:6])
		s.mac[0] = s.mac[0]&^1 | 2 // unicast, locally administered
	}
	s.pingID = uint16(rnd[6])<<8 | uint16(rnd[7])
	s.tcpMem = tcp.NewBudget(cfg.Limits.TCPBufferMemory)
	s.frames = ip.NewFramePool(cfg.MTU)
	s.outPool.New = func() any { q := make([]outFrame, 0, 8); return &q }
	ipCfg := ip.Config{
		DADTransmits:     cfg.DADTransmits,
		MAC:              s.mac,
		MTU:              cfg.MTU,
		Ethernet:         cfg.Link.Ethernet(),
		Promiscuous:      cfg.Forward.forwarding(),
		ReassemblyMemory: cfg.Limits.ReassemblyMemory,
		NeighCacheSize:   cfg.Limits.NeighborCache,
		NeighQueueLen:    cfg.Limits.NeighborQueue,
		PathMTUCache:     cfg.Limits.PathMTUCache,
		MaxRouters:       cfg.Limits.Routers,
		MaxRDNSS:         cfg.Limits.RDNSSServers,
		MaxPrefixes:      cfg.Limits.Prefixes,
		GSO:              gso,
		Frames:           s.frames,
	}
	static := slices.Clone(cfg.Addrs)
	s.static.Store(&static)
	if err := ipAddrConfig(&ipCfg, cfg.Addrs, cfg.Gateways); err != nil {
		return nil, err
	}
	if cfg.DHCP {
		if err := s.newDHCP(); err != nil {
			return nil, err
		}
	}
	var forwardEcho func(time.Time, netip.Addr, netip.Addr, uint16, uint16, []byte)
	if f := cfg.Forward; f != nil && f.Echo != nil {
		forwardEcho = s.forwardEcho
	}
	s.host = ip.New(ipCfg, s.link.WriteFrame, &s.st, ip.Handlers{
		UDP:       s.inputUDP,
		TCP:       s.inputTCP,
		EchoReply: s.echoReply,
		Error:     s.icmpError,
		ICMP:      s.inputICMP,
		DADConflict: func(a netip.Addr) {
			s.log.Warn("netstack: duplicate address detection failed; address not used", "addr", a)
		},
		AddrsChanged: s.addrsMoved,
		ARPConflict:  s.arpConflict,
		ForwardEcho:  forwardEcho,
	}, s.kick)
	for i := 0; i < len(s.tcp.secret); i += 4 {
		v := s.rand32()
		s.tcp.secret[i], s.tcp.secret[i+1], s.tcp.secret[i+2], s.tcp.secret[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		v = s.rand32()
		s.tcp.portKey[i], s.tcp.portKey[i+1], s.tcp.portKey[i+2], s.tcp.portKey[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	newCC := cfg.TCP.NewCC
	if newCC == nil {
		newCC = tcp.NewCubic
	}
	tc := tcp.Config{
		MSS:      s.host.MTU() - ip.IPv4MinHeaderLen - tcp.HeaderMinLen,
		RecvBuf:  cfg.TCP.RecvBuf,
		SendBuf:  cfg.TCP.SendBuf,
		TimeWait: cfg.TCP.TimeWait,
		NoSACK:   cfg.TCP.NoSACK,
		ECN:      cfg.TCP.ECN,
		NewCC:    newCC,
		Budget:   s.tcpMem,
	}
	if s.hold != nil {
		tc.LinkFull, tc.LinkQueued = &s.hold.full, s.hold.queued
	}
	s.linkMTU4.Store(int32(s.host.MTU()))
	tc.LinkMTU = &s.linkMTU4 // a DHCP lease may lower it
	s.tcpCfg = tcp.Prepare(&tc)
	// RFC 8200 §4/RFC 9293 §3.7.1: the MSS leaves room for the 40-byte IPv6
	// header.
	tc.MSS, tc.IPHeaderLen = s.host.MTU()-ipv6HeaderLen-tcp.HeaderMinLen, ipv6HeaderLen
	tc.LinkMTU = nil
	s.tcpCfg6 = tcp.Prepare(&tc)
	if s.host.Addr().IsValid() {
		// A stack without IPv4 has nothing to announce over ARP (and
		// ip.Host.Announce would encode the zero address).
		s.host.Announce()
	}
	s.wg.Add(1)
	go s.timerLoop()
	s.startInput()
	if cfg.AddrsChanged != nil {
		s.wg.Add(1)
		go s.watchAddrs(s.Addrs())
	}
	if s.hold != nil {
		s.wg.Add(1)
		go s.roomLoop()
	}
	if s.dhcp != nil {
		go s.dhcp.run()
	}
	return s, nil
}

// Addr returns the stack's first configured IPv4 address, else its first
// configured address; a stack configured with none (SLAAC only) returns
// the first of its usable addresses that is not link-local, else its
// link-local one, else (before duplicate address detection has passed)
// the zero Addr.
func (s *Stack) Addr() netip.Addr {
	var first netip.Addr
	for _, p := range *s.static.Load() {
		if p.Addr().Is4() {
			return p.Addr()
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	if a := s.host.Addr(); a.IsValid() {
		return a // from DHCP
	}
	if first.IsValid() {
		return first
	}
	for _, p := range s.host.Addrs() {
		if !p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	return first
}

// tcpConfig returns the TCP configuration of connections from local.
func (s *Stack) tcpConfig(local netip.Addr) *tcp.Config {
	if local.Is4() {
		return s.tcpCfg
	}
	return s.tcpCfg6
}

// MAC returns the stack's Ethernet address.
func (s *Stack) MAC() [6]byte { return s.mac }

// Done is closed when the stack closes.
func (s *Stack) Done() <-chan struct{} { return s.done }

// isDone reports whether the stack has closed.
func (s *Stack) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Stats returns a snapshot of the counters of every layer.
func (s *Stack) Stats() stats.Stats {
	st := s.st.Snapshot()
	st.TCP.BufferBudgetHits = s.tcpMem.Hits() // counted by the connections, in the budget
	st.TCP.DropMemory = s.tcpMem.Drops()
	st.TCP.TCPConns = s.connStats()
	if s.dhcp != nil {
		s.dhcp.countInto(&st.DHCP)
	}
	return st
}

// TCPMemoryUsed returns the bytes of TCP buffers held now.
func (s *Stack) TCPMemoryUsed() int { return int(s.tcpMem.Used()) }

// ReassemblyMemory returns what IP reassembly holds now.
func (s *Stack) ReassemblyMemory() (bytes, datagrams int) { return s.host.ReassemblyMemory() }

// Close aborts every connection, closes every listener, closes the link
// and waits for the engine's goroutines. Pending pings fail with
// net.ErrClosed.
func (s *Stack) Close() error {
	var err error
	s.closed.Do(func() {
		if s.dhcp != nil {
			s.dhcp.close() // its RELEASE needs the link
		}
		s.closeTCP()
		s.far.close()
		close(s.done)
		err = s.link.Close()
		s.wg.Wait()
		s.pingMu.Lock()
		for k, ch := range s.pings {
			ch <- net.ErrClosed
			delete(s.pings, k)
		}
		s.pingMu.Unlock()
	})
	return err
}

// rand32 returns a random number from the stack's generator (ephemeral
// ports, ISN keys).
func (s *Stack) rand32() uint32 {
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	return uint32(s.rnd.Uint64())
}

// randSource lends the stack's generator to the TCP core.
type randSource struct{ s *Stack }

func (r randSource) Uint32() uint32 { return r.s.rand32() }

// kick wakes the timer goroutine to look at the deadlines again.
func (s *Stack) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// cutBatch holds the frames one super-segment is cut into.
type cutBatch struct {
	frames [][]byte
	size   int // each frame's capacity
}

// next returns frame i of the batch, of n bytes (Segment's callback).
func (b *cutBatch) next(i, n int) []byte {
	for len(b.frames) <= i {
		b.frames = append(b.frames, make([]byte, 0, b.size))
	}
	if cap(b.frames[i]) < n {
		b.frames[i] = make([]byte, 0, n)
	}
	b.frames[i] = b.frames[i][:n]
	return b.frames[i]
}

// writeCut is the GSO writer of a link with Batch but no GSO: it cuts the
// super-segment frame into a batch of frames, as a NIC's TSO would cut it,
// and writes them with one WriteFrames call.
func (s *Stack) writeCut(frame []byte, gsoSize, csumStart, hdrLen int) error {
	b := s.cuts.Get().(*cutBatch)
	defer s.cuts.Put(b)
	ipOff := 0
	if s.link.Ethernet() {
		ipOff = ip.EthernetHeaderLen
	}
	b.size = ipOff + s.cfg.MTU
	k, err := link.Segment(frame, ipOff, gsoSize, csumStart, hdrLen, b.next)
	if err != nil {
		return err
	}
	_, err = s.batcher.WriteFrames(b.frames[:k])
	return err
}

// readBatch is how many frames readLoop reads per ReadFrames call.
const readBatch = 32

// readLayout returns where readLoop reads a frame into its buffer (behind
// 14 bytes of scratch on an IP link) and how large each buffer is.
func (s *Stack) readLayout() (off, size int) {
	if !s.link.Ethernet() {
		off = ip.EthernetHeaderLen
	}
	size = ip.EthernetHeaderLen + ipv6HeaderLen + 0xffff + 1 // the largest IPv6 packet without a jumbogram
	if s.batcher != nil && !link.CapabilitiesOf(s.link).GSO {
		// A link without GSO delivers no coalesced segments: its frames
		// fit the MTU.
		size = ip.EthernetHeaderLen + s.cfg.MTU
	}
	return off, size
}

// readLoop feeds every frame from the link to the IP layer: itself, or
// through the input workers (see dispatcher). On an IP link it reads
// behind 14 bytes of scratch, which the IP layer uses to build replies in
// place.
func (s *Stack) readLoop() {
	defer s.wg.Done()
	off, size := s.readLayout()
	if d := s.dispatch; d != nil {
		defer d.stop()
		switch {
		case s.lender != nil:
			d.readLend(s.lender)
		case s.batcher != nil:
			d.readBatches(s.batcher, off)
		default:
			d.readFrames(off)
		}
		return
	}
	if l := s.lender; l != nil {
		for {
			f, err := l.NextFrame()
			if err != nil {
				s.linkFailed(err)
				return
			}
			s.host.Input(time.Now(), f)
			l.Release(f)
		}
	}
	if b := s.batcher; b != nil {
		// Each frame is read behind off bytes of scratch, as below.
		full, bufs, sizes := make([][]byte, readBatch), make([][]byte, readBatch), make([]int, readBatch)
		for i := range bufs {
			full[i] = make([]byte, size)
			bufs[i] = full[i][off:]
		}
		for {
			n, err := b.ReadFrames(bufs, sizes)
			if err != nil {
				s.linkFailed(err)
				return
			}
			now := time.Now()
			for i := range n {
				s.host.Input(now, full[i][:off+sizes[i]])
			}
		}
	}
	buf := make([]byte, size)
	for {
		n, err := s.link.ReadFrame(buf[off:])
		if err != nil {
			s.linkFailed(err)
			return
		}
		s.host.Input(time.Now(), buf[:off+n])
	}
}

// linkFailed logs a read error that did not come from closing the stack.
func (s *Stack) linkFailed(err error) {
	if !s.isDone() {
		s.log.Error("netstack: link read failed; stack stopped", "err", err)
	}
}

// minTimerWait is the shortest the timer loop waits between two runs.
const minTimerWait = time.Millisecond

// timerLoop runs the IP layer's deadlines (ARP retries, reassembly
// expiry) with one timer re-armed for the earliest.
func (s *Stack) timerLoop() {
	defer s.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		s.host.Timer(now)
		next := s.host.NextDeadline()
		d := time.Hour
		if !next.IsZero() {
			// A deadline still due right after Timer ran has work Timer
			// could not do yet; look again a millisecond later rather than
			// spin.
			d = max(next.Sub(now), minTimerWait)
		}
		t.Reset(d)
		select {
		case <-t.C:
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}

// signal wakes one waiter of a capacity-1 readiness channel, without
// blocking if it is already signalled.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// waitChan returns *ch, making it first if no one has waited before.
// Called with the owner's lock held.
func waitChan(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{}, 1)
	}
	return *ch
}
