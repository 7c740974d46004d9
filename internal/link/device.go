package link

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Device is a Linux TAP or TUN device opened by OpenTAP or OpenTUN. A TAP
// device carries Ethernet frames, a TUN device bare IP packets (opened with
// IFF_NO_PI, so no 4-byte packet information header precedes them); see
// the kernel's Documentation/networking/tuntap.rst.
//
// The file descriptor is in non-blocking mode and registered with the Go
// runtime's network poller, so Close unblocks a pending ReadFrame and
// SetReadDeadline works, as they do for a net.Conn.
//
// One goroutine may call ReadFrame while another calls WriteFrame. A
// device opened with several queues (OpenTAPOffloadQueues) has a
// descriptor per queue, each read by ReadQueue; it is a MultiQueue.
type Device struct {
	f    *os.File
	name string
	tap  bool
	mtu  atomic.Int64 // last MTU read from the interface
	vnet bool         // frames carry a virtio-net header (offloads on)
	rc   syscall.RawConn
	// more are the queues after the first (f, rc), on a device opened
	// with IFF_MULTI_QUEUE.
	more []queue
	// closed is set by Close: the raw descriptors' calls then fail with
	// internal/poll's own error, which mapClosed turns into net.ErrClosed.
	closed atomic.Bool
}

// queue is one descriptor of a multi-queue device.
type queue struct {
	f  *os.File
	rc syscall.RawConn
}

// Queues returns how many queues the device has: 1 unless it was opened
// with several.
func (d *Device) Queues() int { return 1 + len(d.more) }

// queue returns queue q's descriptor.
func (d *Device) queue(q int) queue {
	if q == 0 {
		return queue{d.f, d.rc}
	}
	return d.more[q-1]
}

// ReadQueue is ReadFrame on queue q, which must be below Queues. The
// kernel spreads flows over the queues by their hash, and keeps a flow on
// the queue its last packet was written to; WriteFrame and WriteGSO write
// each flow's packets to one queue, chosen by FlowHash, so a flow the
// stack has answered arrives on one queue (the kernel's
// tun_automq_select_queue and tun_flow_update; a steering entry ages out
// after a few idle seconds, and the kernel's hash picks again).
func (d *Device) ReadQueue(q int, buf []byte) (int, error) {
	if q == 0 {
		return d.ReadFrame(buf)
	}
	return d.readVnet(d.more[q-1].rc, buf)
}

// txQueue returns the queue frame is written to: its flow's, or queue 0.
func (d *Device) txQueue(frame []byte) queue {
	if len(d.more) == 0 {
		return queue{d.f, d.rc}
	}
	h, ok := FlowHash(frame, d.tap)
	if !ok {
		return queue{d.f, d.rc}
	}
	return d.queue(Pick(h, d.Queues()))
}

// Name returns the interface name, such as "tap0", chosen by the kernel
// when OpenTAP or OpenTUN was given an empty name.
func (d *Device) Name() string { return d.name }

// ReadFrame blocks until the kernel sends a frame out of the interface,
// copies it into buf and returns its length. A frame longer than buf is
// truncated to len(buf) and the rest is lost. After Close it returns
// net.ErrClosed; after a read deadline passes, an error wrapping
// os.ErrDeadlineExceeded.
func (d *Device) ReadFrame(buf []byte) (int, error) {
	if d.vnet {
		return d.readVnet(d.rc, buf)
	}
	n, err := d.f.Read(buf)
	if err != nil {
		return 0, d.mapClosed(err)
	}
	// tun_put_user in drivers/net/tun.c copies at most len(buf) bytes but
	// returns the whole frame's length, so n may exceed len(buf).
	return min(n, len(buf)), nil
}

// WriteFrame sends frame into the kernel as if it had arrived on the
// interface. The kernel copies it before write returns. After Close it
// returns net.ErrClosed.
func (d *Device) WriteFrame(frame []byte) error {
	if d.vnet {
		return d.writeVnet(frame, 0, 0, 0)
	}
	_, err := d.f.Write(frame)
	return d.mapClosed(err)
}

// WriteGSO sends frame, a TCP super-segment over IPv4 or IPv6 (the IP
// header's version picks GSO_TCPV4 or GSO_TCPV6) whose TCP checksum field
// holds the folded pseudo-header sum, for the kernel to cut into
// gsoSize-byte segments (TSO). csumStart is the offset of the TCP header in
// frame and hdrLen the length of all headers. It needs Offload.
func (d *Device) WriteGSO(frame []byte, gsoSize, csumStart, hdrLen int) error {
	if !d.vnet {
		return errors.New("link: WriteGSO on a device opened without offloads")
	}
	return d.writeVnet(frame, gsoSize, csumStart, hdrLen)
}

// Offload reports whether the device was opened with the virtio-net header:
// the kernel may then send TCP super-segments of up to 64 KiB (larger than
// the MTU, checksums completed by ReadFrame), and WriteGSO works.
func (d *Device) Offload() bool { return d.vnet }

// Capabilities reports GSO when the device was opened with offloads.
func (d *Device) Capabilities() Capabilities { return Capabilities{GSO: d.vnet} }

// SetReadDeadline sets the deadline for pending and future ReadFrame calls,
// as net.Conn's SetReadDeadline does; a zero t means no deadline.
func (d *Device) SetReadDeadline(t time.Time) error {
	return d.mapClosed(d.f.SetReadDeadline(t))
}

// MTU returns the interface's MTU as the calling thread's network namespace
// sees it (net.InterfaceByName). If the interface cannot be found there,
// for instance because it was moved into another namespace, MTU returns
// the last value it read, or 1500 if it never read one. Each call is a
// netlink query, so read it once, not per frame.
func (d *Device) MTU() int {
	if ifi, err := net.InterfaceByName(d.name); err == nil && ifi.MTU > 0 {
		d.mtu.Store(int64(ifi.MTU))
	}
	return int(d.mtu.Load())
}

// Ethernet reports whether d is a TAP device (Ethernet frames) rather
// than a TUN device (bare IP packets).
func (d *Device) Ethernet() bool { return d.tap }

// Close closes the device's file descriptors, which removes a
// non-persistent interface from the system, and unblocks any pending
// ReadFrame and ReadQueue. Closing again returns net.ErrClosed.
func (d *Device) Close() error {
	d.closed.Store(true)
	err := d.mapClosed(d.f.Close())
	for _, q := range d.more {
		q.f.Close()
	}
	return err
}

// mapClosed turns the error of a call on a closed device into
// net.ErrClosed, which is what the Link contract promises: the os
// package's closed-file error, or, from a syscall.RawConn, which does not
// translate it, internal/poll's.
func (d *Device) mapClosed(err error) error {
	if err != nil && (errors.Is(err, os.ErrClosed) || d.closed.Load()) {
		return net.ErrClosed
	}
	return err
}

var (
	_ Link       = (*Device)(nil)
	_ MultiQueue = (*Device)(nil)
)
