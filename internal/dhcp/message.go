// Package dhcp is a DHCPv4 client without I/O (RFC 2131, options RFC 2132):
// a message codec and a state machine that takes the current time in every
// call and returns the datagrams to send, the ARP probes to make and the
// leases to apply as Actions for its caller to perform.
package dhcp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strconv"
)

// Message field sizes and offsets (RFC 2131 §2).
const (
	fixedLen   = 236 // op through file
	snameOff   = 44
	fileOff    = 108
	cookieLen  = 4
	minMsgLen  = 300 // BOOTP minimum, which some relays and servers still insist on
	magicValue = 0x63825363
)

// FlagBroadcast asks the server to broadcast its replies (RFC 2131 §4.1).
const FlagBroadcast = 0x8000

// Message operations.
const (
	OpRequest = 1
	OpReply   = 2
)

// A MessageType is the value of option 53.
type MessageType uint8

// The DHCP message types.
const (
	Discover MessageType = 1 + iota
	Offer
	Request
	Decline
	Ack
	Nak
	Release
	Inform
)

var typeNames = [...]string{"", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"}

// String returns the name of t as RFC 2131 writes it.
func (t MessageType) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return "MessageType(" + strconv.Itoa(int(t)) + ")"
}

// Errors from Parse.
var (
	ErrTruncated = errors.New("dhcp: message truncated")
	ErrCookie    = errors.New("dhcp: bad magic cookie")
	ErrHardware  = errors.New("dhcp: hardware type is not Ethernet")
	ErrOption    = errors.New("dhcp: malformed option")
)

// A Message is a decoded DHCP message. Addresses are the zero Addr when
// the field holds 0.0.0.0. The sname and file fields are read only for
// options they carry under option 52 and are sent empty.
type Message struct {
	Op                             uint8
	XID                            uint32
	Secs                           uint16
	Flags                          uint16
	CIAddr, YIAddr, SIAddr, GIAddr netip.Addr
	CHAddr                         [6]byte
	Type                           MessageType // option 53; 0 when absent
	Options                        Options     // every other option but 0, 52 and 255
}

// Parse decodes the UDP payload b. It requires an Ethernet hardware
// address, the magic cookie and well-formed options; the options of the
// file and sname fields are read when option 52 says they hold some, and
// options split into several pieces are joined (RFC 3396).
func Parse(b []byte) (*Message, error) {
	if len(b) < fixedLen+cookieLen {
		return nil, ErrTruncated
	}
	if b[1] != 1 || b[2] != 6 {
		return nil, ErrHardware
	}
	if binary.BigEndian.Uint32(b[fixedLen:]) != magicValue {
		return nil, ErrCookie
	}
	m := &Message{
		Op:     b[0],
		XID:    binary.BigEndian.Uint32(b[4:]),
		Secs:   binary.BigEndian.Uint16(b[8:]),
		Flags:  binary.BigEndian.Uint16(b[10:]),
		CIAddr: addr4(b[12:16]),
		YIAddr: addr4(b[16:20]),
		SIAddr: addr4(b[20:24]),
		GIAddr: addr4(b[24:28]),
	}
	copy(m.CHAddr[:], b[28:34])
	opts := Options{}
	if err := opts.parse(b[fixedLen+cookieLen:]); err != nil {
		return nil, err
	}
	if ov, ok := opts[OptOverload]; ok {
		if len(ov) != 1 || ov[0] < 1 || ov[0] > 3 {
			return nil, ErrOption
		}
		delete(opts, OptOverload)
		// The file field is read before sname (RFC 2131 §4.1).
		if ov[0]&1 != 0 {
			if err := opts.parse(b[fileOff:fixedLen]); err != nil {
				return nil, err
			}
		}
		if ov[0]&2 != 0 {
			if err := opts.parse(b[snameOff:fileOff]); err != nil {
				return nil, err
			}
		}
		delete(opts, OptOverload) // a second one inside file or sname means nothing
	}
	if t, ok := opts[OptMessageType]; ok {
		if len(t) != 1 {
			return nil, ErrOption
		}
		m.Type = MessageType(t[0])
		delete(opts, OptMessageType)
	}
	m.Options = opts
	return m, nil
}

// parse adds the options of b to o, stopping at End or at the end of b.
func (o Options) parse(b []byte) error {
	for len(b) > 0 {
		code := b[0]
		switch code {
		case optPad:
			b = b[1:]
			continue
		case optEnd:
			return nil
		}
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return ErrOption
		}
		n := int(b[1])
		o[code] = append(o[code], b[2:2+n]...)
		if o[code] == nil {
			o[code] = []byte{}
		}
		b = b[2+n:]
	}
	return nil
}

// Append appends the encoded message to b and returns the extended slice.
// Option 53 comes first, then the others in order of code, each longer
// than 255 bytes split into pieces; the message ends with End and is
// padded to 300 bytes.
func (m *Message) Append(b []byte) []byte {
	start := len(b)
	b = append(b, make([]byte, fixedLen)...)
	h := b[start:]
	h[0], h[1], h[2] = m.Op, 1, 6
	binary.BigEndian.PutUint32(h[4:], m.XID)
	binary.BigEndian.PutUint16(h[8:], m.Secs)
	binary.BigEndian.PutUint16(h[10:], m.Flags)
	put4(h[12:], m.CIAddr)
	put4(h[16:], m.YIAddr)
	put4(h[20:], m.SIAddr)
	put4(h[24:], m.GIAddr)
	copy(h[28:], m.CHAddr[:])
	b = binary.BigEndian.AppendUint32(b, magicValue)
	if m.Type != 0 {
		b = append(b, OptMessageType, 1, byte(m.Type))
	}
	codes := make([]uint8, 0, len(m.Options))
	for c := range m.Options {
		if c != optPad && c != optEnd && c != OptMessageType && c != OptOverload {
			codes = append(codes, c)
		}
	}
	slices.Sort(codes)
	for _, c := range codes {
		v := m.Options[c]
		for {
			n := min(len(v), 255)
			b = append(b, c, byte(n))
			b = append(b, v[:n]...)
			v = v[n:]
			if len(v) == 0 {
				break
			}
		}
	}
	b = append(b, optEnd)
	for len(b)-start < minMsgLen {
		b = append(b, optPad)
	}
	return b
}

func addr4(b []byte) netip.Addr {
	a := netip.AddrFrom4([4]byte(b))
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// put4 writes a as four bytes; anything but an IPv4 address is 0.0.0.0.
func put4(b []byte, a netip.Addr) {
	if a = a.Unmap(); a.Is4() {
		v := a.As4()
		copy(b, v[:])
	}
}
