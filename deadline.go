package netstack

import (
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// deadline is a read or write deadline. It costs nothing until a Read or
// Write blocks while it is set: set only records the time; the first wait
// makes the waiting state, the channel that is closed when the deadline
// passes and the timer that closes it. So the thousands of idle
// connections of a server that sets deadlines hold no timer each, as the
// runtime poller's do not (its timers live in the poll descriptor), and a
// deadline nobody waited for is 16 bytes.
type deadline struct {
	at atomic.Int64                 // clock() of the deadline; 0: none
	w  atomic.Pointer[deadlineWait] // made by the first wait; never replaced
}

// deadlineWait is what a deadline needs once somebody waits for it.
type deadlineWait struct {
	mu     sync.Mutex
	timer  *time.Timer   // closes cancel at the deadline; armed by wait
	cancel chan struct{} // closed when the deadline passes
}

// clockBase anchors clock, which reads the monotonic clock in
// nanoseconds.
var clockBase = time.Now()

// clock returns the monotonic time now, in nanoseconds since clockBase.
func clock() int64 { return int64(time.Since(clockBase)) }

// clockAt returns deadline t on clock's scale, at least 1 so that 0 can
// mean "no deadline". It goes through time.Until, as package net does, so
// a t without a monotonic reading (time.Unix, a decoded time) counts from
// the wall clock now, not from the wall clock when the process started.
func clockAt(t time.Time) int64 {
	now, left := clock(), int64(time.Until(t))
	if left > math.MaxInt64-now {
		return math.MaxInt64 // centuries away
	}
	return max(now+left, 1)
}

// set moves the deadline to t; the zero time means none. A time in the
// past makes pending and future waits fail at once.
//
// The store of at comes before the load of w, and a first wait publishes
// w before it reads at, so either set sees the waiting state and re-arms
// it, or the wait reads the new time.
func (d *deadline) set(t time.Time) {
	var at int64
	if !t.IsZero() {
		at = clockAt(t)
	}
	d.at.Store(at)
	w := d.w.Load()
	if w == nil {
		return // nobody has waited: wait arms what it needs
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopTimer()
	if isClosed(w.cancel) {
		w.cancel = make(chan struct{})
	}
	w.arm(d.at.Load())
}

// stopTimer stops the timer; if it already fired, it waits for cancel to
// be closed, so the next channel cannot be closed by the old timer.
func (w *deadlineWait) stopTimer() {
	if w.timer != nil && !w.timer.Stop() {
		<-w.cancel
	}
	w.timer = nil
}

// arm closes cancel now if deadline at has passed, else starts the timer
// that will. mu is held, cancel is open and the timer stopped.
func (w *deadlineWait) arm(at int64) {
	if at == 0 {
		return
	}
	left := time.Duration(at - clock())
	if left <= 0 {
		close(w.cancel)
		return
	}
	cancel := w.cancel
	w.timer = time.AfterFunc(left, func() { close(cancel) })
}

// wait returns the channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	w := d.w.Load()
	if w == nil {
		w = d.firstWait()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cancel
}

// firstWait makes the waiting state, armed for the deadline as it is now,
// unless a concurrent wait made it first. A set that finds it waits for
// the lock, taken before it is published, and re-arms it.
func (d *deadline) firstWait() *deadlineWait {
	w := &deadlineWait{cancel: make(chan struct{})}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !d.w.CompareAndSwap(nil, w) {
		return d.w.Load()
	}
	w.arm(d.at.Load())
	return w
}

// passed reports whether the deadline has passed, without making a
// channel.
func (d *deadline) passed() bool {
	at := d.at.Load()
	return at != 0 && clock() >= at
}

// stop releases the timer. Like set, it waits for a timer that already
// fired to close cancel, so a later set cannot close it a second time.
func (d *deadline) stop() {
	if w := d.w.Load(); w != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.stopTimer()
	}
}

// unusable returns the error a call meets before it looks at the data:
// net.ErrClosed once closed, which wins over everything as in package net,
// else os.ErrDeadlineExceeded once d has passed.
func unusable(closed bool, d *deadline) error {
	switch {
	case closed:
		return net.ErrClosed
	case d.passed():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// setDeadline sets each of ds to t, unless closed: then it returns
// net.ErrClosed, as package net's setters do after Close.
func setDeadline(closed bool, t time.Time, ds ...*deadline) error {
	if closed {
		return net.ErrClosed
	}
	for _, d := range ds {
		d.set(t)
	}
	return nil
}

func isClosed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// signal wakes one waiter of a capacity-1 readiness channel, without
// blocking if it is already signalled.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
