package tcp

import "time"

// Input processes a segment that arrived for this connection's 4-tuple, as
// RFC 9293 §3.10.7 ("SEGMENT ARRIVES") prescribes for the connection's
// state, and sends whatever the segment calls for.
func (c *Conn) Input(now time.Time, seg *Segment) {
	switch c.state {
	case Closed, Listen:
		// RFC 9293 §3.10.7.1: a segment for a closed connection draws a RST.
		if rst, ok := RstFor(seg); ok {
			s := newSegment()
			*s = rst
			c.xmit(s)
		}
		return
	case SynSent:
		c.inputSynSent(now, seg)
		return
	}
	c.stats.SegsIn++
	c.lastRcv = c.at(now)
	c.kaProbes = 0
	syn := seg.Flags&(FlagSYN|FlagACK|FlagRST) == FlagSYN

	// RFC 9293 §3.6.1 and RFC 6191: a new SYN to a TIME-WAIT connection with
	// a higher sequence number (or a newer timestamp) ends TIME-WAIT; the
	// shell passes the SYN on to the listener. RFC 9293 §3.10.7.4 (and RFC
	// 6191 §2): the new connection's ISN must lie above the old SND.NXT,
	// so that old duplicates fall outside its window; we take Linux's
	// SND.NXT + 65535 + 2 (tcp_timewait_state_process) and hand it to the
	// listener in the segment, as Linux does in the skb (tcp_tw_isn).
	if c.state == TimeWait && syn {
		if seg.Seq.GreaterThan(c.rcvNxt) || (c.tsOK && seg.Opts.HasTS && int32(seg.Opts.TSVal-c.tsRecent) > 0) {
			seg.twReuse, seg.twISN = true, c.sndMax.Add(65535+2)
			c.reopened = true
			c.terminate(nil)
			return
		}
	}
	if c.state == SynReceived && seg.Seq == c.irs && seg.Flags&(FlagSYN|FlagRST) == FlagSYN {
		if syn {
			// A retransmitted SYN: our SYN-ACK was lost.
			c.sendSYN(now)
			return
		}
		// Simultaneous open (RFC 9293 §3.5, figure 8, line 6): the peer's
		// SYN-ACK repeats the SYN we already have; process its ACK.
		s := *seg
		s.Seq = s.Seq.Add(1)
		s.Flags &^= FlagSYN
		seg = &s
	}

	// RFC 7323 §5.3 R1 (PAWS): a segment whose timestamp is older than
	// TS.Recent is an old duplicate: ACK and drop it. TS.Recent older than
	// 24 days is no longer valid (§5.5).
	if c.tsOK && seg.Opts.HasTS && seg.Flags&FlagRST == 0 && int32(seg.Opts.TSVal-c.tsRecent) < 0 &&
		now.Sub(c.timeOf(tick(c.tsRecentAt)*tick(time.Second))) < 24*24*time.Hour {
		c.rareStats().DropPAWS++
		c.ackNow = true
		c.output(now)
		return
	}
	// First: check the sequence number (RFC 9293 §3.10.7.4).
	if !c.acceptable(seg) {
		c.rareStats().DropUnaccept++
		if len(seg.Payload) > 0 && seg.End().LessEq(c.rcvNxt) && c.rcvNxt.Sub(seg.End()) < 1<<30 {
			c.reportDup(seg.Seq, seg.Seq.Add(len(seg.Payload)))
		}
		if seg.Flags&FlagRST == 0 {
			if c.state == TimeWait && seg.Flags&FlagFIN != 0 {
				c.stateAt = c.at(now) + tick(c.cfg.TimeWait) // retransmitted FIN: restart 2·MSL
			}
			c.ackNow = true
			c.output(now)
		}
		return
	}
	// RFC 7323 §4.3: remember the peer's timestamp from a segment at or
	// below Last.ACK.sent (not RCV.NXT: while an ACK is delayed, TS.Recent
	// stays the timestamp of the first segment it acknowledges, so the
	// peer's RTT includes the delay).
	if c.tsOK && seg.Opts.HasTS && seg.Seq.LessEq(c.rcvAckSent) && int32(seg.Opts.TSVal-c.tsRecent) >= 0 {
		c.tsRecent, c.tsRecentAt = seg.Opts.TSVal, wholeSeconds(c.at(now))
	}
	if c.tsOK && seg.Opts.HasTS && seg.Opts.TSEcr != 0 && len(seg.Payload) > 0 {
		c.rcvRTTSample(now, seg.Opts.TSEcr)
	}

	// Second: the RST bit, with RFC 5961 §3.2: only an exact match resets;
	// any other in-window RST draws a challenge ACK.
	if seg.Flags&FlagRST != 0 {
		if seg.Seq != c.rcvNxt {
			c.challengeAck(now)
			return
		}
		switch c.state {
		case SynReceived:
			if c.opened == openedActive {
				c.terminate(ErrRefused) // simultaneous open refused
			} else {
				c.terminate(ErrReset)
			}
		case Established, FinWait1, FinWait2, CloseWait:
			c.terminate(ErrReset)
		default:
			c.terminate(nil)
		}
		return
	}

	// Fourth: a SYN in a synchronized state draws a challenge ACK (RFC 5961
	// §4.2, RFC 9293 §3.10.7.4).
	if seg.Flags&FlagSYN != 0 {
		c.challengeAck(now)
		return
	}

	// Fifth: the ACK field.
	if seg.Flags&FlagACK == 0 {
		return
	}
	c.ecnInput(seg)
	if !c.processAck(now, seg) {
		return
	}
	// Seventh and eighth: the segment text and FIN.
	c.processData(now, seg)
	c.output(now)
}

// reportDup notes that the octets [left, right) arrived again, for the
// D-SACK block of the next ACK (RFC 2883 §4), so the sender learns its
// retransmission was spurious.
func (c *Conn) reportDup(left, right Seq) {
	if c.sackOK {
		c.rareState().dsack = SACKBlock{left, right}
		c.hasDSACK = true
	}
}

// challengeAck sends the ACK of RFC 5961 §3.2/§4.2/§5.2.
func (c *Conn) challengeAck(now time.Time) {
	c.rareStats().ChallengeAcks++
	c.sendAck(now)
}

// acceptable is the segment acceptance test of RFC 9293 §3.10.7.4 (the
// table of four cases), with the special allowance for a zero window: a
// segment at RCV.NXT is processed for its ACK and its data is dropped.
func (c *Conn) acceptable(seg *Segment) bool {
	wnd := max(c.rcvAdv.Sub(c.rcvNxt), 0)
	if free := int32(int(c.rcvBuf) - c.rcv.len()); wnd > free {
		wnd = free
	}
	n := seg.Len()
	if wnd == 0 {
		return seg.Seq == c.rcvNxt
	}
	if n == 0 {
		return seg.Seq.InWindow(c.rcvNxt, uint32(wnd))
	}
	return seg.Seq.InWindow(c.rcvNxt, uint32(wnd)) || seg.Seq.Add(n-1).InWindow(c.rcvNxt, uint32(wnd))
}

// windowMoved follows the right edge of the peer's window from from to to.
// RFC 1122 §4.2.2.16: a sender must be robust against a window that shrinks
// below data already in flight, as Linux's receiver closes its window when
// it runs out of memory and discards what it cannot hold. What was sent
// beyond the edge is taken as discarded; when the window opens again it
// is resent at once, the ACK that opened it showing the peer alive, and
// the retransmission timer starts again from its base, not from the
// backoff that retransmissions into the full buffer ran up. The
// congestion window is left alone: no congestion dropped the data.
func (c *Conn) windowMoved(now time.Time, from, to Seq) {
	switch {
	case c.sndUna == c.sndNxt:
		c.sndShrunk = false
	case from.Sub(to) >= 1<<c.sndWScale && to.LessThan(c.sndNxt):
		// Less than one unit of the window scale is the peer rounding
		// its window down, not discarding: it shrinks no further than
		// it can express.
		c.sndShrunk = true
	case c.sndShrunk && to.GreaterThan(from):
		c.sndShrunk = false
		for i := 0; i < c.txq.n; i++ {
			if s := c.txq.at(i); s.start.LessThan(to) {
				c.markLost(s)
			}
		}
		c.lostFrom = c.sndUna
		c.backoff, c.retries = 0, 0
		c.rtoAt = c.at(now) + tick(c.rto())
	}
}

// inputSynSent handles a segment in SYN-SENT (RFC 9293 §3.10.7.3).
func (c *Conn) inputSynSent(now time.Time, seg *Segment) {
	f := seg.Flags
	if f&FlagACK != 0 && (seg.Ack.LessEq(c.iss) || seg.Ack.GreaterThan(c.sndMax)) {
		if f&FlagRST == 0 {
			c.sendRst(seg.Ack)
		}
		return
	}
	if f&FlagRST != 0 {
		if f&FlagACK != 0 {
			c.terminate(ErrRefused)
		}
		return
	}
	if f&FlagSYN == 0 {
		return
	}
	c.lastRcv = c.at(now)
	c.irs = seg.Seq
	c.rcvNxt = seg.Seq.Add(1)
	c.negotiate(seg)
	// What our SYN offered, unless memory pressure came or went since.
	c.rcvAdv = c.rcvNxt.Add(int(c.synWnd()))
	c.sndWnd = uint32(seg.Wnd) // never scaled in a SYN (RFC 7323 §2.2)
	c.maxWnd = c.sndWnd
	c.sndWl1, c.sndWl2 = seg.Seq, seg.Ack
	if f&FlagACK != 0 {
		if c.cfg.ECN && ecnSetupSYNACK(f) {
			c.ecn = ecnOK // RFC 3168 §6.1.1; none in a simultaneous open
		}
		c.synAcked(now)
		c.establish(now)
		c.ackNow = true
		c.output(now)
		return
	}
	// Simultaneous open (RFC 9293 §3.5, figure 8): SYN-RECEIVED, SYN-ACK.
	c.state = SynReceived
	c.sndWl2 = c.iss
	c.sendSYN(now)
	c.rtoAt = c.at(now) + tick(c.rto())
}

// synAcked records that our SYN was acknowledged: an RTT sample unless it
// was retransmitted (Karn), and a fresh retransmission state.
func (c *Conn) synAcked(now time.Time) {
	c.sndUna = c.iss.Add(1)
	if c.rttActive && c.retries == 0 {
		c.rtt.sample(c.sinceEpoch(now))
	}
	c.rttActive = false
	if c.retries > 0 && !c.rtt.has() {
		// RFC 6298 §5.7: the SYN was retransmitted and gave no sample;
		// data starts with an RTO of 3 s.
		c.rtt.raiseInitial(3 * time.Second)
	}
	c.backoff, c.retries = 0, 0
	c.rtoAt = 0
}

// negotiate applies the options of the peer's SYN (RFC 9293 §3.7.1, RFC 7323
// §2.2 and §3.2, RFC 2018 §2).
func (c *Conn) negotiate(seg *Segment) {
	o := &seg.Opts
	mss := 536
	if o.MSS != 0 {
		mss = int(o.MSS)
	}
	if o.HasWScale {
		c.wsOK = true
		c.sndWScale = o.WScale
	} else {
		c.wsOK = false
		c.sndWScale, c.rcvWScale = 0, 0
	}
	c.tsOK = o.HasTS
	if c.tsOK {
		c.tsRecent, c.tsRecentAt = o.TSVal, wholeSeconds(c.lastRcv)
	}
	c.sackHigh, c.lostFrom = c.iss, c.iss
	c.sackOK = o.SACKPermitted && !c.cfg.NoSACK
	opt := 0
	if c.tsOK {
		opt = 12
	}
	c.mss = max(min(mss, c.cfg.MSS)-opt, 64)
	if c.rare != nil {
		// A path MTU set before the SYN (SetPathMTU, or ICMP about it)
		// lowers the MSS now that the peer's is known.
		c.rare.pm.clamp = uint16(min(mss, c.cfg.MSS))
		c.syncMSS()
	}
	c.rcvMSS = int32(max(c.cfg.advMSS()-opt, 64))
	// The peer's sending MSS grows from 536 with what arrives (processData).
	c.ackMSS = uint16(min(c.rcvMSS, 536))
	c.cc = nil // made for this MSS when data is first sent (sendNext)
}

// establish enters ESTABLISHED (or FIN-WAIT-1 when a close was queued).
func (c *Conn) establish(now time.Time) {
	if c.state == SynReceived {
		c.leaveSynRcvd(true)
		c.stateAt = 0
	}
	c.state = Established
	if c.finQueued {
		c.state = FinWait1
	}
	c.events |= EvEstablished | EvWritable
	c.armKeepalive(now)
}

// sendRst emits <SEQ=seq><CTL=RST>.
func (c *Conn) sendRst(seq Seq) {
	s := newSegment()
	*s = Segment{SrcPort: c.lport, DstPort: c.rport, Seq: seq, Flags: FlagRST}
	c.xmit(s)
}

// processAck is the fifth step of RFC 9293 §3.10.7.4. It reports whether
// processing of the segment continues.
func (c *Conn) processAck(now time.Time, seg *Segment) bool {
	ack := seg.Ack
	if c.state == SynReceived {
		if ack.LessEq(c.sndUna) || ack.GreaterThan(c.sndMax) {
			c.sendRst(ack)
			return false
		}
		c.synAcked(now)
		c.establish(now)
	}
	if ack.GreaterThan(c.sndMax) {
		// Acks something not yet sent: ACK and drop (RFC 9293; RFC 5961 §5.2).
		c.ackNow = true
		c.output(now)
		return false
	}
	if ack.LessThan(c.sndUna.Add(-int(c.maxWnd))) {
		c.challengeAck(now) // too old (RFC 5961 §5.2)
		return false
	}
	wnd := uint32(seg.Wnd) << c.sndWScale
	// RFC 5681 §2's duplicate ACK.
	dup := ack == c.sndUna && len(seg.Payload) == 0 && seg.Flags&FlagFIN == 0 &&
		wnd == c.sndWnd && c.sndUna != c.sndMax
	if ack.GreaterThan(c.sndUna) || dup || (c.sackOK && seg.Opts.NumSACK > 0 && c.sndUna != c.sndMax) {
		c.onAck(now, seg, dup)
	}
	// Window update (RFC 9293 §3.10.7.4 fifth, SND.WL1/SND.WL2 rule).
	if c.sndWl1.LessThan(seg.Seq) || (c.sndWl1 == seg.Seq && c.sndWl2.LessEq(ack)) {
		edge := c.sndWl2.Add(int(c.sndWnd))
		c.sndWnd = wnd
		c.sndWl1, c.sndWl2 = seg.Seq, ack
		c.maxWnd = max(c.maxWnd, wnd)
		if wnd > 0 && c.persistAt() != 0 {
			c.setPersist(0)
			c.backoff = 0
		}
		c.windowMoved(now, edge, ack.Add(int(wnd)))
	}
	if c.sndUna == c.sndMax {
		c.retries = 0 // the peer is alive (answers probes, even with a zero window)
	}
	if c.finAcked {
		switch c.state {
		case FinWait1:
			c.state = FinWait2
			if c.orphan {
				c.stateAt = c.at(now) + tick(c.cfg.FinWait2Timeout)
			}
		case Closing:
			c.enterTimeWait(now)
		case LastAck:
			c.terminate(nil)
			return false
		}
	}
	return true
}

// onAck handles an ACK that acknowledges new data, carries SACK blocks, or
// is a duplicate (RFC 5681 §2): it frees the send buffer, samples the RTT,
// restarts the retransmission timer (RFC 6298 §5.2-5.3), updates the
// scoreboard, detects losses (RACK with SACK, RFC 8985; three duplicate
// ACKs and partial ACKs without, RFC 6582), enters or leaves recovery
// (RFC 6675 §5) and feeds the congestion control.
func (c *Conn) onAck(now time.Time, seg *Segment, dup bool) {
	ack := seg.Ack
	acked := int(ack.Sub(c.sndUna))
	flight := int(c.sndNxt.Sub(c.sndUna))
	hold := c.ecnHold(seg)
	if c.txq != &emptyTxQueue {
		c.txq.rack.fack = c.sackHigh
	}
	if acked > 0 {
		if ack.GreaterThan(c.sndBase) {
			d := min(int(ack.Sub(c.sndBase)), c.snd.len())
			c.snd.discard(d)
			c.snd.rewind()
			c.snd.releaseIfSmall(c.cfg.Budget)
			c.sndBase = c.sndBase.Add(d)
			c.events |= EvWritable
			if c.finQueued && ack.GreaterThan(c.sndBase.Add(c.snd.len())) {
				c.finAcked = true
			}
		}
		c.stats.BytesAcked += uint64(acked)
		rtt := c.ackRecords(now, ack)
		c.sndUna = ack
		if c.sndNxt.LessThan(ack) {
			c.sndNxt = ack
		}
		if c.sackHigh.LessThan(ack) {
			c.sackHigh = ack
		}
		if c.lostFrom.LessThan(ack) {
			c.lostFrom = ack
		}
		if rtt == 0 && c.tsOK && seg.Opts.HasTS && seg.Opts.TSEcr != 0 {
			// RFC 7323 §4.1: the echoed timestamp times the round trip,
			// also of retransmitted data.
			rtt = time.Duration(int32(c.tsNow(now)-seg.Opts.TSEcr)) * time.Millisecond
		}
		if rtt > 0 && rtt < c.cfg.MaxRTO {
			c.rtt.sample(rtt)
		}
		c.backoff, c.retries, c.rtoHeld = 0, 0, 0
		if c.probing {
			c.probeAcked(ack)
		}
		if c.sndUna == c.sndMax {
			c.rtoAt = 0
		} else {
			c.rtoAt = c.at(now) + tick(c.rto())
		}
		if c.tlpOut && ack.GreaterEq(c.tlpHigh) {
			c.tlpOut = false
		}
		if c.inLoss && ack.GreaterEq(c.recover) {
			c.inLoss = false
		}
	}
	if c.sackOK {
		c.onSACK(now, &seg.Opts)
		if c.sackedBytes > 0 {
			c.rackDetect(now)
		} else {
			c.rackAt = 0
		}
	} else {
		c.renoLoss(now, acked, dup)
	}
	switch {
	case c.inRecovery && acked > 0 && ack.GreaterEq(c.recover):
		c.inRecovery = false
		c.dupAcks, c.renoSacked = 0, 0
		c.cc.OnRecoveryEnd(now, int(c.sndNxt.Sub(ack)))
		c.rackRecoveryDone()
	case !c.maybeEnterRecovery(now) && acked > 0 && !c.inRecovery && !hold:
		// RFC 7661 §4.3 (as Linux's tcp_is_cwnd_limited): grow cwnd only
		// when it limits the sender, or in slow start when the flight
		// filled half of it.
		cw := c.cc.Cwnd()
		if c.cwndLimited || (cw < c.cc.Ssthresh() && 2*flight >= cw) {
			c.cc.OnAck(now, acked, flight, c.rtt.srtt)
		}
		c.growSendBuf()
	}
	c.ecnAck(now, seg, flight)
	if acked > 0 {
		c.armPTO(now)
	}
	c.bbrAckDone(now)
	if c.txq.n == 0 {
		c.releaseTxq() // all acknowledged: the scoreboard goes back to the pool
	}
}

// renoLoss is loss detection without SACK (RFC 5681 §3.2, RFC 6582): each
// duplicate ACK counts a segment as having left the network (so limited
// transmit, RFC 3042, falls out of the pipe), the third marks the first
// unacknowledged segment lost unless it belongs to a flight already
// recovered, and a partial ACK in recovery marks the next one lost.
func (c *Conn) renoLoss(now time.Time, acked int, dup bool) {
	if dup {
		c.rareStats().DupAcks++
		c.dupAcks++
		c.renoSacked = int32(min(int(c.renoSacked)+c.mss, max(int(c.sndNxt.Sub(c.sndUna))-c.mss, 0)))
		if !c.inRecovery && c.dupAcks == 3 && c.sndUna.GreaterEq(c.recover) && c.txq.n > 0 {
			c.markLost(c.txq.at(0))
			c.lostFrom = c.sndUna
		}
		return
	}
	if acked <= 0 {
		return
	}
	if !c.inRecovery {
		c.dupAcks, c.renoSacked = 0, 0
		return
	}
	c.renoSacked = int32(max(int(c.renoSacked)-max(acked-c.mss, 0), 0))
	if c.sndUna.LessThan(c.recover) && c.txq.n > 0 {
		c.markLost(c.txq.at(0)) // RFC 6582 §3.2 step 5: retransmit the first unacknowledged segment
		c.lostFrom = c.sndUna
	}
}

// maybeEnterRecovery starts fast recovery once a segment is deemed lost
// outside recovery and outside the aftermath of a timeout (RFC 6675 §5
// step 4): ssthresh and cwnd drop, RecoveryPoint is SND.NXT.
func (c *Conn) maybeEnterRecovery(now time.Time) bool {
	if c.inRecovery || c.inLoss || c.lostBytes <= 0 {
		return false
	}
	c.rareStats().FastRetransmits++
	c.inRecovery = true
	c.recover = c.sndNxt
	c.cc.OnRecoveryStart(now, int(c.sndNxt.Sub(c.sndUna)))
	c.ecnWindowReduced()
	c.ptoAt = 0
	return true
}

// processData is the seventh and eighth steps of RFC 9293 §3.10.7.4: queue
// the text in order, hold what arrives out of order within the window, trim
// duplicates and overlaps, and act on the FIN.
func (c *Conn) processData(now time.Time, seg *Segment) {
	switch c.state {
	case Established, FinWait1, FinWait2:
	default:
		return // CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: the peer has sent its FIN
	}
	payload := seg.Payload
	seq := seg.Seq
	fin := seg.Flags&FlagFIN != 0
	if n := len(payload); n > int(c.ackMSS) {
		// The peer's sending MSS, as Linux's icsk_ack.rcv_mss estimates
		// it: the largest segment seen, at most the MSS we advertised (a
		// segment the link coalesced counts as one of those), and at
		// least RFC 9293 §3.7.1's default of 536 (where ours allows).
		c.ackMSS = uint16(min(n, int(c.rcvMSS)))
	}
	finSeq := seq.Add(len(payload))
	dup := false
	if d := int(c.rcvNxt.Sub(seq)); d > 0 {
		if len(payload) > 0 {
			// RFC 2883 §4 (as Linux's tcp_data_queue): the part below
			// RCV.NXT is a duplicate, reported as such.
			c.reportDup(seq, seq.Add(min(d, len(payload))))
			dup = true
		}
		payload = payload[min(d, len(payload)):]
		seq = c.rcvNxt
	}
	if fin && finSeq.LessThan(c.rcvNxt) {
		fin = false // a duplicate
	}
	if len(payload) == 0 && !fin {
		return
	}
	if c.orphan && len(payload) > 0 {
		// Data for a closed socket: Linux resets (tcp_rcv_state_process).
		c.Abort(now)
		return
	}
	if !dup && len(payload) > 0 && c.ooo != nil && c.ooo.n > 0 {
		// RFC 2883 §4: so is what repeats data held out of order; the
		// range holding it, changed last, becomes the next SACK block.
		if b, ok := c.ooo.held(seq, seq.Add(len(payload))); ok {
			c.reportDup(b.Left, b.Right)
		}
	}
	off := int(seq.Sub(c.rcvNxt))
	free := int(c.rcvBuf) - c.rcv.len()
	if off+len(payload) > free {
		payload = payload[:max(free-off, 0)]
		fin = false
		c.ackNow = true // data beyond the window was dropped: tell the sender
		c.rareStats().DropWindow++
	}
	if len(payload) > 0 && !c.readClosed {
		if room := c.rcvReserve(off + len(payload)); off+len(payload) > room {
			// Memory pressure (budget.go): what the ring cannot hold is
			// dropped, though within the window, as Linux drops when it
			// cannot charge the memory (TCPRcvQDrop); the sender
			// retransmits it.
			payload = payload[:max(room-off, 0)]
			fin = false
			c.ackNow, c.rcvNoMem = true, true
			c.rareStats().DropMemory++
			c.cfg.Budget.drops.Add(1) // only a budget makes room short
		}
	}
	if len(payload) > 0 {
		if off == 0 {
			if !c.readClosed {
				c.rcv.write(payload)
				c.events |= EvReadable
			}
			c.rcvNxt = c.rcvNxt.Add(len(payload))
			c.stats.BytesReceived += uint64(len(payload))
			if c.ooo != nil && c.ooo.n > 0 {
				nxt := c.ooo.advance(c.rcvNxt)
				if !c.readClosed {
					c.rcv.n += int32(nxt.Sub(c.rcvNxt))
				}
				c.stats.BytesReceived += uint64(nxt.Sub(c.rcvNxt))
				c.rcvNxt = nxt
				c.ackNow = true // RFC 5681 §4.2: ACK at once when filling a gap
			}
		} else {
			if !c.readClosed {
				if c.ooo == nil {
					c.ooo = new(oooList)
				}
				if c.ooo.insert(seq, seq.Add(len(payload)), c.oooLimit()) {
					c.rcv.writeAt(c.rcv.len()+off, payload)
					c.rareStats().OutOfOrder++
				} else {
					c.rareStats().DropOOOFull++
				}
			}
			c.ackNow = true // RFC 5681 §4.2: ACK out-of-order data at once
		}
	}
	if fin {
		c.rcvFinWait, c.rareState().rcvFinSeq = true, finSeq
	}
	if c.rcvFinWait && c.rcvNxt == c.rare.rcvFinSeq {
		c.consumeFin(now)
	}
	// Delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2): at least every
	// second full-sized segment, of the peer's MSS, otherwise within
	// DelayedAck.
	if unacked := c.rcvNxt.Sub(c.rcvAckSent); int(unacked) >= 2*int(c.ackMSS) {
		c.ackNow = true
	} else if unacked > 0 && !c.ackNow && c.delackAt == 0 {
		c.delackAt = c.at(now) + tick(c.cfg.DelayedAck)
	}
}

// consumeFin processes the peer's FIN once all data before it is in.
func (c *Conn) consumeFin(now time.Time) {
	c.rcvNxt = c.rcvNxt.Add(1)
	c.rcvFin = true
	c.rcvFinWait = false
	c.ackNow = true
	c.events |= EvReadable
	switch c.state {
	case Established:
		c.state = CloseWait
	case FinWait1:
		if c.finAcked {
			c.enterTimeWait(now)
		} else {
			c.state = Closing
		}
	case FinWait2:
		c.enterTimeWait(now)
	}
}

// enterTimeWait enters TIME-WAIT for 2·MSL (RFC 9293 §3.6.1).
func (c *Conn) enterTimeWait(now time.Time) {
	c.state = TimeWait
	c.rtoAt, c.keepaliveAt = 0, 0
	c.setPersist(0)
	c.ptoAt, c.rackAt = 0, 0
	c.stateAt = c.at(now) + tick(c.cfg.TimeWait)
	c.freeBuffers()
}
