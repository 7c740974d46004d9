// Package netstack is a userspace TCP/IP stack. A Stack owns one Link (a
// TAP or TUN device, an in-memory Pipe, or a link you implement) and an IPv4
// address, answers ARP and ping, and hands out connections that behave like
// package net's, so code written for the kernel's sockets runs over it
// unmodified.
//
// The layers live in internal packages: internal/ip (Ethernet, ARP, IPv4,
// ICMP), internal/tcp (a sans-I/O TCP machine) and internal/link (devices).
// This package is the thin shell that drives them: one goroutine reads the
// link, one runs timers, and calls from users run on their own goroutines.
package netstack

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// Config describes a Stack.
type Config struct {
	// Link is the device the stack sends and receives on. Required.
	Link Link
	// Addr is the stack's IPv4 address and on-link subnet, e.g.
	// 198.18.0.2/24. Required.
	Addr netip.Prefix
	// Gateway is the next hop for destinations off the subnet. The zero
	// value means on-link destinations only.
	Gateway netip.Addr
	// DNS lists the servers Resolver queries.
	DNS []netip.AddrPort
	// MTU caps the size of IP packets sent; 0 means the link's MTU. It
	// may not exceed the link's MTU: New fails if it does.
	MTU int
	// MAC is the stack's Ethernet address on an Ethernet link. Nil means a
	// random locally administered unicast address.
	MAC net.HardwareAddr
	// Logger receives diagnostics; nil means silent.
	Logger *slog.Logger
	// TCP holds defaults for TCP connections.
	TCP TCPConfig
	// Forwarder, if set, makes the stack accept TCP connections and UDP
	// flows for any destination and hand them to its handlers.
	Forwarder *Forwarder
	// Limits bounds what the stack holds; each bound that is hit is
	// counted in Stats.
	Limits Limits
}

// Limits bounds a stack's resources, so hostile or simply heavy traffic
// cannot grow its memory without end. Zero fields take the defaults in
// their comments, which follow Linux's.
type Limits struct {
	// MaxConnections bounds TCP connections in every state, TIME-WAIT
	// included; beyond it dials fail with ENOBUFS and SYNs are dropped.
	// 0 means 65536.
	MaxConnections int
	// Backlog bounds, per listener, both the half-open connections and
	// those established but not yet accepted (Linux's somaxconn); 0 means
	// 4096.
	Backlog int
	// ReassemblyMemory bounds the bytes held for IP reassembly; 0 means
	// 4 MiB (Linux's ipfrag_high_thresh).
	ReassemblyMemory int
	// NeighborCache bounds the ARP cache entries; 0 means 512.
	NeighborCache int
	// NeighborQueue bounds the packets queued per next hop while it is
	// resolved; 0 means 16.
	NeighborQueue int
	// UDPReceiveBuffer is each UDP socket's default queue in bytes of
	// payload (SetReadBuffer changes it); 0 means 212992 (rmem_default).
	UDPReceiveBuffer int
	// TCPBufferMemory bounds the send and receive buffers of all TCP
	// connections together, as Linux's tcp_mem. Past two thirds of it,
	// until use falls back to half (memory pressure), buffers stop
	// growing: windows offer only the memory a connection has, and Write
	// blocks until acknowledgments free room; data that arrives within a
	// window offered before and finds the bound reached is dropped for the
	// peer to resend. Each refusal counts in Stats.TCP.BufferBudgetHits.
	// Each connection still gets 4 KiB each way, so the true bound is this
	// plus 8 KiB per connection (MaxConnections bounds those). 0 means
	// 256 MiB: what tcp_mem allows on a host with about 3 GiB of memory,
	// room for 25 connections at their largest autotuned buffers (6 MiB
	// and 4 MiB), and fixed so that a stack behaves the same on every
	// host.
	TCPBufferMemory int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxConnections, 65536)
	def(&l.Backlog, defaultBacklog)
	def(&l.ReassemblyMemory, 4<<20)
	def(&l.NeighborCache, 512)
	def(&l.NeighborQueue, 16)
	def(&l.UDPReceiveBuffer, defaultUDPReadBuffer)
	def(&l.TCPBufferMemory, 256<<20)
	return l
}

// forwarding reports whether the stack takes packets for any address.
func (c *Config) forwarding() bool {
	return c.Forwarder != nil && (c.Forwarder.TCP != nil || c.Forwarder.UDP != nil)
}

// TCPConfig holds defaults for a stack's TCP connections. Zero fields take
// the defaults in their comments.
type TCPConfig struct {
	// ReceiveBuffer fixes each connection's receive buffer, which bounds
	// the window it offers; 0 means autotuned, from 128 KiB up to 6 MiB as
	// the measured bandwidth-delay product asks (Linux's tcp_rmem).
	ReceiveBuffer int
	// SendBuffer fixes each connection's send buffer; 0 means autotuned,
	// from 64 KiB up to 4 MiB, twice the congestion window (tcp_wmem).
	SendBuffer int
	// TimeWait is how long a closed connection lingers in TIME-WAIT
	// (2·MSL); 0 means 60 s, as Linux.
	TimeWait time.Duration
	// CongestionControl names the algorithm of new connections: "cubic"
	// (RFC 9438, the default, as Linux) or "reno" (NewReno, RFC 5681 and
	// 6582). TCPConn.SetCongestionControl changes one connection's.
	CongestionControl string
	// NoSACK turns selective acknowledgments (RFC 2018) off.
	NoSACK bool
}

// Stats is a snapshot of a stack's counters, grouped per layer: frames,
// packets and segments received and sent, and drops by reason.
type Stats = stats.Stats

// A Stack is one host on a link. Its methods are safe for concurrent use.
type Stack struct {
	cfg    Config
	link   Link
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
	dnsNext atomic.Uint32
	bufSize int         // Headroom + MTU: one frame
	bufs    sync.Pool   // *[]byte of bufSize
	bigBufs sync.Pool   // *[]byte of bigBufSize, for TCP super-segments
	gsoOK   bool        // the link cuts TCP super-segments itself (TSO)
	lender  link.Lender // the link lends received frames; nil if it does not
	outPool sync.Pool   // *[]outFrame: connections' send queues, lent per call
	rndMu   sync.Mutex
	rnd     *mrand.ChaCha8

	cc     func(mss int) tcp.CongestionControl
	tcpCfg *tcp.Config // shared by every connection; see tcpConfig

	tcpMem *tcp.Budget // Limits.TCPBufferMemory, shared by every connection

	pingMu  sync.Mutex
	pingID  uint16
	pingSeq uint16
	pings   map[uint32]chan error // id<<16|seq → waiter
}

// New starts a stack on cfg.Link: it announces its address with a
// gratuitous ARP and starts its reader and timer goroutines. Close stops
// them and closes the link.
func New(cfg Config) (*Stack, error) {
	if cfg.Link == nil {
		return nil, errors.New("netstack: Config.Link is nil")
	}
	if !cfg.Addr.IsValid() || !cfg.Addr.Addr().Is4() {
		return nil, fmt.Errorf("netstack: Config.Addr %v is not an IPv4 prefix", cfg.Addr)
	}
	if _, err := ccByName(cfg.TCP.CongestionControl); err != nil {
		return nil, err
	}
	if cfg.Gateway.IsValid() && !cfg.Addr.Contains(cfg.Gateway) {
		return nil, fmt.Errorf("netstack: gateway %v is not on subnet %v", cfg.Gateway, cfg.Addr.Masked())
	}
	mtu := cfg.Link.MTU()
	if cfg.MTU > mtu {
		return nil, fmt.Errorf("netstack: Config.MTU %d exceeds the link's MTU of %d", cfg.MTU, mtu)
	}
	if cfg.MTU > 0 {
		mtu = cfg.MTU
	}
	if mtu > 65535 {
		return nil, fmt.Errorf("netstack: MTU %d above the IPv4 maximum of 65535", mtu)
	}
	if mtu < 68 { // RFC 791: every host must take a 68-byte datagram
		return nil, fmt.Errorf("netstack: MTU %d below the IPv4 minimum of 68", mtu)
	}
	cfg.Limits = cfg.Limits.withDefaults()
	cc, err := ccByName(cfg.TCP.CongestionControl)
	if err != nil {
		return nil, err
	}
	s := &Stack{
		cc:    cc,
		cfg:   cfg,
		link:  cfg.Link,
		log:   cfg.Logger,
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		pings: make(map[uint32]chan error),
	}
	s.tcpMem = tcp.NewBudget(cfg.Limits.TCPBufferMemory)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var rnd [10]byte
	rand.Read(rnd[:])
	var seed [32]byte
	rand.Read(seed[:])
	s.rnd = mrand.NewChaCha8(seed)
	s.bufSize = ip.EthernetHeaderLen + mtu
	s.bufs.New = func() any { b := make([]byte, s.bufSize); return &b }
	s.bigBufs.New = func() any { b := make([]byte, bigBufSize); return &b }
	s.outPool.New = func() any { q := make([]outFrame, 0, 8); return &q }
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
	switch {
	case len(cfg.MAC) == 6:
		s.mac = ip.MAC(cfg.MAC)
	case cfg.MAC != nil:
		return nil, fmt.Errorf("netstack: MAC %v is not 6 bytes", cfg.MAC)
	default:
		copy(s.mac[:], rnd[:6])
		s.mac[0] = s.mac[0]&^1 | 2 // unicast, locally administered
	}
	s.pingID = uint16(rnd[6])<<8 | uint16(rnd[7])
	s.host = ip.New(ip.Config{
		Addr:             cfg.Addr,
		Gateway:          cfg.Gateway,
		MAC:              s.mac,
		MTU:              mtu,
		Ethernet:         cfg.Link.Ethernet(),
		Promiscuous:      cfg.forwarding(),
		ReassemblyMemory: cfg.Limits.ReassemblyMemory,
		NeighCacheSize:   cfg.Limits.NeighborCache,
		NeighQueueLen:    cfg.Limits.NeighborQueue,
		GSO:              gso,
	}, s.writeFrame, &s.st, ip.Handlers{
		UDP:       s.inputUDP,
		TCP:       s.inputTCP,
		EchoReply: s.echoReply,
		Error:     s.icmpError,
	}, s.kick)
	for i := 0; i < len(s.tcp.secret); i += 4 {
		v := s.rand32()
		s.tcp.secret[i], s.tcp.secret[i+1], s.tcp.secret[i+2], s.tcp.secret[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	s.tcp.conns = make(map[tcpKey]*TCPConn)
	s.tcpCfg = tcp.Prepare(&tcp.Config{
		MSS:      s.host.MTU() - ip.IPv4MinHeaderLen - tcp.HeaderMinLen,
		RecvBuf:  cfg.TCP.ReceiveBuffer,
		SendBuf:  cfg.TCP.SendBuffer,
		TimeWait: cfg.TCP.TimeWait,
		NoSACK:   cfg.TCP.NoSACK,
		NewCC:    s.cc,
		Budget:   s.tcpMem,
	})
	s.host.Announce()
	s.wg.Add(2)
	go s.readLoop()
	go s.timerLoop()
	return s, nil
}

// Addr returns the stack's address.
func (s *Stack) Addr() netip.Addr { return s.cfg.Addr.Addr() }

// HardwareAddr returns the stack's Ethernet address.
func (s *Stack) HardwareAddr() net.HardwareAddr { return append(net.HardwareAddr(nil), s.mac[:]...) }

// Stats returns a snapshot of the stack's counters.
func (s *Stack) Stats() Stats {
	st := s.st.Snapshot()
	st.TCP.BufferBudgetHits = s.tcpMem.Hits() // counted by the connections, in the budget
	st.TCP.DropMemory = s.tcpMem.Drops()
	st.TCP.TCPConns = s.connStats()
	return st
}

// Close stops the stack: it closes the link and waits for the stack's
// goroutines to end. Pending Ping calls fail with net.ErrClosed. Close is
// idempotent.
func (s *Stack) Close() error {
	var err error
	s.closed.Do(func() {
		s.closeTCP()
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

func (s *Stack) writeFrame(f []byte) error { return s.link.WriteFrame(f) }

// rand32 returns a random number from the stack's generator (ephemeral
// ports, ISN keys).
func (s *Stack) rand32() uint32 {
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	return uint32(s.rnd.Uint64())
}

// getBuf returns a buffer of at least n bytes: a pooled frame buffer when
// n fits one, else a new one. Return it with putBuf.
func (s *Stack) getBuf(n int) *[]byte {
	if n <= s.bufSize {
		return s.bufs.Get().(*[]byte)
	}
	b := make([]byte, n)
	return &b
}

func (s *Stack) putBuf(b *[]byte) {
	switch len(*b) {
	case s.bufSize:
		s.bufs.Put(b)
	case bigBufSize:
		s.bigBufs.Put(b)
	}
}

// bigBufSize holds the largest IPv4 packet behind an Ethernet header.
const bigBufSize = ip.EthernetHeaderLen + ip.IPv4MaxLen

// getBigBuf returns a buffer for a TCP super-segment.
func (s *Stack) getBigBuf() *[]byte { return s.bigBufs.Get().(*[]byte) }

// kick wakes the timer goroutine to look at the deadlines again.
func (s *Stack) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// readLoop feeds every frame from the link to the IP layer. On an IP link
// it reads behind 14 bytes of scratch, which the IP layer uses to build
// replies in place.
func (s *Stack) readLoop() {
	defer s.wg.Done()
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
	off := 0
	if !s.link.Ethernet() {
		off = ip.EthernetHeaderLen
	}
	buf := make([]byte, ip.EthernetHeaderLen+ip.IPv4MaxLen+1)
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
	select {
	case <-s.done:
	default:
		s.log.Error("netstack: link read failed; stack stopped", "err", err)
	}
}

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
			d = max(next.Sub(now), 0)
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
