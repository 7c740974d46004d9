package stack

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/internal/ip"
	"github.com/gotcpip/netstack/internal/link"
)

// Input past one core. With Config.InputWorkers above 1, the link's reader
// no longer runs the IP layer itself: it hashes each frame's flow
// (link.FlowHash: addresses, protocol, ports) and queues the frame for the
// worker of that hash, as a NIC's receive-side scaling spreads flows over
// its queues. A flow always lands on one worker, so its packets are input
// in the order they were read; frames of no flow (ARP, NDP, ICMP,
// fragments, extension headers) all go to worker 0, so their order holds
// too. Frames of a flow that arrive fragmented and whole alike may pass
// each other, as they may on any RSS NIC.
//
// A worker takes everything queued for it at once, under one lock, and
// the reader wakes it only when it was idle: a busy worker is handed
// batches without a wake-up per frame. The reader never spawns anything
// per packet. When a worker's queue is full the reader waits for room,
// which pushes back on the link (which then drops, as a full ring does).

// maxQueuedFrames bounds the frames waiting for one worker.
const maxQueuedFrames = 256

// inFrame is a frame waiting for a worker: lent by the link (buf nil), or
// read into one of the dispatcher's buffers.
type inFrame struct {
	b   []byte
	buf *[]byte
}

// inputQueue is the frames waiting for one worker.
type inputQueue struct {
	mu     sync.Mutex
	frames []inFrame
	idle   bool // the worker waits on wake
	full   bool // the reader waits on room
	closed bool // the reader has stopped: drain, then exit
	wake   chan struct{}
	room   chan struct{}
	input  atomic.Uint64 // frames this worker has input
}

// dispatcher is the reader's side of InputWorkers.
type dispatcher struct {
	s      *Stack
	queues []*inputQueue
	bufs   sync.Pool // *[]byte of size bytes, for links that do not lend
	size   int
	ether  bool // frames carry an Ethernet header; else IP behind scratch bytes
}

// newDispatcher starts n input workers for s, each counted in s.wg.
func newDispatcher(s *Stack, n, size int) *dispatcher {
	d := &dispatcher{s: s, size: size, ether: s.link.Ethernet()}
	d.bufs.New = func() any { b := make([]byte, d.size); return &b }
	for range n {
		q := &inputQueue{wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
		d.queues = append(d.queues, q)
	}
	s.wg.Add(n)
	for _, q := range d.queues {
		go d.work(q)
	}
	return d
}

// queueOf returns the queue of frame's flow.
func (d *dispatcher) queueOf(frame []byte) *inputQueue {
	if !d.ether {
		frame = frame[min(len(frame), ip.EthernetHeaderLen):] // behind the scratch bytes
	}
	h, ok := link.FlowHash(frame, d.ether)
	if !ok {
		return d.queues[0]
	}
	return d.queues[link.Pick(h, len(d.queues))]
}

// dispatch queues f for its flow's worker, waiting while that worker's
// queue is full. It reports false, having released f, when the stack
// closed while it waited.
func (d *dispatcher) dispatch(f inFrame) bool {
	q := d.queueOf(f.b)
	q.mu.Lock()
	for len(q.frames) >= maxQueuedFrames {
		q.full = true
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-d.s.done:
			d.release(f)
			return false
		}
		q.mu.Lock()
	}
	q.frames = append(q.frames, f)
	wake := q.idle
	q.idle = false
	q.mu.Unlock()
	if wake {
		signal(q.wake)
	}
	return true
}

// stop tells every worker that no more frames come; each inputs what is
// queued and exits.
func (d *dispatcher) stop() {
	for _, q := range d.queues {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		signal(q.wake)
	}
}

// work is one worker: it inputs the frames queued for it, a batch at a
// time, and gives each back where it came from.
func (d *dispatcher) work(q *inputQueue) {
	defer d.s.wg.Done()
	var batch []inFrame
	for {
		q.mu.Lock()
		if len(q.frames) == 0 {
			if q.closed {
				q.mu.Unlock()
				return
			}
			q.idle = true
			q.mu.Unlock()
			<-q.wake
			continue
		}
		batch, q.frames = q.frames, batch[:0]
		full := q.full
		q.full = false
		q.mu.Unlock()
		if full {
			signal(q.room)
		}
		now := time.Now()
		for i, f := range batch {
			d.s.host.Input(now, f.b)
			d.release(f)
			batch[i] = inFrame{}
		}
		q.input.Add(uint64(len(batch)))
	}
}

// release gives a frame back: to the link that lent it, or to the pool.
func (d *dispatcher) release(f inFrame) {
	if f.buf == nil {
		d.s.lender.Release(f.b)
		return
	}
	d.bufs.Put(f.buf)
}

// buffer returns a buffer of d.size bytes for a frame to be read into.
func (d *dispatcher) buffer() *[]byte { return d.bufs.Get().(*[]byte) }

// readLend reads a lending link: each lent frame goes to its worker, which
// releases it. The link must allow several frames lent at once, released
// from other goroutines in any order (Config.InputWorkers).
func (d *dispatcher) readLend(l link.Lender) {
	for {
		f, err := l.NextFrame()
		if err != nil {
			d.s.linkFailed(err)
			return
		}
		if !d.dispatch(inFrame{b: f}) {
			return
		}
	}
}

// readBatches reads a Batch link into pooled buffers, up to readBatch
// frames a call, behind off bytes of scratch.
func (d *dispatcher) readBatches(b link.Batcher, off int) {
	bufs, sizes, held := make([][]byte, readBatch), make([]int, readBatch), make([]*[]byte, readBatch)
	for {
		for i := range held {
			if held[i] == nil {
				held[i] = d.buffer()
			}
			bufs[i] = (*held[i])[off:]
		}
		n, err := b.ReadFrames(bufs, sizes)
		if err != nil {
			d.putAll(held)
			d.s.linkFailed(err)
			return
		}
		for i := range n {
			f := inFrame{b: (*held[i])[:off+sizes[i]], buf: held[i]}
			held[i] = nil
			if !d.dispatch(f) {
				d.putAll(held)
				return
			}
		}
	}
}

// putAll returns the buffers still held to the pool.
func (d *dispatcher) putAll(held []*[]byte) {
	for i, b := range held {
		if b != nil {
			d.bufs.Put(b)
			held[i] = nil
		}
	}
}

// readFrames reads a plain link, one frame a call, into pooled buffers
// behind off bytes of scratch.
func (d *dispatcher) readFrames(off int) {
	for {
		bp := d.buffer()
		n, err := d.s.link.ReadFrame((*bp)[off:])
		if err != nil {
			d.bufs.Put(bp)
			d.s.linkFailed(err)
			return
		}
		if !d.dispatch(inFrame{b: (*bp)[:off+n], buf: bp}) {
			return
		}
	}
}

// workerFrames returns the frames each worker has input.
func (d *dispatcher) workerFrames() []uint64 {
	n := make([]uint64, len(d.queues))
	for i, q := range d.queues {
		n[i] = q.input.Load()
	}
	return n
}

// startInput starts the goroutines that read the link: one per receive
// queue of a link.MultiQueue, else readLoop, with the input workers when
// Config.InputWorkers asks for them.
func (s *Stack) startInput() {
	if mq, ok := s.link.(link.MultiQueue); ok && mq.Queues() > 1 {
		s.queueFrames = make([]atomic.Uint64, mq.Queues())
		s.wg.Add(len(s.queueFrames))
		for i := range s.queueFrames {
			go s.readQueue(mq, i)
		}
		return
	}
	if s.cfg.InputWorkers > 1 {
		_, size := s.readLayout()
		s.dispatch = newDispatcher(s, s.cfg.InputWorkers, size)
	}
	s.wg.Add(1)
	go s.readLoop()
}

// readQueue inputs every frame of receive queue q. The far side keeps a
// flow on one queue (the kernel's TUN driver steers it to the queue its
// last packet was sent on; see link.Device), so its order holds but for
// the moment a flow moves.
func (s *Stack) readQueue(mq link.MultiQueue, q int) {
	defer s.wg.Done()
	off, size := s.readLayout()
	buf := make([]byte, size)
	for {
		n, err := mq.ReadQueue(q, buf[off:])
		if err != nil {
			s.linkFailed(err)
			return
		}
		s.host.Input(time.Now(), buf[:off+n])
		s.queueFrames[q].Add(1)
	}
}

// InputFrames returns the frames each input goroutine has handed to the IP
// layer: each worker's (Config.InputWorkers), or each receive queue's
// reader's, or the one reader's.
func (s *Stack) InputFrames() []uint64 {
	if s.dispatch != nil {
		return s.dispatch.workerFrames()
	}
	if s.queueFrames != nil {
		n := make([]uint64, len(s.queueFrames))
		for i := range s.queueFrames {
			n[i] = s.queueFrames[i].Load()
		}
		return n
	}
	return []uint64{s.Stats().Link.FramesIn}
}
