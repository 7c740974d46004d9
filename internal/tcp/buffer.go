package tcp

import "time"

// Buffer memory: the rings are allocated when data first flows, start at
// minRing and double as data needs (never past the largest the buffers may
// become), holding what the current buffer sizes allow, which autotuning
// raises with the measured bandwidth-delay product (receive
// side: Linux's tcp_rcv_space_adjust, "dynamic right-sizing"; send side:
// tcp_sndbuf_expand). Connections in TIME-WAIT or CLOSED hold no rings.
// A Budget shared by the connections (Config.Budget) bounds the sum of
// the rings (budget.go).

// rcvReserve makes the receive ring hold end octets past RCV.NXT, keeping
// the queued data and the out-of-order data beyond it, and returns how
// many octets past RCV.NXT it holds: fewer than end when the budget
// refused the memory.
func (c *Conn) rcvReserve(end int) int {
	ext := 0
	if c.ooo != nil && c.ooo.n > 0 {
		ext = int(c.ooo.lastEnd().Sub(c.rcvNxt))
	}
	if !c.rcv.reserve(c.cfg.Budget, c.rcv.len()+max(end, ext), c.rcv.len()+ext, int(c.rcvBufMax)) {
		c.budgetHit()
	}
	return len(c.rcv.buf) - c.rcv.len()
}

// rcvRoom returns the receive buffer the window may offer: rcvBuf, or
// under memory pressure what the ring already holds (Linux clamps the
// window to the memory it has then, tcp_clamp_window).
func (c *Conn) rcvRoom() int { return c.cfg.Budget.room(len(c.rcv.buf), int(c.rcvBuf)) }

// shrinkRings releases ring memory beyond the buffer sizes once nothing
// sits there; rings reallocate lazily.
func (c *Conn) shrinkRings() {
	if len(c.snd.buf) > int(c.sndBuf) && c.snd.len() == 0 {
		c.snd.release(c.cfg.Budget)
	}
	if len(c.rcv.buf) > int(c.rcvBuf) && c.rcv.len() == 0 && (c.ooo == nil || c.ooo.n == 0) {
		c.rcv.release(c.cfg.Budget)
	}
}

// freeBuffers drops what a connection that will send nothing more needs:
// the send ring, the scoreboard, the out-of-order list, the autotuning
// state, and the receive ring once it is read.
func (c *Conn) freeBuffers() {
	c.snd.release(c.cfg.Budget)
	c.releaseTxq()
	c.sackedBytes, c.lostBytes, c.renoSacked = 0, 0, 0
	c.ooo = nil
	if c.rcv.len() == 0 {
		c.rcv.release(c.cfg.Budget)
	}
	c.tune = nil
}

// rcvTune is the state of receive-buffer autotuning, allocated when it
// first has something to measure.
type rcvTune struct {
	space  int32         // most bytes the application read in one RTT
	copied int32         // bytes read since at
	at     tick          // start of the current measurement
	rtt    time.Duration // RTT seen by the receiver (timestamps)
}

func (c *Conn) rcvTuning() *rcvTune {
	if c.tune == nil {
		c.tune = new(rcvTune)
	}
	return c.tune
}

// rcvSpaceAdjust grows the receive buffer when the application read more
// in the last RTT than ever before (Linux's tcp_rcv_space_adjust): to twice
// that plus 16 segments, more when the rate is rising (the sender is in
// slow start and will double), up to RecvBufMax. The window follows the
// buffer, so the sender is never held back by it on a path whose
// bandwidth-delay product fits the cap. Under memory pressure, or beyond
// what the budget has left, the buffer is not raised (budget.go) and the
// measurement stands, to try again next RTT.
func (c *Conn) rcvSpaceAdjust(now time.Time, n int) {
	if int(c.rcvBuf) >= int(c.rcvBufMax) || c.state == TimeWait || c.state == Closed {
		return
	}
	t := c.rcvTuning()
	t.copied = int32(min(int(t.copied)+n, 1<<30))
	rtt := t.rtt
	if rtt == 0 {
		rtt = c.rtt.srtt
	}
	if t.at == 0 || rtt == 0 {
		t.at = c.at(now)
		return
	}
	if time.Duration(c.at(now)-t.at) < rtt {
		return
	}
	copied, space := int(t.copied), int(t.space)
	t.at, t.copied = c.at(now), 0
	if copied <= space {
		return
	}
	want := 2*copied + 16*int(c.rcvMSS)
	if space > 0 {
		want += 2 * want * min(copied-space, space) / space
	}
	want = min(want, int(c.rcvBufMax), 65535<<c.rcvWScale)
	if want <= int(c.rcvBuf) {
		t.space = int32(copied)
		return
	}
	if have := c.cfg.Budget.canHave(len(c.rcv.buf)); want > have {
		c.budgetHit()
		want = have
	} else {
		t.space = int32(copied)
	}
	c.rcvBuf = int32(max(want, int(c.rcvBuf)))
}

// rcvRTTSample folds in a receiver-side RTT from the timestamp the peer
// echoes on its data (Linux's tcp_rcv_rtt_measure_ts).
func (c *Conn) rcvRTTSample(now time.Time, tsecr uint32) {
	m := time.Duration(int32(c.tsNow(now)-tsecr)) * time.Millisecond
	if m <= 0 || m > c.cfg.MaxRTO {
		return
	}
	if int(c.rcvBuf) >= int(c.rcvBufMax) {
		return // only autotuning uses it
	}
	if t := c.rcvTuning(); t.rtt == 0 {
		t.rtt = m
	} else {
		t.rtt += (m - t.rtt) / 8
	}
}

// growSendBuf keeps the send buffer at twice cwnd (Linux's
// tcp_sndbuf_expand), up to SendBufMax, so that the application can keep
// a full window in flight and as much again queued; not beyond what the
// budget has left (Linux does not expand under memory pressure,
// tcp_should_expand_sndbuf).
func (c *Conn) growSendBuf() {
	if int(c.sndBuf) >= int(c.sndBufMax) {
		return
	}
	want := min(2*c.cc.Cwnd(), int(c.sndBufMax))
	if want <= int(c.sndBuf) {
		return
	}
	if have := c.cfg.Budget.canHave(len(c.snd.buf)); want > have {
		c.budgetHit()
		if want = have; want <= int(c.sndBuf) {
			return
		}
	}
	c.sndBuf = int32(want)
	c.events |= EvWritable
}
