package wiretest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
)

// MAC is an Ethernet address.
type MAC [6]byte

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// Broadcast is the Ethernet broadcast address.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// EtherTypes and IP protocol numbers the testbench speaks.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

// TCP flags (RFC 9293 §3.1).
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
	URG = 0x20
	ECE = 0x40
	CWR = 0x80
)

// FlagString renders TCP flags as tcpdump does: "S.", "F.", "R", "P.".
func FlagString(f uint8) string {
	var b strings.Builder
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{SYN, 'S'}, {FIN, 'F'}, {RST, 'R'}, {PSH, 'P'}, {URG, 'U'}, {ECE, 'E'}, {CWR, 'W'}} {
		if f&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	if f&ACK != 0 {
		b.WriteByte('.')
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// ICMP types (RFC 792).
const (
	ICMPEchoReply    = 0
	ICMPUnreachable  = 3
	ICMPEcho         = 8
	ICMPParamProblem = 12
)

// TCP option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const (
	OptEOL      = 0
	OptNOP      = 1
	OptMSS      = 2
	OptWS       = 3
	OptSACKPerm = 4
	OptSACK     = 5
	OptTS       = 8
)

// Frame is one Ethernet frame seen or built by the testbench, decoded as far
// as the testbench understands it. The decoded layers alias Raw.
type Frame struct {
	// At is when the testbench read the frame.
	At time.Time
	// Raw is the whole frame, from the Ethernet header on.
	Raw []byte

	Dst, Src  MAC
	EtherType uint16

	ARP  *ARP
	IP   *IPv4
	TCP  *TCP
	UDP  *UDP
	ICMP *ICMP
}

// ARP is an Ethernet/IPv4 ARP packet (RFC 826).
type ARP struct {
	Op                 uint16 // 1 request, 2 reply
	SenderMAC          MAC
	SenderIP, TargetIP netip.Addr
	TargetMAC          MAC
}

// IPv4 is an IPv4 header (RFC 791 §3.1). Build ignores ChecksumOK and
// computes the length and checksum.
type IPv4 struct {
	TOS     uint8
	ID      uint16
	DF, MF  bool
	FragOff int // in bytes, a multiple of 8
	TTL     uint8
	Proto   uint8
	Src     netip.Addr
	Dst     netip.Addr
	// Options are the raw option bytes; Build pads them to a multiple of
	// four with EOL.
	Options []byte
	Payload []byte

	ChecksumOK bool
}

// TCP is a TCP segment (RFC 9293 §3.1) with its options both raw and
// decoded.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Window           uint16
	Urgent           uint16
	// Options are the raw option bytes; Build pads them with EOL.
	Options []byte
	Payload []byte

	ChecksumOK bool
	// Decoded options, when present and well formed.
	MSS      int // 0: absent
	WS       int // -1: absent
	SACKPerm bool
	HasTS    bool
	TSval    uint32
	TSecr    uint32
	SACK     []Block
}

// Block is a SACK block [Left, Right) (RFC 2018 §3).
type Block struct{ Left, Right uint32 }

func (b Block) String() string { return fmt.Sprintf("[%d,%d)", b.Left, b.Right) }

// UDP is a UDP datagram (RFC 768).
type UDP struct {
	SrcPort, DstPort uint16
	Payload          []byte
	ChecksumOK       bool
}

// ICMP is an ICMP message (RFC 792). For echo messages ID and Seq hold the
// identifier and sequence number and Data the rest; for errors Data is
// everything after the first 8 bytes (the offending datagram's start), and
// Rest the 4 bytes after the checksum (the pointer of a parameter problem
// is Rest[0]).
type ICMP struct {
	Type, Code uint8
	ID, Seq    uint16
	Rest       [4]byte
	Data       []byte
	ChecksumOK bool
}

// ParseFrame decodes an Ethernet frame. It never fails: what it cannot
// decode it leaves nil.
func ParseFrame(b []byte) *Frame {
	f := &Frame{Raw: b}
	if len(b) < 14 {
		return f
	}
	copy(f.Dst[:], b[0:6])
	copy(f.Src[:], b[6:12])
	f.EtherType = binary.BigEndian.Uint16(b[12:])
	p := b[14:]
	switch f.EtherType {
	case EtherTypeARP:
		if len(p) >= 28 && binary.BigEndian.Uint16(p[0:]) == 1 && binary.BigEndian.Uint16(p[2:]) == EtherTypeIPv4 {
			a := &ARP{Op: binary.BigEndian.Uint16(p[6:])}
			copy(a.SenderMAC[:], p[8:14])
			a.SenderIP = netip.AddrFrom4([4]byte(p[14:18]))
			copy(a.TargetMAC[:], p[18:24])
			a.TargetIP = netip.AddrFrom4([4]byte(p[24:28]))
			f.ARP = a
		}
	case EtherTypeIPv4:
		f.IP = parseIPv4(p)
		if f.IP == nil || f.IP.MF || f.IP.FragOff != 0 {
			return f
		}
		switch f.IP.Proto {
		case ProtoTCP:
			f.TCP = parseTCP(f.IP, f.IP.Payload)
		case ProtoUDP:
			f.UDP = parseUDP(f.IP, f.IP.Payload)
		case ProtoICMP:
			f.ICMP = parseICMP(f.IP.Payload)
		}
	}
	return f
}

func parseIPv4(b []byte) *IPv4 {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil
	}
	ihl := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || total > len(b) {
		return nil
	}
	fo := binary.BigEndian.Uint16(b[6:])
	return &IPv4{
		TOS:        b[1],
		ID:         binary.BigEndian.Uint16(b[4:]),
		DF:         fo&0x4000 != 0,
		MF:         fo&0x2000 != 0,
		FragOff:    int(fo&0x1fff) * 8,
		TTL:        b[8],
		Proto:      b[9],
		Src:        netip.AddrFrom4([4]byte(b[12:16])),
		Dst:        netip.AddrFrom4([4]byte(b[16:20])),
		Options:    b[20:ihl],
		Payload:    b[ihl:total],
		ChecksumOK: checksum.Checksum(b[:ihl], 0) == 0,
	}
}

func parseTCP(ip *IPv4, b []byte) *TCP {
	if len(b) < 20 {
		return nil
	}
	off := int(b[12]>>4) * 4
	if off < 20 || off > len(b) {
		return nil
	}
	s := &TCP{
		SrcPort:    binary.BigEndian.Uint16(b[0:]),
		DstPort:    binary.BigEndian.Uint16(b[2:]),
		Seq:        binary.BigEndian.Uint32(b[4:]),
		Ack:        binary.BigEndian.Uint32(b[8:]),
		Flags:      b[13],
		Window:     binary.BigEndian.Uint16(b[14:]),
		Urgent:     binary.BigEndian.Uint16(b[18:]),
		Options:    b[20:off],
		Payload:    b[off:],
		ChecksumOK: checksum.Checksum(b, checksum.Pseudo(ip.Src, ip.Dst, ProtoTCP, len(b))) == 0,
		WS:         -1,
	}
	s.decodeOptions()
	return s
}

// decodeOptions fills the decoded option fields from Options, stopping at
// EOL or at the first option whose length runs past the end.
func (s *TCP) decodeOptions() {
	o := s.Options
	for len(o) > 0 {
		kind := o[0]
		if kind == OptEOL {
			return
		}
		if kind == OptNOP {
			o = o[1:]
			continue
		}
		if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
			return
		}
		v := o[2:o[1]]
		switch {
		case kind == OptMSS && len(v) == 2:
			s.MSS = int(binary.BigEndian.Uint16(v))
		case kind == OptWS && len(v) == 1:
			s.WS = int(v[0])
		case kind == OptSACKPerm && len(v) == 0:
			s.SACKPerm = true
		case kind == OptTS && len(v) == 8:
			s.HasTS, s.TSval, s.TSecr = true, binary.BigEndian.Uint32(v), binary.BigEndian.Uint32(v[4:])
		case kind == OptSACK && len(v)%8 == 0:
			for i := 0; i < len(v); i += 8 {
				s.SACK = append(s.SACK, Block{binary.BigEndian.Uint32(v[i:]), binary.BigEndian.Uint32(v[i+4:])})
			}
		}
		o = o[o[1]:]
	}
}

func parseUDP(ip *IPv4, b []byte) *UDP {
	if len(b) < 8 || int(binary.BigEndian.Uint16(b[4:])) != len(b) {
		return nil
	}
	ok := binary.BigEndian.Uint16(b[6:]) == 0 ||
		checksum.Checksum(b, checksum.Pseudo(ip.Src, ip.Dst, ProtoUDP, len(b))) == 0
	return &UDP{
		SrcPort:    binary.BigEndian.Uint16(b[0:]),
		DstPort:    binary.BigEndian.Uint16(b[2:]),
		Payload:    b[8:],
		ChecksumOK: ok,
	}
}

func parseICMP(b []byte) *ICMP {
	if len(b) < 8 {
		return nil
	}
	m := &ICMP{
		Type:       b[0],
		Code:       b[1],
		ID:         binary.BigEndian.Uint16(b[4:]),
		Seq:        binary.BigEndian.Uint16(b[6:]),
		Rest:       [4]byte(b[4:8]),
		Data:       b[8:],
		ChecksumOK: checksum.Checksum(b, 0) == 0,
	}
	return m
}

// pad4 pads options to a multiple of four bytes with EOL.
func pad4(o []byte) []byte {
	for len(o)%4 != 0 {
		o = append(o, OptEOL)
	}
	return o
}

// BuildIPv4 encodes h and its payload, computing the total length and
// header checksum.
func BuildIPv4(h *IPv4) []byte {
	opts := pad4(append([]byte(nil), h.Options...))
	ihl := 20 + len(opts)
	b := make([]byte, ihl+len(h.Payload))
	b[0] = 0x40 | byte(ihl/4)
	b[1] = h.TOS
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], h.ID)
	fo := uint16(h.FragOff / 8)
	if h.DF {
		fo |= 0x4000
	}
	if h.MF {
		fo |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], fo)
	b[8] = h.TTL
	if b[8] == 0 {
		b[8] = 64
	}
	b[9] = h.Proto
	s, d := h.Src.As4(), h.Dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], opts)
	binary.BigEndian.PutUint16(b[10:], checksum.Checksum(b[:ihl], 0))
	copy(b[ihl:], h.Payload)
	return b
}

// BuildTCP encodes s, with its checksum over the pseudo-header of src and
// dst.
func BuildTCP(src, dst netip.Addr, s *TCP) []byte {
	opts := pad4(append([]byte(nil), s.Options...))
	off := 20 + len(opts)
	b := make([]byte, off+len(s.Payload))
	binary.BigEndian.PutUint16(b[0:], s.SrcPort)
	binary.BigEndian.PutUint16(b[2:], s.DstPort)
	binary.BigEndian.PutUint32(b[4:], s.Seq)
	binary.BigEndian.PutUint32(b[8:], s.Ack)
	b[12] = byte(off/4) << 4
	b[13] = s.Flags
	binary.BigEndian.PutUint16(b[14:], s.Window)
	binary.BigEndian.PutUint16(b[18:], s.Urgent)
	copy(b[20:], opts)
	copy(b[off:], s.Payload)
	binary.BigEndian.PutUint16(b[16:], checksum.Checksum(b, checksum.Pseudo(src, dst, ProtoTCP, len(b))))
	return b
}

// BuildUDP encodes a UDP datagram with its checksum.
func BuildUDP(src, dst netip.AddrPort, payload []byte) []byte {
	b := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], payload)
	c := checksum.Checksum(b, checksum.Pseudo(src.Addr(), dst.Addr(), ProtoUDP, len(b)))
	if c == 0 {
		c = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	binary.BigEndian.PutUint16(b[6:], c)
	return b
}

// BuildEcho encodes an ICMP echo request (RFC 792) with its checksum.
func BuildEcho(id, seq uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	b[0] = ICMPEcho
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	binary.BigEndian.PutUint16(b[2:], checksum.Checksum(b, 0))
	return b
}

// BuildEth prepends an Ethernet II header.
func BuildEth(dst, src MAC, etherType uint16, payload []byte) []byte {
	b := make([]byte, 14+len(payload))
	copy(b[0:], dst[:])
	copy(b[6:], src[:])
	binary.BigEndian.PutUint16(b[12:], etherType)
	copy(b[14:], payload)
	return b
}

// BuildARP encodes an Ethernet/IPv4 ARP packet (RFC 826).
func BuildARP(a *ARP) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)
	binary.BigEndian.PutUint16(b[2:], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], a.Op)
	copy(b[8:], a.SenderMAC[:])
	s, t := a.SenderIP.As4(), a.TargetIP.As4()
	copy(b[14:], s[:])
	copy(b[18:], a.TargetMAC[:])
	copy(b[24:], t[:])
	return b
}

// TCP option encoders, for TCP.Options.

// MSSOpt is the maximum segment size option (RFC 9293 §3.2).
func MSSOpt(mss uint16) []byte { return []byte{OptMSS, 4, byte(mss >> 8), byte(mss)} }

// WSOpt is the window scale option (RFC 7323 §2.2).
func WSOpt(shift uint8) []byte { return []byte{OptWS, 3, shift} }

// SACKPermOpt is the SACK-permitted option (RFC 2018 §2).
func SACKPermOpt() []byte { return []byte{OptSACKPerm, 2} }

// TSOpt is the timestamps option (RFC 7323 §3.2).
func TSOpt(val, ecr uint32) []byte {
	b := []byte{OptTS, 10, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], val)
	binary.BigEndian.PutUint32(b[6:], ecr)
	return b
}

// SACKOpt is a SACK option with blocks (RFC 2018 §3).
func SACKOpt(blocks ...Block) []byte {
	b := []byte{OptSACK, byte(2 + 8*len(blocks))}
	for _, x := range blocks {
		b = binary.BigEndian.AppendUint32(b, x.Left)
		b = binary.BigEndian.AppendUint32(b, x.Right)
	}
	return b
}

// NOPs returns n no-operation option bytes.
func NOPs(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = OptNOP
	}
	return b
}

// Opts concatenates options.
func Opts(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// String summarises f in one line, tcpdump style.
func (f *Frame) String() string {
	switch {
	case f.ARP != nil:
		return fmt.Sprintf("ARP op %d %v(%v) -> %v", f.ARP.Op, f.ARP.SenderIP, f.ARP.SenderMAC, f.ARP.TargetIP)
	case f.TCP != nil:
		s := f.TCP
		str := fmt.Sprintf("TCP %v:%d > %v:%d [%s] seq %d ack %d win %d len %d", f.IP.Src, s.SrcPort, f.IP.Dst, s.DstPort,
			FlagString(s.Flags), s.Seq, s.Ack, s.Window, len(s.Payload))
		if s.MSS != 0 {
			str += fmt.Sprintf(" mss %d", s.MSS)
		}
		if s.WS >= 0 {
			str += fmt.Sprintf(" wscale %d", s.WS)
		}
		if s.SACKPerm {
			str += " sackOK"
		}
		if s.HasTS {
			str += fmt.Sprintf(" TS val %d ecr %d", s.TSval, s.TSecr)
		}
		if len(s.SACK) > 0 {
			str += fmt.Sprintf(" sack %v", s.SACK)
		}
		if !s.ChecksumOK {
			str += " BAD-CHECKSUM"
		}
		return str
	case f.UDP != nil:
		return fmt.Sprintf("UDP %v:%d > %v:%d len %d", f.IP.Src, f.UDP.SrcPort, f.IP.Dst, f.UDP.DstPort, len(f.UDP.Payload))
	case f.ICMP != nil:
		return fmt.Sprintf("ICMP %v > %v type %d code %d id %d seq %d", f.IP.Src, f.IP.Dst, f.ICMP.Type, f.ICMP.Code, f.ICMP.ID, f.ICMP.Seq)
	case f.IP != nil:
		return fmt.Sprintf("IPv4 %v > %v proto %d id %d frag %d mf %v len %d", f.IP.Src, f.IP.Dst, f.IP.Proto, f.IP.ID, f.IP.FragOff, f.IP.MF, len(f.IP.Payload))
	}
	return fmt.Sprintf("ethertype %#04x len %d", f.EtherType, len(f.Raw))
}
