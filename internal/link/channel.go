package link

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// ErrQueueFull is returned by Channel.Inject when the inbound queue is full
// and the packet was dropped.
var ErrQueueFull = errors.New("link: inbound queue full; packet dropped")

// ChannelConfig configures a Channel.
type ChannelConfig struct {
	MTU      int  // largest IP packet; 0: 1500
	Ethernet bool // packets carry Ethernet headers; false: bare IP packets
	// Depth bounds each direction's queue in packets; 0: 1024.
	Depth int
	// Output, if set, receives every packet the stack sends, synchronously
	// on the sending goroutine; pkt is valid only during the call. A slow
	// Output slows the stack's senders (back-pressure). If Output and
	// OutputBatch are nil, packets queue for Outbound, and are dropped
	// (counted) when it is full.
	Output func(pkt []byte)
	// OutputBatch, if set, receives what the stack sends instead of
	// Output, as batches: the segments of a TCP write cut in one go, or
	// a single packet. The packets are valid only during the call.
	OutputBatch func(pkts [][]byte)
}

// ChannelStats counts a Channel's traffic.
type ChannelStats struct {
	Injected, InjectDrops uint64 // packets in, and dropped on a full queue
	Sent, SendDrops       uint64 // packets out, and dropped on a full queue
}

// Channel is a Link the caller feeds: packets go in through Inject and come
// out through ChannelConfig.Output or the Outbound channel. It suits VPN
// and tunnel transports that already hold packets in memory.
type Channel struct {
	cfg   ChannelConfig
	in    chan []byte
	out   chan []byte
	done  chan struct{}
	once  sync.Once
	size  int // capacity of a packet buffer: room, then the largest packet
	room  int // bytes before each queued packet: EthernetHeaderLen without Ethernet, else 0
	stats struct{ injected, injectDrops, sent, sendDrops atomic.Uint64 }

	// A Channel of a pair (NewChannelPair) sends into its peer's queue.
	// These are the queue's side: how many packets wait in it, and the
	// room signal a refused peer waits for (Queuer).
	peer    *Channel
	refuse  atomic.Bool // Backpressure was called: a full peer queue refuses
	queued  atomic.Int32
	want    atomic.Bool   // NotifyRoom waits for the queue to be half empty
	roomSig chan struct{} // capacity 1; made by the peer's Backpressure

	freeMu sync.Mutex
	free   [][]byte // recycled packet buffers, reused last-in first-out
}

// NewChannel returns a Channel.
func NewChannel(cfg ChannelConfig) *Channel {
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	if cfg.Depth <= 0 {
		cfg.Depth = DefaultPipeDepth
	}
	c := &Channel{cfg: cfg, in: make(chan []byte, cfg.Depth), done: make(chan struct{})}
	if cfg.Output == nil && cfg.OutputBatch == nil {
		c.out = make(chan []byte, cfg.Depth)
	}
	// Either the Ethernet header or the room the stack wants in its place
	// (see Lender) comes before the IP packet.
	c.size = cfg.MTU + EthernetHeaderLen
	if !cfg.Ethernet {
		c.room = EthernetHeaderLen
	}
	return c
}

// NewChannelPair returns two Channels joined back to back: each packet
// the stack on one sends is copied into the other's inbound queue, as an
// Output that calls the other's Inject would do, and read there in place.
// Both report Queue, so that after Backpressure a full queue holds the
// sender back (ErrFull) rather than dropping. cfg's Output and
// OutputBatch are not used; Inject still works on either.
func NewChannelPair(cfg ChannelConfig) (a, b *Channel) {
	cfg.Output, cfg.OutputBatch = nil, nil
	a, b = NewChannel(cfg), NewChannel(cfg)
	a.out, b.out = nil, nil
	a.peer, b.peer = b, a
	return a, b
}

// get returns a recycled buffer holding c.room bytes and then a copy of
// pkt. The free list keeps at most Depth buffers; the last one freed is
// the first reused, as it is the likeliest to be in the CPU cache.
func (c *Channel) get(pkt []byte) []byte {
	var b []byte
	c.freeMu.Lock()
	if k := len(c.free); k > 0 {
		b, c.free = c.free[k-1], c.free[:k-1]
	}
	c.freeMu.Unlock()
	if cap(b) < c.room+len(pkt) {
		b = make([]byte, 0, max(c.size, c.room+len(pkt)))
	}
	return append(b[:c.room], pkt...)
}

// put recycles b, one of the Channel's own buffers (any other is left to
// the garbage collector).
func (c *Channel) put(b []byte) {
	if cap(b) != c.size {
		return
	}
	c.freeMu.Lock()
	if len(c.free) < c.cfg.Depth {
		c.free = append(c.free, b[:0])
	}
	c.freeMu.Unlock()
}

// Inject queues a copy of pkt for the stack to read. It does not block: on
// a full queue it drops pkt and returns ErrQueueFull. After Close it
// returns net.ErrClosed.
func (c *Channel) Inject(pkt []byte) error {
	if c.closed() {
		return net.ErrClosed
	}
	if !c.enqueue(pkt) {
		c.stats.injectDrops.Add(1)
		return ErrQueueFull
	}
	return nil
}

// enqueue queues a copy of pkt if the queue has room, and reports whether
// it did.
func (c *Channel) enqueue(pkt []byte) bool {
	b := c.get(pkt)
	select {
	case c.in <- b:
		c.queued.Add(1)
		c.stats.injected.Add(1)
		return true
	default:
		c.put(b)
		return false
	}
}

// deliver is Inject for the peer of a pair: a full queue refuses pkt
// (ErrFull) when hold is set, and otherwise drops it as Inject does.
func (c *Channel) deliver(pkt []byte, hold bool) error {
	switch {
	case c.closed():
		return nil // the packet is lost, as on a wire whose far end is gone
	case c.enqueue(pkt):
		return nil
	case hold:
		return ErrFull
	}
	c.stats.injectDrops.Add(1)
	return nil
}

// took counts a packet the stack took from the queue, and signals a
// NotifyRoom waiter once the queue is at most half full.
func (c *Channel) took() {
	if c.queued.Add(-1) <= int32(cap(c.in)/2) && c.want.Load() && c.want.CompareAndSwap(true, false) {
		select {
		case c.roomSig <- struct{}{}:
		default:
		}
	}
}

// InjectContext is Inject that waits for room in the queue until ctx ends.
func (c *Channel) InjectContext(ctx context.Context, pkt []byte) error {
	if c.closed() {
		return net.ErrClosed
	}
	b := c.get(pkt)
	select {
	case c.in <- b:
		c.queued.Add(1)
		c.stats.injected.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return net.ErrClosed
	}
}

// Outbound returns the channel of packets the stack sends when
// ChannelConfig.Output is nil (else nil). Each packet is the receiver's to
// keep. It is never closed; select on it with your own stop signal.
func (c *Channel) Outbound() <-chan []byte { return c.out }

// ReadFrame implements Link: the next injected packet.
func (c *Channel) ReadFrame(buf []byte) (int, error) {
	b, err := c.NextFrame()
	if err != nil {
		return 0, err
	}
	n := copy(buf, b[c.room:])
	c.put(b)
	return n, nil
}

// NextFrame implements Lender: the next injected packet, in the Channel's
// buffer, after EthernetHeaderLen bytes of room when packets are bare IP.
func (c *Channel) NextFrame() ([]byte, error) {
	if c.closed() {
		return nil, net.ErrClosed
	}
	select {
	case b := <-c.in: // a queued packet: no need to wait on done
		c.took()
		return b, nil
	default:
	}
	select {
	case b := <-c.in:
		c.took()
		return b, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

// Release implements Lender: it takes back a buffer NextFrame returned,
// exactly once.
func (c *Channel) Release(frame []byte) { c.put(frame) }

// WriteFrame implements Link: hand frame to OutputBatch, Output or
// Outbound, or queue it for the peer of a pair.
func (c *Channel) WriteFrame(frame []byte) error {
	if c.peer != nil {
		if c.closed() {
			return net.ErrClosed
		}
		if err := c.peer.deliver(frame, c.refuse.Load()); err != nil {
			return err
		}
		c.stats.sent.Add(1)
		return nil
	}
	if c.cfg.OutputBatch != nil {
		_, err := c.WriteFrames([][]byte{frame})
		return err
	}
	if c.closed() {
		return net.ErrClosed
	}
	if c.cfg.Output != nil {
		c.cfg.Output(frame)
		c.stats.sent.Add(1)
		return nil
	}
	select {
	case c.out <- append([]byte(nil), frame...):
		c.stats.sent.Add(1)
	default:
		c.stats.sendDrops.Add(1)
	}
	return nil
}

// WriteFrames implements Batcher: frames go to OutputBatch in one call,
// else one by one as WriteFrame sends them.
func (c *Channel) WriteFrames(frames [][]byte) (int, error) {
	if c.closed() {
		return 0, net.ErrClosed
	}
	if c.cfg.OutputBatch != nil {
		c.cfg.OutputBatch(frames)
		c.stats.sent.Add(uint64(len(frames)))
		return len(frames), nil
	}
	for i, f := range frames {
		if err := c.WriteFrame(f); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// ReadFrames implements Batcher: the next injected packet and those
// queued behind it.
func (c *Channel) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	n := 0
	for n < len(bufs) {
		var b []byte
		if n == 0 {
			var err error
			if b, err = c.NextFrame(); err != nil {
				return 0, err
			}
		} else {
			select {
			case b = <-c.in:
				c.took()
			default:
				return n, nil
			}
		}
		sizes[n] = copy(bufs[n], b[c.room:])
		c.put(b)
		n++
	}
	return n, nil
}

// Capabilities reports Lend (the stack reads injected packets in place),
// Batch when OutputBatch is set (with Output or Outbound each packet
// leaves on its own anyway, and the stack's own segments are then cut no
// better than it builds them one by one), and Queue for a Channel of a
// pair, which sees its peer's queue.
func (c *Channel) Capabilities() Capabilities {
	return Capabilities{Lend: true, Batch: c.cfg.OutputBatch != nil, Queue: c.peer != nil}
}

// Backpressure implements Queuer for a Channel of a pair: from then on a
// packet that finds the peer's queue full is refused (ErrFull) instead of
// dropped. It returns the channel NotifyRoom signals; nil for a Channel
// that is not of a pair.
func (c *Channel) Backpressure() <-chan struct{} {
	if c.peer == nil {
		return nil
	}
	if c.peer.roomSig == nil {
		c.peer.roomSig = make(chan struct{}, 1)
	}
	c.refuse.Store(true)
	return c.peer.roomSig
}

// Queued implements Queuer: the packets waiting in the peer's queue and in
// this Channel's own.
func (c *Channel) Queued() (tx, rx int) {
	if c.peer != nil {
		tx = int(max(c.peer.queued.Load(), 0))
	}
	return tx, int(max(c.queued.Load(), 0))
}

// NotifyRoom implements Queuer: one signal on the Backpressure channel
// once the peer's queue is at most half full, at once if it is now.
func (c *Channel) NotifyRoom() {
	p := c.peer
	if p == nil || p.roomSig == nil {
		return
	}
	p.want.Store(true)
	if p.queued.Load() <= int32(cap(p.in)/2) && p.want.CompareAndSwap(true, false) {
		select {
		case p.roomSig <- struct{}{}:
		default:
		}
	}
}

// MTU implements Link.
func (c *Channel) MTU() int { return c.cfg.MTU }

// Ethernet implements Link.
func (c *Channel) Ethernet() bool { return c.cfg.Ethernet }

// closed reports whether Close was called.
func (c *Channel) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close implements Link: ReadFrame and Inject fail with net.ErrClosed.
func (c *Channel) Close() error {
	err := net.ErrClosed
	c.once.Do(func() { close(c.done); err = nil })
	return err
}

// Stats returns the Channel's counters.
func (c *Channel) Stats() ChannelStats {
	return ChannelStats{
		Injected: c.stats.injected.Load(), InjectDrops: c.stats.injectDrops.Load(),
		Sent: c.stats.sent.Load(), SendDrops: c.stats.sendDrops.Load(),
	}
}
