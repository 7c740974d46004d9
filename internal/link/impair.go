package link

import (
	"container/heap"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// DefaultReorderHold is how long a frame held back for reordering waits
// for a successor when Impairment.ReorderHold is zero.
const DefaultReorderHold = 10 * time.Millisecond

// Impairment describes what an Impair does to the frames going one way.
// Probabilities are in [0, 1]; each frame draws for each independently.
// A zero Impairment passes frames through untouched and in order.
type Impairment struct {
	// Drop is the probability that a frame is discarded.
	Drop float64
	// Duplicate is the probability that a frame is delivered twice.
	Duplicate float64
	// Reorder is the probability that a frame is held back and delivered
	// after the next frame, or after ReorderHold if none comes first.
	Reorder float64
	// Corrupt is the probability that one bit, at a random position in
	// the frame, is flipped.
	Corrupt float64
	// Delay holds every frame back this long, plus a uniform random
	// extra in [0, Jitter]. Jitter larger than the gap between frames
	// reorders them, as netem(8) does.
	Delay, Jitter time.Duration
	// ReorderHold bounds how long a reordered frame waits for a
	// successor, so that the last frame of a burst is not held forever.
	// Zero means DefaultReorderHold.
	ReorderHold time.Duration
	// Rate, if not zero, is a bottleneck of this many bytes per second
	// ahead of Delay: each frame takes len/Rate to leave, behind those
	// queued before it, in a FIFO of at most Queue bytes; a frame that
	// does not fit is dropped (tail drop) and counted in RateDropped.
	Rate float64
	// Queue bounds the bottleneck's FIFO in bytes. Zero means one
	// bandwidth-delay product if the way back is as long as this one
	// (Rate × 2·Delay), and at least 64 KiB. An empty FIFO takes any
	// frame.
	Queue int
}

// queueLimit returns the bottleneck's FIFO bound in bytes.
func (m *Impairment) queueLimit() float64 {
	if m.Queue > 0 {
		return float64(m.Queue)
	}
	return max(m.Rate*(2*m.Delay).Seconds(), 64<<10)
}

// ImpairConfig configures an Impair.
type ImpairConfig struct {
	// Seed seeds the random choices (math/rand/v2's PCG, one stream per
	// direction), so that a run replays: the same frames offered in the
	// same order in a direction meet the same fate.
	Seed uint64
	// Egress applies to frames passed to WriteFrame, on their way to the
	// wrapped link; Ingress to frames read from it, on their way to
	// ReadFrame.
	Egress, Ingress Impairment
	// IngressDepth is how many frames wait for ReadFrame before more are
	// dropped and counted as Overflow. Zero means DefaultPipeDepth.
	IngressDepth int
}

// ImpairStats counts what an Impair did to the frames going one way.
type ImpairStats struct {
	Frames      uint64 // frames offered
	Dropped     uint64 // discarded by Drop
	Duplicated  uint64 // delivered an extra time
	Reordered   uint64 // held back behind a later frame
	Corrupted   uint64 // had a bit flipped
	Delayed     uint64 // delivered later by Delay, Jitter or Rate
	RateDropped uint64 // tail-dropped by the bottleneck of Rate: its Queue was full
	Overflow    uint64 // ingress only: dropped because ReadFrame fell behind
	Errors      uint64 // egress only: delayed writes the wrapped link refused
}

// Impair is a Link that drops, duplicates, reorders, corrupts and delays
// frames in each direction, for tests of protocols that must survive a
// bad network. Like netem(8), but in process and reproducible by seed.
//
// It reads the wrapped link on a goroutine of its own, and delivers
// delayed and held-back frames from another; Close stops both. Its methods
// may be called concurrently.
type Impair struct {
	l       Link
	egress  impairDir
	ingress impairDir
	sched   scheduler

	writeMu sync.Mutex // serializes l.WriteFrame, as Link requires

	in       chan []byte // ingress frames ready for ReadFrame
	done     chan struct{}
	pumpDone chan struct{}
	readErr  error // the wrapped link's ReadFrame error; set before pumpDone closes
	once     sync.Once
	closeErr error
	wg       sync.WaitGroup
}

// NewImpair wraps l, impairing frames as cfg describes, and starts reading
// from l.
func NewImpair(l Link, cfg ImpairConfig) *Impair {
	depth := cfg.IngressDepth
	if depth <= 0 {
		depth = DefaultPipeDepth
	}
	im := &Impair{
		l:        l,
		in:       make(chan []byte, depth),
		done:     make(chan struct{}),
		pumpDone: make(chan struct{}),
	}
	im.sched.init(im.done)
	// Distinct streams per direction, so that traffic one way does not
	// change the fate of frames the other way.
	im.egress.init(cfg.Egress, rand.NewPCG(cfg.Seed, 0x65677265737321), &im.sched, im.writeDelayed)
	im.ingress.init(cfg.Ingress, rand.NewPCG(cfg.Seed, 0x696e677265737321), &im.sched, im.enqueue)
	im.wg.Add(2)
	go func() { defer im.wg.Done(); im.sched.run() }()
	go func() { defer im.wg.Done(); im.pump() }()
	return im
}

// ReadFrame blocks until a frame has passed the ingress impairments,
// copies it into buf and returns its length, truncating as the wrapped
// link would. After Close it returns net.ErrClosed; after the wrapped link
// fails, that link's error once the frames already read are consumed.
func (im *Impair) ReadFrame(buf []byte) (int, error) {
	select {
	case <-im.done:
		return 0, net.ErrClosed
	default:
	}
	select {
	case f := <-im.in:
		return copy(buf, f), nil
	case <-im.done:
		return 0, net.ErrClosed
	case <-im.pumpDone:
		select {
		case f := <-im.in:
			return copy(buf, f), nil
		default:
			return 0, im.readErr
		}
	}
}

// WriteFrame passes frame through the egress impairments to the wrapped
// link. It returns the link's error for frames sent at once; frames sent
// later by Delay or ReorderHold count their errors in Stats. A dropped
// frame returns nil. After Close it returns net.ErrClosed.
func (im *Impair) WriteFrame(frame []byte) error {
	select {
	case <-im.done:
		return net.ErrClosed
	default:
	}
	now := im.sched.now()
	var firstErr error
	for _, f := range im.egress.process(now, frame) {
		im.writeMu.Lock()
		err := im.l.WriteFrame(f)
		im.writeMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// Capabilities reports Queue when the wrapped link has it, the one
// capability Impair passes on: a frame Egress sends at once and the
// wrapped link refuses is refused to the caller, who offers it again and
// so draws its fate again; one sent later (Delay, Reorder) that finds the
// queue full is lost and counted in Errors.
func (im *Impair) Capabilities() Capabilities {
	return Capabilities{Queue: CapabilitiesOf(im.l).Queue}
}

// Backpressure switches the wrapped link to refusing (Queuer); nil if it
// has no Queue capability.
func (im *Impair) Backpressure() <-chan struct{} {
	if q, ok := im.l.(Queuer); ok && CapabilitiesOf(im.l).Queue {
		return q.Backpressure()
	}
	return nil
}

// NotifyRoom asks the wrapped link for a room signal (Queuer).
func (im *Impair) NotifyRoom() {
	if q, ok := im.l.(Queuer); ok && CapabilitiesOf(im.l).Queue {
		q.NotifyRoom()
	}
}

// Queued returns what waits in the wrapped link's queues, and in Impair's
// own for ReadFrame (Queuer), while neither direction can lose a frame;
// else nothing, since a stack waits with its loss probes while frames
// wait, which is right only on a link that loses none. Drop and Corrupt
// lose frames, and so may Delay, Jitter and Reorder: a frame sent later
// that finds the queue full is lost.
func (im *Impair) Queued() (tx, rx int) {
	if im.egress.cfg.lossy() || im.ingress.cfg.lossy() {
		return 0, 0
	}
	if q, ok := im.l.(Queuer); ok && CapabilitiesOf(im.l).Queue {
		tx, rx = q.Queued()
	}
	return tx, rx + len(im.in)
}

// lossy reports whether the impairment can lose frames (see Queued).
func (m Impairment) lossy() bool {
	return m.Drop > 0 || m.Corrupt > 0 || m.Delay > 0 || m.Jitter > 0 || m.Reorder > 0
}

// MTU returns the wrapped link's MTU.
func (im *Impair) MTU() int { return im.l.MTU() }

// Ethernet returns the wrapped link's Ethernet.
func (im *Impair) Ethernet() bool { return im.l.Ethernet() }

// Close closes the wrapped link, discards frames not yet delivered and
// waits for Impair's goroutines to exit. It returns the wrapped link's
// Close error; closing again returns net.ErrClosed.
func (im *Impair) Close() error {
	err := net.ErrClosed
	im.once.Do(func() {
		close(im.done)
		// Closing the link is what unblocks the pump's ReadFrame.
		err = im.l.Close()
		im.wg.Wait()
	})
	return err
}

// Stats returns the counters of each direction.
func (im *Impair) Stats() (egress, ingress ImpairStats) {
	return im.egress.stats(), im.ingress.stats()
}

// pump reads the wrapped link and passes frames through the ingress side.
func (im *Impair) pump() {
	buf := make([]byte, 1<<16)
	for {
		n, err := im.l.ReadFrame(buf)
		if err != nil {
			im.readErr = err
			close(im.pumpDone)
			return
		}
		for _, f := range im.ingress.process(im.sched.now(), buf[:n]) {
			im.enqueue(f)
		}
	}
}

func (im *Impair) enqueue(f []byte) {
	select {
	case im.in <- f:
	default:
		im.ingress.mu.Lock()
		im.ingress.st.Overflow++
		im.ingress.mu.Unlock()
	}
}

func (im *Impair) writeDelayed(f []byte) {
	im.writeMu.Lock()
	err := im.l.WriteFrame(f)
	im.writeMu.Unlock()
	if err != nil {
		im.egress.mu.Lock()
		im.egress.st.Errors++
		im.egress.mu.Unlock()
	}
}

// impairDir is the state of one direction.
type impairDir struct {
	cfg     Impairment
	sched   *scheduler
	deliver func([]byte) // for frames leaving later, from the scheduler

	mu      sync.Mutex
	rng     *rand.Rand
	held    []byte    // frame held back by Reorder, or nil
	heldGen uint64    // bumped whenever held changes, so a stale release is ignored
	busy    time.Time // when the bottleneck (Rate) has sent what it holds
	st      ImpairStats
}

func (d *impairDir) init(cfg Impairment, src rand.Source, s *scheduler, deliver func([]byte)) {
	if cfg.ReorderHold <= 0 {
		cfg.ReorderHold = DefaultReorderHold
	}
	d.cfg, d.rng, d.sched, d.deliver = cfg, rand.New(src), s, deliver
}

func (d *impairDir) stats() ImpairStats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// chance draws true with probability p. It draws nothing when p is 0, so a
// direction without impairments consumes no randomness.
func (d *impairDir) chance(p float64) bool {
	return p > 0 && d.rng.Float64() < p
}

// process decides the fate of frame, arriving at now, and returns the
// copies to deliver at once; delayed ones it hands to the scheduler. The
// returned slices are fresh: frame is not retained.
func (d *impairDir) process(now time.Time, frame []byte) [][]byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.Frames++
	if d.chance(d.cfg.Drop) {
		d.st.Dropped++
		return nil
	}
	f := append([]byte(nil), frame...)
	if len(f) > 0 && d.chance(d.cfg.Corrupt) {
		f[d.rng.IntN(len(f))] ^= 1 << d.rng.IntN(8)
		d.st.Corrupted++
	}
	copies := [][]byte{f}
	if d.chance(d.cfg.Duplicate) {
		d.st.Duplicated++
		copies = append(copies, append([]byte(nil), f...))
	}
	var out [][]byte
	for _, c := range copies {
		switch {
		case d.held != nil:
			// The held frame goes out right behind its successor.
			out = append(out, c, d.held)
			d.held = nil
			d.heldGen++
		case d.chance(d.cfg.Reorder):
			d.st.Reordered++
			d.held = c
			d.heldGen++
			gen := d.heldGen
			d.sched.at(now.Add(d.cfg.ReorderHold), func(t time.Time) { d.releaseHeld(t, gen) })
		default:
			out = append(out, c)
		}
	}
	return d.delayLocked(now, out)
}

// releaseHeld delivers the held frame if no successor has come for it.
func (d *impairDir) releaseHeld(now time.Time, gen uint64) {
	d.mu.Lock()
	if d.held == nil || d.heldGen != gen {
		d.mu.Unlock()
		return
	}
	f := d.held
	d.held = nil
	d.heldGen++
	out := d.delayLocked(now, [][]byte{f})
	d.mu.Unlock()
	for _, f := range out {
		d.deliver(f)
	}
}

// delayLocked schedules frames for later if a delay or a rate is
// configured and returns those to deliver at once.
func (d *impairDir) delayLocked(now time.Time, frames [][]byte) [][]byte {
	if d.cfg.Delay <= 0 && d.cfg.Jitter <= 0 && d.cfg.Rate <= 0 {
		return frames
	}
	for _, f := range frames {
		wait, ok := d.bottleneckLocked(now, len(f))
		if !ok {
			d.st.RateDropped++
			continue
		}
		delay := wait + d.cfg.Delay
		if d.cfg.Jitter > 0 {
			delay += time.Duration(d.rng.Int64N(int64(d.cfg.Jitter) + 1))
		}
		d.st.Delayed++
		d.sched.at(now.Add(delay), func(time.Time) { d.deliver(f) })
	}
	return nil
}

// bottleneckLocked passes a frame of n bytes arriving at now through the
// bottleneck: it returns how long the frame waits and takes to leave, or
// false when the FIFO has no room for it.
func (d *impairDir) bottleneckLocked(now time.Time, n int) (time.Duration, bool) {
	if d.cfg.Rate <= 0 {
		return 0, true
	}
	start := now
	if d.busy.After(now) {
		start = d.busy
		queued := start.Sub(now).Seconds() * d.cfg.Rate // bytes ahead of this frame
		if queued+float64(n) > d.cfg.queueLimit() {
			return 0, false
		}
	}
	d.busy = start.Add(time.Duration(float64(n) / d.cfg.Rate * float64(time.Second)))
	return d.busy.Sub(now), true
}

// scheduler runs functions at given times on one goroutine, in time order
// and, for equal times, in the order they were scheduled, so that a fixed
// Delay keeps frames in order.
type scheduler struct {
	mu   sync.Mutex
	q    eventQueue
	seq  uint64
	wake chan struct{} // capacity 1: the earliest event changed
	done chan struct{}
}

type event struct {
	when time.Time
	seq  uint64
	fn   func(now time.Time)
}

func (s *scheduler) init(done chan struct{}) {
	s.wake = make(chan struct{}, 1)
	s.done = done
}

func (s *scheduler) now() time.Time { return time.Now() }

// at schedules fn to run at when. It may be called with other locks held:
// it takes only the scheduler's.
func (s *scheduler) at(when time.Time, fn func(time.Time)) {
	s.mu.Lock()
	s.seq++
	heap.Push(&s.q, event{when: when, seq: s.seq, fn: fn})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var wait time.Duration = -1
		var due *event
		if len(s.q) > 0 {
			now := time.Now()
			if e := s.q[0]; !e.when.After(now) {
				heap.Pop(&s.q)
				due = &e
			} else {
				wait = e.when.Sub(now)
			}
		}
		s.mu.Unlock()
		if due != nil {
			select {
			case <-s.done:
				return
			default:
			}
			due.fn(time.Now())
			continue
		}
		var tc <-chan time.Time
		if wait >= 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-tc:
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}

// eventQueue is a min-heap of events by (when, seq).
type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].when.Equal(q[j].when) {
		return q[i].when.Before(q[j].when)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

var _ Link = (*Impair)(nil)
