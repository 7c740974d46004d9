package tcp

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// SYN cookies (RFC 4987 §3.6), as Linux's net/ipv4/syncookies.c: when a
// listener's half-open connections are at their bound, a SYN is answered
// statelessly with a SYN-ACK whose ISN encodes what the connection needs,
// and the handshake's final ACK recreates the connection from it.
//
// The cookie is a SipHash-2-4 of the 4-tuple, the peer's ISN, a time
// counter that ticks every 64 s and the encoded options, keyed with the
// listener's secret, whose two low bits are replaced by an index into
// msstab. When the peer offered timestamps, the options that do not fit
// in the ISN (the peer's window scale and SACK-permitted) ride in the low
// six bits of our TSval, which the peer echoes in TSecr (Linux's
// cookie_init_timestamp); they are hashed too, so they cannot be forged.
// Without timestamps the SYN-ACK offers neither window scaling nor SACK,
// as Linux does. A cookie is valid during the counter it was made in and
// the next (64-128 s).

// msstab holds the MSS values a cookie can encode for a peer of each
// family, Linux's msstab and msstab6: IPv4's, and IPv6's, the payloads of
// 1280-, 1480-, 1500- and 9000-byte packets under 60 bytes of headers. A
// peer's MSS is rounded down to one of them.
var msstab = [2][4]uint16{
	{536, 1300, 1440, 1460},
	{1220, 1420, 1440, 8940},
}

// msstabFor returns the table for a peer at remote.
func msstabFor(remote netip.AddrPort) *[4]uint16 {
	if remote.Addr().Unmap().Is4() {
		return &msstab[0]
	}
	return &msstab[1]
}

const (
	cookiePeriod = 64 // seconds per cookie time counter

	// The low bits of TSval in a cookie SYN-ACK (Linux's TSBITS layout).
	tsOptBits  = 6
	tsOptMask  = 1<<tsOptBits - 1
	tsWScaleNo = 0xf    // bits 0-3: the peer's window shift; 15: none
	tsSACKBit  = 1 << 4 // bit 4: SACK permitted
	noTSOpts   = 1 << 7 // the hashed option byte when timestamps are off
)

// ListenerStats counts what a listener did statelessly.
type ListenerStats struct {
	CookiesSent      uint64 // SYN-ACKs carrying a SYN cookie
	CookiesValidated uint64 // ACKs whose cookie was valid
	CookiesRejected  uint64 // ACKs with no connection and an invalid or expired cookie (answered with RST)
	CookiesDropped   uint64 // valid cookies dropped because the accept queue was full
	DropSynFin       uint64 // SYNs discarded because they also carried FIN
}

// Stats returns the listener's counters. It may be called concurrently
// with Input.
func (l *Listener) Stats() ListenerStats {
	return ListenerStats{
		CookiesSent:      l.cookiesSent.Load(),
		CookiesValidated: l.cookiesValid.Load(),
		CookiesRejected:  l.cookiesRejected.Load(),
		CookiesDropped:   l.cookiesDropped.Load(),
		DropSynFin:       l.synFinDropped.Load(),
	}
}

func cookieCount(now time.Time) uint32 { return uint32(now.Unix() / cookiePeriod) }

// cookieHash returns the keyed hash a cookie is checked against.
func (l *Listener) cookieHash(remote netip.AddrPort, count uint32, irs Seq, opts uint8) uint32 {
	var buf [45]byte
	a, b := l.local.Addr().As16(), remote.Addr().As16()
	copy(buf[0:], a[:])
	copy(buf[16:], b[:])
	binary.BigEndian.PutUint16(buf[32:], l.local.Port())
	binary.BigEndian.PutUint16(buf[34:], remote.Port())
	binary.BigEndian.PutUint32(buf[36:], count)
	binary.BigEndian.PutUint32(buf[40:], uint32(irs))
	buf[44] = opts
	k0 := binary.LittleEndian.Uint64(l.secret[0:])
	k1 := binary.LittleEndian.Uint64(l.secret[8:])
	return uint32(sipHash24(k0, k1, buf[:]) >> 32)
}

// mssIndex returns the index of the largest entry of tab not above the
// peer's MSS (536 when the SYN carried none, RFC 9293 §3.7.1, which an
// IPv6 peer cannot mean: its smallest is taken then, RFC 8200 §5).
func mssIndex(tab *[4]uint16, peer uint16) uint32 {
	i := len(tab) - 1
	for i > 0 && peer < tab[i] {
		i--
	}
	return uint32(i)
}

// sendCookie answers syn statelessly with a SYN-ACK whose ISN is a cookie
// (Linux's tcp_conn_request with want_cookie).
func (l *Listener) sendCookie(now time.Time, syn *Segment, remote netip.AddrPort, emit Emitter) {
	cfg := &l.cfg
	o := &syn.Opts
	opts := uint8(noTSOpts)
	if o.HasTS {
		opts = tsWScaleNo
		if o.HasWScale {
			opts = o.WScale
		}
		if o.SACKPermitted && !cfg.NoSACK {
			opts |= tsSACKBit
		}
	}
	irs := syn.Seq
	idx := mssIndex(msstabFor(remote), o.MSS)
	cookie := Seq(l.cookieHash(remote, cookieCount(now), irs, opts)&^3 | idx)

	s := newSegment()
	*s = Segment{
		SrcPort: syn.DstPort, DstPort: syn.SrcPort,
		Seq: cookie, Ack: irs.Add(1), Flags: FlagSYN | FlagACK,
		Wnd: uint16(min(cfg.RecvBuf, 65535)),
	}
	s.Opts.MSS = uint16(cfg.advMSS())
	if o.HasTS {
		s.Opts.HasTS, s.Opts.TSEcr = true, o.TSVal
		// Our timestamp clock as the connection will run it (tsNow),
		// with the options in its low bits, moved back rather than
		// forward so that it never runs ahead of that clock.
		ts := uint32(now.UnixMilli()) + tsOffsetFor(cookie)
		v := ts&^tsOptMask | uint32(opts)
		if int32(v-ts) > 0 {
			v -= 1 << tsOptBits
		}
		s.Opts.TSVal = v
		if opts&tsWScaleNo != tsWScaleNo {
			s.Opts.HasWScale, s.Opts.WScale = true, wscaleFor(cfg.RecvBufMax)
		}
		s.Opts.SACKPermitted = opts&tsSACKBit != 0
	}
	l.lastCookie, l.cookieUsed = cookieCount(now), true
	l.cookiesSent.Add(1)
	emit.Emit(s)
	segPool.Put(s)
}

// checkCookie reports whether ack, an ACK for no connection, completes a
// handshake this listener answered with a cookie, and if so returns the
// options encoded in it. Cookies are checked only while the listener has
// sent some recently (Linux's tcp_synq_no_recent_overflow).
func (l *Listener) checkCookie(now time.Time, ack *Segment, remote netip.AddrPort) (opts uint8, mss uint16, ok bool) {
	count := cookieCount(now)
	if !l.cookieUsed || count-l.lastCookie > 2 {
		return 0, 0, false
	}
	cookie := ack.Ack.Add(-1)
	irs := ack.Seq.Add(-1)
	opts = noTSOpts
	if ack.Opts.HasTS {
		opts = uint8(ack.Opts.TSEcr & tsOptMask)
	}
	for age := uint32(0); age < 2; age++ {
		if Seq(l.cookieHash(remote, count-age, irs, opts)&^3) == cookie&^3 {
			return opts, msstabFor(remote)[uint32(cookie)&3], true
		}
	}
	l.cookiesRejected.Add(1)
	return 0, 0, false
}

// cookieConn recreates the connection a valid cookie stands for and
// processes the ACK that carried it: the connection is ESTABLISHED (and
// raises EvEstablished) as if it had been in SYN-RECEIVED, and counts in
// the accept queue. It returns nil if the accept queue is full.
func (l *Listener) cookieConn(now time.Time, ack *Segment, remote netip.AddrPort, opts uint8, mss uint16, emit Emitter) *Conn {
	l.cookiesValid.Add(1)
	if l.acceptQ.Load() >= l.backlog {
		l.cookiesDropped.Add(1) // as Linux: drop, the peer retransmits
		return nil
	}
	// The SYN as the cookie remembers it.
	syn := Segment{Seq: ack.Seq.Add(-1), Flags: FlagSYN}
	syn.Opts.MSS = mss
	if opts&noTSOpts == 0 {
		syn.Opts.HasTS, syn.Opts.TSVal = true, ack.Opts.TSVal
		if ws := opts & tsWScaleNo; ws != tsWScaleNo {
			syn.Opts.HasWScale, syn.Opts.WScale = true, min(ws, MaxWScale)
		}
		syn.Opts.SACKPermitted = opts&tsSACKBit != 0
	}
	c := newConn(&l.cfg, l.local, remote, ack.Ack.Add(-1), emit)
	c.opened = openedPassive
	c.state = SynReceived
	c.setEpoch(now)
	c.lastRcv = c.at(now)
	c.irs = syn.Seq
	c.rcvNxt = syn.Seq.Add(1)
	c.negotiate(&syn)
	c.sndWl1, c.sndWl2 = syn.Seq, c.iss
	c.sndNxt, c.sndMax = c.iss.Add(1), c.iss.Add(1)
	c.rcvAdv = c.rcvNxt.Add(min(int(c.rcvBuf), 65535)) // the SYN-ACK's window
	c.rcvAckSent = c.rcvNxt                            // and its ACK
	l.acceptQ.Add(1)
	c.Input(now, ack) // ESTABLISHED, the window, and any data
	return c
}
