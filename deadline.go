package netstack

import (
	"sync"
	"time"
)

// deadline is a read or write deadline as net.Pipe keeps one: a channel
// that is closed when the deadline passes, re-made when it is moved. A
// blocked Read or Write selects on wait() beside its readiness channel.
// The channel is made by the first set or wait, so a connection that never
// blocks and never sets a deadline pays for none.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes; nil: never set
}

// set moves the deadline to t; the zero time means none. A time in the
// past makes pending and future waits fail at once.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	if d.cancel == nil {
		if t.IsZero() {
			return
		}
		d.cancel = make(chan struct{})
	}
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		cancel := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(cancel) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns the channel closed when the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	return d.cancel
}

// passed reports whether the deadline has passed, without making a
// channel.
func (d *deadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return isClosed(d.cancel)
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
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
