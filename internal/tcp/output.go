package tcp

import "time"

// newSeg fills the connection's scratch segment with what every segment we
// send carries: ports, SEQ=SND.NXT (our sndMax), ACK=RCV.NXT, the window, timestamps and
// SACK blocks. Sending an ACK settles any pending acknowledgment.
func (c *Conn) newSeg(flags Flags) *Segment {
	s := &c.seg
	*s = Segment{
		SrcPort: c.local.Port(),
		DstPort: c.remote.Port(),
		Seq:     c.sndMax, // SND.NXT as the peer knows it, also after a go-back-N
		Flags:   flags,
	}
	if flags&FlagACK != 0 {
		s.Ack = c.rcvNxt
		if flags&FlagRST == 0 {
			s.Wnd = c.advertise()
		}
		c.ackNow = false
		c.delackAt = time.Time{}
		c.rcvUnacked = 0
		if c.sackOK && c.ooo != nil && c.ooo.n > 0 {
			c.ooo.sackBlocks(&s.Opts)
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
func (c *Conn) tsNow(now time.Time) uint32 { return uint32(now.UnixMilli()) + c.tsOffset }

// advertise returns the window field to send and records the right edge it
// advertises. The window is the free receive buffer (RFC 9293 §3.8.6.2.2),
// opened only in steps of min(RCV.BUFF/2, MSS) to avoid the silly window
// syndrome, and never shrunk (RFC 9293 §3.8.6: "strongly discouraged").
func (c *Conn) advertise() uint16 {
	free := c.cfg.RecvBuf - c.rcv.n
	edge := c.rcvNxt.Add(free)
	if c.rcvAdv.GreaterEq(c.rcvNxt) {
		if edge.Sub(c.rcvAdv) < int32(min(c.cfg.RecvBuf/2, c.rcvMSS)) {
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
	s := &c.seg
	*s = Segment{SrcPort: c.local.Port(), DstPort: c.remote.Port(), Seq: c.iss, Flags: FlagSYN}
	s.Wnd = uint16(min(c.cfg.RecvBuf, 65535))
	s.Opts.MSS = uint16(c.cfg.MSS)
	if c.state == SynSent {
		s.Opts.HasWScale, s.Opts.WScale = true, c.rcvWScale
		s.Opts.HasTS, s.Opts.TSVal = true, c.tsNow(now)
		s.Opts.SACKPermitted = c.cfg.SACK
	} else {
		s.Flags |= FlagACK
		s.Ack = c.rcvNxt
		if c.wsOK {
			s.Opts.HasWScale, s.Opts.WScale = true, c.rcvWScale
		}
		if c.tsOK {
			s.Opts.HasTS, s.Opts.TSVal, s.Opts.TSEcr = true, c.tsNow(now), c.tsRecent
		}
		s.Opts.SACKPermitted = c.sackOK
		c.rcvAdv = c.rcvNxt.Add(int(s.Wnd))
	}
	c.xmit(s)
}

// sendAck emits a bare ACK.
func (c *Conn) sendAck(now time.Time) {
	s := c.newSeg(FlagACK)
	if c.tsOK {
		s.Opts.TSVal = c.tsNow(now)
	}
	c.xmit(s)
}

// sendProbe emits a segment the peer must answer with an ACK: SEQ=SND.UNA-1
// and no data, as Linux's zero-window and keepalive probes (RFC 9293
// §3.8.4: "an old sequence number").
func (c *Conn) sendProbe(now time.Time) {
	c.stats.Probes++
	s := c.newSeg(FlagACK)
	s.Seq = c.sndUna.Add(-1)
	if c.tsOK {
		s.Opts.TSVal = c.tsNow(now)
	}
	c.xmit(s)
}

// sendData emits the segment [seq, seq+n) of the send buffer, with FIN if
// fin, and keeps the RTT sample and the retransmission timer.
func (c *Conn) sendData(now time.Time, seq Seq, n int, fin bool) {
	s := c.newSeg(FlagACK)
	s.Seq = seq
	if c.tsOK {
		s.Opts.TSVal = c.tsNow(now)
	}
	if n > 0 {
		a, b := c.snd.peek(int(seq.Sub(c.sndBase)), n)
		if len(b) == 0 {
			s.Payload = a
		} else {
			if len(c.scratch) < c.mss {
				c.scratch = make([]byte, c.mss)
			}
			k := copy(c.scratch, a)
			copy(c.scratch[k:], b)
			s.Payload = c.scratch[:n]
		}
		if seq.Add(n) == c.sndBase.Add(c.snd.n) {
			s.Flags |= FlagPSH
		}
	}
	if fin {
		s.Flags |= FlagFIN
	}
	c.xmit(s)
	end := seq.Add(n)
	if fin {
		end = end.Add(1)
	}
	if seq.LessThan(c.sndMax) {
		c.stats.Retransmits++
		c.rttActive = false // Karn's rule: no sample from retransmitted data (RFC 6298 §3)
	} else if !c.rttActive {
		c.rttActive, c.rttSeq, c.rttStart = true, end, now
	}
	if c.rtoAt.IsZero() {
		c.rtoAt = now.Add(c.rto()) // RFC 6298 §5.1
	}
	c.persistAt = time.Time{}
}

// output sends what the send buffer, the peer's window and the congestion
// window allow (RFC 9293 §3.8.6.2.1, RFC 5681), then a pending ACK if no
// segment carried it, and arms the persist timer when the peer's window
// holds data back.
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
	sent := false
	for c.sendNext(now, false) {
		sent = true
	}
	if c.ackNow && !sent {
		c.sendAck(now)
	}
	if c.sndNxt == c.sndUna && c.rtoAt.IsZero() && c.persistAt.IsZero() && c.sndNxt.LessThan(c.sndBase.Add(c.snd.n)) {
		// RFC 9293 §3.8.6.1 zero-window probing, and the SWS override
		// timer of §3.8.6.2.1 when the window is open but too small.
		c.persistAt = now.Add(c.rto())
	}
}

// sendNext sends the next segment at SND.NXT if the windows and the sender
// side SWS avoidance (RFC 9293 §3.8.6.2.1) with Nagle (RFC 896) allow; force
// skips SWS and Nagle, for the persist timer. It reports whether it sent.
func (c *Conn) sendNext(now time.Time, force bool) bool {
	dataEnd := c.sndBase.Add(c.snd.n)
	if c.sndNxt.GreaterThan(dataEnd) {
		return false // FIN sent
	}
	wnd := min(c.sndWnd, uint32(c.cc.Cwnd()))
	avail := int(c.sndUna.Add(int(wnd)).Sub(c.sndNxt))
	n := min(int(dataEnd.Sub(c.sndNxt)), c.mss)
	if n > avail {
		n = max(avail, 0)
		if force && n == 0 && avail <= 0 && c.sndWnd > 0 {
			n = min(int(dataEnd.Sub(c.sndNxt)), 1)
		}
	}
	fin := c.finQueued && c.sndNxt.Add(n) == dataEnd
	if n == 0 && !fin {
		return false
	}
	if n > 0 && n < c.mss && !force {
		all := c.sndNxt.Add(n) == dataEnd
		ok := all && (!c.cfg.Nagle || c.sndNxt == c.sndUna)
		if !ok && n >= int(c.maxWnd/2) && c.maxWnd > 0 {
			ok = true
		}
		if !ok {
			return false
		}
	}
	c.sendData(now, c.sndNxt, n, fin)
	c.sndNxt = c.sndNxt.Add(n)
	if fin {
		c.sndNxt = c.sndNxt.Add(1)
	}
	if c.sndNxt.GreaterThan(c.sndMax) {
		c.sndMax = c.sndNxt
	}
	return true
}

// retransmitFirst resends the first unacknowledged segment without moving
// SND.NXT (fast retransmit, RFC 5681 §3.2; partial ACKs, RFC 6582 §3.2).
func (c *Conn) retransmitFirst(now time.Time) {
	dataEnd := c.sndBase.Add(c.snd.n)
	n := max(min(int(dataEnd.Sub(c.sndUna)), c.mss), 0)
	fin := c.finQueued && c.sndUna.Add(n) == dataEnd && c.sndMax.GreaterThan(dataEnd)
	if n == 0 && !fin {
		return
	}
	c.sendData(now, c.sndUna, n, fin)
}
