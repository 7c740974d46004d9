package tcp

import "time"

// CongestionControl decides the congestion window (RFC 5681). The
// connection owns loss detection (SACK scoreboard and RACK, or duplicate
// ACKs without SACK) and the sending during recovery, which follows RFC
// 6675: segments go out while the pipe is below cwnd. The algorithm only
// sizes cwnd and ssthresh, through these calls. NewReno (RFC 5681/6582)
// and CUBIC (RFC 9438) implement it.
type CongestionControl interface {
	// Cwnd returns the congestion window in bytes.
	Cwnd() int
	// Ssthresh returns the slow-start threshold in bytes.
	Ssthresh() int
	// OnAck reports acked bytes of new data acknowledged outside recovery
	// while cwnd limits the sender; inFlight is the flight size before the
	// ACK and rtt the smoothed RTT (0 if unknown).
	OnAck(now time.Time, acked, inFlight int, rtt time.Duration)
	// OnRecoveryStart reports a loss found by SACK, RACK or duplicate
	// ACKs: the window drops (ssthresh, and cwnd to it; RFC 6675 §5 step
	// 4.2) for the recovery that follows.
	OnRecoveryStart(now time.Time, inFlight int)
	// OnRecoveryEnd reports the ACK that ends recovery; inFlight is what
	// remains outstanding.
	OnRecoveryEnd(now time.Time, inFlight int)
	// OnTimeout reports a retransmission timeout (RFC 5681 §3.1, eq. 4).
	OnTimeout(now time.Time, inFlight int)
	// OnIdle reports that the sender resumes after idle for longer than
	// the RTO (RFC 5681 §4.1, RFC 7661 §4.4).
	OnIdle(now time.Time, idle, rto time.Duration)
}

// restartWindow is cwnd after idle: halved for every RTO of idleness, as
// Linux's tcp_cwnd_restart, but not below the initial window (RFC 5681
// §4.1's restart window) nor above the current one; ssthresh keeps a
// memory of the old cwnd (RFC 7661 §4.4, ssthresh = max(ssthresh, 3/4
// cwnd)).
func restartWindow(cwnd, ssthresh, mss int, idle, rto time.Duration) (int, int) {
	ssthresh = max(ssthresh, cwnd*3/4)
	iw, orig := initialWindow(mss), cwnd
	for d := idle; d > rto && cwnd > iw; d -= rto {
		cwnd /= 2
	}
	return max(cwnd, min(iw, orig)), ssthresh
}
