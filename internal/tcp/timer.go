package tcp

import (
	"math"
	"time"
)

// tick is a point in a connection's time, kept as its offset from the
// connection's epoch plus 1 ns (8 bytes where a time.Time takes 24), so
// that 0 is unset, as a zero time.Time was; differences of ticks are
// exact.
type tick time.Duration

// anchor is the origin of every connection's epoch: a Conn keeps its
// epoch as an offset from it, 8 bytes where a time.Time takes 24.
// Converting back with anchor.Add keeps the monotonic clock reading of the
// times the shell passes in; times without one (a test's virtual clock)
// count on the wall clock, as time.Time.Sub does.
var anchor = time.Now()

// setEpoch makes t the connection's epoch.
func (c *Conn) setEpoch(t time.Time) {
	c.epoch = t.Sub(anchor)
	if c.epoch == 0 {
		c.epoch = -1 // 0 means unset; 1 ns early does no harm
	}
}

// sinceEpoch returns the time from the connection's epoch to now.
func (c *Conn) sinceEpoch(now time.Time) time.Duration { return now.Sub(anchor) - c.epoch }

// at returns t as a tick. The epoch starts at the first time recorded.
func (c *Conn) at(t time.Time) tick {
	if c.epoch == 0 {
		c.setEpoch(t)
	}
	return tick(max(c.sinceEpoch(t), 0) + 1)
}

// wholeSeconds returns tick k in whole seconds, rounded up: a set tick
// stays non-zero.
func wholeSeconds(k tick) uint32 { return uint32((k + tick(time.Second) - 1) / tick(time.Second)) }

// timeOf returns the time k stands for; the zero time for an unset tick.
func (c *Conn) timeOf(k tick) time.Time {
	if k == 0 {
		return time.Time{}
	}
	return anchor.Add(c.epoch + time.Duration(k-1))
}

// due reports whether the deadline k is set and has passed at now.
func (c *Conn) due(k tick, now time.Time) bool { return k != 0 && k <= c.at(now) }

// NextDeadline returns the earliest armed deadline, or the zero time if
// none is armed. The shell calls Timer when it passes.
func (c *Conn) NextDeadline() time.Time {
	d := c.rtoAt
	for _, t := range [...]tick{c.delackAt, c.persistAt(), c.keepaliveAt, c.stateAt, c.rackAt, c.ptoAt, c.bbrPaceDeadline()} {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return c.timeOf(d)
}

// Timer fires every deadline at or before now.
func (c *Conn) Timer(now time.Time) {
	if c.due(c.stateAt, now) {
		c.stateAt = 0
		switch c.state {
		case TimeWait:
			c.terminate(nil) // RFC 9293 §3.10.8: TIME-WAIT timeout
		case FinWait2:
			c.terminate(nil) // Linux tcp_fin_timeout for orphaned sockets
		case SynReceived:
			c.terminate(ErrTimedOut) // handshake timeout
		}
		if c.state == Closed {
			return
		}
	}
	if c.due(c.rtoAt, now) {
		c.rtoAt = 0
		c.onRTO(now)
		if c.state == Closed {
			return
		}
	}
	if c.due(c.rackAt, now) {
		c.rackAt = 0
		c.onRackTimer(now)
	}
	if c.due(c.ptoAt, now) {
		c.ptoAt = 0
		c.onPTO(now)
	}
	if c.due(c.persistAt(), now) {
		c.setPersist(0)
		c.onPersist(now)
	}
	if c.due(c.keepaliveAt, now) {
		c.keepaliveAt = 0
		c.onKeepalive(now)
		if c.state == Closed {
			return
		}
	}
	if c.due(c.delackAt, now) {
		c.delackAt = 0
		c.ackNow = true
		c.output(now)
	}
	if b := c.bbr(); b != nil && c.due(b.paceAt, now) {
		b.paceAt = 0 // the pacing hold is over: send what it held
		c.output(now)
	}
}

// onRTO handles the expiry of the retransmission timer (RFC 6298 §5.4-5.6):
// back off, retransmit the earliest unacknowledged segment and go back to
// SND.UNA, or fail the connection once the retry limit is spent.
func (c *Conn) onRTO(now time.Time) {
	c.rttActive = false
	switch c.state {
	case SynSent, SynReceived:
		if int(c.retries) >= c.cfg.SynRetries {
			c.terminate(ErrTimedOut)
			return
		}
		c.retries++
		c.backoff = min(c.backoff+1, 64) // the RTO is capped long before
		c.sendSYN(now)
		c.rtoAt = c.at(now) + tick(c.rto())
		return
	case Established, FinWait1, CloseWait, Closing, LastAck:
	default:
		return
	}
	if c.sndUna == c.sndMax {
		return
	}
	if c.rtoHeld < maxRTOHeld && c.linkQueued() {
		// Frames still wait in the link's queues, which hold rather
		// than drop: our data not yet read by the peer, or its ACKs not
		// yet by us. Nothing is known lost; look again an RTO later, a
		// few times, in case the far end never reads.
		c.rtoHeld++
		c.rtoAt = c.at(now) + tick(c.rto())
		return
	}
	if int(c.retries) >= c.cfg.Retries {
		c.terminate(ErrTimedOut)
		return
	}
	c.onBlackHole(now) // RFC 4821 §7.7 (pmtu.go), before the retransmission as Linux's tcp_write_timeout
	c.retries++
	c.backoff = min(c.backoff+1, 64) // the RTO is capped long before
	c.rareStats().Timeouts++
	c.cc.OnTimeout(now, int(c.sndNxt.Sub(c.sndUna)))
	c.ecnWindowReduced()
	c.recover = c.sndNxt // RFC 6582 §3.2 step 4 (after a timeout)
	c.inRecovery, c.inLoss, c.tlpOut = false, true, false
	c.dupAcks, c.renoSacked = 0, 0
	c.ptoAt, c.rackAt = 0, 0
	// RFC 6675 §5.1 and RFC 8985 §6.3: everything not SACKed is lost and
	// goes again, from SND.UNA, as the (now one-segment) cwnd allows.
	for i := 0; i < c.txq.n; i++ {
		c.markLost(c.txq.at(i))
	}
	c.lostFrom = c.sndUna
	c.output(now)
	if c.rtoAt == 0 && c.sndNxt != c.sndUna {
		c.rtoAt = c.at(now) + tick(c.rto())
	}
}

// onPersist sends a zero-window probe (RFC 9293 §3.8.6.1) or, if the window
// is open but silly-window avoidance held data back, forces it out
// (§3.8.6.2.1 override timer). Probes back off like the RTO.
func (c *Conn) onPersist(now time.Time) {
	switch c.state {
	case Established, FinWait1, CloseWait, Closing, LastAck:
	default:
		return
	}
	if c.sndWnd == 0 {
		if int(c.retries) >= c.cfg.Retries {
			// Linux counts unanswered probes against tcp_retries2; any
			// ACK (even with a zero window) resets the count.
			c.terminate(ErrTimedOut)
			return
		}
		c.retries++
		c.sendProbe(now)
		c.backoff = min(c.backoff+1, 64) // the RTO is capped long before
		c.setPersist(c.at(now) + tick(c.rto()))
		return
	}
	c.sendNext(now, sendForce)
	c.output(now)
}

// armKeepalive arms the keepalive timer in the states where it runs.
func (c *Conn) armKeepalive(now time.Time) {
	if c.ka.Enable && c.keepaliveAt == 0 && (c.state == Established || c.state == CloseWait) {
		if c.lastRcv == 0 {
			c.lastRcv = c.at(now)
		}
		c.keepaliveAt = c.lastRcv + tick(c.ka.Idle)
		c.keepaliveAt = max(c.keepaliveAt, c.at(now))
	}
}

// onKeepalive sends a keepalive probe after Idle without input, then one
// every Interval; after Count unanswered probes the connection fails
// (RFC 9293 §3.8.4; RFC 1122 §4.2.3.6; Linux tcp_keepalive_timer).
func (c *Conn) onKeepalive(now time.Time) {
	if !c.ka.Enable || (c.state != Established && c.state != CloseWait) {
		return
	}
	idle := c.timeOf(c.lastRcv + tick(c.ka.Idle))
	if c.kaProbes == 0 && now.Before(idle) {
		c.keepaliveAt = c.at(idle)
		return
	}
	if c.sndUna != c.sndMax || c.snd.len() > 0 {
		// Data outstanding: the retransmission timer watches the peer.
		c.kaProbes = 0
		c.keepaliveAt = c.at(now) + tick(c.ka.Idle)
		return
	}
	if int(c.kaProbes) >= min(c.ka.Count, math.MaxUint8) {
		c.terminate(ErrTimedOut)
		return
	}
	c.kaProbes++
	c.sendProbe(now)
	c.keepaliveAt = c.at(now) + tick(c.ka.Interval)
}
