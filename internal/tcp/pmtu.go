package tcp

import "time"

// Path MTU discovery. Two ways lead to the path MTU, and both lower the
// MSS the connection sends (c.mss):
//
//   - RFC 1191 (RFC 8201 for IPv6): the engine passes each ICMP
//     fragmentation-needed (Packet Too Big) for the connection to
//     PathMTUError, which validates it against the send window (RFC 5927
//     §4.1, §5.2), lowers the MSS and retransmits at once, at the new
//     size, what was sent larger (Linux's tcp_v4_mtu_reduced and
//     tcp_simple_retransmit). SetPathMTU applies a path MTU the engine
//     already knows (its cache) to a connection.
//
//   - Packetization-layer PMTUD (RFC 4821; RFC 8899 §5.3's search) for
//     when ICMP never arrives (a black hole), as Linux's tcp_mtu_probing=1:
//     repeated retransmission timeouts of full-sized segments turn the
//     search on and fall back to a smaller MSS; probe segments, larger
//     than the MSS, then search upwards between search_low and
//     search_high (tcp_mtu_probe in tcp_output.c, tcp_mtu_probing in
//     tcp_timer.c, tcp_mtup_probe_success/_failed in tcp_input.c).
//
// The state lives in the connection's rare part: a connection on a clean
// path never allocates it. Sizes are MTUs (IP datagram lengths), as
// Linux's icsk_mtup keeps them.

// Constants of Linux's defaults.
const (
	minPMTU4        = 552               // Linux's min_pmtu (ip_rt_min_pmtu): no path MTU below it for IPv4
	minPMTU6        = 1280              // RFC 8200 §5: IPv6's minimum link MTU (RFC 8201 §4)
	baseMSS         = 1024              // Linux's tcp_base_mss: the first fallback of a black hole
	probeFloorMSS   = 48                // Linux's tcp_mtu_probe_floor and tcp_min_snd_mss
	probeThreshold  = 8                 // Linux's tcp_probe_threshold: the search stops when the range is smaller
	probeInterval   = 600 * time.Second // Linux's tcp_probe_interval: search again after this
	blackHoleRTOs   = 4                 // timeouts in a row before a black hole is suspected (see onBlackHole)
	probeReordering = 3                 // Linux's tp->reordering default: segments sent behind the probe
)

// pmtuState is the connection's path MTU and PLPMTUD search (Linux's
// icsk_pmtu_cookie, mss_clamp and icsk_mtup).
type pmtuState struct {
	pmtu                  uint16 // the path MTU learned or set; 0: the link's (linkMTU)
	clamp                 uint16 // min(the peer's MSS, Config.MSS), options included; 0: no SYN seen yet
	searchLow, searchHigh uint16 // PLPMTUD: the largest MTU known to work, the smallest suspected not to
	probeSize             uint16 // the MTU of the probe in flight; 0: none
	probeStart, probeEnd  Seq    // the probe's sequence space
	probeStamp            tick   // when the search (re)started
}

// PathMTU returns the path MTU the connection sends by: what ICMP or
// SetPathMTU set, or else the link MTU the configuration implies
// (Config.MSS plus the IP and TCP headers).
func (c *Conn) PathMTU() int {
	if c.rare != nil && c.rare.pm.pmtu != 0 {
		return int(c.rare.pm.pmtu)
	}
	return c.linkMTU()
}

// linkMTU is the MTU Config.MSS was derived from.
func (c *Conn) linkMTU() int { return c.cfg.MSS + c.cfg.IPHeaderLen + HeaderMinLen }

// minPMTU is the floor of the path MTU: 552 for IPv4 as Linux, 1280 for
// IPv6.
func (c *Conn) minPMTU() int {
	if c.cfg.IPHeaderLen >= 40 {
		return minPMTU6
	}
	return minPMTU4
}

// PathMTUError handles an ICMP fragmentation-needed (RFC 1191 §4; for IPv6
// a Packet Too Big, RFC 8201) that quotes a segment of this connection:
// mtu is the next-hop MTU it reports, seq the sequence number of the
// quoted TCP header. It reports whether the message was accepted: RFC 5927
// §4.1 and §5.2, seq must lie in SND.UNA ≤ seq < SND.NXT, otherwise the
// message is rejected and nothing changes, so that a spoofed one cannot
// shrink the flow. An mtu below the floor (552 for IPv4, Linux's min_pmtu;
// 1280 for IPv6) counts as the floor; one not below the current path MTU
// is accepted and changes nothing. Otherwise the MSS drops to fit mtu and
// the segments in flight larger than that are retransmitted at once, cut
// to the new size, without counting as congestion: no cwnd reduction, no
// RTO backoff (Linux's tcp_v4_mtu_reduced and tcp_simple_retransmit).
// Only an accepted message should update the engine's path MTU cache.
func (c *Conn) PathMTUError(now time.Time, mtu int, seq Seq) (accepted bool) {
	if c.state == Closed || c.state == Listen || c.state == TimeWait ||
		!seq.GreaterEq(c.sndUna) || !seq.LessThan(c.sndMax) {
		c.rareStats().PMTURejected++
		return false
	}
	c.rareStats().PMTUAccepted++
	c.lowerPathMTU(now, mtu)
	return true
}

// SetPathMTU sets the path MTU the connection sends by to mtu, as the
// engine learned it from another connection's ICMP or keeps it in its
// cache: before Connect (or for a new passive connection) so that the
// first segments fit, or later, also upwards when a cached value expires
// (at most to the link MTU; at least to the floor of PathMTUError). A
// lower MTU retransmits what is in flight above it, as PathMTUError does;
// no validation is done: the caller vouches for mtu.
func (c *Conn) SetPathMTU(now time.Time, mtu int) {
	mtu = min(mtu, c.linkMTU())
	if mtu >= c.PathMTU() {
		if mtu > c.PathMTU() {
			c.rare.pm.pmtu = uint16(mtu) // only set once something lowered it
			c.syncMSS()
		}
		return
	}
	c.lowerPathMTU(now, mtu)
}

// lowerPathMTU lowers the path MTU to mtu (floored) if that is news, and
// resends what no longer fits.
func (c *Conn) lowerPathMTU(now time.Time, mtu int) {
	mtu = max(mtu, c.minPMTU())
	if mtu >= c.PathMTU() {
		return
	}
	p := c.pmState()
	p.pmtu = uint16(mtu)
	if p.searchHigh > p.pmtu {
		p.searchHigh = p.pmtu // Linux's tcp_sync_mss: the search stays below the path MTU
	}
	if p.searchLow > p.pmtu {
		p.searchLow = p.pmtu
	}
	c.syncMSS()
	c.simpleRetransmit(now)
}

// pmState returns the path MTU state, allocating it on first use.
func (c *Conn) pmState() *pmtuState {
	p := &c.rareState().pm
	if p.clamp == 0 && c.state >= SynReceived {
		p.clamp = uint16(c.mss + c.optLen()) // the MSS negotiate chose: nothing lowered it yet
	}
	return p
}

// optLen is the length of the options every data segment carries.
func (c *Conn) optLen() int {
	if c.tsOK {
		return 12
	}
	return 0
}

// mtuToMSS returns the payload of a segment that fills an MTU, as Linux's
// tcp_mtu_to_mss: the IP and TCP headers and the options in use come off,
// and the peer's MSS (with ours) caps it.
func (c *Conn) mtuToMSS(mtu int) int {
	m := mtu - c.cfg.IPHeaderLen - HeaderMinLen
	if c.rare != nil && c.rare.pm.clamp != 0 {
		p := &c.rare.pm
		m = min(m, int(p.clamp))
	}
	return max(m-c.optLen(), probeFloorMSS)
}

// mssToMTU is the inverse: the MTU a segment of mss octets of payload fills.
func (c *Conn) mssToMTU(mss int) int { return mss + c.optLen() + HeaderMinLen + c.cfg.IPHeaderLen }

// syncMSS recomputes the MSS from the path MTU and, while PLPMTUD searches,
// search_low (Linux's tcp_sync_mss). Before the peer's SYN the MSS is not
// known yet; negotiate calls this again.
func (c *Conn) syncMSS() {
	p := &c.rare.pm
	if p.clamp == 0 {
		return
	}
	mss := c.mtuToMSS(c.PathMTU())
	if c.probing {
		mss = min(mss, c.mtuToMSS(int(p.searchLow)))
	}
	c.mss = max(mss, 64)
}

// simpleRetransmit marks lost the segments in flight larger than the MSS
// and retransmits them, cut to size, as Linux's tcp_simple_retransmit:
// their loss says nothing of congestion, so cwnd stays; the connection
// enters the loss state (as Linux's TCP_CA_Loss) until what was sent is
// acknowledged, so that the marks do not start a fast recovery.
func (c *Conn) simpleRetransmit(now time.Time) {
	if !c.state.synchronized() {
		return
	}
	dataEnd := c.sndBase.Add(c.snd.len())
	for i := 0; i < c.txq.n; i++ {
		if r := c.txq.at(i); int(MinSeq(r.end, dataEnd).Sub(r.start)) > c.mss {
			c.markLost(r)
		}
	}
	if c.lostBytes <= 0 {
		return
	}
	if !c.inRecovery && !c.inLoss {
		c.inLoss, c.recover = true, c.sndMax
		c.ptoAt = 0
	}
	c.lostFrom = c.sndUna
	c.output(now)
}

// resegment cuts every record of the scoreboard that carries more than
// mss octets of data into records of at most mss, each keeping the
// record's flags and send time, so that no retransmission exceeds the
// MSS (Linux fragments the skb in tcp_retransmit_skb). It runs only after
// the MSS dropped or a PLPMTUD probe was lost.
func (c *Conn) resegment(mss int) {
	q := c.txq
	dataEnd := c.sndBase.Add(c.snd.len())
	data := func(r *txSeg) int { return int(MinSeq(r.end, dataEnd).Sub(r.start)) }
	extra := 0
	for i := 0; i < q.n; i++ {
		if n := data(q.at(i)); n > mss {
			extra += (n - 1) / mss
		}
	}
	if extra == 0 {
		return
	}
	s := make([]txSeg, max(q.n+extra, 2*len(q.s)))
	k := 0
	for i := 0; i < q.n; i++ {
		r := *q.at(i)
		for data(&r) > mss {
			piece := r
			piece.end = r.start.Add(mss)
			s[k] = piece
			k++
			r.start = piece.end
		}
		s[k] = r
		k++
	}
	q.s, q.head, q.n = s, 0, k
}

// onBlackHole is PLPMTUD's black-hole detection, run by each
// retransmission timeout. Linux (tcp_write_timeout) suspects the path MTU
// once the retransmissions have lasted as long as tcp_retries1 (3)
// backed-off RTOs from the 200 ms minimum would (3 s), which at the
// minimum RTO is the fifth timeout in a row; we count the timeouts: four
// retransmissions unanswered, the fifth timeout falls back. Unlike Linux,
// only when the segment that timed out was full-sized: a connection
// sending small segments is not failing for their size (RFC 4821 §7.7
// leaves the heuristic open). The first detection turns the search on with search_low at tcp_base_mss (1024), which caps the MSS;
// each later one halves it, down to 48 (tcp_mtu_probing in tcp_timer.c).
// The retransmission that follows goes at the new size.
func (c *Conn) onBlackHole(now time.Time) {
	if c.cfg.NoMTUProbing || int(c.retries) < blackHoleRTOs || c.txq.n == 0 {
		return
	}
	r := c.txq.at(0)
	dataEnd := c.sndBase.Add(c.snd.len())
	if int(MinSeq(r.end, dataEnd).Sub(r.start)) < c.mss {
		return
	}
	p := c.pmState()
	if p.clamp == 0 {
		return
	}
	if !c.probing {
		c.probing = true
		p.searchLow = uint16(min(c.mssToMTU(baseMSS), c.PathMTU()))
		p.searchHigh = uint16(min(int(p.clamp)+HeaderMinLen+c.cfg.IPHeaderLen, c.PathMTU()))
		p.probeStamp = c.at(now)
	} else {
		mss := min(c.mtuToMSS(int(p.searchLow))>>1, baseMSS)
		p.searchLow = uint16(c.mssToMTU(max(mss, probeFloorMSS)))
	}
	p.probeSize = 0 // a probe in flight is lost with the rest
	before := c.mss
	c.syncMSS()
	if c.mss < before {
		c.rareStats().PLPMTUDFallbacks++
	}
}

// probeMSS decides whether the next new segment is a PLPMTUD probe, as
// Linux's tcp_mtu_probe: a segment of the size halfway between
// search_low and search_high, sent when the search is on and no probe is
// out, outside recovery, with cwnd of at least 11 segments, no SACK blocks
// to send, data queued for the probe and the segments behind it
// (reordering+1 of them), and room in both windows. It returns the
// probe's payload, 0 for no probe now (send as usual), or -1 to hold the
// data until an ACK makes room for the probe (Linux returns 0 then).
func (c *Conn) probeMSS(now time.Time, left, wndRoom, cwndRoom int) int {
	p := &c.rare.pm
	if p.probeSize != 0 || c.inRecovery || c.inLoss || c.cc.Cwnd() < 11*c.mss || c.sackOptLen() > 0 {
		return 0
	}
	size := c.mtuToMSS((int(p.searchLow) + int(p.searchHigh)) / 2)
	if size > c.mtuToMSS(int(p.searchHigh)) || size <= c.mss || int(p.searchHigh)-int(p.searchLow) < probeThreshold {
		// The search is over; search again after tcp_probe_interval
		// (Linux's tcp_mtu_check_reprobe).
		if c.at(now)-p.probeStamp >= tick(probeInterval) {
			p.searchHigh = uint16(min(int(p.clamp)+HeaderMinLen+c.cfg.IPHeaderLen, c.PathMTU()))
			p.searchLow = uint16(c.mssToMTU(c.mss))
			p.probeStamp = c.at(now)
		}
		return 0
	}
	need := size + (probeReordering+1)*c.mss
	if left < need || int(c.sndWnd) < need {
		return 0
	}
	if wndRoom < need {
		return -1
	}
	if cwndRoom < size+2*c.mss {
		if c.pipe() == 0 {
			return 0
		}
		return -1
	}
	return size
}

// probeSent records the probe sent as [seq, seq+n).
func (c *Conn) probeSent(seq Seq, n int) {
	p := &c.rare.pm
	p.probeSize = uint16(c.mssToMTU(n))
	p.probeStart, p.probeEnd = seq, seq.Add(n)
	c.rareStats().PLPMTUDProbes++
}

// probeAcked ends a probe the cumulative ACK covers: the path carries its
// size, which becomes search_low and the MSS (Linux's
// tcp_mtup_probe_success; cwnd counts bytes here, so it needs no
// rescaling for the new size).
func (c *Conn) probeAcked(ack Seq) {
	p := &c.rare.pm
	if p.probeSize == 0 || ack.LessThan(p.probeEnd) {
		return
	}
	p.searchLow, p.probeSize = p.probeSize, 0
	c.rareStats().PLPMTUDProbesAcked++
	c.syncMSS()
}

// probeLost handles the loss of a probe (markLost): the size is too
// large, search_high drops below it (Linux's tcp_mtup_probe_failed). A
// probe lost at the head of the flight is no sign of congestion: as Linux
// (tcp_fastretrans_alert) the connection retransmits without reducing
// cwnd, in the loss state as simpleRetransmit.
func (c *Conn) probeLost(r *txSeg) {
	p := &c.rare.pm
	if p.probeSize == 0 || r.start != p.probeStart {
		return
	}
	p.searchHigh, p.probeSize = p.probeSize-1, 0
	c.rareStats().PLPMTUDProbesLost++
	if r.start == c.sndUna && !c.inRecovery && !c.inLoss {
		c.inLoss, c.recover = true, c.sndMax
		c.ptoAt = 0
	}
}
