// Package tcp is netstack's TCP: the segment codec, sequence arithmetic and
// the connection state machine of RFC 9293, with these extensions: window
// scaling, timestamps and PAWS of RFC 7323, RTO of RFC 6298,
// SACK (RFC 2018, D-SACK of RFC 2883) with RFC 6675 loss recovery and
// RACK-TLP (RFC 8985) on a per-segment scoreboard, CUBIC (RFC 9438, the
// default), NewReno (RFC 5681/6582) or BBRv3 (draft-ietf-ccwg-bbr, with
// delivery-rate sampling and pacing), congestion window validation after
// idle (RFC 7661), challenge ACKs of RFC 5961, ISNs of RFC 6528, and
// buffers that grow with the bandwidth-delay product (buffer.go).
//
// The machine is sans-I/O: it knows no goroutines, locks, clocks or links.
// Every method takes the current time; segments to send go out through the
// emit function given to NewConn, synchronously, and state changes the
// shell must act on accumulate as Event bits (TakeEvents). Deadlines
// (retransmission, delayed ACK, persist, keepalive, FIN-WAIT-2, TIME-WAIT,
// handshake) are kept in the connection; NextDeadline reports the earliest
// and Timer fires those that are due.
//
// The shell's side of the contract:
//
//   - Parse each arriving segment (Parse with the pseudo-header sum), look
//     up its 4-tuple, and call Conn.Input; with no connection, call
//     Listener.Input on a listening port (register the *Conn it returns) or
//     reply with RstFor.
//   - Hold one lock per Conn around every call. After each call, read
//     TakeEvents and wake readers, writers and acceptors; re-arm one timer
//     for NextDeadline and call Timer when it passes.
//   - Copy each emitted segment into a frame (Segment.Encode) before emit
//     returns: its payload may alias the send buffer.
//   - On EvClosed drop the connection from the demux; if ReopenedBy
//     reports true, hand the same *Segment to the listener: Input noted in
//     it the ISN the new connection must take (above the old SND.NXT).
//   - Call Listener.Accepted when Accept hands a connection out.
//
// A Conn is not safe for concurrent use; a Listener's counters are shared
// with its children atomically.
package tcp

import (
	"io"
	"net/netip"
	"time"
)

// Conn is one TCP connection: the transmission control block of RFC 9293
// §3.3.1 and the machine that drives it.
type Conn struct {
	cfg   *Config // shared (a listener's children share its own); read-only
	out   Emitter
	cc    CongestionControl
	rare  *connRare // allocated on first use (stats.go)
	ooo   *oooList
	tune  *rcvTune   // receive-buffer autotuning, once data is read (buffer.go)
	ka    *KeepAlive // shared when it is the Config's or the usual one
	txq   *txQueue   // the scoreboard (sack.go); emptyTxQueue when nothing is in flight
	stats hotStats
	epoch time.Duration // ticks and the records' clock count from here: an offset from anchor, 0 until set (timer.go)
	rtt   rttEstimator
	snd   ring
	rcv   ring

	// Negotiated options.
	mss int // largest payload we send (peer MSS minus options)

	// Retransmission (RFC 6298) and loss recovery (RFC 5681, 6582, 6675,
	// 8985).
	lastSend   time.Duration
	rackMinRTT time.Duration // lowest RTT seen (RFC 8985 uses a windowed minimum)

	lastRcv tick // for keepalive

	// Deadlines, one per timer, the earliest armed by the shell; zero when
	// not armed.
	rtoAt       tick
	ptoAt       tick // tail loss probe (RFC 8985 §7)
	rackAt      tick // RACK reordering timer (RFC 8985 §6.3)
	delackAt    tick
	keepaliveAt tick
	stateAt     tick // the timeout of the state: SYN-RECEIVED, FIN-WAIT-2 (orphaned) or TIME-WAIT

	// Send sequence space (RFC 9293 §3.3.1).
	iss     Seq
	sndUna  Seq
	sndNxt  Seq
	sndMax  Seq    // highest sequence number sent plus one; equals sndNxt (retransmissions do not move it)
	sndWnd  uint32 // scaled
	sndWl1  Seq
	sndWl2  Seq
	maxWnd  uint32 // largest window the peer offered (RFC 9293 §3.8.6.2.1)
	sndBase Seq    // sequence number of the first byte in snd

	// Receive sequence space.
	irs        Seq
	rcvNxt     Seq
	rcvAdv     Seq // right edge of the window we last advertised
	rcvAckSent Seq // Last.ACK.sent (RFC 7323 §4.3): RCV.NXT in our last ACK, Linux's rcv_wup
	tsRecent   uint32
	tsRecentAt uint32 // when tsRecent was set, as a tick in whole seconds rounded up, for RFC 7323 §5.5's 24 days
	tsLast     uint32 // the TSVal we last sent: never go back from it

	retries  int32
	dupAcks  int32
	recover  Seq // RecoveryPoint (RFC 6675), "recover" (RFC 6582)
	lostFrom Seq // no record below this is lost (a search hint)
	sackHigh Seq // highest sequence number SACKed or ACKed
	tlpHigh  Seq // SND.NXT when the tail loss probe was sent

	// Per-connection settings, initially the Config's.
	rcvBuf, rcvBufMax int32 // RecvBuf (autotuned) and RecvBufMax
	sndBuf, sndBufMax int32 // SendBuf (grown with cwnd) and SendBufMax
	// Octets of records SACKed, of records deemed lost and not yet resent,
	// and, without SACK, those duplicate ACKs say have left: int32 (a
	// window is at most 1 GiB), so that a Conn fits its allocation class.
	sackedBytes, lostBytes, renoSacked int32

	rcvMSS int32 // largest payload we expect (our MSS minus options); int32 to pack with the fields above

	lport, rport uint16
	ackMSS       uint16 // the peer's sending MSS as we see it: the "full-sized segment" of the delayed ACK (processData)

	state     State
	errc      uint8 // the connection's error: an index into connErrs
	events    Event
	sndWScale uint8
	rcvWScale uint8
	backoff   uint8
	kaProbes  uint8 // keep-alive probes unanswered (at most 255: Linux allows 127)

	tsOK       bool
	sackOK     bool
	wsOK       bool
	nagle      bool
	rcvFinWait bool // a FIN waits at rcvFinSeq
	hasDSACK   bool
	rcvNoMem   bool // in-window data was dropped for want of memory: ACKs announce only the ring's free space
	sndShrunk  bool // the peer's window shrank below data in flight (RFC 1122 §4.2.2.16)

	// Close bookkeeping.
	finQueued  bool // CloseWrite called: FIN follows the queued data
	finAcked   bool
	rcvFin     bool  // the peer's FIN has been received in order
	readClosed bool  // CloseRead: input data is discarded
	orphan     bool  // Close called: nobody will read, FIN-WAIT-2 times out
	reopened   bool  // TIME-WAIT ended by a new SYN for the listener
	opened     uint8 // how the connection opened: openedActive, openedPassive, openedHalfOpen

	ackNow      bool // send an ACK at the end of this call
	rttActive   bool // timing the SYN, sent at epoch (data is timed by its records)
	cwndLimited bool // the last send stopped at cwnd (RFC 7661 §4.3)
	inRecovery  bool
	inLoss      bool  // after an RTO, until SND.NXT at its time is acked
	tlpOut      bool  // a tail loss probe is out
	rackReord   bool  // reordering observed (RACK.reordering_seen)
	rackDSACK   bool  // a D-SACK arrived since the last RACK adjustment
	rackReo     uint8 // RACK.reo_wnd_mult - 1 (bits 0-2) and RACK.reo_wnd_persist (bits 3-7): reoMult, reoPersist (rack.go)
	probing     bool  // PLPMTUD searches (Linux's icsk_mtup.enabled); its state is in rare (pmtu.go)
	ecn         uint8 // ECN state (RFC 3168): ecnOK, ecnEcho, ecnCWR, ecnCWROut (ecn.go)
	rtoHeld     uint8 // RTOs in a row put off while the link's queues held frames (onRTO)
}

// How a connection opened (Conn.opened).
const (
	openedActive   = iota // by Connect
	openedPassive         // by a listener's SYN cookie, AcceptSYN, or a listener's SYN after SYN-RECEIVED
	openedHalfOpen        // by a listener's SYN, in SYN-RECEIVED: it holds one of the listener's half-open slots
)

// An Emitter takes the segments a connection sends. Emit is called
// synchronously from inside the connection's methods for each segment; the
// segment and its payload (which may alias the send buffer) are valid only
// during the call. The shell's endpoint is the Emitter, so a connection
// needs no closure of its own.
type Emitter interface {
	Emit(seg *Segment)
}

// EmitFunc adapts a function to an Emitter.
type EmitFunc func(seg *Segment)

// Emit calls f(seg).
func (f EmitFunc) Emit(seg *Segment) { f(seg) }

// NewConn returns a connection in CLOSED between local and remote, whose
// initial send sequence number is isn, sending through emit. Buffers are
// allocated on first use.
func NewConn(cfg *Config, local, remote netip.AddrPort, isn Seq, emit Emitter) *Conn {
	d := defaultConfig
	if cfg != nil && cfg.prepared {
		d = cfg
	} else if cfg != nil {
		d = Prepare(cfg)
	}
	return newConn(d, local, remote, isn, emit)
}

// defaultConfig is the configuration of connections made with a nil one.
var defaultConfig = Prepare(nil)

// newConn is NewConn with a configuration whose defaults are applied,
// which the connection shares and never modifies: the settings a
// connection may change for itself (buffer sizes, Nagle, congestion
// control) are copied into it.
func newConn(cfg *Config, local, remote netip.AddrPort, isn Seq, emit Emitter) *Conn {
	c := &Conn{cfg: cfg, lport: local.Port(), rport: remote.Port(), out: emit}
	c.txq = &emptyTxQueue
	c.rcvBuf, c.rcvBufMax = int32(cfg.RecvBuf), int32(cfg.RecvBufMax)
	c.sndBuf, c.sndBufMax = int32(cfg.SendBuf), int32(cfg.SendBufMax)
	c.nagle = cfg.Nagle
	c.setKA(c.cfg.KeepAlive)
	c.iss = isn
	c.sndUna, c.sndNxt, c.sndMax, c.sndBase = isn, isn, isn, isn.Add(1)
	c.recover = isn
	c.setWScale()
	c.rcvMSS = int32(c.cfg.MSS)
	c.ackMSS = uint16(min(c.rcvMSS, 536))
	c.mss = min(c.cfg.MSS, 536) // RFC 9293 §3.7.1 default until the peer tells
	return c
}

// setWScale picks the window shift (RFC 7323 §2.3) the largest receive
// buffer needs.
func (c *Conn) setWScale() { c.rcvWScale = wscaleFor(int(c.rcvBufMax)) }

// wscaleFor returns the smallest window shift that lets the window cover
// a buffer of n bytes.
func wscaleFor(n int) uint8 {
	s := uint8(0)
	for s < MaxWScale && n>>s > 65535 {
		s++
	}
	return s
}

// tsOffsetFor returns the timestamp clock offset of the connection whose
// ISN is isn (RFC 7323 §5.4: not revealing uptime); a SYN cookie's
// SYN-ACK computes it before the connection exists.
func tsOffsetFor(isn Seq) uint32 { return uint32(isn) * 2654435761 }

// makeCC returns a new congestion control for the current MSS.
func (c *Conn) makeCC() CongestionControl {
	if c.rare != nil && c.rare.newCC != nil {
		return c.rare.newCC(c.mss)
	}
	return c.cfg.NewCC(c.mss)
}

// setKA applies keepalive settings whose defaults are filled in, sharing
// them when they are the Config's or the defaults with Enable (what the
// shell sets on every connection, as Go's net does).
func (c *Conn) setKA(k KeepAlive) {
	switch k {
	case c.cfg.KeepAlive:
		c.ka = &c.cfg.KeepAlive
	case *kaOn:
		c.ka = kaOn
	default:
		p := new(KeepAlive)
		*p = k
		c.ka = p
	}
}

var kaOn = func() *KeepAlive { k := KeepAlive{Enable: true}.withDefaults(); return &k }()

// State returns the connection's state.
func (c *Conn) State() State { return c.state }

// Err returns why the connection failed: ErrRefused, ErrReset,
// ErrTimedOut, ErrAborted, or nil.
func (c *Conn) Err() error {
	if c.error() == ErrClosed {
		return nil
	}
	return c.error()
}

// connErrs are the errors a connection can fail with, kept as an index.
var connErrs = [...]error{nil, ErrRefused, ErrReset, ErrTimedOut, ErrClosed, ErrAborted}

func errCode(err error) uint8 {
	for i, e := range connErrs {
		if e == err {
			return uint8(i)
		}
	}
	panic("tcp: unknown connection error")
}

// error returns the connection's error, ErrClosed included.
func (c *Conn) error() error { return connErrs[c.errc] }

// TakeEvents returns the events raised since the last call and clears them.
func (c *Conn) TakeEvents() Event {
	e := c.events
	c.events = 0
	return e
}

// ReopenedBy reports whether the connection left TIME-WAIT because of a new
// SYN for the same 4-tuple (RFC 9293 §3.6.1); the shell should hand that SYN,
// the *Segment given to Input, to the listener, which then starts the new
// connection's sequence numbers above the old one's (RFC 9293 §3.10.7.4).
func (c *Conn) ReopenedBy() bool { return c.reopened }

// Readable returns the number of bytes Read would return now.
func (c *Conn) Readable() int {
	if c.readClosed {
		return 0
	}
	return c.rcv.len()
}

// ReadClosed reports whether Read has reached the end of the stream: the
// peer's FIN arrived (or CloseRead was called) and no data is left, or the
// connection failed and the data that arrived before has been read.
func (c *Conn) ReadClosed() bool {
	return c.readClosed || (c.rcv.len() == 0 && (c.error() != nil || c.rcvFin))
}

// Writable returns the number of bytes Write would accept now; 0 when the
// buffer is full or writing is over (then Write returns the error). Under
// memory pressure the buffer is what the send ring already holds.
func (c *Conn) Writable() int {
	if c.writeErr() != nil {
		return 0
	}
	return max(c.cfg.Budget.room(len(c.snd.buf), int(c.sndBuf))-c.snd.len(), 0)
}

// WriteClosed reports whether Write would fail.
func (c *Conn) WriteClosed() bool { return c.writeErr() != nil }

// SetNoDelay turns Nagle's algorithm off (true) or on (false).
func (c *Conn) SetNoDelay(noDelay bool) { c.nagle = !noDelay }

// SetKeepAlive changes the keepalive settings; zero fields take defaults.
func (c *Conn) SetKeepAlive(now time.Time, k KeepAlive) {
	c.setKA(k.withDefaults())
	c.kaProbes = 0
	c.keepaliveAt = 0
	c.armKeepalive(now)
}

// SetRecvBuf fixes the receive buffer at n bytes (SO_RCVBUF: autotuning
// stops), at any time. Before the handshake it also sizes the window
// scale; after, the window cannot grow past what the scale allows. A
// smaller buffer takes effect as data is read: the window is never
// withdrawn (RFC 9293 §3.8.6), so data beyond the new size that arrives
// within the old window is dropped and retransmitted.
func (c *Conn) SetRecvBuf(n int) {
	n = min(max(n, 2*c.cfg.MSS), 65535<<MaxWScale)
	c.rcvBuf, c.rcvBufMax = int32(n), int32(n)
	if c.state < SynSent {
		c.setWScale()
	} else {
		c.rcvBuf = int32(min(n, 65535<<c.rcvWScale))
	}
	c.shrinkRings()
}

// SetSendBuf fixes the send buffer at n bytes (SO_SNDBUF: growth stops), at
// any time. Data already queued beyond a smaller size stays queued; Write
// accepts more once it drains below n.
func (c *Conn) SetSendBuf(n int) {
	n = min(max(n, 2*c.cfg.MSS), 1<<30)
	c.sndBuf, c.sndBufMax = int32(n), int32(n)
	c.shrinkRings()
	c.events |= EvWritable
}

// SetCC replaces the connection's congestion control (as TCP_CONGESTION);
// the new one starts from the current cwnd and ssthresh only in that it
// starts afresh with the initial window. nil selects the default.
func (c *Conn) SetCC(newCC func(mss int) CongestionControl) {
	if newCC == nil {
		newCC = NewCubic
	}
	c.rareState().newCC = newCC
	if c.cc != nil {
		c.cc = newCC(c.mss)
	}
}

// Connect performs an active open (RFC 9293 §3.10.1): SYN, SYN-SENT.
func (c *Conn) Connect(now time.Time) {
	if c.state != Closed || c.sndMax != c.iss || c.reopened || c.error() != nil { // a connection opens once
		return
	}
	c.state = SynSent
	c.setEpoch(now)
	c.sendSYN(now)
	c.sndNxt, c.sndMax = c.iss.Add(1), c.iss.Add(1)
	c.rttActive = true // the SYN was sent at epoch
	c.rtoAt = c.at(now) + tick(c.rto())
}

// Write queues as much of p as fits in the send buffer (RFC 9293 §3.10.2)
// and sends what the windows allow. It returns (0, nil) when the buffer is
// full, or the send ring is and the budget refuses it more memory, and an
// error once writing is over.
func (c *Conn) Write(now time.Time, p []byte) (int, error) {
	if err := c.writeErr(); err != nil {
		return 0, err
	}
	n := min(len(p), int(c.sndBuf)-c.snd.len())
	if n <= 0 {
		return 0, nil
	}
	if room := c.cfg.Budget.room(len(c.snd.buf), int(c.sndBuf)) - c.snd.len(); room < n {
		// Memory pressure: the ring does not grow. When it is full,
		// acknowledgments will free space (EvWritable); that is no new
		// refusal.
		if room <= 0 {
			return 0, nil
		}
		c.budgetHit()
		n = room
	}
	if !c.snd.reserve(c.cfg.Budget, c.snd.len()+n, c.snd.len(), int(c.sndBufMax)) {
		c.budgetHit()
		if n = c.snd.free(); n == 0 {
			return 0, nil // acknowledgments will free space (EvWritable)
		}
	}
	c.snd.write(p[:n])
	c.output(now)
	return n, nil
}

func (c *Conn) writeErr() error {
	if c.error() != nil {
		return c.error()
	}
	if c.finQueued || c.state == Closed || c.state == Listen {
		return ErrClosed
	}
	return nil
}

// Read moves in-order received data into p (RFC 9293 §3.10.3). It returns
// (0, io.EOF) once the peer's FIN is reached, (0, nil) when nothing is
// available yet, and the connection's error after a failure, once the data
// that arrived before it has been read (as Linux returns queued data
// before ECONNRESET). Freeing buffer space may send a window update.
func (c *Conn) Read(now time.Time, p []byte) (int, error) {
	if c.rcv.len() == 0 || c.readClosed {
		switch {
		case c.error() != nil:
			return 0, c.error()
		case c.readClosed || c.rcvFin:
			return 0, io.EOF
		}
		return 0, nil
	}
	before := c.rcvAdv.Sub(c.rcvNxt)
	n := c.rcv.read(p)
	switch {
	case c.rcv.len() == 0 && (c.state == Closed || c.state == TimeWait):
		c.rcv.release(c.cfg.Budget) // nothing more can arrive
	case c.ooo == nil || c.ooo.n == 0:
		if !c.rcvNoMem {
			c.rcv.releaseIfSmall(c.cfg.Budget)
		}
		c.rcv.rewind()
	}
	c.rcvSpaceAdjust(now, n)
	c.maybeWindowUpdate(now, int(before))
	return n, nil
}

// maybeWindowUpdate sends an ACK if reading opened the window enough to
// matter: by at least min(window/2, MSS) beyond what we advertised, when
// that advertisement was below half the largest window we can offer (RFC
// 9293 §3.8.6.2.2 and Linux's __tcp_cleanup_rbuf).
func (c *Conn) maybeWindowUpdate(now time.Time, advertised int) {
	if !c.state.synchronized() || c.rcvFin {
		return
	}
	if c.rcvNoMem {
		// Short of memory (advertise): the update follows the ring's
		// free space, from the edge announced last.
		grow := c.rcvNxt.Add(len(c.rcv.buf) - c.rcv.len()).Sub(c.rareState().rcvAnn)
		if int(grow) >= min(len(c.rcv.buf)/2, int(c.rcvMSS)) {
			c.ackNow = true
			c.output(now)
		}
		return
	}
	room := c.rcvRoom()
	maxw := min(room, 65535<<c.rcvWScale)
	grow := c.rcvNxt.Add(min(room-c.rcv.len(), maxw)).Sub(c.rcvAdv)
	if advertised < maxw/2 && int(grow) >= min(maxw/2, int(c.rcvMSS)) {
		c.ackNow = true
		c.output(now)
	}
}

// CloseWrite half-closes the connection (RFC 9293 §3.10.4): a FIN follows
// the queued data; reading continues.
func (c *Conn) CloseWrite(now time.Time) {
	if c.finQueued {
		return
	}
	switch c.state {
	case Closed, Listen:
		return
	case SynSent:
		c.terminate(nil)
		return
	case SynReceived, Established:
		c.finQueued = true
		if c.state == Established {
			c.state = FinWait1
		}
	case CloseWait:
		c.finQueued = true
		c.state = LastAck
	default:
		return
	}
	c.output(now)
}

// CloseRead shuts down the read side as Linux's SHUT_RD: buffered and
// further data is discarded (and still acknowledged), Read returns io.EOF.
func (c *Conn) CloseRead(now time.Time) {
	if c.readClosed {
		return
	}
	before := c.rcvAdv.Sub(c.rcvNxt)
	c.readClosed = true
	c.rcv.release(c.cfg.Budget)
	c.ooo = nil
	c.events |= EvReadable
	c.maybeWindowUpdate(now, int(before))
}

// Close closes both directions. If received data is still unread, the
// connection is reset instead, as Linux does (RFC 2525 §2.17); otherwise a
// FIN follows the queued data and the machine finishes the close on its own
// (with a FIN-WAIT-2 timeout).
func (c *Conn) Close(now time.Time) {
	if c.state == Closed || c.orphan {
		c.orphan = true
		if c.state == Closed {
			// Data kept for reading after a reset or a timeout: nobody
			// will read it now.
			c.rcv.release(c.cfg.Budget)
			c.ooo = nil
		}
		return
	}
	if c.rcv.len() > 0 && !c.readClosed {
		c.Abort(now)
		return
	}
	c.orphan = true
	c.readClosed = true
	c.CloseWrite(now)
	if c.state == FinWait2 && c.stateAt == 0 {
		c.stateAt = c.at(now) + tick(c.cfg.FinWait2Timeout)
	}
}

// Abort resets the connection now (RFC 9293 §3.10.5; SetLinger(0)): a RST
// goes out in the synchronized states and the connection is CLOSED.
func (c *Conn) Abort(now time.Time) {
	c.reset()
	c.orphan = true
	if c.state != Closed {
		c.terminate(ErrClosed)
	}
	c.rcv.release(c.cfg.Budget)
}

// Kill ends the connection under its user, as Abort does on the wire (a
// RST where the state calls for one), but leaves it to the user, whose
// calls then fail with ErrAborted: what Linux's tcp_abort does when the
// connection's address goes.
func (c *Conn) Kill(now time.Time) {
	if c.state == Closed {
		return
	}
	c.reset()
	c.terminate(ErrAborted)
}

// reset sends the RST that ends a synchronized connection.
func (c *Conn) reset() {
	switch c.state {
	case SynReceived, Established, FinWait1, FinWait2, CloseWait:
		s := c.newSeg(FlagRST | FlagACK)
		s.Seq = c.sndMax
		c.xmit(s)
	}
}

// terminate moves the connection to CLOSED for good with err (nil for an
// orderly end) and disarms every timer.
func (c *Conn) terminate(err error) {
	if c.state == SynReceived {
		c.leaveSynRcvd(false)
	}
	c.state = Closed
	if err != nil && c.errc == 0 {
		c.errc = errCode(err)
		if err != ErrClosed {
			c.events |= EvError
		}
	}
	c.events |= EvClosed | EvReadable | EvWritable
	c.rtoAt, c.delackAt, c.keepaliveAt = 0, 0, 0
	c.setPersist(0)
	c.stateAt = 0
	c.ptoAt, c.rackAt = 0, 0
	c.ackNow = false
	c.freeBuffers()
}

// leaveSynRcvd releases the connection's half-open slot in its listener
// and, when it became established, counts it in the accept queue.
func (c *Conn) leaveSynRcvd(established bool) {
	if c.opened == openedHalfOpen {
		l := c.cfg.listener
		l.halfOpen.Add(-1)
		if established {
			l.acceptQ.Add(1)
		}
		c.opened = openedPassive
	}
}

// rto returns the current retransmission timeout with exponential backoff
// (RFC 6298 §5.5), capped at MaxRTO.
func (c *Conn) rto() time.Duration {
	d := c.rtt.base(c.cfg)
	for i := uint8(0); i < c.backoff && d < c.cfg.MaxRTO; i++ {
		d *= 2
	}
	return min(d, c.cfg.MaxRTO)
}

// inFlight returns the octets sent and not acknowledged (FlightSize).
func (c *Conn) inFlight() int { return int(c.sndNxt.Sub(c.sndUna)) }
