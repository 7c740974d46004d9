package tcp

import "time"

// KeepAlive configures keepalive probes; the fields are those of
// net.KeepAliveConfig.
type KeepAlive struct {
	Enable   bool
	Idle     time.Duration // idle time before the first probe; 0: 15 s
	Interval time.Duration // time between probes; 0: 15 s
	Count    int           // unanswered probes before the connection fails; 0: 9
}

// Config holds the tunables of a connection. The zero value of each field
// selects the default given in its comment.
type Config struct {
	MSS     int  // MSS we advertise (MTU-40); also the cap for what we send. 0: 1460
	RecvBuf int  // receive buffer in bytes; 0: 1 MiB
	SendBuf int  // send buffer in bytes; 0: 1 MiB
	Nagle   bool // Nagle's algorithm (RFC 896); off by default, as Go sets TCP_NODELAY
	SACK    bool // advertise SACK-permitted and send SACK blocks (RFC 2018)

	KeepAlive KeepAlive

	TimeWait        time.Duration // 2·MSL; 0: 60 s as Linux
	FinWait2Timeout time.Duration // for a closed (orphaned) socket; 0: 60 s
	SynRcvdTimeout  time.Duration // handshake timeout in SYN-RECEIVED; 0: 75 s
	SynRetries      int           // SYN retransmissions before the dial fails; 0: 6 (Linux, ~127 s)
	Retries         int           // data retransmissions before failing; 0: 15 (Linux tcp_retries2)
	InitialRTO      time.Duration // 0: 1 s (RFC 6298 §2.1)
	MinRTO          time.Duration // 0: 200 ms (Linux; RFC 6298 says 1 s)
	MaxRTO          time.Duration // 0: 120 s (Linux)
	DelayedAck      time.Duration // delayed ACK timeout; 0: 40 ms (Linux); capped at 200 ms

	// NewCC makes the congestion control of a connection; nil: NewReno.
	NewCC func(mss int) CongestionControl
}

// Defaults.
const (
	DefaultMSS     = 1460
	DefaultBufSize = 1 << 20
)

// withDefaults returns a copy of c (which may be nil) with zero fields set
// to their defaults.
func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	if d.MSS <= 0 {
		d.MSS = DefaultMSS
	}
	d.MSS = max(min(d.MSS, 65495), 64)
	if d.RecvBuf <= 0 {
		d.RecvBuf = DefaultBufSize
	}
	if d.SendBuf <= 0 {
		d.SendBuf = DefaultBufSize
	}
	d.RecvBuf = min(max(d.RecvBuf, 2*d.MSS), 65535<<MaxWScale)
	d.SendBuf = max(d.SendBuf, 2*d.MSS)
	d.KeepAlive = d.KeepAlive.withDefaults()
	if d.TimeWait <= 0 {
		d.TimeWait = 60 * time.Second
	}
	if d.FinWait2Timeout <= 0 {
		d.FinWait2Timeout = 60 * time.Second
	}
	if d.SynRcvdTimeout <= 0 {
		d.SynRcvdTimeout = 75 * time.Second
	}
	if d.SynRetries <= 0 {
		d.SynRetries = 6
	}
	if d.Retries <= 0 {
		d.Retries = 15
	}
	if d.InitialRTO <= 0 {
		d.InitialRTO = time.Second
	}
	if d.MinRTO <= 0 {
		d.MinRTO = 200 * time.Millisecond
	}
	if d.MaxRTO <= 0 {
		d.MaxRTO = 120 * time.Second
	}
	if d.DelayedAck <= 0 {
		d.DelayedAck = 40 * time.Millisecond
	}
	d.DelayedAck = min(d.DelayedAck, 200*time.Millisecond) // RFC 9293 §3.8.6.3: MUST be < 0.5 s; RFC 5681: ≤ 500 ms
	if d.NewCC == nil {
		d.NewCC = NewReno
	}
	return d
}

func (k KeepAlive) withDefaults() KeepAlive {
	if k.Idle <= 0 {
		k.Idle = 15 * time.Second
	}
	if k.Interval <= 0 {
		k.Interval = 15 * time.Second
	}
	if k.Count <= 0 {
		k.Count = 9
	}
	return k
}
