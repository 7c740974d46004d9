package ip

import (
	"net/netip"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

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
	v := h.v4.Load()
	dst := be32(hdr.Dst())
	bcast := dst == 0 || v.broadcast(dst)
	if !v.has(dst) && !bcast && !(h.cfg.Promiscuous && h.forwards(hdr.Protocol()) && dst>>28 != 0xe) {
		stats.Inc(&h.st.IPv4.DropNotForUs)
		return
	}
	// RFC 1122 §3.2.1.3: discard datagrams from broadcast or multicast
	// sources.
	if v.notUnicast(be32(hdr.Src())) {
		stats.Inc(&h.st.IPv4.DropBadSource)
		return
	}
	if len(hdr) > IPv4MinHeaderLen && !h.checkOptions(now, hdr, pkt, bcast) {
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

// forwards reports whether a promiscuous Host takes packets of proto to
// any address: TCP and UDP, and ICMP when echo requests are forwarded.
func (h *Host) forwards(proto uint8) bool {
	return proto == ProtoTCP || proto == ProtoUDP || proto == ProtoICMP && h.h.ForwardEcho != nil
}

// checkOptions validates the option list of a header longer than 20
// bytes (RFC 1122 §3.2.1.8) and reports whether the datagram goes on. A
// malformed list drops it with a parameter problem pointing at the
// offending octet, as Linux's ip_options_compile sends; a source route
// drops it silently, as Linux does with accept_source_route=0 (its
// default): we neither forward nor reverse source routes.
func (h *Host) checkOptions(now time.Time, hdr IPv4Header, pkt []byte, bcast bool) bool {
	o, bad := parseIPv4Options(hdr)
	if bad != 0 {
		stats.Inc(&h.st.IPv4.DropBadOptions)
		if !bcast {
			h.sendICMPError(now, ICMPParamProblem, 0, uint32(bad)<<24, pkt)
		}
		return false
	}
	if o.srr != 0 {
		stats.Inc(&h.st.IPv4.DropSourceRoute)
		return false
	}
	return true
}

func (h *Host) deliver(now time.Time, frame []byte, off int, hdr IPv4Header, pkt []byte, bcast bool) {
	payload := pkt[hdr.HeaderLen():]
	var handler Handler
	switch hdr.Protocol() {
	case ProtoICMP:
		stats.Inc(&h.st.IPv4.Delivered)
		if h.cfg.Promiscuous && !bcast && !h.HasAddr(hdr.Dst()) {
			h.forwardEcho4(now, hdr, payload)
			return
		}
		h.inputICMP(now, frame, off, hdr, pkt, bcast)
		return
	case ProtoTCP:
		if bcast {
			// RFC 1122 §4.2.3.10: a SYN to a broadcast or multicast
			// address is discarded silently, and §3.2.1.3 forbids a
			// reply (a RST) from one; Linux drops every such segment
			// (tcp_v4_conn_request, tcp_v4_send_reset). Multicast never
			// gets this far: we join no group.
			stats.Inc(&h.st.IPv4.DropBroadcastTCP)
			return
		}
		if h.h.TCP != nil {
			stats.Inc(&h.st.IPv4.Delivered)
			h.h.TCP(now, hdr.Src(), hdr.Dst(), hdr.ECN(), payload)
			return
		}
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
// transport hears of it through Handlers.Error with EHOSTUNREACH. A
// broadcast or multicast src is refused with EINVAL.
//
// To an IPv6 destination the message is at pkt[Headroom6:] instead, df
// is ignored (an IPv6 source fragments its own packets above the path MTU,
// RFC 8200 §5), and an invalid src is chosen by SourceAddr.
func (h *Host) Output(now time.Time, pkt []byte, proto uint8, src, dst netip.Addr, df bool) error {
	return h.OutputECN(now, pkt, proto, src, dst, df, 0)
}

// OutputECN is Output with ecn in the ECN field of the IP header (RFC 3168
// §5): ECT(0) for a transport's ECN-capable packets.
func (h *Host) OutputECN(now time.Time, pkt []byte, proto uint8, src, dst netip.Addr, df bool, ecn uint8) error {
	if dst.Is6() && !dst.Is4In6() {
		return h.output6(now, pkt, proto, src, dst, 0, ecn)
	}
	return h.output(now, pkt, 0, proto, src, dst, df, ecn)
}

// errBadSource refuses a send from a broadcast or multicast address, with
// the errno Linux's ip_route_output_key gives for one.
var errBadSource = syscall.EINVAL

// output is Output for a header carrying optLen bytes of options (a
// multiple of 4), already in pkt[Headroom:Headroom+optLen] with the
// message behind them, and ecn for the ECN field. A packet too large for
// the MTU goes in fragments with ecn 0: only TCP sets it, and TCP sends
// nothing that needs fragments.
func (h *Host) output(now time.Time, pkt []byte, optLen int, proto uint8, src, dst netip.Addr, df bool, ecn uint8) error {
	if len(pkt) < Headroom+optLen {
		return ErrNoBuffer
	}
	ipLen := len(pkt) - EthernetHeaderLen
	if ipLen > IPv4MaxLen {
		stats.Inc(&h.st.IPv4.DropTooBig)
		return ErrTooBig
	}
	v := h.v4.Load()
	if !src.IsValid() {
		var ok bool
		if src, ok = h.SourceAddr(dst); !ok {
			stats.Inc(&h.st.IPv4.DropNoRoute)
			return ErrNoRoute // no IPv4 address
		}
	} else if v.notUnicast(be32(src)) {
		// RFC 1122 §3.2.1.3: a broadcast or multicast address is never a
		// source. Callers check first; this is the last line.
		stats.Inc(&h.st.IPv4.DropSendBadSource)
		return errBadSource
	}
	nexthop, err := h.route(dst)
	if err != nil {
		stats.Inc(&h.st.IPv4.DropNoRoute)
		return err
	}
	id := uint16(h.ipID.Add(1))
	mtu := int(h.linkMTU4.Load())
	if !df {
		// RFC 1191 §3: fragment to the path MTU when it is known, so that
		// no router has to.
		mtu = h.PathMTU(now, dst)
	}
	if ipLen <= mtu {
		encodeIPv4(pkt[EthernetHeaderLen:], ipLen, id, df, 0, false, DefaultTTL, proto, src, dst)
		if optLen > 0 {
			setIPv4Options(pkt[EthernetHeaderLen:], optLen)
		}
		if ecn != 0 {
			setECN4(pkt[EthernetHeaderLen:], ecn)
		}
		stats.Inc(&h.st.IPv4.Sent)
		if v.has(be32(dst)) {
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
	return h.fragment(now, pkt[Headroom+optLen:], pkt[Headroom:Headroom+optLen], id, proto, src, dst, nexthop, mtu)
}

// OutputGSO sends the TCP super-segment at pkt[Headroom:] (its header
// l4Len bytes long, its checksum field holding the folded pseudo-header
// sum) for the link to cut into gsoSize-byte segments. The next hop must
// be resolved already (a connection sending data has resolved it); if it
// is not, the packet is dropped and the transport's retransmission
// recovers. To an IPv6 destination the segment is at pkt[Headroom6:]; the
// link tells the GSO type (virtio TCPV4 or TCPV6) from the IP version.
// ecn is the ECN field of every segment's IP header (RFC 3168 §5).
func (h *Host) OutputGSO(now time.Time, pkt []byte, src, dst netip.Addr, gsoSize, l4Len int, ecn uint8) error {
	ipLen := len(pkt) - EthernetHeaderLen
	v6 := dst.Is6() && !dst.Is4In6()
	hr, typ, sent := Headroom, uint16(EtherTypeIPv4), &h.st.IPv4.Sent
	if v6 {
		hr, typ, sent = Headroom6, EtherTypeIPv6, &h.st.IPv6.Sent
	}
	if h.cfg.GSO == nil || (v6 && ipLen-IPv6HeaderLen > ipv6MaxPayload) || (!v6 && ipLen > IPv4MaxLen) || len(pkt) < hr+l4Len {
		return ErrTooBig
	}
	var nexthop netip.Addr
	var err error
	if v6 {
		if src.IsMulticast() {
			stats.Inc(&h.st.IPv6.DropSendBadSource)
			return errBadSource
		}
		if nexthop, err = h.route6(dst); err != nil {
			stats.Inc(&h.st.IPv6.DropNoRoute)
			return err
		}
		encodeIPv6(pkt[EthernetHeaderLen:], ipLen-IPv6HeaderLen, flowLabel(src, dst, ProtoTCP, h.v6.flowKey), ProtoTCP, uint8(h.v6.hopLimit.Load()), src, dst)
		setECN6(pkt[EthernetHeaderLen:], ecn)
	} else {
		if h.notUnicast(src) {
			stats.Inc(&h.st.IPv4.DropSendBadSource)
			return errBadSource
		}
		if nexthop, err = h.route(dst); err != nil {
			stats.Inc(&h.st.IPv4.DropNoRoute)
			return err
		}
		encodeIPv4(pkt[EthernetHeaderLen:], ipLen, uint16(h.ipID.Add(1)), true, 0, false, DefaultTTL, ProtoTCP, src, dst)
		if ecn != 0 {
			setECN4(pkt[EthernetHeaderLen:], ecn)
		}
	}
	frame, off := pkt, 0
	if h.cfg.Ethernet {
		mac, ok := h.neigh.lookupFast(nexthop, now)
		if !ok {
			if v6 {
				stats.Inc(&h.st.IPv6.DropHostUnreach)
			} else {
				stats.Inc(&h.st.IPv4.DropHostUnreach)
			}
			return ErrNoBuffer
		}
		EthernetHeader(pkt).Encode(mac, h.cfg.MAC, typ)
	} else {
		frame, off = pkt[EthernetHeaderLen:], EthernetHeaderLen
	}
	stats.Inc(sent)
	stats.Inc(&h.st.Link.FramesOut)
	stats.Add(&h.st.Link.BytesOut, uint64(len(frame)))
	if err := h.cfg.GSO(frame, gsoSize, hr-off, hr-off+l4Len); err != nil {
		stats.Inc(&h.st.Link.WriteErrors)
		return err
	}
	return nil
}

// fragment sends payload as IPv4 fragments (RFC 791 §3.2, "An Example
// Fragmentation Procedure"), each carrying a multiple of 8 bytes but the
// last. Only the first carries opts: the options we send (record route,
// timestamp) are not copied into fragments (RFC 791 §3.1).
func (h *Host) fragment(now time.Time, payload, opts []byte, id uint16, proto uint8, src, dst, nexthop netip.Addr, mtu int) error {
	bp := h.pool.Get(0)
	defer h.pool.Put(bp)
	stats.Inc(&h.st.IPv4.FragmentedPackets)
	for off, n := 0, 0; off < len(payload); off += n {
		hl := IPv4MinHeaderLen
		if off == 0 {
			hl += len(opts)
		}
		n = min((mtu-hl)&^7, len(payload)-off)
		f := (*bp)[:EthernetHeaderLen+hl+n]
		copy(f[EthernetHeaderLen+hl:], payload[off:off+n])
		more := off+n < len(payload)
		encodeIPv4(f[EthernetHeaderLen:], hl+n, id, false, off, more, DefaultTTL, proto, src, dst)
		if hl > IPv4MinHeaderLen {
			copy(f[Headroom:], opts)
			setIPv4Options(f[EthernetHeaderLen:], len(opts))
		}
		stats.Inc(&h.st.IPv4.FragmentsOut)
		stats.Inc(&h.st.IPv4.Sent)
		if h.HasAddr(dst) {
			h.inputIPv4(now, f, EthernetHeaderLen)
			continue
		}
		if err := h.sendFrame(now, f, nexthop, dst); err != nil {
			return err
		}
	}
	return nil
}

// sendFrame writes an IP packet at frame[14:] towards nexthop, resolving
// its MAC first on an Ethernet link.
func (h *Host) sendFrame(now time.Time, frame []byte, nexthop, dst netip.Addr) error {
	if !h.cfg.Ethernet {
		return h.writeFrame(frame)
	}
	typ := uint16(EtherTypeIPv4)
	if dst.Is6() {
		typ = EtherTypeIPv6
		if dst.IsMulticast() {
			EthernetHeader(frame).Encode(multicastMAC(dst), h.cfg.MAC, typ)
			return h.writeFrame(frame)
		}
	} else if h.isBroadcast(dst) {
		EthernetHeader(frame).Encode(BroadcastMAC, h.cfg.MAC, typ)
		return h.writeFrame(frame)
	}
	if mac, ok := h.neigh.lookupFast(nexthop, now); ok {
		EthernetHeader(frame).Encode(mac, h.cfg.MAC, typ)
		return h.writeFrame(frame)
	}
	a := h.neigh.resolve(nexthop, frame, now)
	if a.scheduled {
		h.wake()
	}
	if a.request {
		h.solicit(now, nexthop, a.mac, a.unicast)
	}
	switch {
	case a.send:
		EthernetHeader(frame).Encode(a.mac, h.cfg.MAC, typ)
		return h.writeFrame(frame)
	case a.noRoom:
		return ErrNoBuffer
	}
	return nil // queued, or dropped from a full queue as Linux does
}
