// Package link holds netstack's link-layer devices and the wrappers that
// stack on them: TAP and TUN devices, an in-memory pipe, a pcap writer and
// an impairment wrapper for tests.
//
// Every device and wrapper satisfies Link, which has the same method set as
// the root package's netstack.Link, so values move freely between the two.
package link

// Link is a frame-oriented device: Ethernet frames (TAP, Pipe) or bare IP
// packets (TUN). It is the seam users implement to plug their own transport.
//
// ReadFrame blocks until one frame arrives, copies it into buf and returns its
// length; a frame longer than buf is truncated to len(buf). After Close it
// returns net.ErrClosed. WriteFrame sends one frame; the link must not keep
// frame after it returns. ReadFrame and WriteFrame may be called concurrently
// with each other; each is called by one goroutine at a time.
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
// NextFrame again.
type Lender interface {
	NextFrame() ([]byte, error)
	Release(frame []byte)
}
