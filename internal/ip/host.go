package ip

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

// Config describes a Host.
type Config struct {
	Addr     netip.Prefix // our address and the on-link subnet
	Gateway  netip.Addr   // default route; invalid: on-link only
	MAC      MAC          // our hardware address (Ethernet links)
	MTU      int          // largest IP packet the link carries
	Ethernet bool         // frames carry Ethernet headers; false: bare IP (TUN)
	// Promiscuous delivers TCP and UDP packets for any destination address
	// (a forwarder's mode), not only ours and broadcasts.
	Promiscuous bool
	// GSO, if set, sends a TCP super-segment larger than the MTU for the
	// link to cut into gsoSize-byte segments (TSO), csumStart and hdrLen
	// counted from the start of frame.
	GSO func(frame []byte, gsoSize, csumStart, hdrLen int) error

	ReassemblyMemory  int           // bytes held for reassembly; 0: 4 MiB (Linux ipfrag_high_thresh)
	ReassemblyTimeout time.Duration // 0: 30 s (Linux ipfrag_time)
	NeighCacheSize    int           // 0: 512 entries
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
}

// Handlers are the upper layers a Host delivers to. Nil handlers are
// answered with ICMP protocol unreachable (transports) or ignored.
type Handlers struct {
	TCP, UDP  Handler
	Error     func(now time.Time, e *ErrorInfo)
	EchoReply func(now time.Time, src netip.Addr, id, seq uint16, data []byte)
}

// Host is the network layer of one stack. Input is called by one goroutine
// (the link reader); Output, SendEcho and Timer may be called from any
// goroutine concurrently.
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
	bcast   netip.Addr // subnet broadcast
	pool    sync.Pool  // *[]byte of EthernetHeaderLen+MTU, for fragments and replies
	limitMu sync.Mutex
	tokens  float64
	lastTok time.Time
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
		reasm:  newReassembler(cfg.ReassemblyMemory, cfg.ReassemblyTimeout, &st.IPv4),
		bcast:  broadcastOf(cfg.Addr),
		tokens: float64(cfg.ICMPBurst),
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	hst.ipID.Store(uint32(seed))
	size := EthernetHeaderLen + cfg.MTU
	hst.pool.New = func() any { b := make([]byte, size); return &b }
	return hst
}

// MTU returns the largest IP packet the link carries.
func (h *Host) MTU() int { return h.cfg.MTU }

// Addr returns our address.
func (h *Host) Addr() netip.Addr { return h.cfg.Addr.Addr() }

func broadcastOf(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() || p.Bits() >= 31 {
		return netip.Addr{}
	}
	a := p.Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// ---- ingress ----

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
			stats.Inc(&h.st.Ethernet.DropIPv6)
			return
		}
		h.inputIPv4(now, frame, EthernetHeaderLen)
		return
	}
	stats.Inc(&h.st.Ethernet.Received)
	eth := EthernetHeader(frame)
	dst := eth.Dst()
	if dst != h.cfg.MAC && dst != BroadcastMAC {
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
		stats.Inc(&h.st.Ethernet.DropIPv6)
	default:
		stats.Inc(&h.st.Ethernet.DropUnknownType)
	}
}

func (h *Host) inputARP(now time.Time, frame []byte) {
	stats.Inc(&h.st.ARP.Received)
	p := ARPPacket(frame[EthernetHeaderLen:])
	if !p.Valid() {
		stats.Inc(&h.st.ARP.DropMalformed)
		return
	}
	sender := p.SenderIP()
	smac := p.SenderMAC()
	if smac.IsMulticast() || !sender.IsValid() {
		stats.Inc(&h.st.ARP.DropMalformed)
		return
	}
	forUs := p.TargetIP() == h.Addr()
	if p.Op() == ARPOpRequest {
		stats.Inc(&h.st.ARP.RequestsIn)
	} else {
		stats.Inc(&h.st.ARP.RepliesIn)
	}
	// RFC 826 "packet reception": update a known sender; add it when the
	// packet is addressed to us. A gratuitous ARP (sender == target) updates
	// only. Addresses off our subnet are never learned.
	var flush [][]byte
	if sender != h.Addr() && !sender.IsUnspecified() && h.cfg.Addr.Contains(sender) {
		flush = h.neigh.learn(sender, smac, now, forUs)
	}
	for _, f := range flush {
		stats.Inc(&h.st.ARP.PendingFlushed)
		EthernetHeader(f).Encode(smac, h.cfg.MAC, EtherTypeIPv4)
		h.writeFrame(f)
	}
	if !forUs {
		if p.Op() == ARPOpRequest {
			stats.Inc(&h.st.ARP.DropNotForUs)
		}
		return
	}
	if p.Op() == ARPOpRequest {
		// Answer in place: swap the roles and send back to the asker.
		ARPPacket(frame[EthernetHeaderLen:]).Encode(ARPOpReply, h.cfg.MAC, h.Addr(), smac, sender)
		EthernetHeader(frame).Encode(smac, h.cfg.MAC, EtherTypeARP)
		stats.Inc(&h.st.ARP.RepliesOut)
		h.writeFrame(frame[:EthernetHeaderLen+ARPLen])
	}
}

// inputIPv4 handles the IP packet at frame[off:]; off ≥ EthernetHeaderLen.
func (h *Host) inputIPv4(now time.Time, frame []byte, off int) {
	stats.Inc(&h.st.IPv4.Received)
	hdr, pkt, err := ParseIPv4(frame[off:])
	if err != nil {
		switch err {
		case errBadVersion:
			stats.Inc(&h.st.IPv4.DropBadVersion)
		case errBadIHL:
			stats.Inc(&h.st.IPv4.DropBadIHL)
		case errBadLength:
			stats.Inc(&h.st.IPv4.DropBadLength)
		case errBadChecksum:
			stats.Inc(&h.st.IPv4.DropBadChecksum)
		default:
			stats.Inc(&h.st.IPv4.DropTruncated)
		}
		return
	}
	dst, src := hdr.Dst(), hdr.Src()
	bcast := dst == h.bcast || dst == netip.IPv4Unspecified() || dst.As4() == [4]byte{255, 255, 255, 255}
	if dst != h.Addr() && !bcast && !(h.cfg.Promiscuous && (hdr.Protocol() == ProtoTCP || hdr.Protocol() == ProtoUDP) && !dst.IsMulticast()) {
		stats.Inc(&h.st.IPv4.DropNotForUs)
		return
	}
	// RFC 1122 §3.2.1.3: discard datagrams from broadcast or multicast
	// sources.
	if src.IsMulticast() || src == h.bcast || src.As4() == [4]byte{255, 255, 255, 255} {
		stats.Inc(&h.st.IPv4.DropBadSource)
		return
	}
	if hdr.IsFragment() {
		buf, boff := h.reasm.add(now, hdr, pkt)
		h.wake()
		if buf == nil {
			return
		}
		frame, off = buf, boff
		if hdr, pkt, err = ParseIPv4(frame[off:]); err != nil {
			return // cannot happen: the header was rebuilt from a valid one
		}
	}
	h.deliver(now, frame, off, hdr, pkt, bcast)
}

func (h *Host) deliver(now time.Time, frame []byte, off int, hdr IPv4Header, pkt []byte, bcast bool) {
	payload := pkt[hdr.HeaderLen():]
	var handler Handler
	switch hdr.Protocol() {
	case ProtoICMP:
		stats.Inc(&h.st.IPv4.Delivered)
		h.inputICMP(now, frame, off, hdr, pkt, bcast)
		return
	case ProtoTCP:
		handler = h.h.TCP
	case ProtoUDP:
		handler = h.h.UDP
	}
	if handler == nil {
		stats.Inc(&h.st.IPv4.DropUnknownProto)
		if !bcast {
			h.SendUnreachable(now, CodeProtoUnreach, pkt)
		}
		return
	}
	stats.Inc(&h.st.IPv4.Delivered)
	if handler(now, hdr.Src(), hdr.Dst(), payload) && !bcast {
		h.SendUnreachable(now, CodePortUnreach, pkt)
	}
}

func (h *Host) inputICMP(now time.Time, frame []byte, off int, hdr IPv4Header, pkt []byte, bcast bool) {
	stats.Inc(&h.st.ICMP.Received)
	msg := ICMPHeader(pkt[hdr.HeaderLen():])
	if len(msg) < ICMPHeaderLen {
		stats.Inc(&h.st.ICMP.DropMalformed)
		return
	}
	if checksum.Checksum(msg, 0) != 0 {
		stats.Inc(&h.st.ICMP.DropBadChecksum)
		return
	}
	switch msg.Type() {
	case ICMPEchoRequest:
		stats.Inc(&h.st.ICMP.EchoRequestsIn)
		if bcast {
			// Linux ignores broadcast echo (icmp_echo_ignore_broadcasts=1).
			stats.Inc(&h.st.ICMP.DropUnhandled)
			return
		}
		// RFC 792: the reply carries the request's data; build it in place.
		// The ICMP message must sit right behind Headroom bytes.
		start := off + hdr.HeaderLen() - Headroom
		msg[0] = ICMPEchoReply
		binary.BigEndian.PutUint16(msg[2:4], checksum.Update16(binary.BigEndian.Uint16(msg[2:4]), uint16(ICMPEchoRequest)<<8|uint16(msg[1]), uint16(ICMPEchoReply)<<8|uint16(msg[1])))
		if err := h.Output(now, frame[start:off+len(pkt)], ProtoICMP, hdr.Dst(), hdr.Src(), false); err == nil {
			stats.Inc(&h.st.ICMP.EchoRepliesOut)
		}
	case ICMPEchoReply:
		stats.Inc(&h.st.ICMP.EchoRepliesIn)
		if h.h.EchoReply != nil {
			h.h.EchoReply(now, hdr.Src(), msg.ID(), msg.Seq(), msg[ICMPHeaderLen:])
		}
	case ICMPDestUnreach, ICMPTimeExceeded, ICMPParamProblem, ICMPSourceQuench:
		h.inputICMPError(now, hdr, msg)
	default:
		stats.Inc(&h.st.ICMP.DropUnhandled)
	}
}

// inputICMPError delivers an error about a packet we sent (RFC 1122
// §3.2.2.1, §4.2.3.9): the quoted header names the endpoint.
func (h *Host) inputICMPError(now time.Time, hdr IPv4Header, msg ICMPHeader) {
	inner := msg[ICMPHeaderLen:]
	if len(inner) < IPv4MinHeaderLen || inner[0]>>4 != 4 {
		stats.Inc(&h.st.ICMP.DropMalformed)
		return
	}
	ihl := int(inner[0]&0xf) * 4
	if ihl < IPv4MinHeaderLen || len(inner) < ihl+8 {
		stats.Inc(&h.st.ICMP.DropMalformed)
		return
	}
	ih := IPv4Header(inner[:ihl])
	if ih.Src() != h.Addr() {
		stats.Inc(&h.st.ICMP.DropMalformed)
		return
	}
	e := ErrorInfo{
		Proto: ih.Protocol(), Src: ih.Src(), Dst: ih.Dst(), Transport: inner[ihl:],
		Type: msg.Type(), Code: msg.Code(),
	}
	switch msg.Type() {
	case ICMPDestUnreach:
		e.Errno = unreachErrno(msg.Code())
		if msg.Code() == CodeFragNeeded {
			e.MTU = int(msg.NextHopMTU())
		}
	case ICMPTimeExceeded:
		e.Errno = syscall.EHOSTUNREACH
	case ICMPParamProblem:
		e.Errno = syscall.EPROTO
	default: // source quench: deprecated (RFC 6633), ignored by Linux
		stats.Inc(&h.st.ICMP.DropUnhandled)
		return
	}
	stats.Inc(&h.st.ICMP.ErrorsIn)
	if h.h.Error != nil {
		h.h.Error(now, &e)
	}
}

// ---- egress ----

// ErrNoRoute, ErrTooBig and ErrNoBuffer are returned by Output; each wraps
// the errno Linux reports in the same case.
var (
	ErrNoRoute  = syscall.ENETUNREACH
	ErrTooBig   = syscall.EMSGSIZE
	ErrNoBuffer = syscall.ENOBUFS
)

// Output sends the transport message at pkt[Headroom:] from src to dst.
// The Host fills the IPv4 and Ethernet headers into pkt[:Headroom] in place.
// Larger than the MTU, the packet is fragmented, or refused with EMSGSIZE
// when df is set. When the next hop is still being resolved the packet is
// queued (a copy) and Output returns nil; if resolution fails, the
// transport hears of it through Handlers.Error with EHOSTUNREACH.
func (h *Host) Output(now time.Time, pkt []byte, proto uint8, src, dst netip.Addr, df bool) error {
	if len(pkt) < Headroom {
		return ErrNoBuffer
	}
	ipLen := len(pkt) - EthernetHeaderLen
	if ipLen > IPv4MaxLen {
		stats.Inc(&h.st.IPv4.DropTooBig)
		return ErrTooBig
	}
	nexthop, err := h.route(dst)
	if err != nil {
		stats.Inc(&h.st.IPv4.DropNoRoute)
		return err
	}
	if !src.IsValid() {
		src = h.Addr()
	}
	id := uint16(h.ipID.Add(1))
	if ipLen <= h.cfg.MTU {
		encodeIPv4(pkt[EthernetHeaderLen:], ipLen, id, df, 0, false, DefaultTTL, proto, src, dst)
		stats.Inc(&h.st.IPv4.Sent)
		if dst == h.Addr() {
			// To ourselves: deliver without the link, as the loopback
			// route does on Linux.
			h.inputIPv4(now, pkt, EthernetHeaderLen)
			return nil
		}
		return h.sendFrame(now, pkt, nexthop, dst)
	}
	if df {
		stats.Inc(&h.st.IPv4.DropTooBig)
		return ErrTooBig
	}
	return h.fragment(now, pkt[Headroom:], id, proto, src, dst, nexthop)
}

// OutputGSO sends the TCP super-segment at pkt[Headroom:] (its header
// l4Len bytes long, its checksum field holding the folded pseudo-header
// sum) for the link to cut into gsoSize-byte segments. The next hop must
// be resolved already (a connection sending data has resolved it); if it
// is not, the packet is dropped and the transport's retransmission
// recovers.
func (h *Host) OutputGSO(now time.Time, pkt []byte, src, dst netip.Addr, gsoSize, l4Len int) error {
	ipLen := len(pkt) - EthernetHeaderLen
	if h.cfg.GSO == nil || ipLen > IPv4MaxLen || len(pkt) < Headroom+l4Len {
		return ErrTooBig
	}
	nexthop, err := h.route(dst)
	if err != nil {
		stats.Inc(&h.st.IPv4.DropNoRoute)
		return err
	}
	encodeIPv4(pkt[EthernetHeaderLen:], ipLen, uint16(h.ipID.Add(1)), true, 0, false, DefaultTTL, ProtoTCP, src, dst)
	frame, off := pkt, 0
	if h.cfg.Ethernet {
		mac, ok := h.neigh.lookupFast(nexthop, now)
		if !ok {
			stats.Inc(&h.st.IPv4.DropHostUnreach)
			return ErrNoBuffer
		}
		EthernetHeader(pkt).Encode(mac, h.cfg.MAC, EtherTypeIPv4)
	} else {
		frame, off = pkt[EthernetHeaderLen:], EthernetHeaderLen
	}
	stats.Inc(&h.st.IPv4.Sent)
	stats.Inc(&h.st.Link.FramesOut)
	stats.Add(&h.st.Link.BytesOut, uint64(len(frame)))
	if err := h.cfg.GSO(frame, gsoSize, Headroom-off, Headroom-off+l4Len); err != nil {
		stats.Inc(&h.st.Link.WriteErrors)
		return err
	}
	return nil
}

// fragment sends payload as IPv4 fragments (RFC 791 §3.2, "An Example
// Fragmentation Procedure"), each carrying a multiple of 8 bytes but the last.
func (h *Host) fragment(now time.Time, payload []byte, id uint16, proto uint8, src, dst, nexthop netip.Addr) error {
	chunk := (h.cfg.MTU - IPv4MinHeaderLen) &^ 7
	bp := h.pool.Get().(*[]byte)
	defer h.pool.Put(bp)
	stats.Inc(&h.st.IPv4.FragmentedPackets)
	for off := 0; off < len(payload); off += chunk {
		n := min(chunk, len(payload)-off)
		f := (*bp)[:Headroom+n]
		copy(f[Headroom:], payload[off:off+n])
		more := off+n < len(payload)
		encodeIPv4(f[EthernetHeaderLen:], IPv4MinHeaderLen+n, id, false, off, more, DefaultTTL, proto, src, dst)
		stats.Inc(&h.st.IPv4.FragmentsOut)
		stats.Inc(&h.st.IPv4.Sent)
		if dst == h.Addr() {
			h.inputIPv4(now, f, EthernetHeaderLen)
			continue
		}
		if err := h.sendFrame(now, f, nexthop, dst); err != nil {
			return err
		}
	}
	return nil
}

// route picks the next hop: on-link destinations directly, the rest via the
// gateway; ENETUNREACH when neither fits, as Linux reports with no route.
func (h *Host) route(dst netip.Addr) (netip.Addr, error) {
	switch {
	case !dst.Is4():
		return netip.Addr{}, ErrNoRoute
	case !h.cfg.Ethernet:
		// A point-to-point IP link (TUN): everything goes out of it.
		return dst, nil
	case h.cfg.Addr.Contains(dst) || dst.As4() == [4]byte{255, 255, 255, 255}:
		return dst, nil
	case h.cfg.Gateway.IsValid():
		return h.cfg.Gateway, nil
	}
	return netip.Addr{}, ErrNoRoute
}

// sendFrame writes an IP packet at frame[14:] towards nexthop, resolving
// its MAC first on an Ethernet link.
func (h *Host) sendFrame(now time.Time, frame []byte, nexthop, dst netip.Addr) error {
	if !h.cfg.Ethernet {
		return h.writeFrame(frame)
	}
	if dst == h.bcast || dst.As4() == [4]byte{255, 255, 255, 255} {
		EthernetHeader(frame).Encode(BroadcastMAC, h.cfg.MAC, EtherTypeIPv4)
		return h.writeFrame(frame)
	}
	if mac, ok := h.neigh.lookupFast(nexthop, now); ok {
		EthernetHeader(frame).Encode(mac, h.cfg.MAC, EtherTypeIPv4)
		return h.writeFrame(frame)
	}
	a := h.neigh.resolve(nexthop, frame, now)
	if a.scheduled {
		h.wake()
	}
	if a.request {
		h.sendARPRequest(nexthop, a.mac, a.unicast)
	}
	switch {
	case a.send:
		EthernetHeader(frame).Encode(a.mac, h.cfg.MAC, EtherTypeIPv4)
		return h.writeFrame(frame)
	case a.noRoom:
		return ErrNoBuffer
	}
	return nil // queued, or dropped from a full queue as Linux does
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

// minFrame is the shortest Ethernet frame without its FCS; ARP packets are
// padded to it as a real NIC would.
const minFrame = 60

func (h *Host) sendARPRequest(target netip.Addr, mac MAC, unicast bool) {
	var f [minFrame]byte
	dst := BroadcastMAC
	if unicast {
		dst = mac
	}
	EthernetHeader(f[:]).Encode(dst, h.cfg.MAC, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, h.cfg.MAC, h.Addr(), MAC{}, target)
	stats.Inc(&h.st.ARP.RequestsOut)
	h.writeFrame(f[:])
}

// Announce sends a gratuitous ARP request for our address (RFC 5227 §3),
// so neighbours update their caches when a stack starts.
func (h *Host) Announce() {
	if !h.cfg.Ethernet {
		return
	}
	var f [minFrame]byte
	EthernetHeader(f[:]).Encode(BroadcastMAC, h.cfg.MAC, EtherTypeARP)
	ARPPacket(f[EthernetHeaderLen:]).Encode(ARPOpRequest, h.cfg.MAC, h.Addr(), MAC{}, h.Addr())
	stats.Inc(&h.st.ARP.Gratuitous)
	h.writeFrame(f[:])
}

// SendEcho sends an ICMP echo request (RFC 792) to dst.
func (h *Host) SendEcho(now time.Time, dst netip.Addr, id, seq uint16, data []byte) error {
	bp := h.pool.Get().(*[]byte)
	defer h.pool.Put(bp)
	n := Headroom + ICMPHeaderLen + len(data)
	var pkt []byte
	if n <= len(*bp) {
		pkt = (*bp)[:n]
	} else {
		pkt = make([]byte, n)
	}
	m := pkt[Headroom:]
	m[0], m[1], m[2], m[3] = ICMPEchoRequest, 0, 0, 0
	binary.BigEndian.PutUint16(m[4:6], id)
	binary.BigEndian.PutUint16(m[6:8], seq)
	copy(m[ICMPHeaderLen:], data)
	binary.BigEndian.PutUint16(m[2:4], checksum.Checksum(m, 0))
	stats.Inc(&h.st.ICMP.EchoRequestsOut)
	return h.Output(now, pkt, ProtoICMP, h.Addr(), dst, false)
}

// SendUnreachable answers the offending IPv4 packet orig with ICMP
// destination unreachable (RFC 792), quoting its header and first 8 data
// bytes (RFC 1812 allows more; Linux quotes up to 576 bytes in all, which
// we follow). RFC 1122 §3.2.2: no error about an ICMP error, a non-first
// fragment, or a broadcast or multicast packet. Errors are rate limited
// with a token bucket as Linux's icmp_msgs_per_sec and icmp_msgs_burst.
func (h *Host) SendUnreachable(now time.Time, code uint8, orig []byte) {
	hdr, pkt, err := ParseIPv4(orig)
	if err != nil {
		return
	}
	if hdr.FragOffset() != 0 || hdr.Src().IsMulticast() || hdr.Dst().IsMulticast() || hdr.Src().IsUnspecified() {
		return
	}
	if hdr.Protocol() == ProtoICMP {
		if p := pkt[hdr.HeaderLen():]; len(p) < 1 || (p[0] != ICMPEchoRequest && p[0] != ICMPEchoReply && p[0] != ICMPTimestamp && p[0] != ICMPTimestampReply) {
			return
		}
	}
	if !h.allowICMPError(now) {
		stats.Inc(&h.st.ICMP.RateLimited)
		return
	}
	quote := min(len(pkt), 576-IPv4MinHeaderLen-ICMPHeaderLen)
	bp := h.pool.Get().(*[]byte)
	defer h.pool.Put(bp)
	out := (*bp)[:Headroom+ICMPHeaderLen+quote]
	m := out[Headroom:]
	m[0], m[1] = ICMPDestUnreach, code
	clear(m[2:8])
	copy(m[ICMPHeaderLen:], pkt[:quote])
	binary.BigEndian.PutUint16(m[2:4], checksum.Checksum(m, 0))
	stats.Inc(&h.st.ICMP.UnreachOut)
	h.Output(now, out, ProtoICMP, hdr.Dst(), hdr.Src(), false)
}

// SendUnreachableFor answers a transport message that arrived from src to
// dst (transport holds its header and data) with ICMP destination
// unreachable, rebuilding the IP header it quotes. A forwarder uses it to
// refuse a flow after the packet itself is gone.
func (h *Host) SendUnreachableFor(now time.Time, code, proto uint8, src, dst netip.Addr, transport []byte) {
	n := min(len(transport), 576)
	pkt := make([]byte, IPv4MinHeaderLen+n)
	encodeIPv4(pkt, len(pkt), 0, false, 0, false, DefaultTTL, proto, src, dst)
	copy(pkt[IPv4MinHeaderLen:], transport[:n])
	h.SendUnreachable(now, code, pkt)
}

func (h *Host) allowICMPError(now time.Time) bool {
	h.limitMu.Lock()
	defer h.limitMu.Unlock()
	if !h.lastTok.IsZero() {
		h.tokens += now.Sub(h.lastTok).Seconds() * float64(h.cfg.ICMPRateLimit)
		h.tokens = min(h.tokens, float64(h.cfg.ICMPBurst))
	}
	h.lastTok = now
	if h.tokens < 1 {
		return false
	}
	h.tokens--
	return true
}

// ---- timers ----

// Timer runs the deadlines due at now: ARP retries and failures, and
// reassembly expiry. Packets whose next hop never resolved are reported to
// the transports as EHOSTUNREACH, as Linux does for an incomplete
// neighbour.
func (h *Host) Timer(now time.Time) {
	reqs, failed := h.neigh.timer(now, nil)
	for _, r := range reqs {
		h.sendARPRequest(r.target, r.mac, r.unicast)
	}
	for _, f := range failed {
		stats.Inc(&h.st.IPv4.DropHostUnreach)
		h.reportLocal(now, f[EthernetHeaderLen:], syscall.EHOSTUNREACH)
	}
	h.reasm.expire(now)
}

// reportLocal tells the transport that a packet it sent could not leave.
func (h *Host) reportLocal(now time.Time, pkt []byte, errno syscall.Errno) {
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
	a, b := h.neigh.nextDeadline(), h.reasm.nextDeadline()
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
