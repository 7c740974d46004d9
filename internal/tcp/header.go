package tcp

import (
	"encoding/binary"
	"errors"
	"strings"
)

// Header is a view of the bytes of a TCP segment (RFC 9293 §3.1). Validate
// it once with Validate (Parse does); after that no accessor can panic.
type Header []byte

// Offsets of the fixed TCP header fields (RFC 9293 §3.1, figure 1).
const (
	offSrcPort = 0
	offDstPort = 2
	offSeq     = 4
	offAck     = 8
	offDataOff = 12
	offFlags   = 13
	offWnd     = 14
	offSum     = 16
	offUrg     = 18

	// HeaderMinLen is the length of a TCP header without options.
	HeaderMinLen = 20
	// HeaderMaxLen is the longest TCP header: data offset 15 words.
	HeaderMaxLen = 60
	// MaxOptionLen is the room for options in the longest header.
	MaxOptionLen = HeaderMaxLen - HeaderMinLen
)

// Errors returned by Parse and Header.Validate.
var (
	ErrShort      = errors.New("tcp: segment shorter than its header")
	ErrDataOffset = errors.New("tcp: bad data offset")
	ErrChecksum   = errors.New("tcp: bad checksum")
)

// Validate checks that h holds a whole header: at least 20 bytes and a data
// offset between 5 words and len(h).
func (h Header) Validate() error {
	if len(h) < HeaderMinLen {
		return ErrShort
	}
	off := int(h[offDataOff]>>4) * 4
	if off < HeaderMinLen {
		return ErrDataOffset
	}
	if off > len(h) {
		return ErrShort
	}
	return nil
}

// SrcPort returns the source port.
func (h Header) SrcPort() uint16 { return binary.BigEndian.Uint16(h[offSrcPort:]) }

// DstPort returns the destination port.
func (h Header) DstPort() uint16 { return binary.BigEndian.Uint16(h[offDstPort:]) }

// SeqNum returns the sequence number.
func (h Header) SeqNum() Seq { return Seq(binary.BigEndian.Uint32(h[offSeq:])) }

// AckNum returns the acknowledgment number.
func (h Header) AckNum() Seq { return Seq(binary.BigEndian.Uint32(h[offAck:])) }

// DataOffset returns the header length in bytes (options included).
func (h Header) DataOffset() int { return int(h[offDataOff]>>4) * 4 }

// Flags returns the control bits.
func (h Header) Flags() Flags { return Flags(h[offFlags]) }

// Window returns the raw (unscaled) window field.
func (h Header) Window() uint16 { return binary.BigEndian.Uint16(h[offWnd:]) }

// Checksum returns the checksum field.
func (h Header) Checksum() uint16 { return binary.BigEndian.Uint16(h[offSum:]) }

// UrgentPtr returns the urgent pointer field (netstack does not implement urgent data).
func (h Header) UrgentPtr() uint16 { return binary.BigEndian.Uint16(h[offUrg:]) }

// Options returns the option bytes.
func (h Header) Options() []byte { return h[HeaderMinLen:h.DataOffset()] }

// Payload returns the data after the header.
func (h Header) Payload() []byte { return h[h.DataOffset():] }

// SetSrcPort sets the source port.
func (h Header) SetSrcPort(p uint16) { binary.BigEndian.PutUint16(h[offSrcPort:], p) }

// SetDstPort sets the destination port.
func (h Header) SetDstPort(p uint16) { binary.BigEndian.PutUint16(h[offDstPort:], p) }

// SetSeqNum sets the sequence number.
func (h Header) SetSeqNum(s Seq) { binary.BigEndian.PutUint32(h[offSeq:], uint32(s)) }

// SetAckNum sets the acknowledgment number.
func (h Header) SetAckNum(s Seq) { binary.BigEndian.PutUint32(h[offAck:], uint32(s)) }

// SetDataOffset sets the header length in bytes (a multiple of 4, 20..60).
func (h Header) SetDataOffset(n int) { h[offDataOff] = byte(n/4) << 4 }

// SetFlags sets the control bits.
func (h Header) SetFlags(f Flags) { h[offFlags] = byte(f) }

// SetWindow sets the raw window field.
func (h Header) SetWindow(w uint16) { binary.BigEndian.PutUint16(h[offWnd:], w) }

// SetChecksum sets the checksum field.
func (h Header) SetChecksum(s uint16) { binary.BigEndian.PutUint16(h[offSum:], s) }

// SetUrgentPtr sets the urgent pointer field.
func (h Header) SetUrgentPtr(p uint16) { binary.BigEndian.PutUint16(h[offUrg:], p) }

// Flags are the TCP control bits (RFC 9293 §3.1; ECE and CWR from RFC 3168).
type Flags uint8

// The control bits.
const (
	FlagFIN Flags = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

var flagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// Has reports whether all bits of g are set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// String returns the set bits joined by '|', e.g. "SYN|ACK"; "0" when none.
func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var b strings.Builder
	for _, i := range [...]int{1, 2, 4, 0, 3, 5, 6, 7} { // SYN RST ACK FIN PSH ...
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(flagNames[i])
		}
	}
	return b.String()
}
