package tcp

import "time"

// Info is a snapshot of a connection's transmission state, like Linux's
// TCP_INFO. Byte counts are octets of sequence space.
type Info struct {
	State    State
	RTT      time.Duration // smoothed RTT (RFC 6298 SRTT)
	RTTVar   time.Duration // RTT variation
	MinRTT   time.Duration // lowest RTT seen
	RTO      time.Duration // retransmission timeout, with backoff
	SndMSS   int           // largest payload we send
	RcvMSS   int           // largest payload we expect
	PMTU     int           // path MTU (RFC 1191, RFC 4821) we send by
	Cwnd     int           // congestion window, bytes
	Ssthresh int           // slow-start threshold, bytes (1<<30: none yet)
	SndWnd   int           // the peer's window
	RcvWnd   int           // the window we last advertised
	SendBuf  int           // current send buffer size (grows with cwnd)
	RecvBuf  int           // current receive buffer size (autotuned)

	Unacked    int  // bytes sent and not acknowledged
	SackedNow  int  // bytes of those SACKed
	LostNow    int  // bytes of those deemed lost and not yet resent
	InRecovery bool // in fast recovery (or after a timeout)

	SACK       bool // SACK negotiated (RFC 2018)
	Timestamps bool // timestamps negotiated (RFC 7323)
	WScale     bool // window scaling negotiated
	ECN        bool // ECN negotiated (RFC 3168)
	SndWScale  uint8
	RcvWScale  uint8

	BytesSent     uint64 // new data sent
	BytesRetrans  uint64 // data sent again
	BytesAcked    uint64
	BytesReceived uint64
	SegsOut       uint64
	SegsIn        uint64
	Retransmits   uint64 // segments retransmitted
	Timeouts      uint64 // RTO expiries
	Recoveries    uint64 // fast recoveries
	TLPs          uint64 // tail loss probes
	Sacked        uint64 // segments SACKed over the connection's life
	Lost          uint64 // segments deemed lost over the connection's life
	DSACKs        uint64

	// BBR is the model of BBR congestion control (as Linux's
	// tcp_bbr_info); zero with another one.
	BBR BBRInfo
}

// BBRInfo is the state of a connection's BBR congestion control.
type BBRInfo struct {
	State      string        // "Startup", "Drain", "ProbeBW_DOWN", "ProbeBW_CRUISE", "ProbeBW_REFILL", "ProbeBW_UP" or "ProbeRTT"
	Bandwidth  float64       // bytes per second: the max filter bounded by the lower bound (BBR.bw)
	MinRTT     time.Duration // BBR.min_rtt
	PacingRate float64       // bytes per second
	PacingGain float64       // the pacing rate over Bandwidth, by state
	CwndGain   float64       // cwnd over the bandwidth-delay product, by state
	InflightHi int           // bytes: the upper bound loss set (inflight_hi); 0: none yet
	InflightLo int           // bytes: the lower bound of a round with loss (inflight_lo); 0: none
	Rounds     uint64        // round trips counted
}

// Info returns a snapshot of the connection's state.
func (c *Conn) Info() Info {
	st := c.Stats()
	i := Info{
		State:      c.state,
		RTT:        c.rtt.srtt,
		RTTVar:     c.rtt.variance(),
		MinRTT:     c.rackMinRTT,
		RTO:        c.rto(),
		SndMSS:     c.mss,
		RcvMSS:     int(c.rcvMSS),
		PMTU:       c.PathMTU(),
		SndWnd:     int(c.sndWnd),
		RcvWnd:     int(max(c.rcvAdv.Sub(c.rcvNxt), 0)),
		SendBuf:    int(c.sndBuf),
		RecvBuf:    int(c.rcvBuf),
		SackedNow:  int(c.sackedBytes),
		LostNow:    int(c.lostBytes),
		InRecovery: c.inRecovery || c.inLoss,
		SACK:       c.sackOK,
		Timestamps: c.tsOK,
		WScale:     c.wsOK,
		ECN:        c.ECN(),
		SndWScale:  c.sndWScale,
		RcvWScale:  c.rcvWScale,

		BytesSent:     st.BytesSent,
		BytesRetrans:  st.BytesRetrans,
		BytesAcked:    st.BytesAcked,
		BytesReceived: st.BytesReceived,
		SegsOut:       st.SegsOut,
		SegsIn:        st.SegsIn,
		Retransmits:   st.Retransmits,
		Timeouts:      st.Timeouts,
		Recoveries:    st.FastRetransmits,
		TLPs:          st.TLPs,
		Sacked:        st.Sacked,
		Lost:          st.Lost,
		DSACKs:        st.DSACKs,
	}
	if c.state.synchronized() {
		i.Unacked = int(c.sndNxt.Sub(c.sndUna))
	}
	cc := c.cc
	if cc == nil && c.state.synchronized() {
		cc = c.makeCC() // not sent yet: what it will start with
	}
	if cc != nil {
		i.Cwnd, i.Ssthresh = cc.Cwnd(), cc.Ssthresh()
	}
	if b, ok := cc.(*bbr); ok {
		i.BBR = b.info()
	}
	return i
}

// Seqs returns SND.UNA, SND.NXT and RCV.NXT, for a shell validating an
// ICMP message against the data in flight (RFC 5927) and for tests.
func (c *Conn) Seqs() (sndUna, sndNxt, rcvNxt Seq) { return c.sndUna, c.sndNxt, c.rcvNxt }
