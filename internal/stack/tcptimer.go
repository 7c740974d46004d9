package stack

import (
	"sync"
	"sync/atomic"
	"time"
)

// Far deadlines. An idle connection's only deadline is usually seconds
// away: keep-alive (15 s with Go's defaults, which the root mirrors),
// TIME-WAIT (60 s), FIN-WAIT-2. A runtime timer per connection for it
// costs as much heap as the rest of the connection's engine state, so a
// deadline at least farAfter away is not given one: the connection is
// parked in the stack's bucket of its deadline's second, without a timer,
// and one stack-wide timer visits each bucket farLead before its
// deadlines. The visit arms the connection's own timer for its exact
// deadline (or parks it again if the deadline moved away), so deadlines
// fire when they did with a timer each; the timer is dropped again once
// the connection parks.
const (
	farAfter = 3 * time.Second         // deadlines this far away or more are parked
	farLead  = 1500 * time.Millisecond // how long before its deadline a bucket is visited
	farSlot  = time.Second             // the time a bucket covers
)

// farTimers holds the parked connections, bucketed by the second (since
// base) in which each is to be visited. mu is taken with an endpoint's
// mu held, never the other way round. The endpoint fields farSlot and
// farIdx are guarded by mu; farParked by the endpoint's own mu.
type farTimers struct {
	mu      sync.Mutex
	base    time.Time                // slot 1 starts farSlot after it; set at the first park
	buckets map[int32][]*TCPEndpoint // by slot; an endpoint's farIdx is its index in its slot's
	slots   []int32                  // a min-heap of the slots with buckets (some since emptied)
	timer   *time.Timer              // fires at the start of slots[0]
	armed   int32                    // the slot the timer is armed for; 0: none
	closed  bool
	pool    sync.Pool // *connTimer: timers given back, for connections to reuse
}

// A connTimer is a runtime timer lent to a connection while one of its
// deadlines is near. A connection gives it back to the stack's pool when
// it parks or has no deadline, so that connections that come and go
// (each parks in ESTABLISHED with keep-alive and again in TIME-WAIT) reuse
// timers rather than make new ones.
type connTimer struct {
	t *time.Timer
	c atomic.Pointer[TCPEndpoint] // the connection it is lent to
}

// fire runs the timer's connection. A run that started before the timer
// was lent again may reach the next connection: a call of onTimer with
// nothing due, which changes nothing.
func (t *connTimer) fire() {
	if c := t.c.Load(); c != nil {
		c.onTimer()
	}
}

// lendTimer returns a timer that runs c after d.
func (f *farTimers) lendTimer(c *TCPEndpoint, d time.Duration) *connTimer {
	if t, _ := f.pool.Get().(*connTimer); t != nil {
		t.c.Store(c)
		t.t.Reset(d)
		return t
	}
	t := new(connTimer)
	t.c.Store(c)
	t.t = time.AfterFunc(d, t.fire)
	return t
}

// dropTimer gives c's timer back, with mu held. One that has already
// fired is dropped instead: its run may still be on its way to c.
func (c *TCPEndpoint) dropTimer() {
	t := c.timer
	if t == nil {
		return
	}
	c.timer = nil
	if t.t.Stop() {
		c.s.far.pool.Put(t)
	}
}

// slotOf returns the bucket in which a connection whose deadline is at is
// visited: the one holding at minus farLead, counted from 1.
func (f *farTimers) slotOf(at time.Time) int32 {
	return int32(at.Add(-farLead).Sub(f.base)/farSlot) + 1
}

// park files c, with mu held, under its deadline at, at least farAfter
// from now; a connection parked in another slot moves.
func (c *TCPEndpoint) park(now, at time.Time) {
	f := &c.s.far
	c.farParked = true
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	if f.base.IsZero() {
		f.base = now
		f.buckets = make(map[int32][]*TCPEndpoint)
	}
	slot := f.slotOf(at)
	if c.farSlot == slot {
		return
	}
	f.remove(c)
	b, ok := f.buckets[slot]
	if !ok {
		heapPush(&f.slots, slot)
	}
	c.farSlot, c.farIdx = slot, int32(len(b))
	f.buckets[slot] = append(b, c)
	if f.armed == 0 || slot < f.armed {
		f.arm(now, slot)
	}
}

// unpark takes c, with mu held, out of its bucket if it is in one.
func (c *TCPEndpoint) unpark() {
	if !c.farParked {
		return
	}
	c.farParked = false
	f := &c.s.far
	f.mu.Lock()
	f.remove(c)
	f.mu.Unlock()
}

// remove takes c out of its bucket, if any; f.mu is held.
func (f *farTimers) remove(c *TCPEndpoint) {
	if c.farSlot == 0 {
		return
	}
	b := f.buckets[c.farSlot]
	last := b[len(b)-1]
	b[c.farIdx], last.farIdx = last, c.farIdx
	b[len(b)-1] = nil
	if b = b[:len(b)-1]; len(b) == 0 {
		delete(f.buckets, c.farSlot) // its heap entry goes when its time comes
	} else {
		f.buckets[c.farSlot] = b
	}
	c.farSlot, c.farIdx = 0, 0
}

// arm sets the stack's timer for the start of slot; f.mu is held.
func (f *farTimers) arm(now time.Time, slot int32) {
	f.armed = slot
	d := max(f.base.Add(time.Duration(slot-1)*farSlot).Sub(now), 0)
	if f.timer == nil {
		f.timer = time.AfterFunc(d, f.fire)
	} else {
		f.timer.Reset(d)
	}
}

// fire visits the buckets whose time has come: each of their connections
// arms its own timer for its deadline, now near, or parks again.
func (f *farTimers) fire() { f.visit(time.Now()) }

// visit is fire at now.
func (f *farTimers) visit(now time.Time) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	cur := int32(now.Sub(f.base)/farSlot) + 1
	var due []*TCPEndpoint
	for len(f.slots) > 0 && f.slots[0] <= cur {
		slot := heapPop(&f.slots)
		for _, c := range f.buckets[slot] {
			c.farSlot, c.farIdx = 0, 0
			due = append(due, c)
		}
		delete(f.buckets, slot)
	}
	f.armed = 0
	if len(f.slots) > 0 {
		f.arm(now, f.slots[0])
	}
	f.mu.Unlock()
	for _, c := range due {
		// c may have parked again meanwhile: armTimer finds it so, and
		// takes it out of its new bucket if its deadline is now near.
		c.mu.Lock()
		c.timerAt = 0 // arm anew
		c.armTimer(now, c.core.NextDeadline())
		c.mu.Unlock()
	}
}

// close stops the timer and drops the buckets: the stack is closing and
// its connections are aborted.
func (f *farTimers) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.timer != nil {
		f.timer.Stop()
	}
	for _, b := range f.buckets {
		for _, c := range b {
			c.farSlot, c.farIdx = 0, 0
		}
	}
	f.buckets, f.slots = nil, nil
}

// heapPush adds v to the min-heap h.
func heapPush(h *[]int32, v int32) {
	*h = append(*h, v)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p] <= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

// heapPop removes and returns the least of the min-heap h.
func heapPop(h *[]int32) int32 {
	s := *h
	v := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && s[l] < s[m] {
			m = l
		}
		if r := l + 1; r < n && s[r] < s[m] {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return v
}
