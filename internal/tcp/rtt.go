package tcp

import "time"

// rttEstimator computes the retransmission timeout of RFC 6298 §2.
type rttEstimator struct {
	srtt, rttvar time.Duration
	rto          time.Duration // base RTO, before backoff
}

// has reports whether a sample was taken (a sample is at least 1 µs).
func (r *rttEstimator) has() bool { return r.srtt > 0 }

// clockGranularity is G of RFC 6298 §2; our clock is exact, Linux's is a jiffy.
const clockGranularity = time.Millisecond

func (r *rttEstimator) init(initial time.Duration) { r.rto = initial }

// sample folds one round-trip measurement in (RFC 6298 §2.2, §2.3) and
// recomputes RTO, clamped to [minRTO, maxRTO] (§2.4, §2.5).
func (r *rttEstimator) sample(m, minRTO, maxRTO time.Duration) {
	if m <= 0 {
		m = time.Microsecond
	}
	if !r.has() {
		r.srtt = m
		r.rttvar = m / 2
	} else {
		d := r.srtt - m
		if d < 0 {
			d = -d
		}
		r.rttvar = (3*r.rttvar + d) / 4 // beta = 1/4
		r.srtt = (7*r.srtt + m) / 8     // alpha = 1/8
	}
	r.rto = r.srtt + max(clockGranularity, 4*r.rttvar)
	r.rto = min(max(r.rto, minRTO), maxRTO)
}
