package netstack

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"

	ns "github.com/gotcpip/netstack"
)

// BatchSize is the most packets a Device's Read returns and its preferred
// Write batch.
const BatchSize = 128

// Device is the tun.Device that CreateNetTUN returns: wireguard-go reads
// the packets the stack sends from it and writes the packets it decrypts to
// it. Its methods are safe for concurrent use.
//
// Read copies each packet the stack sends straight into the buffers
// wireguard-go passes, at the offset it asks for: a sending goroutine of
// the stack waits until a Read is posted and copies its packet there, so no
// packet is queued or copied twice. TCP data comes as super-segments of up
// to 64 segments, which the device cuts into those buffers in one go, as
// a NIC's TSO cuts into its ring. A stack that sends faster than
// wireguard-go reads is slowed down (back-pressure), as a full transmit
// ring slows a kernel's sender. Write hands each packet to the stack with
// one copy, waiting for room in the stack's input queue when it is full
// (back-pressure again). The only packets dropped are those counted in
// DeviceStats.
type Device struct {
	link   *ns.PacketLink
	stack  *ns.Stack
	mtu    int
	events chan tun.Event

	readMu sync.Mutex // one Read at a time

	mu       sync.Mutex
	readable sync.Cond // a posted Read got its first packet, or Close
	room     sync.Cond // a Read was posted, or Close
	bufs     [][]byte  // the posted Read's buffers; nil when none is posted
	sizes    []int
	offset   int
	n        int    // packets copied into bufs so far
	scratch  []byte // where packets that cannot be delivered are written
	waiting  int    // senders in output
	closed   bool

	closeOnce sync.Once
	st        struct {
		read, reads, written                atomic.Uint64
		dropClosed, dropTooBig, dropUnknown atomic.Uint64
	}
}

// DeviceStats counts a Device's packets: those it passed each way, and
// those it dropped, by reason. Drops inside the stack are in the stack's
// own Stats.
type DeviceStats struct {
	// Read counts packets returned by Read (sent by the stack), Reads the
	// Read calls that returned them (Read/Reads is the mean batch), and
	// Written the packets from Write handed to the stack.
	Read, Reads, Written uint64
	// DropClosed counts packets the stack sent while the device was
	// closing, which no Read would ever take.
	DropClosed uint64
	// DropTooBig counts packets the stack sent that were larger than the
	// room after the offset in wireguard-go's buffer (never, when the MTU
	// given to CreateNetTUN is the one wireguard-go uses).
	DropTooBig uint64
	// DropUnknown counts written packets that are neither IPv4 nor IPv6
	// (by the version in their first nibble), and those shorter than the
	// offset. IPv4 and IPv6 packets all go to the stack, which counts in
	// its own Stats those it drops (malformed, or for an address it does
	// not have, such as IPv6 on a Net with IPv4 addresses only).
	DropUnknown uint64
	// Link holds the counters of the PacketLink Write injects into. Its
	// InjectDrops stays 0: Write waits for room instead of dropping. What
	// the stack sends bypasses it (Read counts that).
	Link ns.PacketLinkStats
}

func newDevice(mtu int) *Device {
	d := &Device{mtu: mtu, events: make(chan tun.Event, 10)}
	d.readable.L = &d.mu
	d.room.L = &d.mu
	d.link = ns.NewPacketLink(ns.PacketLinkConfig{MTU: mtu})
	return d
}

// stackLink is the link the stack runs on: the PacketLink, into which
// Write injects what wireguard-go decrypts, and the device, which takes
// what the stack sends. It declares GSO: the device cuts each TCP
// super-segment straight into the buffers of the posted Read
// (ns.SegmentTCP), so a segment's payload is copied once, from the
// super-segment into wireguard-go's buffer, and a whole TCP write goes
// in under one hold of the lock.
type stackLink struct {
	*ns.PacketLink
	d *Device
}

// Capabilities reports the PacketLink's (Lend) and GSO.
func (l stackLink) Capabilities() ns.Capabilities {
	c := l.PacketLink.Capabilities()
	c.GSO = true
	return c
}

// WriteFrame hands one packet to the device. After Close it fails with
// net.ErrClosed.
func (l stackLink) WriteFrame(pkt []byte) error {
	return l.d.output(func(next func(i, n int) []byte) {
		copy(next(0, len(pkt)), pkt)
	})
}

// WriteGSO cuts a TCP super-segment into the posted Reads' buffers.
func (l stackLink) WriteGSO(frame []byte, gsoSize, csumStart, hdrLen int) error {
	var err error
	if cerr := l.d.output(func(next func(i, n int) []byte) {
		_, err = ns.SegmentTCP(frame, 0, gsoSize, csumStart, hdrLen, next)
	}); cerr != nil {
		return cerr
	}
	return err
}

// output runs fill, which writes the stack's packets through next: next(i,
// n) returns the buffer of n bytes packet i goes in. It is the next buffer
// of the posted Read, for which next waits; when the Read is full, next
// lets it return and waits for the next one. The lock is held while fill
// writes, except while next waits. Once the device is closed it returns
// net.ErrClosed.
func (d *Device) output(fill func(next func(i, n int) []byte)) error {
	d.mu.Lock()
	d.waiting++
	fill(func(_, n int) []byte {
		for !d.closed && (d.bufs == nil || d.n == len(d.bufs)) {
			d.readable.Signal() // a full Read returns
			d.room.Wait()
		}
		if d.closed || d.offset > len(d.bufs[d.n]) || n > len(d.bufs[d.n])-d.offset {
			if d.closed {
				d.st.dropClosed.Add(1)
			} else {
				d.st.dropTooBig.Add(1)
			}
			if len(d.scratch) < n {
				d.scratch = make([]byte, n)
			}
			return d.scratch[:n] // dropped: written where nobody reads
		}
		d.sizes[d.n] = n
		d.n++
		return d.bufs[d.n-1][d.offset : d.offset+n]
	})
	d.waiting--
	d.readable.Signal()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return net.ErrClosed
	}
	return nil
}

// Read implements tun.Device. It blocks until the stack sends a packet,
// then returns it together with the packets of every other sender already
// waiting, at most len(bufs). Each packet is copied to
// bufs[i][offset:] and its length stored in sizes[i]. After Close, Read
// returns os.ErrClosed.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	d.readMu.Lock()
	defer d.readMu.Unlock()
	bufs = bufs[:min(len(bufs), len(sizes))]
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, os.ErrClosed
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	d.bufs, d.sizes, d.offset, d.n = bufs, sizes, offset, 0
	d.room.Broadcast()
	for !d.closed && (d.n == 0 || d.waiting > 0 && d.n < len(bufs)) {
		d.readable.Wait()
	}
	n := d.n
	d.bufs, d.sizes, d.n = nil, nil, 0
	if n == 0 {
		return 0, os.ErrClosed
	}
	d.st.read.Add(uint64(n))
	d.st.reads.Add(1)
	return n, nil
}

// Write implements tun.Device: it hands each IPv4 and IPv6 packet in
// bufs[i][offset:] to the stack, waiting while the stack's input queue is
// full. Packets of other versions are dropped and counted (DropUnknown),
// where wireguard-go's netstack device fails the Write with EAFNOSUPPORT.
// It returns len(bufs), or after Close the packets handed over and
// os.ErrClosed.
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		if offset > len(b) {
			d.st.dropUnknown.Add(1)
			continue
		}
		pkt := b[offset:]
		if len(pkt) == 0 {
			continue
		}
		switch pkt[0] >> 4 {
		case 4, 6:
		default:
			d.st.dropUnknown.Add(1)
			continue
		}
		if err := d.link.InjectContext(context.Background(), pkt); err != nil {
			if errors.Is(err, net.ErrClosed) {
				err = os.ErrClosed
			}
			return i, err
		}
		d.st.written.Add(1)
	}
	return len(bufs), nil
}

// MTU implements tun.Device: the mtu given to CreateNetTUN.
func (d *Device) MTU() (int, error) { return d.mtu, nil }

// Name implements tun.Device. The device has no kernel name; it reports
// "go", as wireguard-go's netstack device does.
func (d *Device) Name() (string, error) { return "go", nil }

// File implements tun.Device. There is no file: it returns nil.
func (d *Device) File() *os.File { return nil }

// Events implements tun.Device. The channel holds tun.EventUp from
// creation and is closed by Close.
func (d *Device) Events() <-chan tun.Event { return d.events }

// BatchSize implements tun.Device; it returns BatchSize.
func (d *Device) BatchSize() int { return BatchSize }

// Close implements tun.Device: a blocked Read returns os.ErrClosed, the
// stack and its connections are closed (their Reads and Writes fail with
// net.ErrClosed), and the Events channel is closed. Close is idempotent and
// does not wait for anything wireguard-go holds.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.readable.Broadcast()
		d.room.Broadcast()
		d.mu.Unlock()
		d.stack.Close()
		close(d.events)
	})
	return nil
}

// Stats returns the device's counters.
func (d *Device) Stats() DeviceStats {
	return DeviceStats{
		Read:        d.st.read.Load(),
		Reads:       d.st.reads.Load(),
		Written:     d.st.written.Load(),
		DropClosed:  d.st.dropClosed.Load(),
		DropTooBig:  d.st.dropTooBig.Load(),
		DropUnknown: d.st.dropUnknown.Load(),
		Link:        d.link.Stats(),
	}
}
