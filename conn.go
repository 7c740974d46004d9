package netstack

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/stats"
	"github.com/gotcpip/netstack/internal/tcp"
)

// TCPConn is a TCP connection on a Stack. It implements net.Conn and the
// extras of *net.TCPConn: half-close, socket options and io.ReaderFrom.
//
// Its methods are safe for concurrent use: one goroutine may Read while
// another Writes and a third Closes. Write returns once its data is in the
// send buffer, blocking while the buffer is full. Close returns at once;
// data still queued is sent, then a FIN, in the background. Errors are
// *net.OpError: ECONNRESET after a reset, ETIMEDOUT when the peer stopped
// answering, net.ErrClosed after Close, os.ErrDeadlineExceeded when a
// deadline passes; Read returns io.EOF, unwrapped, after the peer's FIN.
type TCPConn struct {
	s            *Stack
	laddr, raddr netip.AddrPort
	listener     *TCPListener // set for accepted connections

	rd, wd deadline

	mu         sync.Mutex // guards everything below and the core
	core       *tcp.Conn
	readReady  chan struct{} // capacity 1: something changed for readers; made by the first to wait
	writeReady chan struct{} // capacity 1: the same for writers
	handshake  chan struct{} // closed when the handshake ends, either way; only for dialers
	out        *[]outFrame   // frames emitted under mu, sent after it; pooled by the stack
	timer      *time.Timer
	timerAt    time.Time
	shook      bool       // handshake closed
	closed     bool       // Close was called
	gone       bool       // forgotten by the demux
	hard       error      // an ICMP hard error during the handshake
	linger     int        // SetLinger: < 0 default, 0 abort on Close
	sendMu     sync.Mutex // held while frames go out, to keep their order
	pseudoBase uint32     // pseudo-header sum without the length
}

func (s *Stack) newTCPConn(laddr, raddr netip.AddrPort, l *TCPListener) *TCPConn {
	return &TCPConn{
		s:          s,
		laddr:      laddr,
		raddr:      raddr,
		listener:   l,
		linger:     -1,
		pseudoBase: checksum.Pseudo(laddr.Addr(), raddr.Addr(), ip.ProtoTCP, 0),
	}
}

// outFrame is a frame built under mu and sent after it. On a link with
// segmentation offload, consecutive full-sized data segments of one call
// are coalesced into one super-segment (segs > 1) for the link to cut
// again into the same segments.
type outFrame struct {
	bp   *[]byte
	n    int // bytes used, from the start of *bp
	segs int // segments coalesced
	gso  int // payload of each segment but the last
	last int // payload of the last segment
	hdr  int // TCP header length
	next tcp.Seq
	// Header fields of the first segment, which the rest must share.
	ack          tcp.Seq
	tsVal, tsEcr uint32
	wnd          uint16
	flags        tcp.Flags
}

// maxSuperSegs caps a super-segment, as the kernel's gso_max_segs would.
const maxSuperSegs = 64

// emit is the core's output: it encodes seg into a frame at once (its
// payload aliases the send ring) and queues the frame for unlockAndSend.
// Called with mu held, or before the connection is visible to others.
func (c *TCPConn) emit(seg *tcp.Segment) {
	if seg.Flags&tcp.FlagRST != 0 {
		stats.Inc(&c.s.st.TCP.ResetsOut)
	}
	if seg.Retrans {
		stats.Inc(&c.s.st.TCP.Retransmits)
	}
	data := len(seg.Payload)
	if c.out == nil {
		c.out = c.s.outPool.Get().(*[]outFrame)
	}
	out := *c.out
	superOK := c.s.gsoOK && data > 0 && seg.Flags&(tcp.FlagSYN|tcp.FlagFIN|tcp.FlagRST) == 0 &&
		seg.Opts.NumSACK == 0 && !seg.Opts.HasWScale && seg.Opts.MSS == 0 && c.raddr.Addr() != c.s.Addr()
	if superOK && len(out) > 0 {
		f := &out[len(out)-1]
		if f.gso > 0 && f.segs < maxSuperSegs && f.last == f.gso && seg.Seq == f.next && data <= f.gso &&
			f.n+data <= len(*f.bp) && seg.Ack == f.ack && seg.Wnd == f.wnd &&
			seg.Flags&^tcp.FlagPSH == f.flags&^tcp.FlagPSH && seg.Opts.TSVal == f.tsVal && seg.Opts.TSEcr == f.tsEcr {
			copy((*f.bp)[f.n:], seg.Payload)
			f.n += data
			f.segs++
			f.last = data
			f.next = seg.End()
			f.flags |= seg.Flags & tcp.FlagPSH
			return
		}
	}
	n := seg.HeaderLen() + data
	var bp *[]byte
	if superOK {
		bp = c.s.getBigBuf()
	} else {
		bp = c.s.getBuf(ip.Headroom + n)
	}
	seg.Encode((*bp)[ip.Headroom:ip.Headroom+n], c.pseudoBase+uint32(n))
	f := outFrame{bp: bp, n: ip.Headroom + n, segs: 1}
	if superOK {
		f.gso, f.last, f.hdr, f.next = data, data, seg.HeaderLen(), seg.End()
		f.ack, f.wnd, f.flags, f.tsVal, f.tsEcr = seg.Ack, seg.Wnd, seg.Flags, seg.Opts.TSVal, seg.Opts.TSEcr
	}
	*c.out = append(out, f)
}

// send hands one frame to the IP layer.
func (c *TCPConn) send(now time.Time, f *outFrame) {
	if f.segs == 1 {
		stats.Inc(&c.s.st.TCP.SegmentsOut)
		c.s.host.Output(now, (*f.bp)[:f.n], ip.ProtoTCP, c.laddr.Addr(), c.raddr.Addr(), true)
		return
	}
	// A super-segment: PSH as the segments had it, and the checksum left as
	// the folded pseudo-header sum for the link to finish per segment.
	stats.Add(&c.s.st.TCP.SegmentsOut, uint64(f.segs))
	th := (*f.bp)[ip.Headroom:f.n]
	th[13] = byte(f.flags)
	sum := c.pseudoBase + uint32(len(th))
	th[16], th[17] = 0, 0
	binary.BigEndian.PutUint16(th[16:], ^checksum.Fold(sum))
	c.s.host.OutputGSO(now, (*f.bp)[:f.n], c.laddr.Addr(), c.raddr.Addr(), f.gso, f.hdr)
}

// afterLocked acts on the events of the last core call: it wakes readers,
// writers and the dialer, queues an accepted connection, and re-arms the
// timer. mu is held.
func (c *TCPConn) afterLocked(now time.Time) {
	ev := c.core.TakeEvents()
	if ev&(tcp.EvEstablished|tcp.EvError|tcp.EvClosed) != 0 && !c.shook {
		c.shook = true
		if c.handshake != nil {
			close(c.handshake)
		}
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
	if ev&tcp.EvClosed != 0 && c.core.State() == tcp.Closed {
		next = time.Time{}
		if !c.gone {
			c.gone = true
			c.s.forget(c, c.core.Stats())
		}
	}
	if next.Equal(c.timerAt) {
		return
	}
	c.timerAt = next
	if next.IsZero() {
		if c.timer != nil {
			c.timer.Stop()
		}
		return
	}
	d := max(next.Sub(now), 0)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.onTimer)
	} else {
		c.timer.Reset(d)
	}
}

// unlockAndSend releases mu and sends the frames queued under it, in
// order: sendMu is taken before mu is released, so a later caller's frames
// cannot overtake these.
func (c *TCPConn) unlockAndSend(now time.Time) {
	if c.out == nil {
		c.mu.Unlock()
		return
	}
	out := c.out
	c.out = nil
	c.sendMu.Lock()
	c.mu.Unlock()
	for i := range *out {
		f := &(*out)[i]
		c.send(now, f)
		c.s.putBuf(f.bp)
		*f = outFrame{}
	}
	c.sendMu.Unlock()
	*out = (*out)[:0]
	c.s.outPool.Put(out)
}

func (c *TCPConn) onTimer() {
	c.mu.Lock()
	now := time.Now()
	c.timerAt = time.Time{}
	c.core.Timer(now)
	c.afterLocked(now)
	c.unlockAndSend(now)
}

// input hands a segment to the core. It reports whether the segment should
// go on to the listener (a TIME-WAIT connection reopened by a new SYN).
func (c *TCPConn) input(now time.Time, seg *tcp.Segment) bool {
	c.mu.Lock()
	c.core.Input(now, seg)
	reopen := c.core.ReopenedBy()
	var st tcp.Stats
	if reopen {
		st = c.core.Stats()
	}
	c.afterLocked(now)
	c.unlockAndSend(now)
	if reopen {
		c.s.forget(c, st)
	}
	return reopen
}

// hardError fails a connection still in its handshake with errno.
func (c *TCPConn) hardError(errno syscall.Errno) {
	c.mu.Lock()
	if st := c.core.State(); st != tcp.SynSent && st != tcp.SynReceived {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	c.hard = errno
	c.core.Abort(now)
	c.afterLocked(now)
	c.unlockAndSend(now)
}

// abort resets the connection (RST where the state calls for one).
func (c *TCPConn) abort() {
	c.mu.Lock()
	now := time.Now()
	c.closed = true
	c.core.Abort(now)
	c.afterLocked(now)
	c.unlockAndSend(now)
	c.rd.stop()
	c.wd.stop()
}

// Read reads data into b. It blocks until data arrives, the peer closes
// (io.EOF), the connection fails, or the read deadline passes.
func (c *TCPConn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		if err := c.unusable(&c.rd); err != nil {
			c.mu.Unlock()
			return 0, c.opErr("read", err)
		}
		now := time.Now()
		n, err := c.core.Read(now, b)
		if n > 0 && c.core.Readable() > 0 {
			signal(c.readReady) // let a concurrent reader in
		}
		c.afterLocked(now)
		ready := waitChan(&c.readReady)
		c.unlockAndSend(now)
		switch {
		case n > 0:
			return n, nil
		case err == io.EOF:
			return 0, io.EOF
		case err != nil:
			return 0, c.opErr("read", c.failure(err))
		case len(b) == 0:
			return 0, nil
		}
		select {
		case <-ready:
		case <-c.rd.wait(): // the loop tells a Close from the deadline
		case <-c.s.done:
			return 0, c.opErr("read", net.ErrClosed)
		}
	}
}

// Write writes b to the connection. It returns when all of b is in the send
// buffer, or with the count written so far when the connection fails or
// the write deadline passes.
func (c *TCPConn) Write(b []byte) (int, error) {
	written := 0
	for {
		c.mu.Lock()
		if err := c.unusable(&c.wd); err != nil {
			c.mu.Unlock()
			return written, c.opErr("write", err)
		}
		now := time.Now()
		n, err := c.core.Write(now, b[written:])
		written += n
		if written == len(b) && c.core.Writable() > 0 {
			signal(c.writeReady) // let a concurrent writer in
		}
		c.afterLocked(now)
		ready := waitChan(&c.writeReady)
		c.unlockAndSend(now)
		switch {
		case err != nil:
			return written, c.opErr("write", c.failure(err))
		case written == len(b):
			return written, nil
		}
		select {
		case <-ready:
		case <-c.wd.wait(): // the loop tells a Close from the deadline
		case <-c.s.done:
			return written, c.opErr("write", net.ErrClosed)
		}
	}
}

// unusable returns the error a Read or Write meets before it looks at the
// data: net.ErrClosed after Close, which wins over everything as in package
// net, else os.ErrDeadlineExceeded once d has passed. mu is held.
func (c *TCPConn) unusable(d *deadline) error {
	switch {
	case c.closed:
		return net.ErrClosed
	case d.passed():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// failure maps a core error from Read or Write: a write after CloseWrite
// is EPIPE, as write(2) reports after shutdown(SHUT_WR).
func (c *TCPConn) failure(err error) error {
	if err == tcp.ErrClosed {
		return syscall.EPIPE
	}
	return mapTCPError(err)
}

// ReadFrom copies r into the connection until EOF (io.ReaderFrom, used by
// io.Copy).
func (c *TCPConn) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			w, werr := c.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close closes the connection. Queued data is still sent, then a FIN; if
// unread data remains, or SetLinger(0) was called, the connection is reset
// instead, as Linux does. Blocked Read and Write calls return net.ErrClosed.
func (c *TCPConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
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
	c.afterLocked(now)
	c.unlockAndSend(now)
	c.rd.stop()
	c.wd.stop()
	return nil
}

// CloseRead shuts down the reading side: further reads return io.EOF and
// data that arrives is discarded.
func (c *TCPConn) CloseRead() error {
	return c.shutdown("close", func(now time.Time) { c.core.CloseRead(now); signal(c.readReady) })
}

// CloseWrite shuts down the writing side: queued data is sent, then a FIN.
// The peer reads io.EOF while it can still send to us.
func (c *TCPConn) CloseWrite() error {
	return c.shutdown("close", func(now time.Time) { c.core.CloseWrite(now); signal(c.writeReady) })
}

func (c *TCPConn) shutdown(op string, f func(time.Time)) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr(op, net.ErrClosed)
	}
	now := time.Now()
	f(now)
	c.afterLocked(now)
	c.unlockAndSend(now)
	return nil
}

// waitChan returns *ch, making it first if no one has waited before.
// Called with mu held.
func waitChan(ch *chan struct{}) chan struct{} {
	if *ch == nil {
		*ch = make(chan struct{}, 1)
	}
	return *ch
}

// LocalAddr returns the local address, a *net.TCPAddr.
func (c *TCPConn) LocalAddr() net.Addr { return tcpAddr(c.laddr) }

// RemoteAddr returns the peer's address, a *net.TCPAddr.
func (c *TCPConn) RemoteAddr() net.Addr { return tcpAddr(c.raddr) }

// SetDeadline sets the read and write deadlines. A zero t means none.
// After Close it fails with net.ErrClosed.
func (c *TCPConn) SetDeadline(t time.Time) error { return c.setDeadline(t, &c.rd, &c.wd) }

// SetReadDeadline sets the deadline for future and pending Reads.
func (c *TCPConn) SetReadDeadline(t time.Time) error { return c.setDeadline(t, &c.rd) }

// SetWriteDeadline sets the deadline for future and pending Writes.
func (c *TCPConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, &c.wd) }

func (c *TCPConn) setDeadline(t time.Time, ds ...*deadline) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return c.opErr("set", net.ErrClosed)
	}
	for _, d := range ds {
		d.set(t)
	}
	return nil
}

// SetNoDelay controls Nagle's algorithm: true (the default, as in package
// net) sends small writes at once.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.option(func(time.Time) { c.core.SetNoDelay(noDelay) })
}

// SetKeepAlive turns keep-alive probes on or off.
func (c *TCPConn) SetKeepAlive(keepalive bool) error {
	return c.option(func(now time.Time) { c.core.SetKeepAlive(now, tcp.KeepAlive{Enable: keepalive}) })
}

// SetKeepAlivePeriod turns keep-alive on with d as both the idle time and
// the interval between probes, as package net does on Linux.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	return c.option(func(now time.Time) {
		c.core.SetKeepAlive(now, tcp.KeepAlive{Enable: true, Idle: d, Interval: d})
	})
}

// SetKeepAliveConfig configures keep-alive probes as net.TCPConn's does:
// zero fields take the defaults (15 s, 15 s, 9), negative ones too.
func (c *TCPConn) SetKeepAliveConfig(config net.KeepAliveConfig) error {
	return c.option(func(now time.Time) { c.core.SetKeepAlive(now, keepAliveOf(config)) })
}

func keepAliveOf(k net.KeepAliveConfig) tcp.KeepAlive {
	return tcp.KeepAlive{Enable: k.Enable, Idle: max(k.Idle, 0), Interval: max(k.Interval, 0), Count: max(k.Count, 0)}
}

// setKeepAlive applies a Dialer's or Listener's keep-alive settings with
// the defaults of package net: on, 15 s, unless period is negative.
func (c *TCPConn) setKeepAlive(period time.Duration, cfg net.KeepAliveConfig) {
	k := tcp.KeepAlive{Enable: period >= 0, Idle: max(period, 0), Interval: max(period, 0)}
	if cfg.Enable {
		k = keepAliveOf(cfg)
	}
	c.mu.Lock()
	c.core.SetKeepAlive(time.Now(), k)
	c.mu.Unlock()
}

// SetLinger sets what Close does with unsent data: sec < 0 (the default)
// sends it in the background; sec == 0 discards it and resets the
// connection. A positive sec behaves like the default: Close never blocks.
func (c *TCPConn) SetLinger(sec int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.opErr("set", net.ErrClosed)
	}
	c.linger = sec
	return nil
}

// SetReadBuffer sets the size of the receive buffer, which bounds the
// window offered to the peer.
func (c *TCPConn) SetReadBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	return c.option(func(time.Time) { c.core.SetRecvBuf(bytes) })
}

// SetWriteBuffer sets the size of the send buffer.
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	if bytes <= 0 {
		return c.opErr("set", syscall.EINVAL)
	}
	return c.option(func(time.Time) { c.core.SetSendBuf(bytes) })
}

func (c *TCPConn) option(f func(time.Time)) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("set", net.ErrClosed)
	}
	now := time.Now()
	f(now)
	c.afterLocked(now)
	c.unlockAndSend(now)
	return nil
}

// TCPInfo describes a connection's state, as Linux's TCP_INFO does: round
// trip, windows, buffers, and what was sent, retransmitted, SACKed and lost.
type TCPInfo = tcp.Info

// Info returns a snapshot of the connection's state.
func (c *TCPConn) Info() TCPInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.core.Info()
}

// SetCongestionControl changes the connection's congestion control:
// "cubic" or "reno".
func (c *TCPConn) SetCongestionControl(name string) error {
	cc, err := ccByName(name)
	if err != nil {
		return c.opErr("set", err)
	}
	return c.option(func(time.Time) { c.core.SetCC(cc) })
}

func (c *TCPConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: tcpAddr(c.laddr), Addr: tcpAddr(c.raddr), Err: errorFor(err)}
}
