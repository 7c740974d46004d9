package tcp

import (
	"net/netip"
	"sync/atomic"
	"time"
)

// Rand is the source of randomness injected into the core, as time is:
// the ISN secret and, later, jitter. *math/rand/v2.Rand satisfies it.
type Rand interface{ Uint32() uint32 }

// Listener is a passive open (RFC 9293 §3.10.1 with a foreign socket left
// unspecified). It answers SYNs with new connections in SYN-RECEIVED and
// bounds both the half-open connections and those established but not yet
// accepted; the shell owns the accept queue itself and calls Accepted when
// it hands one out.
//
// Input must be called under the listener's lock; the counters it shares
// with its children are atomic, so children may be driven under their own
// locks.
type Listener struct {
	cfg      Config
	local    netip.AddrPort
	backlog  int32
	secret   [16]byte
	halfOpen atomic.Int32
	acceptQ  atomic.Int32

	// SYN cookies (cookie.go).
	lastCookie      uint32 // time counter of the last cookie sent
	cookieUsed      bool
	cookiesSent     atomic.Uint64
	cookiesValid    atomic.Uint64
	cookiesRejected atomic.Uint64
	cookiesDropped  atomic.Uint64
	synFinDropped   atomic.Uint64

	outcome Outcome // what the last Input did

	// ISN, if set, replaces the RFC 6528 generator (tests start sequence
	// numbers just below 2^32 with it).
	ISN func(local, remote netip.AddrPort, now time.Time) Seq
}

// Outcome says what Listener.Input did with a segment, for the shell's
// counters.
type Outcome uint8

const (
	Ignored        Outcome = iota // dropped without a word: a RST, a segment with neither SYN nor ACK
	HalfOpened                    // a SYN made a child in SYN-RECEIVED, which sent its SYN-ACK
	CookieSent                    // a SYN was answered with a SYN cookie (half-open queue full)
	CookieValid                   // an ACK returned a valid cookie (its child is returned unless the accept queue is full)
	CookieRejected                // an ACK returned an invalid or expired cookie: answered with a RST
	Reset                         // an ACK for no connection, with no cookie in use: answered with a RST
	DropSynFin                    // a SYN that also carried FIN, discarded as Linux does
	DropAcceptFull                // a SYN dropped because the accept queue is full; the peer retries
)

// LastOutcome returns what the last Input did. Call it under the
// listener's lock, right after Input.
func (l *Listener) LastOutcome() Outcome { return l.outcome }

// NewListener returns a listener on local that holds at most backlog
// half-open connections and at most backlog established ones waiting to be
// accepted. rnd keys the ISN generator.
func NewListener(cfg *Config, local netip.AddrPort, backlog int, rnd Rand) *Listener {
	l := &Listener{local: local, backlog: int32(max(backlog, 1))}
	l.cfg = cfg.withDefaults()
	l.cfg.listener = l
	for i := 0; i < 16; i += 4 {
		v := rnd.Uint32()
		l.secret[i], l.secret[i+1], l.secret[i+2], l.secret[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	return l
}

// Local returns the listening address.
func (l *Listener) Local() netip.AddrPort { return l.local }

// State returns LISTEN.
func (l *Listener) State() State { return Listen }

// HalfOpen returns the number of children still in SYN-RECEIVED.
func (l *Listener) HalfOpen() int { return int(l.halfOpen.Load()) }

// Queued returns the number of established children not yet accepted.
func (l *Listener) Queued() int { return int(l.acceptQ.Load()) }

// Accepted tells the listener the shell handed one established child to
// the application, freeing a slot of the accept queue.
func (l *Listener) Accepted() {
	if l.acceptQ.Add(-1) < 0 {
		l.acceptQ.Store(0)
	}
}

// Input handles a segment addressed to the listening port for which no
// connection exists (RFC 9293 §3.10.7.2). For an acceptable SYN it returns
// a new connection in SYN-RECEIVED that has already sent its SYN-ACK
// through emit; the caller registers it in its demux. When the half-open
// connections are at the backlog, a SYN is answered with a SYN cookie
// (cookie.go) and no state is kept; when the accept queue is full, it is
// dropped, as Linux does, and the peer retries. An ACK that returns a
// valid cookie yields a new connection already ESTABLISHED (its
// EvEstablished is pending), registered and queued like any other; any
// other ACK draws a RST. A RST, a SYN that also carries FIN (as Linux) and
// anything else are dropped. A SYN that ended a TIME-WAIT connection
// (Conn.ReopenedBy) starts the new connection above the old one's sequence
// numbers and, as in Linux, is never answered with a cookie.
func (l *Listener) Input(now time.Time, seg *Segment, remote netip.AddrPort, emit Emitter) *Conn {
	l.outcome = Ignored
	f := seg.Flags
	if f&FlagRST != 0 {
		return nil
	}
	if f&FlagACK != 0 {
		if f&FlagSYN == 0 {
			rejected := l.cookiesRejected.Load()
			if opts, mss, ok := l.checkCookie(now, seg, remote); ok {
				l.outcome = CookieValid
				return l.cookieConn(now, seg, remote, opts, mss, emit)
			}
			l.outcome = Reset
			if l.cookiesRejected.Load() != rejected {
				l.outcome = CookieRejected
			}
		}
		if rst, ok := RstFor(seg); ok {
			emit.Emit(&rst)
		}
		return nil
	}
	if f&FlagSYN == 0 {
		return nil
	}
	if f&FlagFIN != 0 {
		// RFC 9293 §3.10.7.2 leaves a SYN that also carries FIN to be
		// processed; Linux discards it in LISTEN (tcp_rcv_state_process),
		// so no half-open connection answers what no real stack sends.
		l.synFinDropped.Add(1)
		l.outcome = DropSynFin
		return nil
	}
	if l.acceptQ.Load() >= l.backlog {
		l.outcome = DropAcceptFull
		return nil
	}
	// A SYN that ended TIME-WAIT takes the ISN the old connection chose
	// (Conn.Input), and never a cookie, whose ISN could fall below the old
	// SND.NXT: as Linux's tcp_conn_request, which skips cookies when
	// tcp_tw_isn is set.
	if l.halfOpen.Load() >= l.backlog && !seg.twReuse {
		l.sendCookie(now, seg, remote, emit)
		l.outcome = CookieSent
		return nil
	}
	var isn Seq
	switch {
	case seg.twReuse:
		isn = seg.twISN
	case l.ISN != nil:
		isn = l.ISN(l.local, remote, now)
	default:
		isn = ISN(l.secret, l.local, remote, now)
	}
	c := newConn(&l.cfg, l.local, remote, isn, emit)
	c.opened = openedHalfOpen
	l.halfOpen.Add(1)
	c.acceptSyn(now, seg)
	l.outcome = HalfOpened
	return c
}

// AcceptSYN answers seg, a SYN from remote to local, with a new connection
// in SYN-RECEIVED that has sent its SYN-ACK through emit, without a
// listener: for a shell that takes SYNs to any address (a forwarder) and
// bounds them itself. isn is the connection's initial sequence number.
func AcceptSYN(cfg *Config, local, remote netip.AddrPort, isn Seq, now time.Time, seg *Segment, emit Emitter) *Conn {
	c := newConn(cfg, local, remote, isn, emit)
	c.opened = openedPassive
	c.acceptSyn(now, seg)
	return c
}

// acceptSyn moves a fresh connection from LISTEN to SYN-RECEIVED on seg
// and sends the SYN-ACK (RFC 9293 §3.10.7.2 third). Data on the SYN is not
// queued; the peer will retransmit it.
func (c *Conn) acceptSyn(now time.Time, seg *Segment) {
	c.state = SynReceived
	c.setEpoch(now)
	c.lastRcv = c.at(now)
	c.irs = seg.Seq
	c.rcvNxt = seg.Seq.Add(1)
	c.negotiate(seg)
	if c.cfg.ECN && ecnSetupSYN(seg.Flags) {
		c.ecn = ecnOK // RFC 3168 §6.1.1: the SYN-ACK answers with ECE
	}
	c.sndWnd = uint32(seg.Wnd)
	c.maxWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = seg.Seq, c.iss
	c.sendSYN(now)
	c.sndNxt, c.sndMax = c.iss.Add(1), c.iss.Add(1)
	c.rttActive = true // the SYN-ACK was sent at epoch
	c.rtoAt = c.at(now) + tick(c.rto())
	c.stateAt = c.at(now) + tick(c.cfg.SynRcvdTimeout)
}

// RstFor returns the reply RFC 9293 §3.10.7.1 prescribes for seg arriving
// at a closed port: nothing for a RST; <SEQ=SEG.ACK><CTL=RST> if seg has
// ACK; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
func RstFor(seg *Segment) (Segment, bool) {
	if seg.Flags&FlagRST != 0 {
		return Segment{}, false
	}
	r := Segment{SrcPort: seg.DstPort, DstPort: seg.SrcPort}
	if seg.Flags&FlagACK != 0 {
		r.Seq = seg.Ack
		r.Flags = FlagRST
	} else {
		r.Ack = seg.End()
		r.Flags = FlagRST | FlagACK
	}
	return r, true
}
