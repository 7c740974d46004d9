package tcp

import (
	"sync/atomic"
	"time"
)

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
	MSS   int  // MSS we advertise (MTU-40); also the cap for what we send. 0: 1460
	Nagle bool // Nagle's algorithm (RFC 896); off by default, as Go sets TCP_NODELAY

	// Buffers. RecvBuf and SendBuf are the initial sizes; the connection
	// grows them with the measured bandwidth-delay product (receive-window
	// autotuning as Linux's tcp_rcv_space_adjust, send-buffer growth as
	// tcp_sndbuf_expand) up to RecvBufMax and SendBufMax. Rings are
	// allocated when data first flows and grow as they fill, so an idle
	// connection holds no buffer memory.
	//
	// Zero values: RecvBuf 128 KiB and RecvBufMax 6 MiB, SendBuf 64 KiB
	// and SendBufMax 4 MiB (Linux's tcp_rmem and tcp_wmem). A size set
	// without its maximum is fixed, like SO_RCVBUF/SO_SNDBUF on Linux.
	RecvBuf    int
	RecvBufMax int
	SendBuf    int
	SendBufMax int

	// Budget, if not nil, bounds the buffer memory of all the connections
	// whose Config points to it (a stack's), as Linux's tcp_mem; see
	// Budget for what a connection does when it is exhausted. nil:
	// unlimited.
	Budget *Budget

	// NoSACK turns selective acknowledgments off: no SACK-permitted option,
	// no SACK blocks, and NewReno recovery on duplicate ACKs instead of
	// RFC 6675 with RACK-TLP. SACK is on by default, as on Linux.
	NoSACK bool

	// IPHeaderLen is the length of the IP header on the connection's path:
	// 20 for IPv4 (0 selects it), 40 for IPv6. With it MSS gives the link
	// MTU (MSS + IPHeaderLen + 20), and a path MTU gives the MSS.
	IPHeaderLen int

	// LinkMTU, if set, is the link's MTU now, which may fall below the
	// one MSS gives (a DHCP lease's interface MTU): the MSS a SYN or
	// SYN-ACK advertises is lowered to fit it, as Linux advertises the
	// MTU of the route's device.
	LinkMTU *atomic.Int32

	// LinkFull, if set, is true while the link's queue is full and holds
	// the frames it refused: connections then send no data, new or
	// retransmitted, only ACKs, and raise EvHeld; the shell calls Resume
	// once the link has room. This is how a queue in memory pushes back
	// on the sender instead of dropping, as Linux's device queues do.
	// With it set, a call also sends at most MaxSuperSegs segments of
	// data before it raises EvHeld, so that no connection fills the
	// queue in one go (see linkHolds).
	LinkFull *atomic.Bool
	// LinkQueued, if set, reports whether frames still wait in the
	// queues of such a link, either way: a tail loss probe then waits,
	// and so, a few times, does the retransmission timeout, as what they
	// would resend is queued, not lost (onPTO, onRTO).
	LinkQueued func() bool

	// NoMTUProbing turns packetization-layer path MTU discovery (RFC
	// 4821, as Linux's tcp_mtu_probing=1; pmtu.go) off: by default
	// repeated timeouts of full-sized segments lower the MSS and probes
	// then search for the largest size the path carries.
	NoMTUProbing bool

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

	// ECN turns on Explicit Congestion Notification (RFC 3168, ecn.go):
	// active opens ask for it, passive opens accept a peer's request, and
	// a connection that negotiated it sends its data ECN-capable and
	// answers congestion marks as losses, without retransmitting. Off by
	// default, as Go's sockets leave it to the kernel's default.
	ECN bool

	// NewCC makes the congestion control of a connection; nil: NewCubic
	// (RFC 9438, Linux's default). NewReno selects RFC 5681/6582, NewBBR
	// BBRv3 (draft-ietf-ccwg-bbr) with pacing.
	NewCC func(mss int) CongestionControl

	prepared bool      // made by Prepare: defaults applied, shared as it is
	listener *Listener // the listener whose own copy this is, for its connections' half-open slots
}

// Prepare returns a copy of cfg (which may be nil) with its defaults
// applied, for many connections and listeners to share: NewConn and
// NewListener use a prepared Config as it is, where they copy any other.
// It must not be changed afterwards.
func Prepare(cfg *Config) *Config {
	d := cfg.withDefaults()
	d.prepared = true
	return &d
}

// advMSS returns the MSS to advertise: MSS, or less to fit LinkMTU.
func (c *Config) advMSS() int {
	if c.LinkMTU == nil {
		return c.MSS
	}
	return max(min(c.MSS, int(c.LinkMTU.Load())-c.IPHeaderLen-HeaderMinLen), 64)
}

// Defaults.
const (
	DefaultMSS        = 1460
	DefaultRecvBuf    = 128 << 10 // Linux tcp_rmem[1]
	DefaultRecvBufMax = 6 << 20   // Linux tcp_rmem[2]
	DefaultSendBuf    = 64 << 10
	DefaultSendBufMax = 4 << 20 // Linux tcp_wmem[2]
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
	if d.IPHeaderLen <= 0 {
		d.IPHeaderLen = 20
	}
	d.RecvBuf, d.RecvBufMax = bufDefaults(d.RecvBuf, d.RecvBufMax, DefaultRecvBuf, DefaultRecvBufMax)
	d.SendBuf, d.SendBufMax = bufDefaults(d.SendBuf, d.SendBufMax, DefaultSendBuf, DefaultSendBufMax)
	d.RecvBufMax = min(max(d.RecvBufMax, 2*d.MSS), 65535<<MaxWScale)
	d.RecvBuf = min(max(d.RecvBuf, 2*d.MSS), d.RecvBufMax)
	d.SendBufMax = min(max(d.SendBufMax, 2*d.MSS), 1<<30) // sizes are int32 in a Conn
	d.SendBuf = min(max(d.SendBuf, 2*d.MSS), d.SendBufMax)
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
		d.NewCC = NewCubic
	}
	return d
}

// bufDefaults applies the buffer defaults: an unset size takes def and,
// if the maximum is unset too, autotunes up to defMax; a size set alone
// is fixed.
func bufDefaults(size, limit, def, defMax int) (int, int) {
	switch {
	case size <= 0 && limit <= 0:
		return def, defMax
	case size <= 0:
		return min(def, limit), limit
	case limit <= 0:
		return size, size
	}
	return size, max(size, limit)
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
