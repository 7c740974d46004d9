package ip

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// Config describes a Host.
type Config struct {
	// Addrs are our addresses of either family, each with its on-link
	// prefix. Addr, if valid, is one more, listed first.
	Addrs []netip.Prefix
	// Gateways are default routers of either family; Gateway, if valid,
	// is one more. IPv6 also learns routers from router advertisements.
	Gateways []netip.Addr
	Addr     netip.Prefix // our (first IPv4) address and the on-link subnet
	Gateway  netip.Addr   // default route; invalid: on-link only
	// NoLinkLocal: no fe80::/64 address on an Ethernet link (made by
	// default, RFC 4291 §2.1).
	NoLinkLocal bool
	// NoSLAAC: ignore the prefix information of router advertisements
	// (no addresses formed, RFC 4862 §5.5.3).
	NoSLAAC bool
	// NoRS: send no router solicitation at start (RFC 4861 §6.3.7).
	NoRS bool
	// DADTransmits is the number of neighbour solicitations duplicate
	// address detection sends (RFC 4862 §5.1); 0: 1, as Linux's
	// dad_transmits; negative: no DAD, addresses are usable at once.
	DADTransmits int
	// StableSecret keys the RFC 7217 interface identifiers of the
	// link-local and SLAAC addresses; zero: random per Host.
	StableSecret [16]byte
	MaxRouters   int  // default routers learnt from RAs; 0: 8
	MaxPrefixes  int  // on-link prefixes and SLAAC addresses learnt from RAs; 0: 16 each
	MaxRDNSS     int  // DNS servers learnt from RAs; 0: 8
	MAC          MAC  // our hardware address (Ethernet links)
	MTU          int  // largest IP packet the link carries
	Ethernet     bool // frames carry Ethernet headers; false: bare IP (TUN)
	// Promiscuous delivers TCP and UDP packets for any destination address
	// (a forwarder's mode), not only ours and broadcasts.
	Promiscuous bool
	// GSO, if set, sends a TCP super-segment larger than the MTU for the
	// link to cut into gsoSize-byte segments (TSO), csumStart and hdrLen
	// counted from the start of frame.
	GSO func(frame []byte, gsoSize, csumStart, hdrLen int) error
	// Frames, if set, is the stack's pool of frame buffers, which the Host
	// shares; nil: a pool of its own.
	Frames *FramePool

	ReassemblyMemory  int           // bytes held for reassembly; 0: 4 MiB (Linux ipfrag_high_thresh)
	ReassemblyTimeout time.Duration // 0: 30 s (Linux ipfrag_time)
	NeighCacheSize    int           // 0: 512 entries
	PathMTUCache      int           // destinations with a learned path MTU; 0: 4096
	NeighQueueLen     int           // frames queued per unresolved next hop; 0: 16
	ARPRetries        int           // requests per resolution; 0: 3 (Linux mcast_solicit)
	ARPRetryInterval  time.Duration // 0: 1 s (Linux retrans_time)
	NeighReachable    time.Duration // 0: 30 s (Linux base_reachable_time)
	ICMPRateLimit     int           // ICMP errors per second; 0: 1000 (Linux icmp_msgs_per_sec)
	ICMPBurst         int           // 0: 50 (Linux icmp_msgs_burst)
	Seed              uint64        // IP IDs; 0: random
}

// Handler receives a transport payload addressed to us. payload aliases a
// buffer the Host reuses: it is valid only during the call. A UDP handler
// returns true when no socket wants the datagram, and the Host answers with
// ICMP port unreachable.
type Handler func(now time.Time, src, dst netip.Addr, payload []byte) (unreachable bool)

// TCPHandler receives a TCP segment addressed to us, as Handler, with ecn
// the ECN field of its IP header (RFC 3168 §5). A TCP handler answers a
// segment for no connection itself (with a RST).
type TCPHandler func(now time.Time, src, dst netip.Addr, ecn uint8, segment []byte)

// ErrorInfo describes an ICMP error received for a packet we sent, or a
// local failure to deliver one (an unresolvable next hop), so the transport
// can find the endpoint from the original header and report Errno.
type ErrorInfo struct {
	Proto     uint8
	Src, Dst  netip.Addr // of the original packet: Src is ours
	Transport []byte     // the start of the original transport header (≥ 8 bytes)
	Type      uint8
	Code      uint8
	MTU       int // next-hop MTU of a fragmentation-needed message
	Errno     syscall.Errno
	Local     bool // generated here, not received from the network
	// V6 reports an ICMPv6 message (RFC 4443): Type and Code are ICMPv6
	// ones, and MTU is a Packet Too Big's.
	V6 bool
}

// Handlers are the upper layers a Host delivers to. Nil handlers are
// answered with ICMP protocol unreachable (transports) or ignored.
type Handlers struct {
	TCP       TCPHandler
	UDP       Handler
	Error     func(now time.Time, e *ErrorInfo)
	EchoReply func(now time.Time, src netip.Addr, id, seq uint16, data []byte)
	// ICMP, if set, sees every valid ICMP message to us, as a raw socket
	// would, before the Host handles it; msg is valid only during the call.
	ICMP func(now time.Time, src, dst netip.Addr, msg []byte)
	// DNSChanged, if set, is called when the DNS servers learnt from
	// router advertisements (RFC 8106) change; see Host.DNSServers.
	DNSChanged func()
	// AddrsChanged, if set, is called when our addresses may have
	// changed: one added or removed, an IPv6 one past DAD, configured
	// from or expired with router advertisements. It may be called when
	// nothing visible changed.
	AddrsChanged func()
	// DADConflict, if set, is called when duplicate address detection
	// finds a our address in use by another node (RFC 4862 §5.4.5); the
	// address is never used.
	DADConflict func(addr netip.Addr)
	// ARPConflict, if set, is called when ARP shows the address being
	// probed (see Probe) in use by another host.
	ARPConflict func(addr netip.Addr)
	// ForwardEcho, if set on a promiscuous Host, receives the echo
	// requests (ICMP or ICMPv6) to addresses not ours; data is valid only
	// during the call. See SendEchoReply.
	ForwardEcho func(now time.Time, src, dst netip.Addr, id, seq uint16, data []byte)
}

// Host is the network layer of one stack. Input, Output, SendEcho and
// Timer may be called from any goroutine concurrently: the stack's input
// workers call Input at once for frames of different flows. Its shared
// state is locked (neighbour cache, reassembly, path MTUs, addresses,
// routes, the ICMP rate limiter) or atomic (counters, IP IDs).
type Host struct {
	cfg     Config
	ipHdr   int // offset of the IP header in a frame: 14 on Ethernet and on TUN (scratch)
	write   func([]byte) error
	st      *stats.Stats
	h       Handlers
	wake    func()
	neigh   *neighTable
	reasm   *reassembler
	ipID    atomic.Uint32
	pmtu    pathMTUs
	pool    *FramePool // frames for fragments and replies, shared with the layers above
	limitMu sync.Mutex
	tokens  float64
	lastTok time.Time
	v4      atomic.Pointer[addrs4] // our IPv4 addresses, replaced whole on a change
	addrMu  sync.Mutex             // serializes changes of v4
	v6      v6State
	routes  routes
	// arpWatch is the IPv4 address being probed (Probe), big-endian;
	// 0: none.
	arpWatch atomic.Uint32
	linkMTU4 atomic.Int32 // the link MTU for IPv4: the link's, or lower by a DHCP lease
}

// New returns a Host that writes frames with write (on a non-Ethernet link,
// the IP packet only), counts into st, delivers to h, and calls wake when it
// has set a deadline that may be earlier than the last NextDeadline.
func New(cfg Config, write func([]byte) error, st *stats.Stats, h Handlers, wake func()) *Host {
	if cfg.ReassemblyMemory == 0 {
		cfg.ReassemblyMemory = 4 << 20
	}
	if cfg.ReassemblyTimeout == 0 {
		cfg.ReassemblyTimeout = 30 * time.Second
	}
	if cfg.PathMTUCache <= 0 {
		cfg.PathMTUCache = 4096
	}
	if cfg.NeighCacheSize == 0 {
		cfg.NeighCacheSize = 512
	}
	if cfg.NeighQueueLen == 0 {
		cfg.NeighQueueLen = 16
	}
	if cfg.ARPRetries == 0 {
		cfg.ARPRetries = 3
	}
	if cfg.ARPRetryInterval == 0 {
		cfg.ARPRetryInterval = time.Second
	}
	if cfg.NeighReachable == 0 {
		cfg.NeighReachable = 30 * time.Second
	}
	if cfg.ICMPRateLimit == 0 {
		cfg.ICMPRateLimit = 1000
	}
	if cfg.ICMPBurst == 0 {
		cfg.ICMPBurst = 50
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	if wake == nil {
		wake = func() {}
	}
	if cfg.MaxRouters <= 0 {
		cfg.MaxRouters = 8
	}
	if cfg.MaxPrefixes <= 0 {
		cfg.MaxPrefixes = 16
	}
	if cfg.MaxRDNSS <= 0 {
		cfg.MaxRDNSS = 8
	}
	if cfg.DADTransmits == 0 {
		cfg.DADTransmits = 1
	}
	var v4 []netip.Prefix
	for _, p := range append([]netip.Prefix{cfg.Addr}, cfg.Addrs...) {
		if p.IsValid() && p.Addr().Is4() && !slices.ContainsFunc(v4, func(q netip.Prefix) bool { return q.Addr() == p.Addr() }) {
			v4 = append(v4, p)
		}
	}
	if len(v4) > 0 {
		cfg.Addr = v4[0]
	}
	hst := &Host{
		cfg:   cfg,
		ipHdr: EthernetHeaderLen,
		write: write,
		st:    st,
		h:     h,
		wake:  wake,
		neigh: newNeighTable(neighConfig{
			size: cfg.NeighCacheSize, queueLen: cfg.NeighQueueLen, retries: cfg.ARPRetries,
			retryInterval: cfg.ARPRetryInterval, reachable: cfg.NeighReachable,
		}, &st.ARP),
		reasm:  newReassembler(cfg.ReassemblyMemory, cfg.ReassemblyTimeout, &st.IPv4, &st.IPv6),
		tokens: float64(cfg.ICMPBurst),
	}
	hst.v4.Store(newAddrs4(v4))
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	hst.ipID.Store(uint32(seed))
	hst.initV6(seed)
	hst.initRoutes()
	hst.pmtu.max = cfg.PathMTUCache
	hst.linkMTU4.Store(int32(cfg.MTU))
	hst.pool = cfg.Frames
	if hst.pool == nil {
		hst.pool = NewFramePool(cfg.MTU)
	}
	return hst
}

// MTU returns the largest IP packet the link carries.
func (h *Host) MTU() int { return h.cfg.MTU }

// Addr returns our first IPv4 address, or the zero Addr.
func (h *Host) Addr() netip.Addr {
	if v := h.v4.Load(); len(v.prefixes) > 0 {
		return v.prefixes[0].Addr()
	}
	return netip.Addr{}
}

// Input handles one frame from the link. frame starts with 14 bytes of
// Ethernet header, or, on an IP link, 14 bytes of scratch space before the
// IP packet (the caller reads into frame[14:]), so replies can be built in
// place. Input may modify frame; it never keeps it after returning.
func (h *Host) Input(now time.Time, frame []byte) {
	stats.Inc(&h.st.Link.FramesIn)
	stats.Add(&h.st.Link.BytesIn, uint64(len(frame)))
	if len(frame) < EthernetHeaderLen {
		stats.Inc(&h.st.Ethernet.DropTruncated)
		return
	}
	if !h.cfg.Ethernet {
		if len(frame) > EthernetHeaderLen && frame[EthernetHeaderLen]>>4 == 6 {
			h.inputIPv6(now, frame, EthernetHeaderLen)
			return
		}
		h.inputIPv4(now, frame, EthernetHeaderLen)
		return
	}
	stats.Inc(&h.st.Ethernet.Received)
	eth := EthernetHeader(frame)
	dst := eth.Dst()
	if dst != h.cfg.MAC && dst != BroadcastMAC && !h.joinedMAC(dst) {
		if dst.IsMulticast() {
			stats.Inc(&h.st.Ethernet.DropMulticast)
		} else {
			stats.Inc(&h.st.Ethernet.DropNotForUs)
		}
		return
	}
	switch eth.Type() {
	case EtherTypeIPv4:
		h.inputIPv4(now, frame, EthernetHeaderLen)
	case EtherTypeARP:
		h.inputARP(now, frame)
	case EtherTypeIPv6:
		h.inputIPv6(now, frame, EthernetHeaderLen)
	default:
		stats.Inc(&h.st.Ethernet.DropUnknownType)
	}
}

// writeFrame hands a frame to the link; on an IP link without the
// Ethernet header.
func (h *Host) writeFrame(frame []byte) error {
	if !h.cfg.Ethernet {
		frame = frame[EthernetHeaderLen:]
	}
	stats.Inc(&h.st.Link.FramesOut)
	stats.Add(&h.st.Link.BytesOut, uint64(len(frame)))
	if err := h.write(frame); err != nil {
		stats.Inc(&h.st.Link.WriteErrors)
		return err
	}
	return nil
}

// Timer runs the deadlines due at now: ARP retries and failures, and
// reassembly expiry. Packets whose next hop never resolved are reported to
// the transports as EHOSTUNREACH, as Linux does for an incomplete
// neighbour.
func (h *Host) Timer(now time.Time) {
	reqs, failed, lost := h.neigh.timer(now, nil)
	for _, r := range reqs {
		h.solicit(now, r.target, r.mac, r.unicast)
	}
	for _, a := range lost {
		h.gatewayFailed(now, a)
	}
	h.probeDead(now)
	for _, f := range failed {
		if f[EthernetHeaderLen]>>4 == 6 {
			stats.Inc(&h.st.IPv6.DropHostUnreach)
		} else {
			stats.Inc(&h.st.IPv4.DropHostUnreach)
		}
		h.reportLocal(now, f[EthernetHeaderLen:], syscall.EHOSTUNREACH)
	}
	for _, first := range h.reasm.expire(now) {
		// RFC 8200 §4.5: time exceeded, code 1, when the first fragment
		// arrived but not all of the rest.
		h.sendICMPv6Error(now, ICMPv6TimeExceeded, CodeV6FragReasmTime, 0, first, false)
	}
	h.timerV6(now)
}

// reportLocal tells the transport that a packet it sent could not leave.
func (h *Host) reportLocal(now time.Time, pkt []byte, errno syscall.Errno) {
	if len(pkt) > 0 && pkt[0]>>4 == 6 {
		h.reportLocal6(now, pkt, errno)
		return
	}
	hdr, p, err := ParseIPv4(pkt)
	if err != nil || h.h.Error == nil || len(p)-hdr.HeaderLen() < 8 {
		return
	}
	h.h.Error(now, &ErrorInfo{
		Proto: hdr.Protocol(), Src: hdr.Src(), Dst: hdr.Dst(), Transport: p[hdr.HeaderLen():],
		Type: ICMPDestUnreach, Code: CodeHostUnreach, Errno: errno, Local: true,
	})
}

// NextDeadline returns the earliest time Timer has work, or the zero time.
func (h *Host) NextDeadline() time.Time {
	d := earliest(earliest(h.neigh.nextDeadline(), h.reasm.nextDeadline()), h.nextDeadlineV6())
	return earliest(d, h.nextDeadProbe())
}

// earliest returns the earlier of two deadlines, the zero time meaning
// none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Neighbour returns the cached MAC of addr, for diagnostics and tests.
func (h *Host) Neighbour(addr netip.Addr) (MAC, bool) {
	mac, st, ok := h.neigh.get(addr)
	return mac, ok && st != neighIncomplete
}

// ReassemblyMemory reports the bytes and datagrams held for reassembly.
func (h *Host) ReassemblyMemory() (bytes, datagrams int) { return h.reasm.memory() }
