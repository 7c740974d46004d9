package tcp

import "encoding/binary"

// Option kinds (RFC 9293 §3.2, RFC 7323, RFC 2018).
const (
	optEOL      = 0
	optNOP      = 1
	optMSS      = 2
	optWScale   = 3
	optSACKPerm = 4
	optSACK     = 5
	optTS       = 8
)

// MaxWScale is the largest window shift (RFC 7323 §2.3); larger values
// received are used as 14.
const MaxWScale = 14

// SACKBlock is one block of a SACK option (RFC 2018 §3): the octets
// Left..Right-1 have been received.
type SACKBlock struct {
	Left, Right Seq
}

// Options holds the TCP options netstack understands. The zero value means
// "no options".
type Options struct {
	MSS           uint16 // maximum segment size (RFC 9293 §3.7.1); 0: absent
	WScale        uint8  // window shift count (RFC 7323 §2), valid if HasWScale
	HasWScale     bool
	SACKPermitted bool // RFC 2018 §2
	SACK          [4]SACKBlock
	NumSACK       int // blocks used in SACK
	HasTS         bool
	TSVal, TSEcr  uint32 // timestamps (RFC 7323 §3)
}

// parseOptions decodes the option bytes b into o as Linux's
// tcp_parse_options does. RFC 9293 §3.2 asks only that "a TCP
// implementation MUST be prepared to handle an illegal option length ...
// without crashing"; Linux keeps the segment: a known option of the wrong
// length is ignored and skipped, and a length below 2 or one that runs past
// the header ends the parsing, keeping the options decoded before it.
// Unknown options with a sane length are skipped.
func parseOptions(b []byte, o *Options) {
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case optEOL:
			return
		case optNOP:
			i++
			continue
		}
		if i+1 >= len(b) {
			return
		}
		l := int(b[i+1])
		if l < 2 || i+l > len(b) {
			return
		}
		body := b[i+2 : i+l]
		switch {
		case kind == optMSS && l == 4:
			o.MSS = binary.BigEndian.Uint16(body)
		case kind == optWScale && l == 3:
			o.HasWScale = true
			o.WScale = min(body[0], MaxWScale)
		case kind == optSACKPerm && l == 2:
			o.SACKPermitted = true
		case kind == optSACK && l >= 10 && (l-2)%8 == 0:
			n := (l - 2) / 8 // at most 4 in 40 bytes of options
			o.NumSACK = n
			for j := 0; j < n; j++ {
				o.SACK[j].Left = Seq(binary.BigEndian.Uint32(body[8*j:]))
				o.SACK[j].Right = Seq(binary.BigEndian.Uint32(body[8*j+4:]))
			}
		case kind == optTS && l == 10:
			o.HasTS = true
			o.TSVal = binary.BigEndian.Uint32(body)
			o.TSEcr = binary.BigEndian.Uint32(body[4:])
		}
		i += l
	}
}

// layout returns the number of option bytes (a multiple of 4) and how many
// SACK blocks fit alongside the other options in 40 bytes.
func (o *Options) layout() (n, sacks int) {
	if o.MSS != 0 {
		n += 4
	}
	if o.HasTS {
		n += 12 // SACK-permitted rides in the NOP NOP before it
	} else if o.SACKPermitted {
		n += 4
	}
	if o.HasWScale {
		n += 4
	}
	if o.NumSACK > 0 {
		sacks = min(o.NumSACK, 4, (MaxOptionLen-n-4)/8)
		if sacks > 0 {
			n += 4 + 8*sacks
		}
	}
	return n, sacks
}

// Len returns the encoded length of the options in bytes, padded to a
// multiple of 4.
func (o *Options) Len() int {
	n, _ := o.layout()
	return n
}

// encode writes the options into b (which has room for Len() bytes) in the
// order Linux uses: MSS, SACK-permitted+timestamps, NOP+window scale, SACK
// blocks. It returns the number of bytes written.
func (o *Options) encode(b []byte) int {
	i := 0
	if o.MSS != 0 {
		b[0], b[1] = optMSS, 4
		binary.BigEndian.PutUint16(b[2:], o.MSS)
		i = 4
	}
	if o.HasTS {
		if o.SACKPermitted {
			b[i], b[i+1] = optSACKPerm, 2
		} else {
			b[i], b[i+1] = optNOP, optNOP
		}
		b[i+2], b[i+3] = optTS, 10
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	} else if o.SACKPermitted {
		b[i], b[i+1], b[i+2], b[i+3] = optNOP, optNOP, optSACKPerm, 2
		i += 4
	}
	if o.HasWScale {
		b[i], b[i+1], b[i+2], b[i+3] = optNOP, optWScale, 3, o.WScale
		i += 4
	}
	if o.NumSACK > 0 {
		sacks := min(o.NumSACK, 4, (MaxOptionLen-i-4)/8)
		if sacks > 0 {
			b[i], b[i+1], b[i+2], b[i+3] = optNOP, optNOP, optSACK, byte(2+8*sacks)
			i += 4
			for j := 0; j < sacks; j++ {
				binary.BigEndian.PutUint32(b[i:], uint32(o.SACK[j].Left))
				binary.BigEndian.PutUint32(b[i+4:], uint32(o.SACK[j].Right))
				i += 8
			}
		}
	}
	return i
}
