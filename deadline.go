package netstack

import (
	"math"
	"net"
	"os"
	"sync"
	"time"
)

// deadline is a read or write deadline. It costs nothing until a Read or
// Write blocks while it is set: set only records the time; the first wait
// makes the channel that is closed when the deadline passes, and arms the
// timer that closes it. So the thousands of idle connections of a server
// that sets deadlines hold no timer each, as the runtime poller's do not
// (its timers live in the poll descriptor).
type deadline struct {
	mu     sync.Mutex
	at     int64         // clock() of the deadline; 0: none
	timer  *time.Timer   // closes cancel at the deadline; armed by wait
	cancel chan struct{} // closed when the deadline passes; nil until a wait
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
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopTimer()
	d.at = 0
	if !t.IsZero() {
		d.at = clockAt(t)
	}
	if d.cancel == nil {
		return // nobody has waited: wait arms what it needs
	}
	if isClosed(d.cancel) {
		d.cancel = make(chan struct{})
	}
	d.arm()
}

// stopTimer stops the timer; if it already fired, it waits for cancel to
// be closed, so the next channel cannot be closed by the old timer.
func (d *deadline) stopTimer() {
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel
	}
	d.timer = nil
}

// arm closes cancel now if the deadline has passed, else starts the timer
// that will. mu is held, cancel is open and the timer stopped.
func (d *deadline) arm() {
	if d.at == 0 {
		return
	}
	left := time.Duration(d.at - clock())
	if left <= 0 {
		close(d.cancel)
		return
	}
	cancel := d.cancel
	d.timer = time.AfterFunc(left, func() { close(cancel) })
}

// wait returns the channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
		d.arm()
	}
	return d.cancel
}

// passed reports whether the deadline has passed, without making a
// channel.
func (d *deadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.at != 0 && clock() >= d.at
}

// stop releases the timer. Like set, it waits for a timer that already
// fired to close cancel, so a later set cannot close it a second time.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopTimer()
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
