package netstack

import (
	"sync"
	"testing"
	"time"
)

// A deadline that nobody waits on holds no timer and no channel: idle
// connections of a server that sets deadlines cost nothing for them.
func TestDeadlineLazy(t *testing.T) {
	var d deadline
	d.set(time.Now().Add(time.Hour))
	if d.w.Load() != nil {
		t.Fatal("set made a timer or channel with nobody waiting")
	}
	if d.passed() {
		t.Fatal("a deadline an hour away has passed")
	}
	ch := d.wait()
	if d.w.Load().timer == nil || isClosed(ch) {
		t.Fatal("wait did not arm the timer")
	}
	d.set(time.Time{})
	if d.w.Load().timer != nil || isClosed(d.wait()) || d.passed() {
		t.Fatal("clearing the deadline left it armed")
	}
	d.stop()
}

// Moving the deadline into the past fails pending and later waits at once;
// moving it back to the future lets them wait again.
func TestDeadlinePastAndBack(t *testing.T) {
	var d deadline
	ch := d.wait()
	d.set(time.Now().Add(-time.Second))
	if !isClosed(ch) || !d.passed() {
		t.Fatal("a past deadline did not fail the pending wait")
	}
	d.set(time.Now().Add(time.Hour))
	if isClosed(d.wait()) || d.passed() {
		t.Fatal("the deadline moved to the future still fails waits")
	}
	d.stop()

	// A deadline set in the past before anyone waits fails the first wait.
	var e deadline
	e.set(time.Now().Add(-time.Millisecond))
	if !e.passed() || !isClosed(e.wait()) {
		t.Fatal("a past deadline set before the first wait did not fail it")
	}
}

// The timer armed by wait closes the channel when the deadline passes.
func TestDeadlineFires(t *testing.T) {
	var d deadline
	d.set(time.Now().Add(20 * time.Millisecond))
	select {
	case <-d.wait():
	case <-time.After(10 * time.Second):
		t.Fatal("the deadline never fired")
	}
	if !d.passed() {
		t.Fatal("fired but not passed")
	}
}

// A deadline without a monotonic reading counts from the wall clock now,
// as package net's does; one centuries away never passes.
func TestDeadlineWallClockTimes(t *testing.T) {
	var d deadline
	d.set(time.Unix(time.Now().Unix()+3600, 0))
	if d.passed() {
		t.Fatal("a wall-clock deadline an hour away has passed")
	}
	d.set(time.Unix(time.Now().Unix()-10, 0))
	if !d.passed() || !isClosed(d.wait()) {
		t.Fatal("a wall-clock deadline 10 s ago has not passed")
	}
	d.set(time.Unix(1<<62, 0))
	if d.passed() || isClosed(d.wait()) {
		t.Fatal("a deadline centuries away has passed")
	}
	d.stop()
}

// Stopping a deadline whose timer is firing, then setting it again, must
// not close the channel twice (a panic).
func TestDeadlineStopWhileFiring(t *testing.T) {
	for range 2000 {
		var d deadline
		d.set(time.Now().Add(time.Microsecond))
		d.wait()
		d.stop()
		d.set(time.Now().Add(-time.Second))
		if !isClosed(d.wait()) {
			t.Fatal("a past deadline did not fail the wait")
		}
		d.stop()
	}
}

// First waits racing with sets: whichever comes first, a wait on a
// deadline in the past fails, and one on a deadline cleared or in the
// future does not.
func TestDeadlineFirstWaitRacesSet(t *testing.T) {
	for i := range 200 {
		var d deadline
		past := i%2 == 0
		at := time.Now().Add(time.Hour)
		if past {
			at = time.Now().Add(-time.Second)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); d.wait() }()
		go func() { defer wg.Done(); d.set(at) }()
		wg.Wait()
		if got := isClosed(d.wait()); got != past {
			t.Fatalf("round %d: deadline in the past %v, wait fails %v", i, past, got)
		}
		d.stop()
	}
}
