package tcp

import (
	"math"
	"sync/atomic"
)

// Budget bounds the buffer memory of all the connections that share it
// (a stack's), as Linux's tcp_mem bounds a host's. Every ring allocation
// and reallocation is charged to it and every release credited, by ring
// capacity, so it holds the bytes the connections' rings take now.
//
// Its limit is hard: a ring never grows past it. Below, as Linux's three
// tcp_mem thresholds (whose defaults stand at 1/2, 2/3 and 1 of the
// highest), the budget enters memory pressure when its use passes 2/3 of
// the limit and leaves it when use falls back to 1/2. Under pressure, or
// when the budget lacks what a connection would need, connections make do
// with the rings they have:
//
//   - the receive window opens no further than the ring holds (Linux
//     clamps the window, tcp_clamp_window); a window advertised before is
//     not withdrawn (RFC 9293 §3.8.6), and the receive ring may still grow
//     into it up to the limit, which the last third is left for;
//   - data within the window that the ring cannot hold, the limit being
//     reached, is dropped (Stats.DropMemory) for the sender to
//     retransmit, as Linux drops what it cannot charge;
//   - Write accepts only what fits in the send ring (the shell then
//     blocks until acknowledgments free space in it);
//   - autotuning raises neither buffer (Linux's tcp_should_expand_sndbuf),
//     and outside pressure not beyond what the budget has left.
//
// Each refusal is counted (Stats.BufferBudgetHits and Hits): a ring not
// grown for Write or for arriving data, a buffer not raised. A Write that
// finds the ring full is not one: it waits as on a full buffer.
//
// Every ring may always grow to minRing (4 KiB), whatever the budget
// holds, so that no connection deadlocks for want of memory others hold:
// the true bound is the limit plus 8 KiB per connection (the receive and
// the send ring), which the connection limit bounds in turn.
//
// A Budget is safe for concurrent use by connections each under its own
// lock. A nil *Budget is unlimited and costs nothing.
type Budget struct {
	limit    int64
	used     atomic.Int64
	hits     atomic.Uint64
	drops    atomic.Uint64
	pressure atomic.Bool
}

// Drops returns how many segments the connections sharing b trimmed
// within their window for want of memory (their Stats.DropMemory summed);
// 0 for nil.
func (b *Budget) Drops() uint64 {
	if b == nil {
		return 0
	}
	return b.drops.Load()
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int) *Budget { return &Budget{limit: int64(limit)} }

// Limit returns the budget's limit in bytes; unlimited for nil.
func (b *Budget) Limit() int {
	if b == nil {
		return math.MaxInt
	}
	return int(b.limit)
}

// Used returns the bytes the rings charged to b hold now.
func (b *Budget) Used() int {
	if b == nil {
		return 0
	}
	return int(b.used.Load())
}

// Hits returns the number of times b refused memory: a ring not grown, a
// buffer not raised by autotuning.
func (b *Budget) Hits() uint64 {
	if b == nil {
		return 0
	}
	return b.hits.Load()
}

// grow charges the growth of a ring from size from to size to, and
// reports whether it was granted: always up to minRing, beyond that when
// it keeps the total within the limit.
func (b *Budget) grow(from, to int) bool {
	if b == nil {
		return true
	}
	d := int64(to - from)
	u := b.used.Load()
	if to <= minRing {
		u = b.used.Add(d)
	} else {
		for {
			if u+d > b.limit {
				b.setPressure(true)
				return false
			}
			if b.used.CompareAndSwap(u, u+d) {
				u += d
				break
			}
			u = b.used.Load()
		}
	}
	if u > b.limit/3*2 {
		b.setPressure(true)
	}
	return true
}

// free credits n bytes of a released ring.
func (b *Budget) free(n int) {
	if b != nil && n > 0 {
		if b.used.Add(-int64(n)) <= b.limit/2 {
			b.setPressure(false)
		}
	}
}

// setPressure enters or leaves memory pressure, writing the flag only
// when it changes, as it is read on every window computed.
func (b *Budget) setPressure(on bool) {
	if b.pressure.Load() != on {
		b.pressure.Store(on)
	}
}

// pressured reports memory pressure. A grow and a free racing may leave
// the flag set below half the limit; it then does not count.
func (b *Budget) pressured() bool { return b.pressure.Load() && b.used.Load() > b.limit/2 }

// room returns how much of a buffer of size bytes a ring of have bytes can
// count on now: all of it, outside memory pressure and if the budget has
// the difference; otherwise what the ring has, and at least minRing,
// which is always granted.
func (b *Budget) room(have, size int) int {
	if b == nil || size <= have || !b.pressured() && b.used.Load()+int64(size-have) <= b.limit {
		return size
	}
	return min(size, max(have, minRing))
}

// canHave returns the largest a ring of have bytes may grow to now: no
// larger under memory pressure.
func (b *Budget) canHave(have int) int {
	switch {
	case b == nil:
		return math.MaxInt
	case b.pressured():
		return have
	}
	return have + int(max(b.limit-b.used.Load(), 0))
}

// budgetHit counts a refusal of the budget in the connection and in the
// budget.
func (c *Conn) budgetHit() {
	c.rareStats().BufferBudgetHits++
	c.cfg.Budget.hits.Add(1)
}
