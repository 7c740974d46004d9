package tcp

import "time"

// RACK-TLP (RFC 8985): loss detection by time. A segment is deemed lost
// once a segment sent after it has been delivered (ACKed or SACKed) and
// more than one RTT plus a reordering window has passed since it was sent;
// a tail loss probe makes the peer send the SACK that lets RACK see the
// losses at the end of a flight, instead of waiting for the RTO. Like
// Linux, RACK and TLP run only with SACK; without it the connection falls
// back to NewReno's three duplicate ACKs (RFC 6582).

// RACK's per-connection state (RFC 8985 §6.1) that outlives a flight is
// in the Conn (rackMinRTT, rackReord, rackDSACK, rackMult, rackPersist);
// rackFlight, in the scoreboard, is the rest.

// rackFlight is RACK's state about the current flight (RFC 8985 §6.1). It
// lives in the scoreboard and goes with it when everything sent is
// acknowledged: the next segments are all sent later than any delivered
// before, so nothing is lost by starting afresh.
type rackFlight struct {
	xmit   time.Duration // RACK.xmit_ts: send time of the latest-sent segment delivered
	rtt    time.Duration // RACK.rtt: the RTT of that segment
	endSeq Seq           // RACK.end_seq
	fack   Seq           // highest SACKed sequence before the ACK being processed
	seen   bool          // something was delivered
}

// WCDelAckT is RFC 8985 §7.2's worst-case delayed-ACK time, added to the
// probe timeout when only one segment is in flight.
const wcDelAckT = 200 * time.Millisecond

// delivered updates RACK with a segment the peer now holds (RFC 8985 §6.2
// steps 1-2) and notes reordering: a segment never retransmitted that
// arrives below the highest one SACKed so far (Linux's
// tcp_check_sack_reordering).
func (c *Conn) delivered(now time.Time, s *txSeg) {
	c.bbrDelivered(now, s)
	rtt := c.sinceEpoch(now) - s.sent
	if s.flags&txRetrans != 0 && rtt < c.rackMinRTT-c.rackMinRTT/8 {
		// Step 2: faster than the path allows, so it acknowledges the
		// original. An eighth of slack because min RTT comes from
		// segments sent in bursts, which wait in the sender's queue,
		// while a retransmission goes alone. (Timestamps do not help:
		// the peer echoes TS.Recent, which an out-of-order segment does
		// not update, RFC 7323 §4.3.)
		return
	}
	if s.flags&txRetrans == 0 && s.end.LessThan(c.txq.rack.fack) {
		c.rackReord = true
	}
	if c.rackMinRTT == 0 || rtt < c.rackMinRTT {
		c.rackMinRTT = rtt
	}
	if !c.txq.rack.seen || s.sent > c.txq.rack.xmit || (s.sent == c.txq.rack.xmit && s.end.GreaterThan(c.txq.rack.endSeq)) {
		c.txq.rack.xmit, c.txq.rack.endSeq, c.txq.rack.rtt, c.txq.rack.seen = s.sent, s.end, rtt, true
	}
}

// reoWnd is RACK's reordering window (RFC 8985 §6.2 step 4): zero while no
// reordering has been seen and DupThresh worth of data is SACKed (or
// recovery is under way), otherwise a quarter of the minimum RTT times the
// D-SACK-driven multiplier, at most SRTT.
func (c *Conn) reoWnd() time.Duration {
	if !c.rackReord && (c.inRecovery || int(c.sackedBytes) > 2*c.mss) {
		return 0
	}
	return min(c.rackMinRTT/4*time.Duration(c.reoMult()), c.rtt.srtt)
}

// rackDetect marks lost every segment sent before the latest delivered one
// whose time is up (RFC 8985 §6.2 step 5), and arms the reordering timer
// for the earliest of the others.
func (c *Conn) rackDetect(now time.Time) {
	c.rackAt = 0
	if !c.txq.rack.seen {
		return
	}
	reo := c.reoWnd()
	t := c.sinceEpoch(now)
	var wait time.Duration
	for i, n := 0, c.txq.find(c.txq.rack.endSeq); i < n; i++ {
		s := c.txq.at(i)
		if s.flags&(txSacked|txLost) != 0 || s.sent > c.txq.rack.xmit {
			continue
		}
		if left := s.sent + c.txq.rack.rtt + reo - t; left > 0 {
			wait = max(wait, left)
			continue
		}
		c.markLost(s)
		c.rareStats().RACKLost++
		if s.start.LessThan(c.lostFrom) {
			c.lostFrom = s.start
		}
	}
	if wait > 0 {
		c.rackAt = c.at(now) + tick(wait)
	}
}

// rackRecoveryDone adapts the reordering window at the end of a recovery
// (RFC 8985 §6.2 step 4): each D-SACK widens it for 16 recoveries.
func (c *Conn) rackRecoveryDone() {
	if c.rackDSACK {
		c.rackDSACK = false
		c.setReo(min(c.reoMult()+1, 8), 16)
		return
	}
	switch p := c.reoPersist(); p {
	case 0:
	case 1:
		c.setReo(1, 0)
	default:
		c.setReo(c.reoMult(), p-1)
	}
}

// reoMult returns RACK.reo_wnd_mult, 1 to 8.
func (c *Conn) reoMult() uint8 { return c.rackReo&7 + 1 }

// reoPersist returns RACK.reo_wnd_persist, the recoveries left at the
// multiplier, 0 to 16.
func (c *Conn) reoPersist() uint8 { return c.rackReo >> 3 }

// setReo sets RACK.reo_wnd_mult (1 to 8) and RACK.reo_wnd_persist (0 to 31).
func (c *Conn) setReo(mult, persist uint8) { c.rackReo = (mult-1)&7 | persist<<3 }

// onRackTimer fires the reordering timer (RFC 8985 §6.3).
func (c *Conn) onRackTimer(now time.Time) {
	c.rackDetect(now)
	c.maybeEnterRecovery(now)
	c.output(now)
}

// armPTO (re)arms the tail loss probe (RFC 8985 §7.2) after new data is
// sent or new data is acknowledged, unless a probe is out, recovery is
// under way, or the RTO would fire first. PTO = 2·SRTT, plus WCDelAckT when
// a single segment is in flight (over a link that holds rather than drops,
// less than two full-sized ones), and at least 10 ms (as Linux).
func (c *Conn) armPTO(now time.Time) {
	c.ptoAt = 0
	if !c.sackOK || c.inRecovery || c.inLoss || c.tlpOut || c.sndUna == c.sndNxt || !c.rtt.has() || c.sndWnd == 0 {
		return
	}
	pto := 2 * c.rtt.srtt
	if c.txq.n == 1 || (c.cfg.LinkQueued != nil && int(c.sndNxt.Sub(c.sndUna)) < 2*c.mss) {
		// Less than two full-sized segments out: the peer may delay its
		// ACK (RFC 5681 §4.2), as ours does. Over a link that holds
		// rather than drops, where a probe is seldom needed, the probe
		// waits for that ACK too, not only for a single segment's.
		pto += wcDelAckT
	}
	at := c.at(now) + tick(max(pto, 10*time.Millisecond))
	if c.rtoAt != 0 && at >= c.rtoAt {
		return
	}
	c.ptoAt = at
}

// onPTO sends the loss probe (RFC 8985 §7.3): one segment of new data if
// the peer's window allows (cwnd does not count), otherwise the last
// segment again; then the RTO guards the probe.
func (c *Conn) onPTO(now time.Time) {
	switch c.state {
	case Established, FinWait1, CloseWait, Closing, LastAck:
	default:
		return
	}
	if c.sndUna == c.sndNxt || c.inRecovery || c.inLoss {
		return
	}
	if c.linkQueued() {
		// The link's queues hold frames, ours or the peer's ACKs: the
		// probe would wait behind the data it probes for, which a link
		// that holds rather than drops has not lost (Linux's
		// skb_still_in_host_queue). Probe later; the RTO is the
		// backstop.
		c.armPTO(now)
		return
	}
	c.rareStats().TLPs++
	if !c.sendNext(now, sendProbe) {
		for i := c.txq.n - 1; i >= 0; i-- {
			if s := c.txq.at(i); s.flags&txSacked == 0 {
				c.retransmit(now, s)
				break
			}
		}
	}
	c.tlpOut, c.tlpHigh = true, c.sndNxt
	c.rtoAt = c.at(now) + tick(c.rto())
}
