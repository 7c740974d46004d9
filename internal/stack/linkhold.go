package stack

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/internal/link"
)

// linkHold is the engine's side of a link with the Queue capability: a
// full queue refuses frames instead of dropping them, and the TCP frames
// it refused wait here, in the order they were sent, until the link
// signals room. While any wait, full is set; TCP connections read it as
// tcp.Config.LinkFull and emit no more data (only ACKs, which queue here
// behind the rest), and those that would have sent wait to be resumed.
// So the stack loses nothing to its own link, as Linux's device queues
// and TCP small queues lose nothing on the loopback, and no goroutine
// ever blocks on a full queue: the reader goroutines of two stacks that
// write into each other's queues keep reading.
//
// Ordering: a connection's frames leave under its sendMu; once full is set
// every frame goes behind the held ones, and full is cleared only when
// none is left, so a connection's frames never overtake each other. The
// frames of one call that meet the refusal all stay behind with the one
// refused.
type linkHold struct {
	q    link.Queuer
	room <-chan struct{} // the link's room signal (Queuer.Backpressure)
	full atomic.Bool     // frames are held; written under mu

	mu      sync.Mutex
	frames  []heldFrame
	spare   []heldFrame // the last batch roomLoop sent, for reuse
	waiters map[*TCPEndpoint]struct{}
}

// heldFrame is a frame the link refused and the connection it is from.
type heldFrame struct {
	c *TCPEndpoint
	f outFrame
}

// newLinkHold switches l to refusing rather than dropping. It returns nil
// if l does not hand out its room signal.
func newLinkHold(q link.Queuer) *linkHold {
	room := q.Backpressure()
	if room == nil {
		return nil
	}
	return &linkHold{q: q, room: room, waiters: make(map[*TCPEndpoint]struct{})}
}

// queue puts frames behind those held, if any are; it reports whether it
// did. The connection's sendMu is held.
func (h *linkHold) queue(c *TCPEndpoint, frames []outFrame) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full.Load() {
		return false // sent since: the link has room again
	}
	h.add(c, frames)
	return true
}

// refused holds frames, the first of which the link refused, and asks the
// link for a signal once it has room: after the frames are set aside, so
// that the signal cannot come before roomLoop can find them.
func (h *linkHold) refused(c *TCPEndpoint, frames []outFrame) {
	h.mu.Lock()
	h.add(c, frames)
	h.full.Store(true)
	h.mu.Unlock()
	h.q.NotifyRoom()
}

// add appends frames to the held ones. h.mu is held.
func (h *linkHold) add(c *TCPEndpoint, frames []outFrame) {
	for _, f := range frames {
		h.frames = append(h.frames, heldFrame{c: c, f: f})
	}
}

// wait records that c's output stopped for the link (tcp.EvHeld), to be
// resumed by roomLoop when it has room. If the queue refused nothing,
// the link is asked for room, and answers at once if it has it; a refusal
// has asked already. c's mu is held.
func (h *linkHold) wait(c *TCPEndpoint) {
	h.mu.Lock()
	h.waiters[c] = struct{}{}
	full := h.full.Load()
	h.mu.Unlock()
	if !full {
		h.q.NotifyRoom()
	}
}

// queued reports whether frames wait, held here or in the link's queues
// (tcp.Config.LinkQueued).
func (h *linkHold) queued() bool {
	if h.full.Load() {
		return true
	}
	tx, rx := h.q.Queued()
	return tx > 0 || rx > 0
}

// roomLoop sends the held frames each time the link signals room, then
// resumes the connections that waited for it.
func (s *Stack) roomLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.hold.room:
		case <-s.done:
			return
		}
		s.flushHeld(time.Now())
	}
}

// flushHeld sends the held frames in order. If the link refuses one again,
// it and those behind it stay held, and the link is asked for another
// signal. Once none is left full is cleared, and every connection that
// waited is resumed.
func (s *Stack) flushHeld(now time.Time) {
	h := s.hold
	for {
		h.mu.Lock()
		batch := h.frames
		if len(batch) == 0 {
			h.full.Store(false)
			waiters := h.waiters
			h.waiters = make(map[*TCPEndpoint]struct{}, len(waiters))
			h.mu.Unlock()
			for c := range waiters {
				c.resume()
			}
			return
		}
		h.frames, h.spare = h.spare[:0], nil
		h.mu.Unlock()
		for i := range batch {
			hf := &batch[i]
			if errors.Is(hf.c.send(now, &hf.f), link.ErrFull) {
				h.mu.Lock()
				// The refused frames are older than any queued since.
				h.frames = append(batch[i:], h.frames...)
				h.mu.Unlock()
				h.q.NotifyRoom()
				return
			}
			s.frames.Put(hf.f.bp)
		}
		clear(batch)
		h.mu.Lock()
		h.spare = batch[:0]
		h.mu.Unlock()
	}
}

// lostIfFull makes a datagram that a full link queue refused (link.ErrFull)
// lost rather than failed: only TCP frames are held, and a datagram
// promises nothing, as Linux's UDP sendmsg returns success for a packet a
// full queue drops.
func lostIfFull(err error) error {
	if errors.Is(err, link.ErrFull) {
		return nil
	}
	return err
}
