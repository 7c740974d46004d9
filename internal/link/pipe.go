package link

import (
	"errors"
	"net"
	"sync"
)

// EthernetHeaderLen is the length of an Ethernet II header: destination and
// source MAC addresses and the EtherType (IEEE 802.3 §3.1.1).
const EthernetHeaderLen = 14

// DefaultPipeDepth is the number of frames each direction of a pipe queues
// when PipeConfig.Depth is zero: about what a NIC's transmit ring holds.
const DefaultPipeDepth = 1024

// ErrFrameTooLong is returned by WriteFrame when a frame is longer than the
// link's MTU plus its Ethernet header. A real NIC drops such a frame
// silently; the pipe reports it because on a test link it is always a bug in
// the sender.
var ErrFrameTooLong = errors.New("link: frame longer than MTU")

// PipeConfig describes a pipe made by NewPipe.
type PipeConfig struct {
	// MTU is the largest IP packet either end carries; frames may be
	// EthernetHeaderLen bytes longer. Zero means 1500.
	MTU int
	// Depth is how many frames each direction queues before it drops
	// (or, after Backpressure, refuses). Zero means DefaultPipeDepth.
	Depth int
}

// PipeStats counts what one end of a pipe has sent and received.
type PipeStats struct {
	TxFrames, TxBytes uint64 // frames written and queued for the peer
	RxFrames, RxBytes uint64 // frames read by ReadFrame
	TxDrops           uint64 // frames written while the peer's queue was full
}

// PipeEnd is one end of an in-memory Ethernet link made by Pipe or NewPipe.
// Frames written to one end are read, in order, from the other.
//
// It is safe for one goroutine to call ReadFrame while any number call
// WriteFrame; Stats and Close may be called at any time.
type PipeEnd struct {
	rx    *frameQueue // frames the peer wrote, read by our ReadFrame
	tx    *frameQueue // frames we write, read by the peer
	state *pipeState
	mtu   int
}

// pipeState is shared by both ends so that closing either closes both.
type pipeState struct {
	once sync.Once
	done chan struct{}
}

// Pipe returns two Ethernet links joined back to back, each carrying IP
// packets up to mtu bytes (0 means 1500), each direction queueing
// DefaultPipeDepth frames. It is NewPipe with the default depth.
func Pipe(mtu int) (a, b *PipeEnd) {
	return NewPipe(PipeConfig{MTU: mtu})
}

// NewPipe returns two Ethernet links joined back to back, as described by
// cfg.
//
// Each direction is a bounded queue, like a NIC's ring: when it is full a
// written frame is dropped and counted in the writer's PipeStats.TxDrops
// instead of blocking, because two stacks whose reader goroutines each
// write replies would otherwise deadlock. Frames are copied into buffers
// owned by the queue, so WriteFrame neither retains the caller's memory nor
// allocates once the queue has been filled once.
func NewPipe(cfg PipeConfig) (a, b *PipeEnd) {
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	if cfg.Depth <= 0 {
		cfg.Depth = DefaultPipeDepth
	}
	st := &pipeState{done: make(chan struct{})}
	ab := newFrameQueue(cfg.Depth, cfg.MTU+EthernetHeaderLen)
	ba := newFrameQueue(cfg.Depth, cfg.MTU+EthernetHeaderLen)
	a = &PipeEnd{rx: ba, tx: ab, state: st, mtu: cfg.MTU}
	b = &PipeEnd{rx: ab, tx: ba, state: st, mtu: cfg.MTU}
	return a, b
}

// ReadFrame blocks until the peer writes a frame, copies it into buf and
// returns its length; a frame longer than buf is truncated. Once either end
// is closed it returns net.ErrClosed, discarding any queued frames.
func (p *PipeEnd) ReadFrame(buf []byte) (int, error) {
	f, err := p.NextFrame()
	if err != nil {
		return 0, err
	}
	n := copy(buf, f)
	p.Release(f)
	return n, nil
}

// WriteFrame copies frame into the peer's queue. If the queue is full the
// frame is dropped, counted in Stats().TxDrops, and WriteFrame returns nil,
// as a NIC would; after Backpressure it is refused instead (ErrFull). It
// returns ErrFrameTooLong for a frame longer than
// MTU()+EthernetHeaderLen and net.ErrClosed once either end is closed.
func (p *PipeEnd) WriteFrame(frame []byte) error {
	select {
	case <-p.state.done:
		return net.ErrClosed
	default:
	}
	if len(frame) > p.mtu+EthernetHeaderLen {
		return ErrFrameTooLong
	}
	return p.tx.push(frame)
}

// WriteGSO cuts frame, a TCP super-segment (see GSOWriter), into segments
// of gsoSize bytes of payload, as a NIC's TSO would, straight into the
// peer's queue: one copy and one lock for the lot. Segments that find the
// queue full are dropped and counted as WriteFrame's are; after
// Backpressure the whole super-segment is refused instead (ErrFull),
// unless the queue is at most half full, when it goes in whole even past
// the depth. It fails for a
// frame that is no such segment or whose segments would exceed the MTU.
func (p *PipeEnd) WriteGSO(frame []byte, gsoSize, csumStart, hdrLen int) error {
	select {
	case <-p.state.done:
		return net.ErrClosed
	default:
	}
	if hdrLen-EthernetHeaderLen+gsoSize > p.mtu {
		return ErrFrameTooLong
	}
	return p.tx.pushSegments(frame, gsoSize, csumStart, hdrLen)
}

// NextFrame blocks as ReadFrame does and returns the next frame in the
// pipe's own buffer instead of copying it; give the buffer back with
// Release. It implements Lender.
func (p *PipeEnd) NextFrame() ([]byte, error) {
	for {
		select {
		case <-p.state.done:
			return nil, net.ErrClosed
		default:
		}
		if f, ok := p.rx.lend(); ok {
			return f, nil
		}
		select {
		case <-p.rx.ready:
		case <-p.state.done:
			return nil, net.ErrClosed
		}
	}
}

// Release gives back a buffer NextFrame returned, exactly once.
func (p *PipeEnd) Release(frame []byte) { p.rx.release(frame) }

// Capabilities reports Lend (the stack reads frames in the pipe's
// buffers), GSO (the pipe cuts TCP super-segments, as a veth pair does
// in the kernel; its reads deliver segments as they were cut, not
// coalesced) and Queue (a full queue can hold the writer back).
func (p *PipeEnd) Capabilities() Capabilities {
	return Capabilities{Lend: true, GSO: true, Queue: true}
}

// Backpressure makes this end refuse what does not fit in the peer's
// queue instead of dropping it (see Queuer): WriteFrame and WriteGSO
// return ErrFull and queue nothing. It returns the channel NotifyRoom
// signals.
func (p *PipeEnd) Backpressure() <-chan struct{} { return p.tx.holdBack() }

// NotifyRoom asks for a signal on the Backpressure channel once the
// peer's queue is at most half full, at once if it is now.
func (p *PipeEnd) NotifyRoom() { p.tx.notifyRoom() }

// Queued returns the frames this end wrote that the peer has not read
// yet, and those the peer wrote that this end has not read yet.
func (p *PipeEnd) Queued() (tx, rx int) { return p.tx.queued(), p.rx.queued() }

// MTU returns the largest IP packet the pipe carries.
func (p *PipeEnd) MTU() int { return p.mtu }

// Ethernet reports true: pipe frames carry an Ethernet II header.
func (p *PipeEnd) Ethernet() bool { return true }

// Close closes both ends: pending and future ReadFrame and WriteFrame calls
// on either end return net.ErrClosed. Closing again returns net.ErrClosed.
func (p *PipeEnd) Close() error {
	err := net.ErrClosed
	p.state.once.Do(func() {
		close(p.state.done)
		err = nil
	})
	return err
}

// Stats returns this end's counters.
func (p *PipeEnd) Stats() PipeStats {
	var s PipeStats
	p.tx.mu.Lock()
	s.TxFrames, s.TxBytes, s.TxDrops = p.tx.inFrames, p.tx.inBytes, p.tx.drops
	p.tx.mu.Unlock()
	p.rx.mu.Lock()
	s.RxFrames, s.RxBytes = p.rx.outFrames, p.rx.outBytes
	p.rx.mu.Unlock()
	return s
}

// frameQueue is a bounded FIFO of frames for one direction. Buffers of
// frames read go on a free list and are reused last-in first-out, so a
// queue costs memory in proportion to the most frames it has held at once,
// never to the traffic, and a queue that is drained as it fills keeps
// reusing the same few buffers, which stay in the CPU cache.
type frameQueue struct {
	mu        sync.Mutex
	slots     [][]byte      // ring of queued frames: depth, and holdSlack more with back-pressure
	head, n   int           // index of the oldest frame; frames queued
	depth     int           // frames queued before writes drop, or are refused
	refuse    bool          // Backpressure was called: refuse rather than drop
	want      bool          // NotifyRoom waits for the queue to be half empty
	room      chan struct{} // capacity 1: NotifyRoom's signal; made by Backpressure
	free      [][]byte      // buffers of read frames, capacity maxFrame
	maxFrame  int
	scratch   []byte        // where segments cut into a full ring go
	ready     chan struct{} // capacity 1: a frame was pushed
	inFrames  uint64
	inBytes   uint64
	outFrames uint64
	outBytes  uint64
	drops     uint64
}

func newFrameQueue(depth, maxFrame int) *frameQueue {
	return &frameQueue{
		slots:    make([][]byte, depth),
		depth:    depth,
		maxFrame: maxFrame,
		ready:    make(chan struct{}, 1),
	}
}

// holdSlack is how many frames past its depth a queue with back-pressure
// holds: the segments of the largest super-segment the stack builds
// (tcp.MaxSuperSegs), which a queue at most half full always takes whole.
const holdSlack = 64

// push copies frame to the tail, or counts a drop if the ring is full; with
// back-pressure it refuses it instead.
func (q *frameQueue) push(frame []byte) error {
	q.mu.Lock()
	if !q.admit(1) {
		q.mu.Unlock()
		return ErrFull
	}
	b := q.slot(len(frame))
	if b != nil {
		copy(b, frame)
	}
	q.mu.Unlock()
	if b != nil {
		q.wake()
	}
	return nil
}

// admit reports whether k more frames may go in. Without back-pressure
// they always may: those the ring has no slot for are dropped. With it,
// when all k fit within the depth, or when the queue is at most half full,
// which is the room NotifyRoom promises, so that a writer told of room
// never finds its super-segment refused for being larger than it. q.mu is
// held.
func (q *frameQueue) admit(k int) bool {
	return !q.refuse || q.n+k <= q.depth || q.n <= q.depth/2
}

// holdBack switches the queue to refusing (Backpressure), making room for
// holdSlack more frames.
func (q *frameQueue) holdBack() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.refuse {
		q.refuse = true
		slots := make([][]byte, q.depth+holdSlack)
		for i := range q.n {
			slots[i] = q.slots[(q.head+i)%len(q.slots)]
		}
		q.slots, q.head = slots, 0
		q.room = make(chan struct{}, 1)
	}
	return q.room
}

// queued returns how many frames wait in the queue.
func (q *frameQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// notifyRoom signals q.room once the queue is at most half full.
func (q *frameQueue) notifyRoom() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.room == nil {
		return
	}
	q.want = true
	q.roomCheck()
}

// roomCheck signals a NotifyRoom waiter if the queue is at most half
// full. q.mu is held; the send does not block.
func (q *frameQueue) roomCheck() {
	if q.want && q.n <= q.depth/2 {
		q.want = false
		select {
		case q.room <- struct{}{}:
		default:
		}
	}
}

// segments returns how many segments of gsoSize bytes of payload a
// super-segment of frameLen bytes, hdrLen of them headers, is cut into.
func segments(frameLen, gsoSize, hdrLen int) int {
	if gsoSize <= 0 || frameLen <= hdrLen {
		return 1
	}
	return (frameLen - hdrLen + gsoSize - 1) / gsoSize
}

// pushSegments cuts a TCP super-segment into the tail (see Segment).
func (q *frameQueue) pushSegments(frame []byte, gsoSize, csumStart, hdrLen int) error {
	q.mu.Lock()
	if !q.admit(segments(len(frame), gsoSize, hdrLen)) {
		q.mu.Unlock()
		return ErrFull
	}
	pushed := false
	_, err := Segment(frame, EthernetHeaderLen, gsoSize, csumStart, hdrLen, func(_, n int) []byte {
		if b := q.slot(n); b != nil {
			pushed = true
			return b
		}
		if q.scratch == nil {
			q.scratch = make([]byte, q.maxFrame)
		}
		return q.scratch // dropped: cut into a buffer nobody reads
	})
	q.mu.Unlock()
	if pushed {
		q.wake()
	}
	return err
}

// slot returns a buffer of n bytes queued at the tail, or counts a drop
// and returns nil if the ring is full. q.mu is held.
func (q *frameQueue) slot(n int) []byte {
	if q.n == len(q.slots) {
		q.drops++
		return nil
	}
	var b []byte
	if k := len(q.free); k > 0 {
		b, q.free = q.free[k-1], q.free[:k-1]
	} else {
		b = make([]byte, 0, q.maxFrame)
	}
	b = b[:n]
	q.slots[(q.head+q.n)%len(q.slots)] = b
	q.n++
	q.inFrames++
	q.inBytes += uint64(n)
	return b
}

// wake wakes the reader. The channel holds one token, so a reader that
// finds the ring empty after taking it just waits again; it never misses
// a frame because the ring is filled before the token is sent.
func (q *frameQueue) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take removes the oldest frame from the ring and returns it, or reports
// false if the ring is empty. mu is held.
func (q *frameQueue) take() ([]byte, bool) {
	if q.n == 0 {
		return nil, false
	}
	f := q.slots[q.head]
	q.slots[q.head] = nil
	q.head = (q.head + 1) % len(q.slots)
	q.n--
	q.outFrames++
	q.outBytes += uint64(len(f))
	q.roomCheck()
	return f, true
}

// pop copies the oldest frame into buf. It reports false if the ring is
// empty.
func (q *frameQueue) pop(buf []byte) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	f, ok := q.take()
	if !ok {
		return 0, false
	}
	q.free = append(q.free, f)
	return copy(buf, f), true
}

// lend removes the oldest frame and returns its buffer, which the caller
// gives back with release.
func (q *frameQueue) lend() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.take()
}

// release puts a lent buffer back on the free list.
func (q *frameQueue) release(b []byte) {
	if cap(b) != q.maxFrame {
		return // not one of ours
	}
	q.mu.Lock()
	q.free = append(q.free, b[:0])
	q.mu.Unlock()
}

var _ Link = (*PipeEnd)(nil)
