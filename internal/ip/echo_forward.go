package ip

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

// Echo forwarding: on a promiscuous Host with Handlers.ForwardEcho, an
// echo request to an address not ours goes to the handler, which answers
// with SendEchoReply from that address or refuses with
// SendUnreachableFor, as a tunnel's far end relaying pings does. Other
// ICMP to such an address is dropped.

// forwardEcho4 takes the ICMP message of an IPv4 packet to an address
// not ours.
func (h *Host) forwardEcho4(now time.Time, hdr IPv4Header, msg []byte) {
	switch {
	case len(msg) < ICMPHeaderLen:
		stats.Inc(&h.st.ICMP.DropMalformed)
	case checksum.Checksum(msg, 0) != 0:
		stats.Inc(&h.st.ICMP.DropBadChecksum)
	case msg[0] != ICMPEchoRequest || msg[1] != 0:
		stats.Inc(&h.st.IPv4.DropNotForUs)
	default:
		stats.Inc(&h.st.ICMP.EchoForwarded)
		h.h.ForwardEcho(now, hdr.Src(), hdr.Dst(), binary.BigEndian.Uint16(msg[4:6]), binary.BigEndian.Uint16(msg[6:8]), msg[ICMPHeaderLen:])
	}
}

// forwardEcho6 is forwardEcho4 for the ICMPv6 message at pkt[at:].
func (h *Host) forwardEcho6(now time.Time, pkt []byte, at int) {
	hdr := IPv6Header(pkt[:IPv6HeaderLen])
	src, dst, msg := hdr.Src(), hdr.Dst(), pkt[at:]
	switch {
	case len(msg) < 8:
		stats.Inc(&h.st.ICMPv6.DropMalformed)
	case checksum.Checksum(msg, checksum.Pseudo(src, dst, ProtoICMPv6, len(msg))) != 0:
		stats.Inc(&h.st.ICMPv6.DropBadChecksum)
	case msg[0] != ICMPv6EchoRequest || msg[1] != 0:
		stats.Inc(&h.st.IPv6.DropNotForUs)
	default:
		stats.Inc(&h.st.ICMPv6.EchoForwarded)
		h.h.ForwardEcho(now, src, dst, binary.BigEndian.Uint16(msg[4:6]), binary.BigEndian.Uint16(msg[6:8]), msg[8:])
	}
}

// SendEchoReply sends an echo reply (ICMP, or ICMPv6 between IPv6
// addresses) with id, seq and data from from, which need not be ours, to
// to.
func (h *Host) SendEchoReply(now time.Time, from, to netip.Addr, id, seq uint16, data []byte) error {
	v6 := to.Is6() && !to.Is4In6()
	hr, typ := Headroom, uint8(ICMPEchoReply)
	if v6 {
		hr, typ = Headroom6, ICMPv6EchoReply
	}
	n := hr + 8 + len(data)
	bp := h.pool.Get(n)
	defer h.pool.Put(bp)
	var pkt []byte
	if n <= cap(*bp) {
		pkt = (*bp)[:n]
	} else {
		pkt = make([]byte, n)
	}
	m := pkt[hr:]
	m[0], m[1], m[2], m[3] = typ, 0, 0, 0
	binary.BigEndian.PutUint16(m[4:6], id)
	binary.BigEndian.PutUint16(m[6:8], seq)
	copy(m[8:], data)
	if v6 {
		checksum6(m, 2, ProtoICMPv6, from, to)
		return h.output6(now, pkt, ProtoICMPv6, from, to, 0, 0)
	}
	binary.BigEndian.PutUint16(m[2:4], checksum.Checksum(m, 0))
	return h.output(now, pkt, 0, ProtoICMP, from.Unmap(), to.Unmap(), false, 0)
}
