package tcp

import "time"

// newSeg returns a segment (see newSegment) with what every segment we
// send carries: ports, SEQ=SND.NXT (our sndMax), ACK=RCV.NXT, the window, timestamps and
// SACK blocks. Sending an ACK settles any pending acknowledgment.
func (c *Conn) newSeg(flags Flags) *Segment {
	s := newSegment()
	*s = Segment{
		SrcPort: c.lport,
		DstPort: c.rport,
		Seq:     c.sndMax, // SND.NXT as the peer knows it, also after a go-back-N
		Flags:   flags,
	}
	if flags&FlagACK != 0 {
		s.Ack = c.rcvNxt
		if flags&FlagRST == 0 {
			s.Wnd = c.advertise()
			if c.ecn&ecnEcho != 0 {
				s.Flags |= FlagECE // RFC 3168 §6.1.3: until CWR arrives
			}
		}
		c.ackNow = false
		c.delackAt = 0
		c.rcvAckSent = c.rcvNxt
		if c.sackOK {
			c.fillSACK(&s.Opts)
		}
		if c.hasDSACK {
			// RFC 2883 §4: the D-SACK block goes first, once.
			c.hasDSACK = false
			o := &s.Opts
			o.NumSACK = min(o.NumSACK, len(o.SACK)-1)
			copy(o.SACK[1:], o.SACK[:o.NumSACK])
			o.SACK[0] = c.rare.dsack
			o.NumSACK++
		}
	}
	if c.tsOK && flags&FlagRST == 0 {
		s.Opts.HasTS = true
		s.Opts.TSEcr = c.tsRecent
	}
	return s
}

// tsNow returns our timestamp clock (RFC 7323 §5.4): milliseconds, offset
// per connection so as not to reveal uptime.
func (c *Conn) tsNow(now time.Time) uint32 { return uint32(now.UnixMilli()) + tsOffsetFor(c.iss) }

// tsVal returns the TSVal to send. It never goes back: callers on several
// goroutines read the clock before taking the connection's lock, so a later
// call may carry an earlier time, and a segment whose TSVal is below one
// already sent is dropped by the peer's PAWS check (RFC 7323 §5.3).
func (c *Conn) tsVal(now time.Time) uint32 {
	v := c.tsNow(now)
	if c.tsLast != 0 && int32(v-c.tsLast) < 0 {
		v = c.tsLast
	}
	c.tsLast = v
	return v
}

// advertise returns the window field to send and records the right edge it
// advertises. The window is the free receive buffer (RFC 9293 §3.8.6.2.2),
// opened only in steps of min(RCV.BUFF/2, MSS) to avoid the silly window
// syndrome, and never shrunk (RFC 9293 §3.8.6: "strongly discouraged").
// Under memory pressure the buffer is what the ring holds (rcvRoom), so
// the window opens no further than the memory we have.
//
// The one exception is memory: once data within the window had to be
// dropped because the budget could not hold it, the window announced is
// what the ring has free, below the edge promised before (Linux closes its
// window then too, since 6.4: ICSK_ACK_NOMEM), so the sender stops and
// waits for the window update that reading sends (maybeWindowUpdate)
// rather than retransmitting into a full buffer with its retransmission
// timer backing off. The promised edge (rcvAdv) still bounds what is
// acceptable, so the peer's ACKs and probes beyond the announced edge are
// taken, not answered with an ACK (two such peers would otherwise trade
// ACKs for ever). Announcing returns to normal when the ring, or the
// budget, can hold the promise again.
func (c *Conn) advertise() uint16 {
	if c.rcvNoMem {
		need := c.rcv.len() + int(max(c.rcvAdv.Sub(c.rcvNxt), 0))
		if len(c.rcv.buf) < need && c.cfg.Budget.room(len(c.rcv.buf), need) < need {
			w := min(uint32(len(c.rcv.buf)-c.rcv.len())>>c.rcvWScale, 65535)
			c.rareState().rcvAnn = c.rcvNxt.Add(int(w << c.rcvWScale))
			return uint16(w)
		}
		c.rcvNoMem = false // the ring holds the promise, or the budget has it again
	}
	room := c.rcvRoom()
	edge := c.rcvNxt.Add(room - c.rcv.len())
	if c.rcvAdv.GreaterEq(c.rcvNxt) {
		if edge.Sub(c.rcvAdv) < int32(min(room/2, int(c.rcvMSS))) {
			edge = MaxSeq(c.rcvAdv, c.rcvNxt)
		}
	}
	w := uint32(edge.Sub(c.rcvNxt)) >> c.rcvWScale
	w = min(w, 65535)
	c.rcvAdv = c.rcvNxt.Add(int(w << c.rcvWScale))
	return uint16(w)
}

// sendSYN emits our SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) with the
// options of RFC 9293 §3.7.1 and RFC 7323; the window in a SYN is never
// scaled (RFC 7323 §2.2).
func (c *Conn) sendSYN(now time.Time) {
	s := newSegment()
	*s = Segment{SrcPort: c.lport, DstPort: c.rport, Seq: c.iss, Flags: FlagSYN | c.synECNFlags()}
	s.Wnd = c.synWnd()
	s.Opts.MSS = uint16(c.cfg.advMSS())
	if c.state == SynSent {
		s.Opts.HasWScale, s.Opts.WScale = true, c.rcvWScale
		s.Opts.HasTS, s.Opts.TSVal = true, c.tsVal(now)
		s.Opts.SACKPermitted = !c.cfg.NoSACK
	} else {
		s.Flags |= FlagACK
		s.Ack = c.rcvNxt
		if c.wsOK {
			s.Opts.HasWScale, s.Opts.WScale = true, c.rcvWScale
		}
		if c.tsOK {
			s.Opts.HasTS, s.Opts.TSVal, s.Opts.TSEcr = true, c.tsVal(now), c.tsRecent
		}
		s.Opts.SACKPermitted = c.sackOK
		c.rcvAdv = c.rcvNxt.Add(int(s.Wnd))
		c.rcvAckSent = c.rcvNxt
	}
	c.xmit(s)
}

// synWnd returns the window of our SYN or SYN-ACK.
func (c *Conn) synWnd() uint16 { return uint16(min(c.rcvRoom(), 65535)) }

// sendAck emits a bare ACK.
func (c *Conn) sendAck(now time.Time) {
	s := c.newSeg(FlagACK)
	if c.tsOK {
		s.Opts.TSVal = c.tsVal(now)
	}
	c.xmit(s)
}

// sendProbe emits a segment the peer must answer with an ACK: SEQ=SND.UNA-1
// and no data, as Linux's zero-window and keepalive probes (RFC 9293
// §3.8.4: "an old sequence number").
func (c *Conn) sendProbe(now time.Time) {
	c.rareStats().Probes++
	s := c.newSeg(FlagACK)
	s.Seq = c.sndUna.Add(-1)
	if c.tsOK {
		s.Opts.TSVal = c.tsVal(now)
	}
	c.xmit(s)
}

// sendData emits the segment [seq, seq+n) of the send buffer, with FIN if
// fin, and arms the retransmission timer (RFC 6298 §5.1).
func (c *Conn) sendData(now time.Time, seq Seq, n int, fin bool) {
	s := c.newSeg(FlagACK)
	s.Seq = seq
	s.Retrans = seq.LessThan(c.sndMax)
	if c.tsOK {
		s.Opts.TSVal = c.tsVal(now)
	}
	if n > 0 {
		a, b := c.snd.peek(int(seq.Sub(c.sndBase)), n)
		if len(b) == 0 {
			s.Payload = a
		} else {
			buf := scratchPool.Get().(*[]byte)
			defer scratchPool.Put(buf)
			if len(*buf) < n {
				*buf = make([]byte, max(n, c.mss))
			}
			k := copy(*buf, a)
			copy((*buf)[k:], b)
			s.Payload = (*buf)[:n]
		}
		if seq.Add(n) == c.sndBase.Add(c.snd.len()) {
			s.Flags |= FlagPSH
		}
	}
	if fin {
		s.Flags |= FlagFIN
	}
	// The peer's MSS bounds options and payload together: c.mss left room
	// for the timestamps, not for SACK blocks. New data is cut shorter to
	// leave room for them (sendNext); a retransmission keeps its size and
	// carries fewer blocks instead, rather than exceed the path MTU.
	budget := c.mss
	if c.tsOK {
		budget += 12
	}
	for s.Opts.NumSACK > 0 && s.Opts.Len()+n > budget {
		s.Opts.NumSACK-- // the last blocks are the oldest news
	}
	c.markECN(s, n)
	c.xmit(s)
	if c.rtoAt == 0 {
		c.rtoAt = c.at(now) + tick(c.rto())
	}
	c.setPersist(0)
}

// retransmit sends a record again (fast retransmit, RFC 5681 §3.2; RFC 6675
// §5 step 4; a RACK loss; the RTO's go-back) without moving SND.NXT.
func (c *Conn) retransmit(now time.Time, r *txSeg) {
	dataEnd := c.sndBase.Add(c.snd.len())
	n := int(MinSeq(r.end, dataEnd).Sub(r.start))
	if n > c.mss {
		// Sent before the MSS dropped (pmtu.go), or a PLPMTUD probe:
		// it goes again cut to the MSS.
		start := r.start
		c.resegment(c.mss)
		r = c.txq.at(c.txq.find(start))
		n = int(MinSeq(r.end, dataEnd).Sub(r.start))
	}
	fin := r.end.GreaterThan(dataEnd)
	prev := r.sent
	c.sendData(now, r.start, max(n, 0), fin)
	if r.flags&txLost != 0 {
		c.lostBytes -= int32(r.len())
	}
	r.flags = r.flags&^txLost | txRetrans
	r.sent = c.sinceEpoch(now)
	c.bbrSent(now, r.start, r.end, true, prev)
	if r.end.GreaterThan(c.lostFrom) {
		c.lostFrom = r.end
	}
	c.rareStats().Retransmits++
	c.rareStats().BytesRetrans += uint64(max(n, 0))
}

// output sends what the send buffer, the peer's window and the congestion
// window allow (RFC 9293 §3.8.6.2.1, RFC 5681): first the segments deemed
// lost, then new data, while the pipe (RFC 6675 §4) is below cwnd. Then a
// pending ACK if no segment carried it, and the persist timer when the
// peer's window holds data back.
func (c *Conn) output(now time.Time) {
	switch c.state {
	case Established, CloseWait, FinWait1, Closing, LastAck:
	case FinWait2, TimeWait, SynReceived:
		if c.ackNow {
			c.sendAck(now)
		}
		return
	default:
		return
	}
	if c.sndUna == c.sndNxt && c.lastSend != 0 && c.sinceEpoch(now)-c.lastSend > c.rto() {
		// RFC 7661 §4.4 / RFC 5681 §4.1: after an idle period the
		// congestion window no longer reflects the path.
		c.cc.OnIdle(now, c.sinceEpoch(now)-c.lastSend, c.rto())
		c.lastSend = c.sinceEpoch(now)
	}
	sent, fresh := false, false
	for segs := 0; ; segs++ {
		if c.linkHolds(segs) {
			break
		}
		if r := c.nextLost(); r != nil {
			if c.pipe()+r.len() > c.cc.Cwnd() && c.pipe() > 0 || c.bbrPaceHold(now) {
				break
			}
			c.retransmit(now, r)
			sent = true
			continue
		}
		if !c.sendNext(now, sendNormal) {
			break
		}
		sent, fresh = true, true
	}
	if fresh && c.ptoAt == 0 {
		c.armPTO(now)
	}
	if c.ackNow && !sent {
		c.sendAck(now)
	}
	if c.sndNxt == c.sndUna && c.rtoAt == 0 && c.persistAt() == 0 && c.sndNxt.LessThan(c.sndBase.Add(c.snd.len())) {
		// RFC 9293 §3.8.6.1 zero-window probing, and the SWS override
		// timer of §3.8.6.2.1 when the window is open but too small.
		c.setPersist(c.at(now) + tick(c.rto()))
	}
}

// linkHolds reports whether a link whose queue the shell sees
// (Config.LinkFull) holds output back, segs segments having been sent in
// this call: while the queue is full, and after a super-segment's worth
// (MaxSuperSegs), so that a connection puts at most that much below it at
// a time, as Linux's TCP small queues bound what a socket has in the
// device queues. It raises EvHeld, for the shell to call Resume when the
// link has room.
func (c *Conn) linkHolds(segs int) bool {
	f := c.cfg.LinkFull
	if f == nil || (segs < MaxSuperSegs && !f.Load()) {
		return false
	}
	c.events |= EvHeld
	return true
}

// maxRTOHeld bounds the retransmission timeouts in a row that onRTO puts
// off while the link's queues hold frames.
const maxRTOHeld = 2

// linkQueued reports whether frames wait in the queues of a link that
// holds rather than drops (Config.LinkQueued).
func (c *Conn) linkQueued() bool {
	q := c.cfg.LinkQueued
	return q != nil && q()
}

// Resume sends what the link held back (EvHeld), now that it has room.
func (c *Conn) Resume(now time.Time) { c.output(now) }

// How sendNext may send.
type sendMode uint8

const (
	sendNormal sendMode = iota // windows, SWS avoidance and Nagle
	sendForce                  // the persist timer: no SWS avoidance, no Nagle
	sendProbe                  // a tail loss probe: the peer's window only
)

// sendNext sends the next segment of new data at SND.NXT if the windows and
// the sender side SWS avoidance (RFC 9293 §3.8.6.2.1) with Nagle (RFC 896)
// allow. It reports whether it sent.
// fillSACK puts the SACK blocks for the data held out of order into o
// (RFC 2018 §4). A FIN held out of order counts as one more sequence
// number at the end of its block, as Linux reports it, so the sender
// learns that the FIN arrived and need not resend it.
func (c *Conn) fillSACK(o *Options) {
	o.NumSACK = 0
	if c.ooo != nil && c.ooo.n > 0 {
		c.ooo.sackBlocks(o)
	}
	if !c.rcvFinWait {
		return
	}
	for i := 0; i < o.NumSACK; i++ {
		if fin := c.rare.rcvFinSeq; o.SACK[i].Right == fin {
			o.SACK[i].Right = fin.Add(1)
			return
		}
	}
	if o.NumSACK < len(o.SACK) {
		copy(o.SACK[1:], o.SACK[:o.NumSACK])
		o.SACK[0] = SACKBlock{c.rare.rcvFinSeq, c.rare.rcvFinSeq.Add(1)}
		o.NumSACK++
	}
}

// sackOptLen returns the bytes SACK blocks would add to a segment now.
func (c *Conn) sackOptLen() int {
	if !c.sackOK || ((c.ooo == nil || c.ooo.n == 0) && !c.hasDSACK && !c.rcvFinWait) {
		return 0
	}
	o := Options{HasTS: c.tsOK}
	base := o.Len()
	c.fillSACK(&o)
	if c.hasDSACK && o.NumSACK < len(o.SACK) {
		o.NumSACK++
	}
	return o.Len() - base
}

func (c *Conn) sendNext(now time.Time, mode sendMode) bool {
	dataEnd := c.sndBase.Add(c.snd.len())
	if c.sndNxt.GreaterThan(dataEnd) {
		return false // FIN sent
	}
	left := int(dataEnd.Sub(c.sndNxt))
	if left == 0 && !c.finQueued {
		if mode != sendProbe {
			c.cwndLimited = false
			c.bbrAppLimited()
		}
		return false
	}
	if c.cc == nil {
		// The congestion control exists once the connection sends: an
		// idle connection that never did holds none.
		c.cc = c.makeCC()
	}
	avail := int(c.sndUna.Add(int(c.sndWnd)).Sub(c.sndNxt))
	wndRoom, room := avail, c.cc.Cwnd()-c.pipe()
	if mode != sendProbe {
		if room < avail {
			avail = room
			c.cwndLimited = left > 0 && room < c.mss
		} else {
			c.cwndLimited = false
		}
	}
	// RFC 9293 §3.7.1 (and Linux's tcp_current_mss): options other than
	// the timestamps come out of the payload, so a segment carrying SACK
	// blocks carries that much less data.
	mss := c.mss - c.sackOptLen()
	n := min(left, mss)
	probe := false
	if c.probing && mode == sendNormal {
		switch p := c.probeMSS(now, left, wndRoom, room); {
		case p < 0:
			return false // hold the data for the probe until an ACK makes room
		case p > 0:
			n, probe = p, true // RFC 4821 §7.3: a probe larger than the MSS
		}
	}
	if n > avail {
		n = max(avail, 0)
		if mode == sendForce && n == 0 && avail <= 0 && c.sndWnd > 0 {
			n = min(left, 1)
		}
	}
	fin := c.finQueued && c.sndNxt.Add(n) == dataEnd
	if n == 0 && !fin {
		return false
	}
	if n > 0 && n < mss && mode == sendNormal {
		all := c.sndNxt.Add(n) == dataEnd
		ok := all && (!c.nagle || c.sndNxt == c.sndUna)
		if !ok && n >= int(c.maxWnd/2) && c.maxWnd > 0 {
			ok = true
		}
		if !ok {
			return false
		}
	}
	if mode == sendNormal && c.bbrPaceHold(now) {
		return false // pacing: the deadline wakes the sender (bbrPaceDeadline)
	}
	c.sendData(now, c.sndNxt, n, fin)
	if probe {
		c.probeSent(c.sndNxt, n)
	}
	end := c.sndNxt.Add(n)
	if fin {
		end = end.Add(1)
	}
	t := c.sinceEpoch(now)
	c.pushRecord(txSeg{start: c.sndNxt, end: end, sent: t})
	c.bbrSent(now, c.sndNxt, end, false, 0)
	c.lastSend = t
	c.stats.BytesSent += uint64(n)
	c.sndNxt = end
	if c.sndNxt.GreaterThan(c.sndMax) {
		c.sndMax = c.sndNxt
	}
	return true
}
