package tcp

import "time"

// reno is NewReno: RFC 5681 slow start and congestion avoidance with
// appropriate byte counting (RFC 3465, L = 2·SMSS), and the fast recovery
// window arithmetic of RFC 6582 (in the pipe form of RFC 6675).
type reno struct {
	mss      int
	cwnd     int
	ssthresh int
	acc      int // bytes acked in congestion avoidance since the last increase
}

// NewReno returns the NewReno congestion control for a connection whose
// sender MSS is mss.
func NewReno(mss int) CongestionControl {
	mss = max(mss, 1)
	return &reno{mss: mss, cwnd: initialWindow(mss), ssthresh: 1 << 30}
}

// initialWindow is IW of RFC 5681 §3.1 as raised by RFC 6928 (ten segments,
// Linux's default).
func initialWindow(mss int) int { return 10 * mss }

func (r *reno) Cwnd() int     { return r.cwnd }
func (r *reno) Ssthresh() int { return r.ssthresh }

func (r *reno) OnAck(now time.Time, acked, inFlight int, rtt time.Duration) {
	if r.cwnd < r.ssthresh {
		// RFC 5681 §3.1 eq. 2 with ABC: cwnd += min(N, L·SMSS), L = 2.
		r.cwnd += min(acked, 2*r.mss)
		return
	}
	// Congestion avoidance: one SMSS per cwnd of acked bytes (§3.1, eq. 3 variant).
	r.acc += acked
	if r.acc >= r.cwnd {
		r.acc -= r.cwnd
		r.cwnd += r.mss
	}
}

func (r *reno) halve(inFlight int) {
	r.ssthresh = max(inFlight/2, 2*r.mss) // RFC 5681 §3.1 eq. 4
	r.acc = 0
}

func (r *reno) OnRecoveryStart(now time.Time, inFlight int) {
	r.halve(inFlight)
	// RFC 6675 §5 step 4.2: cwnd = ssthresh. The duplicate ACKs RFC 6582
	// counts by inflating cwnd reduce the pipe instead.
	r.cwnd = r.ssthresh
}

func (r *reno) OnRecoveryEnd(now time.Time, inFlight int) {
	// RFC 6582 §3.2 step 6, option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS).
	r.cwnd = min(r.ssthresh, max(inFlight, r.mss)+r.mss)
}

func (r *reno) OnTimeout(now time.Time, inFlight int) {
	r.halve(inFlight)
	r.cwnd = r.mss // loss window, RFC 5681 §3.1
}

func (r *reno) OnIdle(now time.Time, idle, rto time.Duration) {
	r.cwnd, r.ssthresh = restartWindow(r.cwnd, r.ssthresh, r.mss, idle, rto)
	r.acc = 0
}
