package ip

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

// inputIPv6 handles the IPv6 packet at frame[off:]; off ≥ EthernetHeaderLen.
func (h *Host) inputIPv6(now time.Time, frame []byte, off int) {
	stats.Inc(&h.st.IPv6.Received)
	hdr, pkt, err := ParseIPv6(frame[off:])
	if err != nil {
		switch err {
		case errBadVersion6:
			stats.Inc(&h.st.IPv6.DropBadVersion)
		case errJumbo:
			stats.Inc(&h.st.IPv6.DropJumbo)
		default:
			stats.Inc(&h.st.IPv6.DropTruncated)
		}
		return
	}
	src, dst := hdr.Src(), hdr.Dst()
	// RFC 4291 §2.7: a multicast address is never a source.
	if src.IsMulticast() {
		stats.Inc(&h.st.IPv6.DropBadSource)
		return
	}
	mcast, foreign := dst.IsMulticast(), false
	if mcast {
		if !h.joined(dst) {
			stats.Inc(&h.st.IPv6.DropNotForUs)
			return
		}
	} else if st, ok := h.addrState(dst); ok {
		if st == addrTentative || st == addrDuplicate {
			// RFC 4862 §5.4: a tentative address receives nothing but
			// the NS/NA of DAD, which go to multicast groups.
			stats.Inc(&h.st.IPv6.DropTentative)
			return
		}
	} else if !h.cfg.Promiscuous {
		stats.Inc(&h.st.IPv6.DropNotForUs)
		return
	} else {
		foreign = true // a forwarder's: TCP, UDP and echo requests, as for IPv4
	}
	// RFC 8200 §4.1: walk the extension headers in order.
	nh, at, nhAt := hdr.NextHeader(), IPv6HeaderLen, 6
	for {
		switch nh {
		case ProtoHopByHop, ProtoDestOpts:
			if nh == ProtoHopByHop && at != IPv6HeaderLen {
				// RFC 8200 §4.3: hop-by-hop only right after the header.
				stats.Inc(&h.st.IPv6.DropHopByHopLate)
				h.sendICMPv6Error(now, ICMPv6ParamProblem, CodeV6UnknownNext, uint32(nhAt), pkt, false)
				return
			}
			l, ok := extLen(pkt, at)
			if !ok {
				stats.Inc(&h.st.IPv6.DropBadExtension)
				return
			}
			switch act, ptr := parseOptions(pkt[at:at+l], at, nh == ProtoHopByHop); act {
			case extDrop:
				stats.Inc(&h.st.IPv6.DropOption)
				return
			case extProblem, extProblemUnicast:
				stats.Inc(&h.st.IPv6.DropOption)
				// RFC 4443 §2.4 (e.3): the "10" option type is answered
				// even to multicast, "11" only to unicast.
				if act == extProblem || !mcast {
					h.sendICMPv6Error(now, ICMPv6ParamProblem, CodeV6UnknownOption, uint32(ptr), pkt, true)
				}
				return
			}
			nh, nhAt, at = pkt[at], at, at+l
		case ProtoRouting:
			l, ok := extLen(pkt, at)
			if !ok || l < 8 {
				stats.Inc(&h.st.IPv6.DropBadExtension)
				return
			}
			if pkt[at+3] != 0 {
				// RFC 8200 §4.4 and RFC 5095 §3 (type 0 is deprecated and
				// treated as unrecognized): with segments left we would
				// have to forward; refuse, pointing at the routing type.
				stats.Inc(&h.st.IPv6.DropRoutingHeader)
				if !mcast {
					h.sendICMPv6Error(now, ICMPv6ParamProblem, CodeV6ErroneousHeader, uint32(at+2), pkt, false)
				}
				return
			}
			nh, nhAt, at = pkt[at], at, at+l // segments left 0: ignored
		case ProtoFragment:
			if at+fragHeaderLen > len(pkt) {
				stats.Inc(&h.st.IPv6.DropBadExtension)
				return
			}
			fh := pkt[at : at+fragHeaderLen]
			fo := int(binary.BigEndian.Uint16(fh[2:4]) &^ 7)
			more := fh[3]&1 != 0
			payload := pkt[at+fragHeaderLen:]
			if fo == 0 && !more {
				// RFC 6946 §4: an atomic fragment is processed at once,
				// in isolation from any reassembly.
				stats.Inc(&h.st.IPv6.AtomicFragments)
				nh, nhAt, at = fh[0], at, at+fragHeaderLen
				continue
			}
			if more && len(payload)%8 != 0 {
				// RFC 8200 §4.5: pointer to the payload length field.
				stats.Inc(&h.st.IPv6.FragDropMalformed)
				h.sendICMPv6Error(now, ICMPv6ParamProblem, CodeV6ErroneousHeader, 4, pkt, false)
				return
			}
			if fo+len(payload) > ipv6MaxPayload {
				stats.Inc(&h.st.IPv6.FragDropMalformed)
				h.sendICMPv6Error(now, ICMPv6ParamProblem, CodeV6ErroneousHeader, uint32(at+2), pkt, false)
				return
			}
			buf, boff := h.reasm.add6(now, src, dst, binary.BigEndian.Uint32(fh[4:8]), fh[0], fo, payload, !more, pkt)
			h.wake()
			if buf == nil {
				return
			}
			frame, off, pkt = buf, boff, buf[boff:]
			nh, nhAt, at = pkt[6], 6, IPv6HeaderLen
		case ProtoNoNext:
			stats.Inc(&h.st.IPv6.DropNoNextHeader)
			return
		case ProtoICMPv6, ProtoTCP, ProtoUDP:
			if foreign && nh == ProtoICMPv6 {
				if h.h.ForwardEcho == nil {
					stats.Inc(&h.st.IPv6.DropNotForUs)
					return
				}
				h.forwardEcho6(now, pkt, at)
				return
			}
			h.deliver6(now, frame, off, pkt, at, nh, nhAt, mcast)
			return
		default:
			// RFC 8200 §4: an unrecognized next header is answered with
			// parameter problem code 1 pointing at it.
			stats.Inc(&h.st.IPv6.DropUnknownProto)
			if !mcast {
				h.sendICMPv6Error(now, ICMPv6ParamProblem, CodeV6UnknownNext, uint32(nhAt), pkt, false)
			}
			return
		}
	}
}

// extLen returns the length of the extension header at pkt[at:] (its
// second byte counts 8-octet units after the first 8, RFC 8200 §4.3) and
// whether it fits in pkt.
func extLen(pkt []byte, at int) (int, bool) {
	if at+2 > len(pkt) {
		return 0, false
	}
	l := (int(pkt[at+1]) + 1) * 8
	return l, at+l <= len(pkt)
}

// deliver6 hands the upper-layer message at pkt[at:] (protocol proto,
// named by the next header field at pkt[nhAt]) to its handler.
func (h *Host) deliver6(now time.Time, frame []byte, off int, pkt []byte, at int, proto uint8, nhAt int, mcast bool) {
	hdr := IPv6Header(pkt[:IPv6HeaderLen])
	payload := pkt[at:]
	var handler Handler
	switch proto {
	case ProtoICMPv6:
		stats.Inc(&h.st.IPv6.Delivered)
		h.inputICMPv6(now, frame, off, pkt, at, mcast)
		return
	case ProtoTCP:
		if mcast {
			// RFC 1122 §4.2.3.10's rule for broadcast, as Linux applies
			// it to multicast: no TCP.
			stats.Inc(&h.st.IPv6.DropNotForUs)
			return
		}
		if h.h.TCP != nil {
			stats.Inc(&h.st.IPv6.Delivered)
			h.h.TCP(now, hdr.Src(), hdr.Dst(), hdr.ECN(), payload)
			return
		}
	case ProtoUDP:
		// RFC 8200 §8.1: a zero UDP checksum over IPv6 is discarded.
		if len(payload) >= 8 && payload[6] == 0 && payload[7] == 0 {
			stats.Inc(&h.st.IPv6.DropUDPZeroSum)
			return
		}
		handler = h.h.UDP
	}
	if handler == nil {
		stats.Inc(&h.st.IPv6.DropUnknownProto)
		if !mcast {
			h.sendICMPv6Error(now, ICMPv6ParamProblem, CodeV6UnknownNext, uint32(nhAt), pkt, false)
		}
		return
	}
	stats.Inc(&h.st.IPv6.Delivered)
	if handler(now, hdr.Src(), hdr.Dst(), payload) && !mcast {
		h.sendICMPv6Error(now, ICMPv6DestUnreach, CodeV6PortUnreach, 0, pkt, false)
	}
}

// output6 is Output for an IPv6 destination: the message at
// pkt[Headroom6:] goes behind a fixed header with next header proto and
// the hop limit given (0: the default, or the routers' CurHopLimit) and
// ecn in the ECN field; fragments go with ecn 0, as in output.
func (h *Host) output6(now time.Time, pkt []byte, proto uint8, src, dst netip.Addr, hopLimit, ecn uint8) error {
	if len(pkt) < Headroom6 {
		return ErrNoBuffer
	}
	ipLen := len(pkt) - EthernetHeaderLen
	if ipLen-IPv6HeaderLen > ipv6MaxPayload {
		stats.Inc(&h.st.IPv6.DropTooBig)
		return ErrTooBig
	}
	if !src.IsValid() {
		var ok bool
		if src, ok = h.SourceAddr(dst); !ok {
			stats.Inc(&h.st.IPv6.DropNoRoute)
			return ErrNoRoute
		}
	} else if src.IsMulticast() || !src.Is6() {
		stats.Inc(&h.st.IPv6.DropSendBadSource)
		return errBadSource
	}
	nexthop, err := h.route6(dst)
	if err != nil {
		stats.Inc(&h.st.IPv6.DropNoRoute)
		return err
	}
	if hopLimit == 0 {
		hopLimit = uint8(h.v6.hopLimit.Load())
	}
	flow := flowLabel(src, dst, proto, h.v6.flowKey)
	mtu := h.PathMTU(now, dst)
	if ipLen <= mtu {
		encodeIPv6(pkt[EthernetHeaderLen:], ipLen-IPv6HeaderLen, flow, proto, hopLimit, src, dst)
		setECN6(pkt[EthernetHeaderLen:], ecn)
		stats.Inc(&h.st.IPv6.Sent)
		if h.HasAddr(dst) {
			h.inputIPv6(now, pkt, EthernetHeaderLen) // to ourselves, as Linux's loopback route
			return nil
		}
		return h.sendFrame(now, pkt, nexthop, dst)
	}
	return h.fragment6(now, pkt[Headroom6:], flow, proto, hopLimit, src, dst, nexthop, mtu)
}

// fragment6 sends payload as IPv6 fragments (RFC 8200 §4.5), each behind
// the fixed header and a fragment header and carrying a multiple of 8
// bytes but the last. The identification is random per datagram
// (RFC 7739 §5.1), so it predicts nothing about other traffic.
func (h *Host) fragment6(now time.Time, payload []byte, flow uint32, proto, hopLimit uint8, src, dst, nexthop netip.Addr, mtu int) error {
	bp := h.pool.Get(EthernetHeaderLen + mtu)
	defer h.pool.Put(bp)
	id := rand.Uint32()
	stats.Inc(&h.st.IPv6.FragmentedPackets)
	hl := IPv6HeaderLen + fragHeaderLen
	for off, n := 0, 0; off < len(payload); off += n {
		n = min((mtu-hl)&^7, len(payload)-off)
		f := (*bp)[:EthernetHeaderLen+hl+n]
		copy(f[EthernetHeaderLen+hl:], payload[off:off+n])
		encodeIPv6(f[EthernetHeaderLen:], fragHeaderLen+n, flow, ProtoFragment, hopLimit, src, dst)
		fh := f[EthernetHeaderLen+IPv6HeaderLen:]
		fh[0], fh[1] = proto, 0
		fo := uint16(off)
		if off+n < len(payload) {
			fo |= 1
		}
		binary.BigEndian.PutUint16(fh[2:4], fo)
		binary.BigEndian.PutUint32(fh[4:8], id)
		stats.Inc(&h.st.IPv6.FragmentsOut)
		stats.Inc(&h.st.IPv6.Sent)
		if h.HasAddr(dst) {
			h.inputIPv6(now, f, EthernetHeaderLen)
			continue
		}
		if err := h.sendFrame(now, f, nexthop, dst); err != nil {
			return err
		}
	}
	return nil
}

// reportLocal6 tells the transport that an IPv6 packet it sent could not
// leave.
func (h *Host) reportLocal6(now time.Time, pkt []byte, errno syscall.Errno) {
	hdr, p, err := ParseIPv6(pkt)
	if err != nil || h.h.Error == nil {
		return
	}
	proto, at, ok := upperLayer(p)
	if !ok || len(p)-at < 8 {
		return
	}
	h.h.Error(now, &ErrorInfo{
		Proto: proto, Src: hdr.Src(), Dst: hdr.Dst(), Transport: p[at:],
		Type: ICMPv6DestUnreach, Code: CodeV6AddrUnreach, Errno: errno, Local: true, V6: true,
	})
}

// upperLayer finds the upper-layer header of the IPv6 packet p, skipping
// extension headers; ok is false for a non-first fragment or a malformed
// chain.
func upperLayer(p []byte) (proto uint8, at int, ok bool) {
	nh, at := p[6], IPv6HeaderLen
	for range 8 {
		switch nh {
		case ProtoHopByHop, ProtoDestOpts, ProtoRouting:
			l, ok := extLen(p, at)
			if !ok {
				return 0, 0, false
			}
			nh, at = p[at], at+l
		case ProtoFragment:
			if at+fragHeaderLen > len(p) || binary.BigEndian.Uint16(p[at+2:at+4])&^7 != 0 {
				return 0, 0, false
			}
			nh, at = p[at], at+fragHeaderLen
		default:
			return nh, at, true
		}
	}
	return 0, 0, false
}

// checksum6 fills the checksum at msg[ck:ck+2] of an upper-layer message
// over IPv6 (RFC 8200 §8.1 pseudo-header).
func checksum6(msg []byte, ck int, proto uint8, src, dst netip.Addr) {
	msg[ck], msg[ck+1] = 0, 0
	binary.BigEndian.PutUint16(msg[ck:ck+2], checksum.Checksum(msg, checksum.Pseudo(src, dst, proto, len(msg))))
}
