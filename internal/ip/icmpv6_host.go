package ip

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

// RFC 4443 ICMPv6 types and codes, and the RFC 4861 NDP and RFC 3810 MLD
// types.
const (
	ICMPv6DestUnreach   = 1
	ICMPv6PacketTooBig  = 2
	ICMPv6TimeExceeded  = 3
	ICMPv6ParamProblem  = 4
	ICMPv6EchoRequest   = 128
	ICMPv6EchoReply     = 129
	ICMPv6MLDQuery      = 130
	ICMPv6RouterSolicit = 133
	ICMPv6RouterAdvert  = 134
	ICMPv6NeighSolicit  = 135
	ICMPv6NeighAdvert   = 136
	ICMPv6MLDv2Report   = 143

	CodeV6NoRoute        = 0
	CodeV6AdminProhibit  = 1
	CodeV6BeyondScope    = 2
	CodeV6AddrUnreach    = 3
	CodeV6PortUnreach    = 4
	CodeV6PolicyFail     = 5
	CodeV6RejectRoute    = 6
	CodeV6FragReasmTime  = 1 // time exceeded: fragment reassembly time exceeded
	icmpv6MaxErrorPacket = IPv6MinMTU
)

// unreach6Errno maps a destination-unreachable code to the errno Linux
// reports to the socket (icmpv6_err_convert).
func unreach6Errno(code uint8) syscall.Errno {
	switch code {
	case CodeV6NoRoute:
		return syscall.ENETUNREACH
	case CodeV6AdminProhibit, CodeV6PolicyFail, CodeV6RejectRoute:
		return syscall.EACCES
	case CodeV6PortUnreach:
		return syscall.ECONNREFUSED
	}
	return syscall.EHOSTUNREACH
}

// inputICMPv6 handles the ICMPv6 message at pkt[at:].
func (h *Host) inputICMPv6(now time.Time, frame []byte, off int, pkt []byte, at int, mcast bool) {
	stats.Inc(&h.st.ICMPv6.Received)
	hdr := IPv6Header(pkt[:IPv6HeaderLen])
	src, dst := hdr.Src(), hdr.Dst()
	msg := pkt[at:]
	if len(msg) < 8 {
		stats.Inc(&h.st.ICMPv6.DropMalformed)
		return
	}
	// RFC 4443 §2.3: the checksum covers the pseudo-header.
	if checksum.Checksum(msg, checksum.Pseudo(src, dst, ProtoICMPv6, len(msg))) != 0 {
		stats.Inc(&h.st.ICMPv6.DropBadChecksum)
		return
	}
	if h.h.ICMP != nil {
		h.h.ICMP(now, src, dst, msg)
	}
	switch msg[0] {
	case ICMPv6EchoRequest:
		stats.Inc(&h.st.ICMPv6.EchoRequestsIn)
		// RFC 4443 §4.2; to a group we joined Linux answers too
		// (icmp_echo_ignore_multicast=0), from a unicast address of ours.
		from := dst
		if mcast {
			var ok bool
			if from, ok = h.SourceAddr(src); !ok {
				return
			}
		}
		start := off + at - Headroom6
		msg[0] = ICMPv6EchoReply
		checksum6(msg, 2, ProtoICMPv6, from, src)
		if err := h.output6(now, frame[start:off+len(pkt)], ProtoICMPv6, from, src, 0, 0); err == nil {
			stats.Inc(&h.st.ICMPv6.EchoRepliesOut)
		}
	case ICMPv6EchoReply:
		stats.Inc(&h.st.ICMPv6.EchoRepliesIn)
		if h.h.EchoReply != nil {
			h.h.EchoReply(now, src, binary.BigEndian.Uint16(msg[4:6]), binary.BigEndian.Uint16(msg[6:8]), msg[8:])
		}
	case ICMPv6DestUnreach, ICMPv6PacketTooBig, ICMPv6TimeExceeded, ICMPv6ParamProblem:
		h.inputICMPv6Error(now, msg)
	case ICMPv6NeighSolicit, ICMPv6NeighAdvert, ICMPv6RouterAdvert:
		h.inputNDP(now, hdr, msg, mcast)
	case ICMPv6MLDQuery:
		h.inputMLDQuery(now, hdr, msg)
	default:
		// Router solicitations (we are no router), redirects, other
		// nodes' MLD reports: ignored.
		stats.Inc(&h.st.ICMPv6.DropUnhandled)
	}
}

// inputICMPv6Error delivers an error about a packet we sent (RFC 4443
// §2.4 (d), §3): the quoted packet names the endpoint. A Packet Too Big
// lowers the path MTU at once (RFC 8201 §4).
func (h *Host) inputICMPv6Error(now time.Time, msg []byte) {
	inner := msg[8:]
	if len(inner) < IPv6HeaderLen || inner[0]>>4 != 6 {
		stats.Inc(&h.st.ICMPv6.DropMalformed)
		return
	}
	ih := IPv6Header(inner[:IPv6HeaderLen])
	proto, at, ok := upperLayer(inner)
	if !ok || len(inner) < at+8 {
		stats.Inc(&h.st.ICMPv6.DropMalformed)
		return
	}
	if _, ours := h.addrState(ih.Src()); !ours {
		stats.Inc(&h.st.ICMPv6.DropMalformed)
		return
	}
	e := ErrorInfo{Proto: proto, Src: ih.Src(), Dst: ih.Dst(), Transport: inner[at:], Type: msg[0], Code: msg[1], V6: true}
	switch msg[0] {
	case ICMPv6DestUnreach:
		e.Errno = unreach6Errno(msg[1])
	case ICMPv6PacketTooBig:
		stats.Inc(&h.st.ICMPv6.PacketTooBigIn)
		e.Errno = syscall.EMSGSIZE
		e.MTU = max(int(min(binary.BigEndian.Uint32(msg[4:8]), 1<<20)), IPv6MinMTU)
		// RFC 8201 §4 and RFC 5927: what TCP quotes is checked against
		// the connection it names (the engine stores the path MTU only
		// if the quoted sequence number is in flight), so a forged PTB
		// cannot lower a flow's path; other protocols have no such
		// check and lower it here, as Linux's udpv6_err does.
		if proto != ProtoTCP {
			e.MTU = h.SetPathMTU(now, ih.Dst(), e.MTU)
		}
	case ICMPv6TimeExceeded:
		e.Errno = syscall.EHOSTUNREACH
	case ICMPv6ParamProblem:
		e.Errno = syscall.EPROTO
	}
	stats.Inc(&h.st.ICMPv6.ErrorsIn)
	if h.h.Error != nil {
		h.h.Error(now, &e)
	}
}

// sendICMPv6Error answers the IPv6 packet orig with an error (RFC 4443
// §2.4): info is bytes 4 to 7 (a pointer, an MTU). Never about an ICMPv6
// error, nor about a packet from an unspecified or multicast source, nor to
// a multicast destination unless toMcast (Packet Too Big and the option
// case of §2.4 (e.3)). As much of orig is quoted as fits in 1280 bytes.
// Rate limited with the IPv4 errors' shared token bucket.
func (h *Host) sendICMPv6Error(now time.Time, typ, code uint8, info uint32, orig []byte, toMcast bool) {
	if len(orig) < IPv6HeaderLen {
		return
	}
	hdr := IPv6Header(orig[:IPv6HeaderLen])
	src, dst := hdr.Src(), hdr.Dst()
	if src.IsUnspecified() || src.IsMulticast() || (dst.IsMulticast() && !toMcast) {
		return
	}
	if proto, at, ok := upperLayer(orig); ok && proto == ProtoICMPv6 && (at >= len(orig) || orig[at] < 128) {
		return // RFC 4443 §2.4 (e.1)
	}
	if !h.allowICMPError(now) {
		stats.Inc(&h.st.ICMPv6.RateLimited)
		return
	}
	from := dst
	if dst.IsMulticast() || !h.HasAddr(dst) {
		var ok bool
		if from, ok = h.SourceAddr(src); !ok {
			return
		}
	}
	quote := min(len(orig), icmpv6MaxErrorPacket-IPv6HeaderLen-8)
	bp := h.pool.Get(Headroom6 + 8 + quote)
	defer h.pool.Put(bp)
	out := (*bp)[:Headroom6+8+quote]
	m := out[Headroom6:]
	m[0], m[1] = typ, code
	binary.BigEndian.PutUint32(m[4:8], info)
	copy(m[8:], orig[:quote])
	checksum6(m, 2, ProtoICMPv6, from, src)
	switch typ {
	case ICMPv6ParamProblem:
		stats.Inc(&h.st.ICMPv6.ParamProblemOut)
	case ICMPv6TimeExceeded:
		stats.Inc(&h.st.ICMPv6.TimeExceededOut)
	default:
		stats.Inc(&h.st.ICMPv6.UnreachOut)
	}
	h.output6(now, out, ProtoICMPv6, from, src, 0, 0)
}

// sendEcho6 sends an ICMPv6 echo request (RFC 4443 §4.1) to dst.
func (h *Host) sendEcho6(now time.Time, dst netip.Addr, id, seq uint16, data []byte) error {
	src, ok := h.SourceAddr(dst)
	if !ok {
		return ErrNoRoute
	}
	n := Headroom6 + 8 + len(data)
	bp := h.pool.Get(n)
	defer h.pool.Put(bp)
	pkt := (*bp)[:n]
	m := pkt[Headroom6:]
	m[0], m[1] = ICMPv6EchoRequest, 0
	binary.BigEndian.PutUint16(m[4:6], id)
	binary.BigEndian.PutUint16(m[6:8], seq)
	copy(m[8:], data)
	checksum6(m, 2, ProtoICMPv6, src, dst)
	stats.Inc(&h.st.ICMPv6.EchoRequestsOut)
	return h.output6(now, pkt, ProtoICMPv6, src, dst, 0, 0)
}
