// Package memlink is the in-memory Ethernet cable the netstack side of the
// benchmark runs on. It mirrors what the gVisor side gets from
// channel.Endpoint: each direction is a bounded queue of Depth frames that
// drops (and counts) a frame written while it is full, as a NIC ring does,
// and exactly one goroutine per direction takes frames off it (for netstack,
// the stack's own link reader; for gVisor, the pump in package pair).
//
// Frames are copied in on WriteFrame (the caller may reuse its buffer) and
// copied out on ReadFrame into the caller's buffer.
package memlink

import (
	"net"
	"sync"
	"sync/atomic"
)

// DefaultDepth is the number of frames each direction queues.
const DefaultDepth = 1024

const ethHeader = 14

// End is one end of a cable; it implements netstack.Link.
type End struct {
	rx, tx *queue
	mtu    int
	done   chan struct{}
	once   *sync.Once
}

// New returns two ends joined back to back carrying IP packets of up to mtu
// bytes inside Ethernet frames, each direction queueing depth frames.
func New(mtu, depth int) (*End, *End) {
	if depth <= 0 {
		depth = DefaultDepth
	}
	ab, ba := newQueue(depth, mtu+ethHeader), newQueue(depth, mtu+ethHeader)
	done := make(chan struct{})
	once := new(sync.Once)
	return &End{rx: ba, tx: ab, mtu: mtu, done: done, once: once},
		&End{rx: ab, tx: ba, mtu: mtu, done: done, once: once}
}

// ReadFrame blocks until a frame arrives and copies it into buf.
func (e *End) ReadFrame(buf []byte) (int, error) {
	for {
		if n, ok := e.rx.pop(buf); ok {
			return n, nil
		}
		select {
		case <-e.rx.ready:
		case <-e.done:
			return 0, net.ErrClosed
		}
	}
}

// WriteFrame copies frame into the peer's queue, dropping it if full.
func (e *End) WriteFrame(frame []byte) error {
	select {
	case <-e.done:
		return net.ErrClosed
	default:
	}
	e.tx.push(frame)
	return nil
}

// MTU returns the largest IP packet the cable carries.
func (e *End) MTU() int { return e.mtu }

// Ethernet reports true.
func (e *End) Ethernet() bool { return true }

// Close closes both ends.
func (e *End) Close() error {
	e.once.Do(func() { close(e.done) })
	return nil
}

// Drops returns the frames dropped in this end's transmit direction.
func (e *End) Drops() uint64 { return e.tx.drops.Load() }

type queue struct {
	mu      sync.Mutex
	slots   [][]byte // queued frames, oldest at head
	head, n int
	free    [][]byte // buffers of popped frames, reused last-in first-out
	max     int
	ready   chan struct{}
	drops   atomic.Uint64
}

func newQueue(depth, max int) *queue {
	return &queue{slots: make([][]byte, depth), max: max, ready: make(chan struct{}, 1)}
}

// push copies f into a buffer and queues it. Buffers are reused last-in
// first-out, so a queue holding few frames keeps its few buffers in the
// cache, as a pooled allocator (gVisor's buffer pool) does.
func (q *queue) push(f []byte) {
	if len(f) > q.max {
		q.drops.Add(1)
		return
	}
	q.mu.Lock()
	if q.n == len(q.slots) {
		q.mu.Unlock()
		q.drops.Add(1)
		return
	}
	var b []byte
	if k := len(q.free); k > 0 {
		b, q.free = q.free[k-1], q.free[:k-1]
	} else {
		b = make([]byte, 0, q.max)
	}
	q.slots[(q.head+q.n)%len(q.slots)] = append(b[:0], f...)
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) pop(buf []byte) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return 0, false
	}
	b := q.slots[q.head]
	n := copy(buf, b)
	q.slots[q.head] = nil
	q.free = append(q.free, b)
	q.head = (q.head + 1) % len(q.slots)
	q.n--
	return n, true
}
