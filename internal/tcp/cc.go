package tcp

import "time"

// CongestionControl decides the congestion window (RFC 5681). The
// connection owns loss detection (duplicate ACKs now; a SACK scoreboard or
// RACK later) and tells the algorithm what happened through these calls;
// the algorithm only sizes cwnd and ssthresh. NewReno and, later, CUBIC
// (RFC 9438) fit behind it unchanged, and a SACK-based recovery (RFC 6675)
// drives the same hooks with its own notion of what left the network.
type CongestionControl interface {
	// Cwnd returns the congestion window in bytes.
	Cwnd() int
	// Ssthresh returns the slow-start threshold in bytes.
	Ssthresh() int
	// OnAck reports acked bytes of new data acknowledged outside
	// recovery; inFlight is the flight size before the ACK and rtt the
	// latest smoothed RTT (0 if unknown).
	OnAck(now time.Time, acked, inFlight int, rtt time.Duration)
	// OnRecoveryStart reports a loss detected by duplicate ACKs (or SACK):
	// the connection is retransmitting and entering fast recovery.
	OnRecoveryStart(now time.Time, inFlight int)
	// OnRecoveryDupAck reports one more duplicate ACK during recovery (a
	// segment left the network).
	OnRecoveryDupAck()
	// OnPartialAck reports an ACK during recovery that acked some but not
	// all of the data outstanding at its start (RFC 6582 §3.2 step 5).
	OnPartialAck(acked int)
	// OnRecoveryEnd reports the full ACK that ends recovery.
	OnRecoveryEnd(now time.Time, inFlight int)
	// OnTimeout reports a retransmission timeout (RFC 5681 §3.1, eq. 4).
	OnTimeout(now time.Time, inFlight int)
}
