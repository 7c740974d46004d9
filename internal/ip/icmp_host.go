package ip

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

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
