// Package link holds netstack's link-layer devices and the wrappers that
// stack on them: TAP and TUN devices, an in-memory pipe, a pcap writer and
// an impairment wrapper for tests.
//
// Every device and wrapper satisfies Link, which has the same method set as
// the root package's netstack.Link, so values move freely between the two.
package link

import "errors"

// Link is a frame-oriented device: Ethernet frames (TAP, Pipe) or bare IP
// packets (TUN). It is the seam users implement to plug their own transport.
//
// ReadFrame blocks until one frame arrives, copies it into buf and returns its
// length; a frame longer than buf is truncated to len(buf). After Close it
// returns net.ErrClosed. WriteFrame sends one frame; the link must not keep
// frame after it returns. The stack calls ReadFrame from one goroutine and
// WriteFrame from many at once: a link must allow concurrent WriteFrame
// calls, and ReadFrame running beside them.
type Link interface {
	ReadFrame(buf []byte) (int, error)
	WriteFrame(frame []byte) error
	// MTU is the largest IP packet the link carries (1500 for Ethernet).
	MTU() int
	// Ethernet reports whether frames carry a 14-byte Ethernet II header
	// (TAP, Pipe) or are bare IP packets (TUN).
	Ethernet() bool
	Close() error
}

// Lender is implemented by links that hold received frames in buffers of
// their own (a Pipe, a Channel): the stack reads each frame where it lies
// instead of having ReadFrame copy it, which on an in-memory link is the
// only copy left between two stacks.
//
// NextFrame blocks as ReadFrame does and returns the next frame in the
// link's buffer. On a link without Ethernet headers the IP packet starts
// EthernetHeaderLen bytes into the returned slice; the bytes before it are
// room the stack may write to. The stack may also modify the frame. It
// gives the buffer back with Release, exactly once, before it calls
// NextFrame again; a stack with input workers (stack.Config.InputWorkers)
// instead holds several lent frames at once and releases each from the
// worker that input it, in any order, which Pipe and Channel allow.
type Lender interface {
	NextFrame() ([]byte, error)
	Release(frame []byte)
}

// Capabilities are what a link can do beyond Link's five methods. A link
// declares them by implementing Capable; each capability needs methods of
// its own, which the stack checks for when it starts. A wrapper reports its
// inner link's capabilities, less any it cannot pass on, and forwards their
// methods, so wrapping a link never silently costs it an offload.
type Capabilities struct {
	// GSO: the link cuts TCP super-segments itself (TSO), through a
	// WriteGSO method (GSOWriter), and its ReadFrame may deliver coalesced
	// TCP segments of up to 64 KiB, checksums complete (GRO).
	GSO bool
	// Lend: the link lends received frames in place, through NextFrame and
	// Release (Lender), instead of copying each into ReadFrame's buffer.
	Lend bool
	// Batch: the link moves many frames per call, through ReadFrames and
	// WriteFrames (Batcher), as a transport with recvmmsg and sendmmsg or
	// a queue does. The stack reads through ReadFrames when the link does
	// not lend; on a link without GSO it cuts each TCP super-segment into
	// a batch of frames in one go (Segment) and writes them with one
	// WriteFrames call.
	Batch bool
	// Queue: the link's transmit queue can hold the sender back instead of
	// dropping what does not fit, through Backpressure and NotifyRoom
	// (Queuer), as a NIC's driver stops and wakes the kernel's queue. The
	// stack then keeps the TCP frames the queue refuses, sends no more
	// data until the link has room, and loses nothing to its own queue.
	Queue bool
}

// ErrFull is what a link with the Queue capability returns, once
// Backpressure was called, for a write that found its queue full: the
// frame (or the whole batch or super-segment) was not sent, and may be
// offered again once the link signals room.
var ErrFull = errors.New("link: transmit queue full; frame not sent")

// Queuer is the method set of the Queue capability.
//
// Backpressure switches the link from dropping to refusing: from then on
// a WriteFrame, WriteGSO or WriteFrames call that finds the queue without
// room for all it carries sends none of it and returns ErrFull. It
// returns the channel (capacity 1) on which the link signals room, and
// is called once, before the link carries traffic.
//
// NotifyRoom asks for one signal on that channel once the queue has room
// again (Pipe and PacketLink: once it is at most half full), at once if
// it has room now. It never blocks; the stack calls it after a refusal,
// having put the refused frames aside, so no signal can come too early
// to be heard.
//
// Queued returns how many frames wait in the link's queues: sent and not
// yet read by the far end (tx), and received and not yet read by the
// stack (rx). A link that refuses rather than drops loses nothing, so
// while frames wait a tail loss probe would only queue behind them, or
// answer an ACK not yet read; the stack probes later.
type Queuer interface {
	Backpressure() <-chan struct{}
	NotifyRoom()
	Queued() (tx, rx int)
}

// Batcher is the method set of the Batch capability.
//
// ReadFrames blocks as ReadFrame does until a frame arrives, then reads
// it and those already waiting, at most len(bufs): frame i into bufs[i]
// (truncated to its length) and its length into sizes[i], which is at
// least as long as bufs. It returns how many it read.
//
// WriteFrames sends frames in order, as that many WriteFrame calls would,
// keeping none of them after it returns. It returns how many it sent: all
// of them, or those before the one that failed and its error.
type Batcher interface {
	ReadFrames(bufs [][]byte, sizes []int) (int, error)
	WriteFrames(frames [][]byte) (int, error)
}

// MultiQueue is implemented by a link with several receive queues over
// which the far side spreads flows, keeping each flow on one queue (a TAP
// or TUN device opened with IFF_MULTI_QUEUE). The stack reads each queue
// with a goroutine of its own, calling ReadQueue as ReadFrame; Queues is
// fixed once the link is made. ReadFrame reads queue 0.
type MultiQueue interface {
	Queues() int
	ReadQueue(q int, buf []byte) (int, error)
}

// Capable is a Link that declares Capabilities.
type Capable interface {
	Link
	Capabilities() Capabilities
}

// CapabilitiesOf returns the capabilities l declares; none if it is not
// Capable.
func CapabilitiesOf(l Link) Capabilities {
	if c, ok := l.(Capable); ok {
		return c.Capabilities()
	}
	return Capabilities{}
}

// GSOWriter is the method of the GSO capability. WriteGSO sends frame, a
// TCP super-segment whose TCP checksum field holds the folded pseudo-header
// sum, to be cut into gsoSize-byte segments; csumStart is the offset of the
// TCP header in frame and hdrLen the length of all its headers.
type GSOWriter interface {
	WriteGSO(frame []byte, gsoSize, csumStart, hdrLen int) error
}
