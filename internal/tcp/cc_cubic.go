package tcp

import (
	"math"
	"time"
)

// CUBIC (RFC 9438) constants.
const (
	cubicC    = 0.4 // §5.1
	cubicBeta = 0.7 // β_cubic, §4.6
)

// cubic is CUBIC congestion control (RFC 9438), Linux's default: slow start
// with appropriate byte counting (RFC 3465, L = 2), then a window that
// follows W_cubic(t) = C·(t-K)³ + W_max around the window of the last
// congestion event, never below what Reno would reach (the Reno-friendly
// region, §4.3), with fast convergence (§4.7).
type cubic struct {
	mss      int
	cwnd     int // bytes
	ssthresh int

	wMax     float64   // W_max, segments
	wLastMax float64   // W_max before the last reduction (fast convergence)
	k        float64   // K, seconds
	epoch    time.Time // start of the current congestion avoidance epoch
	wEst     float64   // W_est, the Reno-friendly estimate, segments
	acc      float64   // growth not yet applied, bytes
}

// NewCubic returns CUBIC congestion control for a connection whose sender
// MSS is mss.
func NewCubic(mss int) CongestionControl {
	mss = max(mss, 1)
	return &cubic{mss: mss, cwnd: initialWindow(mss), ssthresh: 1 << 30}
}

func (c *cubic) Cwnd() int     { return c.cwnd }
func (c *cubic) Ssthresh() int { return c.ssthresh }

func (c *cubic) OnAck(now time.Time, acked, inFlight int, rtt time.Duration) {
	if c.cwnd < c.ssthresh {
		// RFC 9438 §4.10 / RFC 5681 §3.1 with ABC (RFC 3465): cwnd +=
		// min(N, L·SMSS), L = 2.
		c.cwnd += min(acked, 2*c.mss)
		return
	}
	mss := float64(c.mss)
	cwnd := float64(c.cwnd) / mss
	if c.epoch.IsZero() {
		// §4.2: a new congestion avoidance epoch.
		c.epoch = now
		c.wEst = cwnd
		if c.wMax <= cwnd {
			c.wMax, c.k = cwnd, 0
		} else {
			c.k = math.Cbrt((c.wMax - cwnd) / cubicC)
		}
	}
	segs := float64(acked) / mss
	// §4.3: W_est grows by α_cubic per RTT's worth of acked segments.
	alpha := 3 * (1 - cubicBeta) / (1 + cubicBeta)
	if c.wEst >= c.wMax {
		alpha = 1
	}
	c.wEst += alpha * segs / cwnd
	// §4.2: the target is W_cubic one RTT ahead, clamped to [cwnd, 1.5·cwnd].
	t := now.Sub(c.epoch).Seconds() + rtt.Seconds()
	d := t - c.k
	target := cubicC*d*d*d + c.wMax
	target = min(max(target, cwnd), 1.5*cwnd)
	var inc float64
	if c.wEst > target {
		inc = c.wEst - cwnd // §4.3: the Reno-friendly region
	} else {
		inc = (target - cwnd) * segs / cwnd // §4.4-4.5: cwnd += (target-cwnd)/cwnd per ACKed segment
	}
	c.acc += max(inc, 0) * mss
	if c.acc >= 1 {
		step := int(c.acc)
		c.cwnd += step
		c.acc -= float64(step)
	}
}

// reduce is the multiplicative decrease of §4.6 with fast convergence (§4.7).
func (c *cubic) reduce(inFlight int) {
	cwnd := float64(c.cwnd) / float64(c.mss)
	if cwnd < c.wLastMax {
		c.wLastMax = cwnd
		c.wMax = cwnd * (1 + cubicBeta) / 2
	} else {
		c.wLastMax = cwnd
		c.wMax = cwnd
	}
	c.ssthresh = max(int(float64(c.cwnd)*cubicBeta), 2*c.mss)
	c.epoch = time.Time{}
	c.acc = 0
}

func (c *cubic) OnRecoveryStart(now time.Time, inFlight int) {
	c.reduce(inFlight)
	c.cwnd = c.ssthresh
}

func (c *cubic) OnRecoveryEnd(now time.Time, inFlight int) {
	c.cwnd = c.ssthresh
}

func (c *cubic) OnTimeout(now time.Time, inFlight int) {
	c.reduce(inFlight)
	c.cwnd = c.mss // §4.8: cwnd = 1 segment; the epoch restarts after slow start
}

func (c *cubic) OnIdle(now time.Time, idle, rto time.Duration) {
	c.cwnd, c.ssthresh = restartWindow(c.cwnd, c.ssthresh, c.mss, idle, rto)
	c.epoch = time.Time{} // §5.8: the epoch must not count the idle time
	c.acc = 0
}
