package stack

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/leaktest"
	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/tcp"
)

// newPipeStacks returns two stacks on a Pipe, 198.18.0.1 and 198.18.0.2,
// closed when the test ends.
func newPipeStacks(t *testing.T) (a, b *Stack) {
	t.Helper()
	la, lb := link.Pipe(1500)
	var err error
	if a, err = New(Config{Link: la, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.1/24")}, MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	if b, err = New(Config{Link: lb, Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24")}, MTU: 1500}); err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// connectPair opens a connection from a to a new listener of b on port,
// with keep-alive ka on the dialing end, and returns both ends once both
// are established.
func connectPair(t *testing.T, a, b *Stack, port uint16, ka tcp.KeepAlive) (cli, srv *TCPEndpoint) {
	t.Helper()
	l, err := b.Listen(Binding{Addr: netip.MustParseAddr("198.18.0.2")}, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cli, err = a.Connect(netip.AddrPortFrom(netip.MustParseAddr("198.18.0.1"), 0), netip.AddrPortFrom(netip.MustParseAddr("198.18.0.2"), port), ka)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !cli.AwaitHandshake(ctx.Done()) {
		t.Fatal("no handshake")
	}
	if err := cli.HandshakeErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case srv = <-l.Queue():
		if !l.Accept(srv) {
			t.Fatal("accepted connection was reset")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing to accept")
	}
	return cli, srv
}

// timerState returns whether c holds a runtime timer, whether it is
// parked with the stack, and the deadline it waits for (0: none).
func timerState(c *TCPEndpoint) (timer, parked bool, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.far.mu.Lock()
	defer c.s.far.mu.Unlock()
	return c.timer != nil, c.farSlot != 0, c.timerAt
}

// waitIdle waits until c has no deadline nearer than farAfter: the
// handshake's timers (the server's SYN-ACK retransmission) are settled.
func waitIdle(t *testing.T, c *TCPEndpoint) (timer, parked bool, at int64) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if timer, parked, at = timerState(c); !timer {
			return timer, parked, at
		}
	}
	t.Fatal("the connection kept a runtime timer")
	return
}

// An idle established connection holds no runtime timer: without
// keep-alive it has no deadline at all; with keep-alive (what the root
// sets by default, as Go's net does) its deadline is 15 s away and it is
// parked with the stack's far deadlines instead.
func TestIdleConnHoldsNoTimer(t *testing.T) {
	leaktest.Check(t)
	a, b := newPipeStacks(t)
	cli, srv := connectPair(t, a, b, 80, tcp.KeepAlive{})
	if timer, parked, at := waitIdle(t, cli); parked || at != 0 {
		t.Fatalf("without keep-alive: timer %v, parked %v, deadline %d; want none", timer, parked, at)
	}
	if timer, parked, at := waitIdle(t, srv); !parked || at == 0 {
		t.Fatalf("accepted end (keep-alive on): timer %v, parked %v, deadline %d; want parked", timer, parked, at)
	}

	ka, ksrv := connectPair(t, a, b, 81, tcp.KeepAlive{Enable: true})
	if timer, parked, _ := waitIdle(t, ka); timer || !parked {
		t.Fatalf("keep-alive on: timer %v, parked %v; want parked without a timer", timer, parked)
	}
	_, _, at := timerState(ka)
	if d := time.Until(time.Unix(0, at)); d < 10*time.Second || d > 16*time.Second {
		t.Fatalf("parked deadline in %v, want the keep-alive's 15 s", d)
	}
	// Data moves the connection's deadlines near (retransmission, delayed
	// ACK) and back: it parks again, dropping the timer it needed.
	if n, err, _ := ka.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatal(n, err)
	}
	waitRead(t, ksrv, 5)
	if timer, parked, _ := waitIdle(t, ka); timer || !parked {
		t.Fatalf("after data: timer %v, parked %v; want parked without a timer", timer, parked)
	}
	for _, c := range []*TCPEndpoint{cli, srv, ka, ksrv} {
		c.Abort()
		if timer, parked, at := timerState(c); timer || parked || at != 0 {
			t.Fatalf("aborted: timer %v, parked %v, deadline %d", timer, parked, at)
		}
	}
}

// waitRead reads n bytes from c.
func waitRead(t *testing.T, c *TCPEndpoint, n int) {
	t.Helper()
	buf := make([]byte, n)
	for got := 0; got < n; {
		k, err, ready := c.Read(buf[got:])
		if err != nil {
			t.Fatal(err)
		}
		if got += k; got < n {
			select {
			case <-ready:
			case <-time.After(10 * time.Second):
				t.Fatal("data never arrived")
			}
		}
	}
}

// A visit to a bucket arms the exact timer of each connection whose
// deadline is now near, re-parks one whose deadline moved away, and skips
// one that left; buckets come in order.
func TestFarTimersVisit(t *testing.T) {
	leaktest.Check(t)
	a, b := newPipeStacks(t)
	c, _ := connectPair(t, a, b, 80, tcp.KeepAlive{Enable: true, Idle: 20 * time.Second, Interval: time.Second})
	waitIdle(t, c)
	f := &a.far
	f.mu.Lock()
	if f.timer == nil || f.armed == 0 || !slices.Contains(f.buckets[f.armed], c) {
		f.mu.Unlock()
		t.Fatal("the connection is not in the bucket the stack's timer is armed for")
	}
	slot := f.armed
	f.mu.Unlock()
	_, _, at := timerState(c)
	deadline := time.Unix(0, at)

	// Visiting early (the bucket is not due) changes nothing.
	f.visit(deadline.Add(-10 * time.Second))
	if timer, parked, _ := timerState(c); timer || !parked {
		t.Fatalf("early visit: timer %v, parked %v", timer, parked)
	}
	// At its bucket's time the deadline is less than farAfter away: the
	// connection arms its own timer for it.
	when := f.base.Add(time.Duration(slot-1) * farSlot)
	if d := deadline.Sub(when); d < farLead || d >= farAfter {
		t.Fatalf("bucket visited %v before the deadline, want [%v, %v)", d, farLead, farAfter)
	}
	f.visit(when)
	if timer, parked, at2 := timerState(c); !timer || parked || at2 != at {
		t.Fatalf("due visit: timer %v, parked %v, deadline %d (want %d)", timer, parked, at2, at)
	}
	f.mu.Lock()
	n := len(f.slots)
	f.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d slots left after the visit", n)
	}
}

// The slots' heap pops them in order.
func TestSlotHeap(t *testing.T) {
	var h []int32
	in := []int32{5, 3, 9, 1, 7, 3, 8, 2}
	for _, v := range in {
		heapPush(&h, v)
	}
	var out []int32
	for len(h) > 0 {
		out = append(out, heapPop(&h))
	}
	want := slices.Clone(in)
	slices.Sort(want)
	if !slices.Equal(out, want) {
		t.Fatalf("popped %v, want %v", out, want)
	}
}

// A keep-alive deadline far enough away to park still fires: the bucket's
// visit arms the connection's timer, the probe goes out no earlier than
// the idle time, the peer answers, and the connection parks again.
func TestParkedKeepAliveProbes(t *testing.T) {
	leaktest.Check(t)
	a, b := newPipeStacks(t)
	const idle = farAfter + 500*time.Millisecond
	start := time.Now()
	c, _ := connectPair(t, a, b, 80, tcp.KeepAlive{Enable: true, Idle: idle, Interval: time.Hour})
	if _, parked, _ := waitIdle(t, c); !parked {
		t.Fatal("the keep-alive deadline did not park")
	}
	probes := func() uint64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.core.Stats().Probes
	}
	for end := time.Now().Add(30 * time.Second); probes() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no keep-alive probe")
		}
	}
	if d := time.Since(start); d < idle {
		t.Fatalf("the probe went out after %v, before the idle time %v", d, idle)
	}
	c.mu.Lock()
	st := c.core.State()
	c.mu.Unlock()
	if st != tcp.Established {
		t.Fatalf("after the probe: %v", st)
	}
	if timer, parked, _ := waitIdle(t, c); timer || !parked {
		t.Fatalf("after the probe: timer %v, parked %v; want parked again", timer, parked)
	}
}
