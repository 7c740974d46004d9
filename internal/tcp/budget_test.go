package tcp

import (
	"fmt"
	"testing"
	"time"
)

// Rings charge their capacity to the budget and credit it when released;
// past the limit they grow no further, except to minRing.
func TestBudgetRingCharges(t *testing.T) {
	b := NewBudget(64 << 10)
	var r1, r2 ring
	if !r1.reserve(b, 100, 0, 1<<20) || len(r1.buf) != minRing || b.Used() != minRing {
		t.Fatalf("first reserve: ring %d, used %d", len(r1.buf), b.Used())
	}
	r1.write([]byte("queued"))
	if !r1.reserve(b, 40<<10, r1.len(), 1<<20) || len(r1.buf) != 64<<10 || b.Used() != 64<<10 {
		t.Fatalf("growth within the limit: ring %d, used %d", len(r1.buf), b.Used())
	}
	if r1.reserve(b, 100<<10, r1.len(), 1<<20) || len(r1.buf) != 64<<10 || b.Used() != 64<<10 {
		t.Fatalf("growth past the limit: ring %d, used %d", len(r1.buf), b.Used())
	}
	if p := make([]byte, 6); r1.read(p) != 6 || string(p) != "queued" {
		t.Fatalf("data lost across the reallocation: %q", p)
	}
	// Past the limit, a ring still gets minRing, and no more.
	if r2.reserve(b, 10<<10, 0, 1<<20) || len(r2.buf) != minRing || b.Used() != 64<<10+minRing {
		t.Fatalf("exhausted budget: ring %d, used %d", len(r2.buf), b.Used())
	}
	if r2.reserve(b, 2*minRing, 0, 1<<20) || len(r2.buf) != minRing {
		t.Fatalf("exhausted budget, second try: ring %d", len(r2.buf))
	}
	r1.release(b)
	if b.Used() != minRing {
		t.Fatalf("after release: used %d, want %d", b.Used(), minRing)
	}
	if !r2.reserve(b, 10<<10, 0, 1<<20) || len(r2.buf) != 16<<10 {
		t.Fatalf("after release: ring %d", len(r2.buf))
	}
	r2.release(b)
	if b.Used() != 0 {
		t.Fatalf("all released: used %d", b.Used())
	}
	// nil is unlimited.
	var r3 ring
	var none *Budget
	if !r3.reserve(none, 1<<20, 0, 1<<20) || none.Used() != 0 || none.room(0, 1<<30) != 1<<30 {
		t.Fatal("nil budget")
	}
}

// Memory pressure sets in past 2/3 of the limit, before the limit is
// reached, and lasts until use falls back to half of it: meanwhile rings
// are not offered room to grow, though the limit would still allow it.
func TestBudgetPressure(t *testing.T) {
	b := NewBudget(96 << 10)
	var r1, r2 ring
	r1.reserve(b, 64<<10, 0, 1<<20)
	if b.pressure.Load() || b.room(0, 32<<10) != 32<<10 || b.canHave(0) != 32<<10 {
		t.Fatalf("at 2/3 of the limit: pressure %v, room %d, canHave %d", b.pressure.Load(), b.room(0, 32<<10), b.canHave(0))
	}
	r2.reserve(b, 1, 0, 1<<20)
	if !b.pressure.Load() || b.room(0, 24<<10) != minRing || b.room(8<<10, 24<<10) != 8<<10 || b.canHave(minRing) != minRing {
		t.Fatalf("past 2/3: pressure %v, room %d", b.pressure.Load(), b.room(0, 24<<10))
	}
	if !r2.reserve(b, 16<<10, 0, 1<<20) {
		t.Fatal("under pressure a ring still grows within the limit (into a window advertised before)")
	}
	r2.release(b)
	if !b.pressure.Load() {
		t.Fatal("pressure left above half the limit")
	}
	r1.release(b)
	if b.pressure.Load() || b.room(0, 64<<10) != 64<<10 {
		t.Fatal("pressure stayed with nothing used")
	}
}

// Connections under their own locks share a budget: rings grown and
// released from many goroutines at once stay within the bound, and the
// budget ends at zero.
func TestBudgetConcurrent(t *testing.T) {
	const workers, limit = 8, 256 << 10
	b := NewBudget(limit)
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			var r ring
			for i := range 2000 {
				r.reserve(b, (i*7919+w*104729)%(128<<10)+1, 0, 128<<10)
				if u := b.Used(); u > limit+workers*minRing {
					errs <- fmt.Errorf("budget holds %d bytes", u)
					return
				}
				if i%3 == 0 {
					r.release(b)
				}
			}
			r.release(b)
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if u := b.Used(); u != 0 {
		t.Fatalf("all released, the budget holds %d bytes", u)
	}
}

// exhaust returns a ring that takes what b has left.
func exhaust(t *testing.T, b *Budget) *ring {
	t.Helper()
	r := new(ring)
	if left := b.Limit() - b.Used(); !r.reserve(b, left, 0, left) {
		t.Fatal("could not take the rest of the budget")
	}
	return r
}

// Receive side under memory pressure: what arrives within the window and
// does not fit the ring is dropped and counted; from then on ACKs announce
// only what the ring has free (a zero window when it is full), reading
// sends the window update, the sender's retransmission is taken, and the
// window opens to the whole buffer again once memory is back. The edge
// promised before still bounds what is acceptable: a pure ACK beyond the
// announced window draws no ACK in reply.
func TestBudgetReceiveWindow(t *testing.T) {
	b := NewBudget(32 << 10)
	tt := newTranscript(t, &Config{RecvBuf: 32 << 10, Budget: b})
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000 wnd=32768") // the budget has it all
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460")
	tt.want(10, "ACK seq=1001 ack=5001 wnd=32768")
	other := exhaust(t, b) // other connections take the rest
	tt.in(20, "ACK seq=5001 ack=1001 len=1460")
	// The ring got minRing; the window stays where it was advertised.
	tt.in(21, "ACK seq=6461 ack=1001 len=1460")
	tt.want(21, "ACK seq=1001 ack=7921 wnd=29848")
	tt.in(22, "ACK seq=7921 ack=1001 len=1460")
	// 4096-2920 bytes of it fit: the rest is dropped, the window closes.
	tt.want(22, "ACK seq=1001 ack=9097 wnd=0")
	if st := tt.c.Stats(); st.DropMemory != 1 || b.Drops() != 1 || st.BufferBudgetHits != 1 || b.Hits() != 1 {
		t.Fatalf("DropMemory %d, BufferBudgetHits %d, budget hits %d; want 1 each", st.DropMemory, st.BufferBudgetHits, b.Hits())
	}
	// A pure ACK beyond the announced edge, within the promised one, is
	// taken silently.
	tt.in(25, "ACK seq=9381 ack=1001")
	tt.wantNothing(25)
	if got, _ := tt.read(30); len(got) != 4096 {
		t.Fatalf("read %d bytes, want 4096", len(got))
	}
	tt.want(30, "ACK seq=1001 ack=9097 wnd=4096") // the window update
	tt.in(40, "ACK seq=9097 ack=1001 len=284")    // the retransmission
	tt.want(80, "ACK seq=1001 ack=9381 wnd=3812")
	tt.read(81)
	if got := tt.c.advertise(); got != 4096 {
		t.Fatalf("window %d while short of memory, want the ring, 4096", got)
	}
	// Memory comes back: the window opens to the whole buffer again.
	other.release(b)
	if got := tt.c.advertise(); got != 32768 {
		t.Fatalf("window %d with memory back, want 32768", got)
	}
	tt.in(90, "ACK seq=9381 ack=1001 len=10000")
	if got, _ := tt.read(91); len(got) != 10000 {
		t.Fatalf("read %d bytes, want 10000", len(got))
	}
	tt.c.Abort(tt.now)
	if b.Used() != 0 {
		t.Fatalf("after Abort the budget holds %d bytes", b.Used())
	}
}

// Send side of a window that shrinks below the data in flight (RFC 1122
// §4.2.2.16), as a receiver out of memory closes it: when the window opens
// again, what lay beyond the edge goes again at once, not at the
// retransmission timeout, which restarts from its base.
func TestShrunkWindowResent(t *testing.T) {
	tt := established(t, nil)
	p := make([]byte, 4*1460)
	tt.do(20, func(now time.Time) { tt.c.Write(now, p) })
	for _, w := range []string{"1001", "2461", "3921"} {
		tt.want(20, "ACK seq="+w+" ack=5001 len=1460")
	}
	tt.want(20, "ACK|PSH seq=5381 ack=5001 len=1460")
	// The peer keeps the first segment and closes its window.
	tt.in(21, "ACK seq=5001 ack=2461 wnd=0")
	tt.wantNothing(21)
	// Reading, it opens the window: the three segments it dropped go again.
	tt.in(30, "ACK seq=5001 ack=2461 wnd=65535")
	for _, w := range []string{"2461", "3921"} {
		tt.want(30, "ACK seq="+w+" ack=5001 len=1460")
	}
	tt.want(30, "ACK|PSH seq=5381 ack=5001 len=1460")
	if st := tt.c.Stats(); st.Timeouts != 0 {
		t.Fatalf("%d timeouts: the resend waited for the timer", st.Timeouts)
	}
	tt.in(31, "ACK seq=5001 ack=6841 wnd=65535")
	if i := tt.c.Info(); i.Unacked != 0 || i.Cwnd < 4*1460 {
		t.Fatalf("after the ACK: %d unacked, cwnd %d; want 0 and no reduction", i.Unacked, i.Cwnd)
	}
}

// A connection that opens under memory pressure offers only minRing.
func TestBudgetSynWindow(t *testing.T) {
	b := NewBudget(0)
	tt := newTranscript(t, &Config{Budget: b})
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000 wnd=4096")
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460")
	tt.want(10, "ACK seq=1001 ack=5001 wnd=4096")
}

// Send side under memory pressure: Write takes what fits in the ring
// (minRing at least), then nothing until acknowledgments free space, and
// the send buffer does not grow with cwnd.
func TestBudgetWrite(t *testing.T) {
	b := NewBudget(0)
	tt := established(t, &Config{SendBuf: 8192, SendBufMax: 1 << 20, Budget: b})
	tt.in(15, "ACK seq=5001 ack=1001 wnd=1460")
	p := make([]byte, 10000)
	var n int
	tt.do(20, func(now time.Time) { n, _ = tt.c.Write(now, p) })
	if n != minRing || tt.c.Writable() != 0 {
		t.Fatalf("Write took %d, Writable %d; want %d, 0", n, tt.c.Writable(), minRing)
	}
	tt.want(20, "ACK seq=1001 ack=5001 len=1460")
	tt.do(21, func(now time.Time) { n, _ = tt.c.Write(now, p) })
	if n != 0 || b.Hits() != 1 {
		t.Fatalf("Write took %d with the ring full, hits %d; want 0, 1 (a full ring is no new refusal)", n, b.Hits())
	}
	tt.in(30, "ACK seq=5001 ack=2461 wnd=65535") // 2·cwnd would take the buffer to 29200
	tt.wantEvent(EvWritable)
	if w, sb := tt.c.Writable(), tt.c.Info().SendBuf; w != 1460 || sb != 8192 || b.Hits() != 2 {
		t.Fatalf("after the ACK: Writable %d, send buffer %d, hits %d; want 1460, 8192, 2", w, sb, b.Hits())
	}
	tt.do(31, func(now time.Time) { n, _ = tt.c.Write(now, p) })
	if n != 1460 || b.Hits() != 3 || tt.c.Stats().BufferBudgetHits != 3 {
		t.Fatalf("Write took %d after the ACK, hits %d/%d; want 1460, 3", n, b.Hits(), tt.c.Stats().BufferBudgetHits)
	}
}

// runSims drives several simulations on one virtual clock until all are
// done or the clock passes limit; check runs after every step.
func runSims(sims []*sim, limit time.Duration, check func() error) error {
	for _, s := range sims {
		s.ends[0].conn.Connect(s.now)
	}
	deadline := sims[0].start.Add(limit)
	for {
		var next time.Time
		for i, s := range sims {
			done, err := s.apps()
			if err == nil && !done {
				var n time.Time
				if n, err = s.next(); err == nil && (next.IsZero() || n.Before(next)) {
					next = n
				}
			}
			if err != nil {
				return fmt.Errorf("connection %d (seed %d): %v", i, s.seed, err)
			}
		}
		if err := check(); err != nil {
			return err
		}
		if next.IsZero() {
			return nil
		}
		if next.After(deadline) {
			return fmt.Errorf("virtual time limit %v passed", limit)
		}
		for _, s := range sims {
			s.advance(next)
		}
	}
}

// Many connections move data at once under a budget far below what they
// would take: every stream arrives intact, the budget is hit but never
// exceeded by more than minRing per ring, the refusals are counted in
// the connections and the budget alike, and it is back to zero once all
// are closed.
func TestSimBudgetManyConns(t *testing.T) {
	const pairs = 16
	size := int64(1 << 20)
	if raceEnabled {
		size = 256 << 10
	}
	b := NewBudget(256 << 10)
	cfg := &Config{Budget: b, TimeWait: time.Second}
	imp := simImpair{Delay: 2 * time.Millisecond, Rate: 25e6, Loss: 0.01, Reorder: 0.02, Jitter: time.Millisecond}
	sims := make([]*sim, pairs)
	for i := range sims {
		seed := simSeed(uint64(900 + i))
		sims[i] = newSim(t, seed, imp, cfg, Seq(seed*7919), Seq(seed*104729))
		sims[i].ends[0].total, sims[i].ends[1].total = size, size
		if i%4 == 3 {
			sims[i].ends[1].readPeriod = 50 * time.Millisecond // some slow readers hold their rings
		}
	}
	// The budget is checked after every step and every segment sent.
	bound := b.Limit() + 4*pairs*minRing // two connections, two rings each
	peak := 0
	watch := func() error {
		if u := b.Used(); u > peak {
			peak = u
			if u > bound {
				return fmt.Errorf("budget holds %d bytes, bound %d", u, bound)
			}
		}
		return nil
	}
	var over error
	for _, s := range sims {
		s.drop = func(int, *Segment) bool {
			if err := watch(); err != nil && over == nil {
				over = err
			}
			return false
		}
	}
	err := runSims(sims, time.Hour, func() error {
		if over != nil {
			return over
		}
		return watch()
	})
	if err != nil {
		t.Fatal(err)
	}
	var hits, drops uint64
	for i, s := range sims {
		for _, e := range s.ends {
			if e.recvd != size {
				t.Fatalf("pair %d end %d received %d of %d bytes", i, e.idx, e.recvd, size)
			}
			st := e.conn.Stats()
			hits += st.BufferBudgetHits
			drops += st.DropMemory
		}
	}
	t.Logf("virtual %v, peak %d of %d (+%d slack), %d hits, %d segments trimmed",
		sims[0].now.Sub(sims[0].start), peak, b.Limit(), bound-b.Limit(), hits, drops)
	if hits == 0 || hits != b.Hits() {
		t.Fatalf("connections counted %d hits, the budget %d; want equal and > 0", hits, b.Hits())
	}
	if drops != b.Drops() {
		t.Fatalf("connections trimmed %d segments, the budget counted %d", drops, b.Drops())
	}
	if peak <= b.Limit()/2 {
		t.Fatalf("peak %d: the budget was never under pressure", peak)
	}
	if u := b.Used(); u != 0 {
		t.Fatalf("all closed, the budget still holds %d bytes", u)
	}
}

// Connections cut short, with data queued in both rings and out of order,
// give all their memory back when they are aborted or closed.
func TestBudgetFreedOnAbort(t *testing.T) {
	b := NewBudget(1 << 20)
	cfg := &Config{Budget: b}
	imp := simImpair{Delay: 5 * time.Millisecond, Rate: 12.5e6, Reorder: 0.05, Jitter: 2 * time.Millisecond}
	sims := make([]*sim, 8)
	for i := range sims {
		sims[i] = newSim(t, simSeed(uint64(950+i)), imp, cfg, 1, 2)
		sims[i].ends[0].total, sims[i].ends[1].total = 8<<20, 8<<20
		sims[i].ends[1].readPeriod = time.Second // keeps data in its receive ring
	}
	err := runSims(sims, time.Hour, func() error {
		if sims[0].now.Sub(sims[0].start) >= 1500*time.Millisecond {
			return errStop // the slow readers last read at 1 s
		}
		return nil
	})
	if err != errStop {
		t.Fatalf("the transfers ended early: %v", err)
	}
	used := b.Used()
	resets := 0
	for i, s := range sims {
		c, srv := s.ends[0].conn, s.ends[1].conn
		if i%2 == 0 || srv.Readable() == 0 {
			c.Abort(s.now)
			srv.Abort(s.now)
			continue
		}
		srv.Close(s.now) // unread data: Close resets
		c.Abort(s.now)
		if srv.State() != Closed {
			t.Fatalf("pair %d: %v after Close with data unread", i, srv.State())
		}
		resets++
	}
	if resets == 0 {
		t.Fatal("no slow reader had data unread")
	}
	t.Logf("%d bytes held before the aborts", used)
	if used == 0 {
		t.Fatal("nothing was held")
	}
	if u := b.Used(); u != 0 {
		t.Fatalf("all aborted, the budget still holds %d bytes", u)
	}
}

var errStop = fmt.Errorf("stop")

// The listener's children share the budget of its Config.
func TestBudgetSharedByListener(t *testing.T) {
	b := NewBudget(1 << 20)
	tt := newListening(t, &Config{Budget: b}, 4)
	tt.in(0, "SYN seq=5000 mss=1460")
	tt.want(0, "SYN|ACK seq=1000 ack=5001")
	tt.in(10, "ACK seq=5001 ack=1001 len=100")
	if b.Used() != minRing {
		t.Fatalf("used %d, want %d", b.Used(), minRing)
	}
}

// Data kept for reading after a reset goes back to the budget when the
// application closes without reading it.
func TestBudgetFreedOnCloseAfterReset(t *testing.T) {
	b := NewBudget(1 << 20)
	tt := established(t, &Config{Budget: b})
	tt.in(20, "ACK|PSH seq=5001 ack=1001 len=1460")
	tt.in(30, "RST seq=6461")
	tt.wantState(Closed)
	if b.Used() == 0 || tt.c.Readable() != 1460 {
		t.Fatalf("after the reset: budget %d, readable %d; want the data kept", b.Used(), tt.c.Readable())
	}
	tt.c.Close(tt.now)
	if u := b.Used(); u != 0 {
		t.Fatalf("closed unread after a reset, the budget still holds %d bytes", u)
	}
}
