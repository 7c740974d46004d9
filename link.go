package netstack

import (
	"io"

	"github.com/gotcpip/netstack/internal/link"
)

// Link is the device a Stack sends and receives on: Ethernet frames (TAP,
// Pipe) or bare IP packets (TUN). Implement it to carry a stack over any
// packet transport.
//
// ReadFrame blocks until one frame arrives, copies it into buf and returns
// its length; after Close it returns an error (net.ErrClosed). WriteFrame
// sends one frame and must not keep frame after it returns. The stack calls
// ReadFrame from one goroutine and WriteFrame from many; a Link must allow
// ReadFrame and WriteFrame to run at the same time, and concurrent
// WriteFrame calls.
type Link interface {
	ReadFrame(buf []byte) (int, error)
	WriteFrame(frame []byte) error
	// MTU is the largest IP packet the link carries (1500 on Ethernet).
	MTU() int
	// Ethernet reports whether frames carry a 14-byte Ethernet II header.
	Ethernet() bool
	Close() error
}

// OpenTAP attaches to the Linux TAP device name, creating it if needed
// (root or CAP_NET_ADMIN). Frames are Ethernet; the stack is a host behind
// the device with a MAC address of its own.
func OpenTAP(name string) (Link, error) {
	d, err := link.OpenTAP(name)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// OpenTUN attaches to the Linux TUN device name, creating it if needed.
// Frames are bare IPv4 packets: no Ethernet header and no ARP.
func OpenTUN(name string) (Link, error) {
	d, err := link.OpenTUN(name)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Pipe returns two in-memory Ethernet links joined back to back with an MTU
// of 1500, as two hosts on one cable. Each direction queues a bounded
// number of frames and drops (and counts) what does not fit, as a NIC's ring
// does. Closing either end closes both.
func Pipe() (Link, Link) {
	a, b := link.Pipe(1500)
	return a, b
}

// PcapLink wraps l so that every frame it reads or writes is also written
// to w in libpcap format (Ethernet or raw-IPv4 link type, per
// l.Ethernet()), for Wireshark or tshark. Closing the returned Link closes
// l, not w.
func PcapLink(l Link, w io.Writer) (Link, error) {
	p, err := link.NewPcap(l, w)
	if err != nil {
		return nil, err
	}
	return p, nil
}
