package ip

import (
	"encoding/binary"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
)

// RFC 791 §3.1 IPv4 options: each type octet holds the copied flag, the
// class and the number.
const (
	optEOL  = 0   // end of option list
	optNOP  = 1   // no operation
	optRR   = 7   // record route
	optTS   = 68  // internet timestamp
	optLSRR = 131 // loose source and record route
	optSSRR = 137 // strict source and record route
	optRA   = 148 // router alert (RFC 2113)

	// Timestamp flags (the low nibble of the option's fourth octet; the
	// high nibble is the overflow count).
	tsOnly    = 0 // timestamps only
	tsAddr    = 1 // each timestamp preceded by the address of its host
	tsPrespec = 3 // timestamps for the prespecified addresses only

	maxOptionsLen = 40 // a 60-byte header less its 20 fixed bytes
)

// ipv4Options locates the options of a header that the host acts on, as
// offsets from the start of the header; 0 when absent.
type ipv4Options struct {
	rr, ts, srr int
}

// parseIPv4Options checks the option list of hdr (RFC 791 §3.1; RFC 1122
// §3.2.1.8) as Linux's ip_options_compile does on input: EOL ends the list
// and NOP is one octet; every other option has a length octet of at least 2
// that stays within the header; record route, timestamp and source routes
// appear at most once with a pointer in range, and a timestamp whose
// overflow count is already 15 cannot overflow again. Other options (router
// alert, security, unknown ones) are checked for their length only, as
// Linux ignores them on input. bad is 0 when the list is sound, else the
// offset from the start of the header of the offending octet, which a
// parameter problem reports (RFC 792).
func parseIPv4Options(hdr IPv4Header) (o ipv4Options, bad int) {
	i, end := IPv4MinHeaderLen, hdr.HeaderLen()
	for i < end {
		switch hdr[i] {
		case optEOL:
			return o, 0
		case optNOP:
			i++
			continue
		}
		if end-i < 2 {
			return o, i
		}
		n := int(hdr[i+1])
		if n < 2 || n > end-i {
			return o, i
		}
		opt := hdr[i : i+n]
		switch opt[0] {
		case optLSRR, optSSRR:
			switch {
			case n < 3:
				return o, i + 1
			case opt[2] < 4:
				return o, i + 2
			case o.srr != 0:
				return o, i
			}
			o.srr = i
		case optRR:
			if b := pointerOption(opt, i, o.rr, 3, 4); b != 0 {
				return o, b
			}
			if int(opt[2]) <= n && int(opt[2])+3 > n {
				return o, i + 2 // room left, but not for a whole address
			}
			o.rr = i
		case optTS:
			if b := pointerOption(opt, i, o.ts, 4, 5); b != 0 {
				return o, b
			}
			p, flag := int(opt[2]), opt[3]&0xf
			switch {
			case p <= n && p+3 > n:
				return o, i + 2
			case p <= n && (flag == tsAddr || flag == tsPrespec) && p+7 > n:
				return o, i + 2 // an address but no room for its timestamp
			case p > n && flag != tsPrespec && opt[3]>>4 == 15:
				return o, i + 3 // full, and the overflow count would wrap
			}
			o.ts = i
		case optRA:
			if n < 4 {
				return o, i + 1
			}
		}
		i += n
	}
	return o, 0
}

// pointerOption checks the common part of a record route or timestamp
// option opt at offset i: not seen before (seen is the offset of an
// earlier one), at least minLen long, its pointer at least minPtr. It
// returns the offending octet's offset, or 0.
func pointerOption(opt []byte, i, seen, minLen, minPtr int) int {
	switch {
	case seen != 0:
		return i
	case len(opt) < minLen:
		return i + 1
	case int(opt[2]) < minPtr:
		return i + 2
	}
	return 0
}

// optionHop is what recording one hop into a record route or timestamp
// option takes: our address, the address the prespecified-timestamp flag
// treats as ours besides it (the subnet broadcast), and the time.
type optionHop struct {
	addr, bcast [4]byte
	stamp       [4]byte
}

// ipv4Timestamp is an RFC 791 internet timestamp: milliseconds since
// midnight UT, as Linux's inet_current_timestamp computes it.
func ipv4Timestamp(now time.Time) [4]byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(now.UnixMilli()%(24*60*60*1000)))
	return b
}

// local reports whether a prespecified timestamp address names this host:
// Linux stamps unless inet_addr_type calls the address a remote unicast
// one, so our address, broadcasts, 0.0.0.0/8 and multicast all count.
func (s *optionHop) local(a []byte) bool {
	v := [4]byte(a)
	return v == s.addr || v == s.bcast || v == [4]byte{255, 255, 255, 255} || v[0] == 0 || v[0]&0xf0 == 0xe0
}

// recordRoute adds our address to a record route option if it has room
// (RFC 791 §3.1). ok is false when room is left but not for a whole
// address.
func (s *optionHop) recordRoute(opt []byte) (recorded, ok bool) {
	p := int(opt[2])
	if p > len(opt) {
		return false, true
	}
	if p+3 > len(opt) {
		return false, false
	}
	copy(opt[p-1:p+3], s.addr[:])
	opt[2] = byte(p + 4)
	return true, true
}

// stampIn records the arrival hop into a timestamp option as Linux's
// ip_options_compile does (RFC 791 §3.1): a timestamp for flag 0, our
// address and a timestamp for flag 1, a timestamp after a prespecified
// address that is ours for flag 3; a full option instead counts an
// overflow. It returns what the departing hop must record.
func (s *optionHop) stampIn(opt []byte) (needAddr, needTime, ok bool) {
	p, flag := int(opt[2]), opt[3]&0xf
	if p > len(opt) {
		if flag != tsPrespec {
			ov := opt[3] >> 4
			if ov == 15 {
				return false, false, false
			}
			opt[3] = flag | (ov+1)<<4
		}
		return false, false, true
	}
	room := 4
	if flag == tsAddr || flag == tsPrespec {
		room = 8
	}
	if p+room-1 > len(opt) {
		return false, false, false
	}
	switch flag {
	case tsOnly:
		copy(opt[p-1:p+3], s.stamp[:])
		opt[2] = byte(p + 4)
		return false, true, true
	case tsAddr:
		copy(opt[p-1:p+3], s.addr[:])
		copy(opt[p+3:p+7], s.stamp[:])
		opt[2] = byte(p + 8)
		return true, true, true
	case tsPrespec:
		if !s.local(opt[p-1 : p+3]) {
			return false, false, true
		}
		copy(opt[p+3:p+7], s.stamp[:])
		opt[2] = byte(p + 8)
		return false, true, true
	}
	return false, false, true // an unknown flag: left alone, as Linux does
}

// stampOut records the departing hop of a reply into a timestamp option
// that stampIn updated, as Linux's ip_options_echo and ip_options_build
// do: only what the arrival hop recorded is recorded again, a prespecified
// stamp only when the next address is ours too. ok is false when room is
// left but not for a whole entry.
func (s *optionHop) stampOut(opt []byte, needAddr, needTime bool) bool {
	p, flag := int(opt[2]), opt[3]&0xf
	if p > len(opt) {
		return true
	}
	addr, stamp := false, false
	if needAddr {
		if p+3 > len(opt) {
			return false
		}
		addr = true
		p += 4
	}
	if needTime {
		if p+3 > len(opt) {
			return false
		}
		switch {
		case flag != tsPrespec:
			stamp = true
			p += 4
		case p+7 <= len(opt) && s.local(opt[p-1:p+3]):
			stamp = true
			p += 8
		}
	}
	opt[2] = byte(p)
	if addr {
		copy(opt[p-9:p-5], s.addr[:])
	}
	if stamp {
		copy(opt[p-5:p-1], s.stamp[:])
	}
	return true
}

// echoIPv4Options writes into dst the options an echo reply to hdr
// carries (RFC 1122 §3.2.2.6): its record route and timestamp options, in
// that order, each updated for the request's arrival and the reply's
// departure (Linux records us twice, as ip_options_compile and then
// ip_options_echo with ip_options_build do), padded with EOL to a multiple
// of 4 octets. Other options are not returned; source-routed requests never
// get here. ok is false when Linux would send no reply: a pointer leaving
// room for part of an entry only.
func echoIPv4Options(dst *[maxOptionsLen]byte, hdr IPv4Header, o ipv4Options, s *optionHop) (n int, ok bool) {
	if o.rr != 0 {
		opt := dst[n : n+copy(dst[n:], hdr[o.rr:o.rr+int(hdr[o.rr+1])])]
		n += len(opt)
		recorded, ok := s.recordRoute(opt)
		if !ok {
			return 0, false
		}
		if recorded {
			if _, ok := s.recordRoute(opt); !ok {
				return 0, false
			}
		}
	}
	if o.ts != 0 {
		opt := dst[n : n+copy(dst[n:], hdr[o.ts:o.ts+int(hdr[o.ts+1])])]
		n += len(opt)
		needAddr, needTime, ok := s.stampIn(opt)
		if !ok || !s.stampOut(opt, needAddr, needTime) {
			return 0, false
		}
	}
	for n%4 != 0 {
		dst[n] = optEOL
		n++
	}
	return n, true
}

// setIPv4Options turns the option-less header encodeIPv4 wrote into b
// into one carrying the optLen octets of options already at b[20:] (a
// multiple of 4), and recomputes its checksum.
func setIPv4Options(b []byte, optLen int) {
	b[0] = 0x40 | byte((IPv4MinHeaderLen+optLen)/4)
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:12], checksum.Checksum(b[:IPv4MinHeaderLen+optLen], 0))
}
