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
	if h.h.ICMP != nil {
		h.h.ICMP(now, hdr.Src(), hdr.Dst(), msg) // before an echo request becomes its reply in place
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
		// The ICMP message must sit right behind Headroom bytes and the
		// reply's options.
		optLen := 0
		if hdr.HeaderLen() > IPv4MinHeaderLen {
			var ok bool
			if optLen, ok = h.echoOptions(now, frame, off, hdr); !ok {
				stats.Inc(&h.st.IPv4.DropBadOptions)
				return
			}
		}
		start := off + hdr.HeaderLen() - optLen - Headroom
		msg[0] = ICMPEchoReply
		binary.BigEndian.PutUint16(msg[2:4], checksum.Update16(binary.BigEndian.Uint16(msg[2:4]), uint16(ICMPEchoRequest)<<8|uint16(msg[1]), uint16(ICMPEchoReply)<<8|uint16(msg[1])))
		if err := h.output(now, frame[start:off+len(pkt)], optLen, ProtoICMP, hdr.Dst(), hdr.Src(), false, 0); err == nil {
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

// echoOptions writes the options of the echo reply to the request whose
// header hdr is at frame[off:] right in front of its ICMP message, where
// the reply's header will end (RFC 1122 §3.2.2.6: record route and
// timestamp returned, updated; see echoIPv4Options), and returns their
// length, never more than the request's. ok is false when Linux would not
// reply.
func (h *Host) echoOptions(now time.Time, frame []byte, off int, hdr IPv4Header) (n int, ok bool) {
	o, bad := parseIPv4Options(hdr)
	if bad != 0 {
		return 0, false // cannot happen: checked on input
	}
	hop := optionHop{addr: hdr.Dst().As4(), stamp: ipv4Timestamp(now)}
	if b := h.v4.Load().bcasts; len(b) > 0 {
		hop.bcast = b[0].As4()
	}
	var opts [maxOptionsLen]byte
	if n, ok = echoIPv4Options(&opts, hdr, o, &hop); !ok {
		return 0, false
	}
	end := off + hdr.HeaderLen()
	copy(frame[end-n:end], opts[:n])
	return n, true
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
	if !h.HasAddr(ih.Src()) {
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
// To an IPv6 destination it is an ICMPv6 echo request (RFC 4443 §4.1).
func (h *Host) SendEcho(now time.Time, dst netip.Addr, id, seq uint16, data []byte) error {
	if dst.Is6() && !dst.Is4In6() {
		return h.sendEcho6(now, dst, id, seq, data)
	}
	bp := h.pool.Get(0)
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
	return h.Output(now, pkt, ProtoICMP, netip.Addr{}, dst, false)
}

// SendUnreachable answers the offending IPv4 packet orig with ICMP
// destination unreachable (RFC 792), quoting its header and first 8 data
// bytes (RFC 1812 allows more; Linux quotes up to 576 bytes in all, which
// we follow). RFC 1122 §3.2.2: no error about an ICMP error, a non-first
// fragment, or a broadcast or multicast packet. Errors are rate limited
// with a token bucket as Linux's icmp_msgs_per_sec and icmp_msgs_burst.
func (h *Host) SendUnreachable(now time.Time, code uint8, orig []byte) {
	h.sendICMPError(now, ICMPDestUnreach, code, 0, orig)
}

// sendICMPError answers orig with an ICMP error of type typ (destination
// unreachable or parameter problem), info holding bytes 4 to 7 of the
// message (a parameter problem's pointer in its top byte), under the rules
// and the rate limit of SendUnreachable.
func (h *Host) sendICMPError(now time.Time, typ, code uint8, info uint32, orig []byte) {
	hdr, pkt, err := ParseIPv4(orig)
	if err != nil {
		return
	}
	// RFC 1122 §3.2.2: nothing about a datagram to a broadcast or
	// multicast address (0.0.0.0 being the old broadcast), or from one
	// that does not name a single host.
	src, dst := hdr.Src(), hdr.Dst()
	if hdr.FragOffset() != 0 || h.notUnicast(src) || src.IsUnspecified() || h.notUnicast(dst) || dst.IsUnspecified() {
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
	bp := h.pool.Get(0)
	defer h.pool.Put(bp)
	out := (*bp)[:Headroom+ICMPHeaderLen+quote]
	m := out[Headroom:]
	m[0], m[1] = typ, code
	clear(m[2:4])
	binary.BigEndian.PutUint32(m[4:8], info)
	copy(m[ICMPHeaderLen:], pkt[:quote])
	binary.BigEndian.PutUint16(m[2:4], checksum.Checksum(m, 0))
	if typ == ICMPParamProblem {
		stats.Inc(&h.st.ICMP.ParamProblemOut)
	} else {
		stats.Inc(&h.st.ICMP.UnreachOut)
	}
	h.Output(now, out, ProtoICMP, dst, src, false)
}

// SendUnreachableFor answers a transport message that arrived from src to
// dst (transport holds its header and data) with ICMP destination
// unreachable, rebuilding the IP header it quotes. A forwarder uses it to
// refuse a flow after the packet itself is gone.
// For IPv6 src and dst the answer is ICMPv6 port unreachable when code is
// CodePortUnreach, else address unreachable.
func (h *Host) SendUnreachableFor(now time.Time, code, proto uint8, src, dst netip.Addr, transport []byte) {
	if src.Is6() && !src.Is4In6() {
		n := min(len(transport), icmpv6MaxErrorPacket)
		pkt := make([]byte, IPv6HeaderLen+n)
		encodeIPv6(pkt, n, 0, proto, DefaultHopLimit, src, dst)
		copy(pkt[IPv6HeaderLen:], transport[:n])
		c := uint8(CodeV6AddrUnreach)
		if code == CodePortUnreach {
			c = CodeV6PortUnreach
		}
		h.sendICMPv6Error(now, ICMPv6DestUnreach, c, 0, pkt, false)
		return
	}
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
