package tcp

import "time"

// rttEstimator computes the retransmission timeout of RFC 6298 §2.
// The base RTO (before backoff) is not kept but computed from SRTT and
// RTTVAR, with the Config's bounds: 8 bytes fewer in a Conn.
type rttEstimator struct {
	srtt time.Duration
	// RTTVAR; before the first sample, the floor of the base RTO (RFC 6298
	// §5.7's 3 s after a retransmitted SYN), 0 for none.
	rttvar time.Duration
}

// has reports whether a sample was taken (a sample is at least 1 µs).
func (r *rttEstimator) has() bool { return r.srtt > 0 }

// clockGranularity is G of RFC 6298 §2; our clock is exact, Linux's is a jiffy.
const clockGranularity = time.Millisecond

// base returns the RTO before backoff: the initial RTO (or the floor set
// by raiseInitial) until the first sample (§2.1), then SRTT + max(G,
// 4·RTTVAR) clamped to [MinRTO, MaxRTO] (§2.4, §2.5).
func (r *rttEstimator) base(cfg *Config) time.Duration {
	if !r.has() {
		return max(cfg.InitialRTO, r.rttvar)
	}
	return min(max(r.srtt+max(clockGranularity, 4*r.rttvar), cfg.MinRTO), cfg.MaxRTO)
}

// raiseInitial raises the RTO used until the first sample to at least d.
func (r *rttEstimator) raiseInitial(d time.Duration) {
	if !r.has() {
		r.rttvar = max(r.rttvar, d)
	}
}

// variance returns RTTVAR, 0 before the first sample.
func (r *rttEstimator) variance() time.Duration {
	if !r.has() {
		return 0
	}
	return r.rttvar
}

// sample folds one round-trip measurement in (RFC 6298 §2.2, §2.3).
func (r *rttEstimator) sample(m time.Duration) {
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
}
