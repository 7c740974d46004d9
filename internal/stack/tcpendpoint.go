package stack

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// A TCPEndpoint is one TCP connection: the core machine, the lock around
// it, the frames it emitted waiting to be sent, its timer, and the
// readiness channels its users wait on. The demux table holds it; the
// public package wraps it in a net.Conn.
//
// Each method takes mu, calls the core with the time now, acts on the
// events the core raised (wake readers, writers and the dialer, queue an
// accepted child, re-arm the timer), releases mu and only then sends the
// frames the core emitted, in order.
type TCPEndpoint struct {
	s             *Stack
	local, remote netip.Addr
	listener      *Listener // set for passive connections

	mu         sync.Mutex // guards everything below and the core
	core       *tcp.Conn
	readReady  chan struct{} // capacity 1: something changed for readers; made by the first to wait
	writeReady chan struct{} // capacity 1: the same for writers, and for the dialer until the handshake ends
	out        *[]outFrame   // frames emitted under mu, sent after it; pooled by the stack
	timer      *connTimer    // nil while no deadline is near (armTimer)
	timerAt    int64         // the deadline timer is armed or parked for, in Unix nanoseconds (smaller than a time.Time); 0: none
	shook      bool          // the handshake ended, either way
	closed     bool          // Close or Abort was called
	gone       bool          // forgotten by the demux
	timeWait   bool          // entered TIME-WAIT: on the stack's list of them
	farParked  bool          // maybe in a bucket of the stack's far deadlines (tcptimer.go)
	hr         uint8         // headroom of a frame before the TCP header: ip.Headroom or, to IPv6, ip.Headroom6
	hard       uint16        // the errno of an ICMP hard error during the handshake; 0: none
	lport      uint16        // with local and remote, the 4-tuple: set at creation, never changed (here to pack)
	rport      uint16
	pseudoBase uint32     // pseudo-header sum without the length
	linger     int32      // SetLinger: < 0 default, 0 abort on Close
	sendMu     sync.Mutex // held while frames go out, to keep their order
	farSlot    int32      // the bucket of far deadlines it is in, 0: none; guarded by the stack's far.mu
	farIdx     int32      // its index there; guarded by far.mu
}

func (s *Stack) newEndpoint(laddr, raddr netip.AddrPort, l *Listener) *TCPEndpoint {
	return &TCPEndpoint{
		s:          s,
		local:      laddr.Addr(),
		remote:     raddr.Addr(),
		lport:      laddr.Port(),
		rport:      raddr.Port(),
		listener:   l,
		linger:     -1,
		pseudoBase: checksum.Pseudo(laddr.Addr(), raddr.Addr(), ip.ProtoTCP, 0),
		hr:         uint8(headroom(raddr.Addr())),
	}
}

// LocalAddr returns the connection's local address.
func (c *TCPEndpoint) LocalAddr() netip.AddrPort { return netip.AddrPortFrom(c.local, c.lport) }

// RemoteAddr returns the peer's address.
func (c *TCPEndpoint) RemoteAddr() netip.AddrPort { return netip.AddrPortFrom(c.remote, c.rport) }

// key is the connection's key in the demux table.
func (c *TCPEndpoint) key() tcpKey { return tcpKey{c.local.As16(), c.remote.As16(), c.lport, c.rport} }

// Done is closed when the stack closes.
func (c *TCPEndpoint) Done() <-chan struct{} { return c.s.done }

// outFrame is a frame built under mu and sent after it. On a link with
// segmentation offload, consecutive full-sized data segments of one call
// are coalesced into one super-segment (gso.Segs > 1) for the link to cut
// again into the same segments.
type outFrame struct {
	bp  *[]byte
	n   int   // bytes used, from the start of *bp
	ecn uint8 // the ECN field of the IP header (RFC 3168)
	gso tcp.SuperSegment
}

// Emit is the core's output (the endpoint is its tcp.Emitter): it encodes seg into a frame at once (its
// payload aliases the send ring) and queues the frame for unlockAndSend.
// Called with mu held, or before the connection is visible to others.
func (c *TCPEndpoint) Emit(seg *tcp.Segment) {
	if seg.Flags&tcp.FlagRST != 0 {
		stats.Inc(&c.s.st.TCP.ResetsOut)
	}
	if seg.Retrans {
		stats.Inc(&c.s.st.TCP.Retransmits)
	}
	if c.out == nil {
		c.out = c.s.outPool.Get().(*[]outFrame)
	}
	out := *c.out
	super := c.s.gsoOK && tcp.Coalescible(seg) && c.remote != c.local
	if super && len(out) > 0 {
		if f := &out[len(out)-1]; f.gso.Add(seg, len(*f.bp)-f.n) {
			f.n += copy((*f.bp)[f.n:], seg.Payload)
			return
		}
	}
	n := seg.HeaderLen() + len(seg.Payload)
	var bp *[]byte
	if super {
		bp = c.s.frames.GetBig()
	} else {
		bp = c.s.frames.Get(int(c.hr) + n)
	}
	hr := int(c.hr)
	seg.Encode((*bp)[hr:hr+n], c.pseudoBase+uint32(n))
	f := outFrame{bp: bp, n: hr + n, ecn: seg.ECN}
	if super {
		f.gso.Start(seg)
	}
	*c.out = append(out, f)
}

// send hands one frame to the IP layer. It returns link.ErrFull if the
// link's queue refused it, which may then be sent again: its segments
// count once they leave.
func (c *TCPEndpoint) send(now time.Time, f *outFrame) error {
	segs, err := 1, error(nil)
	if f.gso.Segs <= 1 {
		err = c.s.host.OutputECN(now, (*f.bp)[:f.n], ip.ProtoTCP, c.local, c.remote, true, f.ecn)
	} else {
		segs = f.gso.Segs
		f.gso.Finish(tcp.Header((*f.bp)[int(c.hr):f.n]), c.pseudoBase) // the same again if resent
		err = c.s.host.OutputGSO(now, (*f.bp)[:f.n], c.local, c.remote, f.gso.GSO, f.gso.HdrLen, f.ecn)
	}
	if errors.Is(err, link.ErrFull) {
		return err
	}
	stats.Add(&c.s.st.TCP.SegmentsOut, uint64(segs))
	return nil
}

// sendFrames sends frames in order; sendMu is held. On a link with the
// Queue capability, once its queue refuses a frame, that frame and those
// behind it wait in the stack's linkHold, as do all frames sent while any
// wait there (see linkHold). It returns the buffers of the frames sent to
// the pool; the held ones are the hold's.
func (c *TCPEndpoint) sendFrames(now time.Time, frames []outFrame) {
	h := c.s.hold
	for i := range frames {
		f := &frames[i]
		if h != nil && h.full.Load() && h.queue(c, frames[i:]) {
			return
		}
		if err := c.send(now, f); err != nil && h != nil {
			h.refused(c, frames[i:])
			return
		}
		c.s.frames.Put(f.bp)
	}
}

// resume sends what the core held back while the link's queue was full.
func (c *TCPEndpoint) resume() {
	c.mu.Lock()
	now := time.Now()
	c.core.Resume(now)
	c.finish(now)
}

// afterLocked acts on the events of the last core call: it wakes readers,
// writers and the dialer, queues an accepted connection, and re-arms the
// timer. mu is held.
func (c *TCPEndpoint) afterLocked(now time.Time) {
	ev := c.core.TakeEvents()
	if ev&tcp.EvHeld != 0 {
		c.s.hold.wait(c)
	}
	if ev&(tcp.EvEstablished|tcp.EvError|tcp.EvClosed) != 0 && !c.shook {
		c.shook = true
		// Wake the dialer (HandshakeWait) and drop its channel: nobody
		// else waits during the handshake, and the connection may idle
		// for long.
		signal(c.writeReady)
		c.writeReady = nil
		if ev&tcp.EvEstablished != 0 && c.listener != nil {
			c.listener.established(c)
		}
	}
	if ev&(tcp.EvReadable|tcp.EvError|tcp.EvClosed) != 0 {
		signal(c.readReady)
	}
	if ev&(tcp.EvWritable|tcp.EvError|tcp.EvClosed) != 0 {
		signal(c.writeReady)
	}
	next := c.core.NextDeadline()
	if !c.timeWait && c.core.State() == tcp.TimeWait {
		c.timeWait = true
		c.s.enteredTimeWait(c)
	}
	if ev&tcp.EvClosed != 0 && c.core.State() == tcp.Closed {
		next = time.Time{}
		if !c.gone {
			c.gone = true
			c.s.forget(c, c.core.Stats())
		}
	}
	c.armTimer(now, next)
}

// armTimer makes the connection's timer fire at next (zero: never). A
// deadline farAfter away or more is parked with the stack instead
// (tcptimer.go), so an idle connection holds no timer: it gives its timer
// back to the stack's pool. mu is held.
func (c *TCPEndpoint) armTimer(now, next time.Time) {
	var at int64
	if !next.IsZero() {
		at = next.UnixNano()
	}
	if at == c.timerAt {
		return
	}
	c.timerAt = at
	d := max(next.Sub(now), 0)
	if at == 0 || d >= farAfter {
		c.dropTimer()
		if at == 0 {
			c.unpark()
		} else {
			c.park(now, next)
		}
		return
	}
	c.unpark()
	if c.timer == nil {
		c.timer = c.s.far.lendTimer(c, d)
	} else {
		c.timer.t.Reset(d)
	}
}

// unlockAndSend releases mu and sends the frames queued under it, in
// order: sendMu is taken before mu is released, so a later caller's frames
// cannot overtake these.
func (c *TCPEndpoint) unlockAndSend(now time.Time) {
	if c.out == nil {
		c.mu.Unlock()
		return
	}
	out := c.out
	c.out = nil
	c.sendMu.Lock()
	c.mu.Unlock()
	c.sendFrames(now, *out)
	c.sendMu.Unlock()
	clear(*out)
	*out = (*out)[:0]
	c.s.outPool.Put(out)
}

// finish ends a call made with mu held: events, then unlock and send.
func (c *TCPEndpoint) finish(now time.Time) {
	c.afterLocked(now)
	c.unlockAndSend(now)
}

func (c *TCPEndpoint) onTimer() {
	c.mu.Lock()
	now := time.Now()
	c.timerAt = 0
	c.core.Timer(now)
	c.finish(now)
}

// input hands a segment to the core. It reports whether the segment should
// go on to the listener (a TIME-WAIT connection reopened by a new SYN).
func (c *TCPEndpoint) input(now time.Time, seg *tcp.Segment) bool {
	c.mu.Lock()
	c.core.Input(now, seg)
	reopen := c.core.ReopenedBy()
	var st tcp.Stats
	if reopen {
		st = c.core.Stats()
	}
	c.finish(now)
	if reopen {
		c.s.forget(c, st)
	}
	return reopen
}

// hardError fails a connection still in its handshake with errno.
func (c *TCPEndpoint) hardError(errno syscall.Errno) {
	c.mu.Lock()
	if st := c.core.State(); st != tcp.SynSent && st != tcp.SynReceived {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	c.hard = uint16(errno)
	c.core.Abort(now)
	c.finish(now)
}

// AwaitHandshake waits until the handshake of a dialed or forwarded
// connection ends, either way (then HandshakeErr tells which), cancel is
// closed or the stack closes; it reports whether the handshake ended. One
// goroutine at a time may wait.
func (c *TCPEndpoint) AwaitHandshake(cancel <-chan struct{}) bool {
	for {
		ready, ended := c.handshakeWait()
		if ended {
			return true
		}
		select {
		case <-ready:
		case <-cancel:
			return false
		case <-c.s.done:
			return false
		}
	}
}

// handshakeWait reports whether the handshake has ended; if not, it
// returns the channel signalled when it may have.
func (c *TCPEndpoint) handshakeWait() (ready <-chan struct{}, ended bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shook {
		return nil, true
	}
	return waitChan(&c.writeReady), false
}

// HandshakeErr returns why the handshake failed (a core sentinel or an
// ICMP errno), or nil.
func (c *TCPEndpoint) HandshakeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.core.Err(); err != nil {
		return err
	}
	if c.hard != 0 {
		return syscall.Errno(c.hard)
	}
	return nil
}

// Abort resets the connection (RST where the state calls for one) and
// marks it closed.
func (c *TCPEndpoint) Abort() {
	c.mu.Lock()
	now := time.Now()
	c.closed = true
	c.core.Abort(now)
	c.finish(now)
}

// Kill ends the connection under its user (a RST to the peer where the
// state calls for one); the user's next calls fail with tcp.ErrAborted.
func (c *TCPEndpoint) Kill() {
	c.mu.Lock()
	now := time.Now()
	c.core.Kill(now)
	c.finish(now)
}

// Closed reports whether Close or Abort was called.
func (c *TCPEndpoint) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Read reads into b without blocking. With nothing to read (n == 0, err
// nil, b not empty) wait on the returned channel, which is signalled when
// something changes for readers. After Close it returns net.ErrClosed;
// after the peer's FIN io.EOF; a failed connection returns the core's
// sentinel.
func (c *TCPEndpoint) Read(b []byte) (int, error, <-chan struct{}) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed, nil
	}
	if c.core.Readable() == 0 {
		// Nothing to read: the core only reports the end of the stream or
		// an error, changing nothing, so neither the clock (slow on some
		// machines) nor the events and timer need a look.
		_, err := c.core.Read(time.Time{}, b)
		ready := waitChan(&c.readReady)
		c.mu.Unlock()
		return 0, err, ready
	}
	now := time.Now()
	n, err := c.core.Read(now, b)
	if n > 0 && c.core.Readable() > 0 {
		signal(c.readReady) // let a concurrent reader in
	}
	c.afterLocked(now)
	ready := waitChan(&c.readReady)
	c.unlockAndSend(now)
	return n, err, ready
}

// Write puts as much of b in the send buffer as fits, without blocking,
// and returns how much; when not all of it fits, wait on the returned
// channel. After Close it returns net.ErrClosed, after CloseWrite
// tcp.ErrClosed.
func (c *TCPEndpoint) Write(b []byte) (int, error, <-chan struct{}) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed, nil
	}
	now := time.Now()
	n, err := c.core.Write(now, b)
	if n == len(b) && c.core.Writable() > 0 {
		signal(c.writeReady) // let a concurrent writer in
	}
	c.afterLocked(now)
	ready := waitChan(&c.writeReady)
	c.unlockAndSend(now)
	return n, err, ready
}

// Close closes the connection: queued data is still sent, then a FIN; if
// unread data remains, or SetLinger(0) was called, the connection is reset
// instead, as Linux does. Blocked readers and writers are woken. A second
// Close returns net.ErrClosed.
func (c *TCPEndpoint) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	now := time.Now()
	if c.linger == 0 {
		c.core.Abort(now)
	} else {
		c.core.Close(now)
	}
	signal(c.readReady)
	signal(c.writeReady)
	c.finish(now)
	return nil
}

// CloseRead shuts down the reading side.
func (c *TCPEndpoint) CloseRead() error {
	return c.do(func(now time.Time) { c.core.CloseRead(now); signal(c.readReady) })
}

// CloseWrite shuts down the writing side: queued data is sent, then a FIN.
func (c *TCPEndpoint) CloseWrite() error {
	return c.do(func(now time.Time) { c.core.CloseWrite(now); signal(c.writeReady) })
}

// SetNoDelay controls Nagle's algorithm.
func (c *TCPEndpoint) SetNoDelay(noDelay bool) error {
	return c.do(func(time.Time) { c.core.SetNoDelay(noDelay) })
}

// SetKeepAlive sets keep-alive probing.
func (c *TCPEndpoint) SetKeepAlive(k tcp.KeepAlive) error {
	return c.do(func(now time.Time) { c.core.SetKeepAlive(now, k) })
}

// SetRecvBuf sets the receive buffer.
func (c *TCPEndpoint) SetRecvBuf(n int) error { return c.do(func(time.Time) { c.core.SetRecvBuf(n) }) }

// SetSendBuf sets the send buffer.
func (c *TCPEndpoint) SetSendBuf(n int) error { return c.do(func(time.Time) { c.core.SetSendBuf(n) }) }

// SetCC changes the congestion control.
func (c *TCPEndpoint) SetCC(cc func(mss int) tcp.CongestionControl) error {
	return c.do(func(time.Time) { c.core.SetCC(cc) })
}

// SetLinger sets what Close does with unsent data (see Close).
func (c *TCPEndpoint) SetLinger(sec int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.linger = int32(max(min(sec, math.MaxInt32), math.MinInt32))
	return nil
}

// do runs f on an open connection under mu, then acts on its events; after
// Close it returns net.ErrClosed.
func (c *TCPEndpoint) do(f func(time.Time)) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	now := time.Now()
	f(now)
	c.finish(now)
	return nil
}

// Info returns a snapshot of the connection's state.
func (c *TCPEndpoint) Info() tcp.Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.core.Info()
}
