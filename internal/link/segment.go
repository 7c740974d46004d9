package link

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/gotcpip/netstack/internal/checksum"
)

// errBadSuperSegment is Segment's error for a frame that is not a TCP
// super-segment as WriteGSO describes one.
var errBadSuperSegment = errors.New("link: not a TCP super-segment")

// TCP flags Segment adjusts: PSH and FIN go on the last segment only, CWR
// on the first only, as Linux's tcp_gso_segment sets them.
const (
	tcpFIN = 0x01
	tcpPSH = 0x08
	tcpCWR = 0x80
)

// Segment does in software what a NIC's TSO does: it cuts frame, a TCP
// super-segment as WriteGSO receives one, into segments of gsoSize bytes
// of payload (the last one the rest), each behind a copy of frame's
// headers. ipOff is the offset of the IP header in frame (EthernetHeaderLen
// on an Ethernet link, 0 on an IP link), csumStart that of the TCP header
// and hdrLen the length of all headers. In each segment it sets the IP
// length (and for IPv4 a consecutive identification and the header
// checksum), the TCP sequence number, the flags, and the TCP checksum in
// full.
//
// Segment writes segment i into next(i, n)[:n], n being its length, and
// returns how many there were. It fails, writing nothing, if frame is not
// such a segment.
func Segment(frame []byte, ipOff, gsoSize, csumStart, hdrLen int, next func(i, n int) []byte) (int, error) {
	if ipOff < 0 || csumStart < ipOff+20 || hdrLen < csumStart+20 || hdrLen > len(frame) || gsoSize <= 0 {
		return 0, errBadSuperSegment
	}
	ipHdr := frame[ipOff:csumStart]
	var src, dst netip.Addr
	v6 := false
	switch ipHdr[0] >> 4 {
	case 4:
		if len(ipHdr) != int(ipHdr[0]&0xf)*4 || ipHdr[9] != 6 {
			return 0, errBadSuperSegment
		}
		src, dst = netip.AddrFrom4([4]byte(ipHdr[12:16])), netip.AddrFrom4([4]byte(ipHdr[16:20]))
	case 6:
		// The TCP header directly behind the fixed header: the stack
		// sends no extension headers with TCP.
		if len(ipHdr) != 40 || ipHdr[6] != 6 {
			return 0, errBadSuperSegment
		}
		src, dst = netip.AddrFrom16([16]byte(ipHdr[8:24])), netip.AddrFrom16([16]byte(ipHdr[24:40]))
		v6 = true
	default:
		return 0, errBadSuperSegment
	}
	payload := frame[hdrLen:]
	count := max(1, (len(payload)+gsoSize-1)/gsoSize)
	tcpHdrLen := hdrLen - csumStart
	seq := binary.BigEndian.Uint32(frame[csumStart+4:])
	flags := frame[csumStart+13]
	id := uint16(0)
	if !v6 {
		id = binary.BigEndian.Uint16(ipHdr[4:6])
	}
	for i := range count {
		data := payload[min(i*gsoSize, len(payload)):min((i+1)*gsoSize, len(payload))]
		n := hdrLen + len(data)
		seg := next(i, n)[:n]
		copy(seg, frame[:hdrLen])
		copy(seg[hdrLen:], data)
		ip := seg[ipOff:csumStart]
		if v6 {
			binary.BigEndian.PutUint16(ip[4:6], uint16(n-csumStart))
		} else {
			binary.BigEndian.PutUint16(ip[2:4], uint16(n-ipOff))
			binary.BigEndian.PutUint16(ip[4:6], id+uint16(i))
			ip[10], ip[11] = 0, 0
			binary.BigEndian.PutUint16(ip[10:12], checksum.Checksum(ip, 0))
		}
		tcp := seg[csumStart:]
		binary.BigEndian.PutUint32(tcp[4:8], seq+uint32(i*gsoSize))
		f := flags
		if i < count-1 {
			f &^= tcpPSH | tcpFIN
		}
		if i > 0 {
			f &^= tcpCWR
		}
		tcp[13] = f
		tcp[16], tcp[17] = 0, 0
		binary.BigEndian.PutUint16(tcp[16:18], checksum.Checksum(tcp, checksum.Pseudo(src, dst, 6, tcpHdrLen+len(data))))
	}
	return count, nil
}
