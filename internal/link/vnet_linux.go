package link

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/gotcpip/netstack/internal/checksum"
	"golang.org/x/sys/unix"
)

// Offloads on TAP and TUN devices through the virtio-net header
// (IFF_VNET_HDR, include/uapi/linux/virtio_net.h). Every frame crossing the
// device is preceded by a 10-byte header; with TUNSETOFFLOAD the kernel may
// hand us TCP super-segments of up to 64 KiB whose checksum it left
// partial (GRO's effect, seen from the device), and may take such
// super-segments from us and cut them into MSS-sized segments itself (TSO).
//
// songgao/water cannot set IFF_VNET_HDR, so this path opens /dev/net/tun
// with x/sys/unix.

const (
	vnetHdrLen = 10

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM

	vnetGSONone  = 0 // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4 = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOTCPv6 = 4 // VIRTIO_NET_HDR_GSO_TCPV6
)

// vnetHdr is struct virtio_net_hdr, little-endian fields on x86 and arm64
// (the tun device uses the host's byte order unless told otherwise).
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func (h *vnetHdr) decode(b []byte) {
	h.flags, h.gsoType = b[0], b[1]
	h.hdrLen = binary.LittleEndian.Uint16(b[2:])
	h.gsoSize = binary.LittleEndian.Uint16(b[4:])
	h.csumStart = binary.LittleEndian.Uint16(b[6:])
	h.csumOffset = binary.LittleEndian.Uint16(b[8:])
}

func (h *vnetHdr) encode(b []byte) {
	b[0], b[1] = h.flags, h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

type ifreqFlags struct {
	name  [unix.IFNAMSIZ]byte
	flags uint16
	_     [22]byte
}

// openOffload opens a TAP (tap) or TUN device with IFF_VNET_HDR and asks
// for checksum and TCP segmentation offload over IPv4 and IPv6 (TSO4,
// TSO6: what the device may hand us, and we it), with queues queues
// (IFF_MULTI_QUEUE when more than one: a descriptor each, attached to one
// interface). It fails when the kernel refuses any of it; the caller then
// falls back to a simpler device.
func openOffload(name string, tap bool, queues int) (*Device, error) {
	var fs []*os.File
	fail := func(err error) (*Device, error) {
		for _, f := range fs {
			f.Close()
		}
		return nil, err
	}
	for i := range queues {
		f, n, err := openVnetQueue(name, tap, queues > 1)
		if err != nil {
			return fail(err)
		}
		fs = append(fs, f)
		if i == 0 {
			name = n // the kernel's pick when name was empty
		}
	}
	d := &Device{name: name, tap: tap, vnet: true}
	for i, f := range fs {
		rc, err := f.SyscallConn()
		if err != nil {
			return fail(err)
		}
		if i == 0 {
			d.f, d.rc = f, rc
		} else {
			d.more = append(d.more, queue{f, rc})
		}
	}
	d.mtu.Store(1500)
	d.MTU()
	return d, nil
}

// openVnetQueue opens one descriptor of the device name with the
// virtio-net header and offloads, attached as one more queue when multi
// is set, and returns it with the interface's name.
func openVnetQueue(name string, tap, multi bool) (*os.File, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", err
	}
	var req ifreqFlags
	copy(req.name[:], name)
	req.flags = unix.IFF_NO_PI | unix.IFF_VNET_HDR
	if tap {
		req.flags |= unix.IFF_TAP
	} else {
		req.flags |= unix.IFF_TUN
	}
	if multi {
		req.flags |= unix.IFF_MULTI_QUEUE
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req))); e != 0 {
		unix.Close(fd)
		return nil, "", fmt.Errorf("TUNSETIFF: %w", e)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("TUNSETOFFLOAD: %w", err)
	}
	n := string(req.name[:])
	for i := range n {
		if n[i] == 0 {
			n = n[:i]
			break
		}
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun"), n, nil
}

// gsoTypeOf returns the GSO type of a TCP super-segment: GSO_TCPV6 when
// its IP header (behind the Ethernet header on a TAP) is version 6, else
// GSO_TCPV4.
func gsoTypeOf(frame []byte, tap bool) uint8 {
	ipAt := 0
	if tap {
		ipAt = 14
	}
	if ipAt < len(frame) && frame[ipAt]>>4 == 6 {
		return vnetGSOTCPv6
	}
	return vnetGSOTCPv4
}

// vnetIO is the state of one read or write behind a virtio-net header:
// the header, the two-element iovec, the result, and the callbacks the
// runtime poller runs, made once per vnetIO rather than per frame, so
// that a frame costs no allocation (a closure over locals would move the
// header, the iovec and the results to the heap on every call).
type vnetIO struct {
	hdr          [vnetHdrLen]byte
	iov          [2][]byte
	n            int
	err          error
	read, writev func(fd uintptr) bool
}

// vnetIOs holds idle vnetIOs. A pool, not one per queue, because
// WriteFrame and WriteGSO are called from many goroutines at once.
var vnetIOs = sync.Pool{New: func() any {
	v := new(vnetIO)
	v.read, v.writev = v.doRead, v.doWrite
	return v
}}

func getVnetIO() *vnetIO { return vnetIOs.Get().(*vnetIO) }

// put returns v to the pool without the frame it pointed at, which
// belongs to the caller.
func (v *vnetIO) put() {
	v.iov[1], v.err = nil, nil
	vnetIOs.Put(v)
}

// doRead is the poller's callback for a read: false (wait for the
// descriptor) on EAGAIN.
func (v *vnetIO) doRead(fd uintptr) bool {
	v.n, v.err = unix.Readv(int(fd), v.iov[:])
	return v.err != unix.EAGAIN
}

// doWrite is the poller's callback for a write: false on EAGAIN.
func (v *vnetIO) doWrite(fd uintptr) bool {
	_, v.err = unix.Writev(int(fd), v.iov[:])
	return v.err != unix.EAGAIN
}

// readVnet reads one frame from rc, one of d's queues, behind its
// virtio-net header, completes a partial checksum the kernel left for us,
// and returns the frame's length.
func (d *Device) readVnet(rc syscall.RawConn, buf []byte) (int, error) {
	v := getVnetIO()
	defer v.put()
	v.iov = [2][]byte{v.hdr[:], buf}
	err := rc.Read(v.read)
	if err == nil {
		err = v.err
	}
	if err != nil {
		return 0, d.mapClosed(err)
	}
	n := v.n - vnetHdrLen
	if n <= 0 {
		return 0, nil
	}
	n = min(n, len(buf))
	var h vnetHdr
	h.decode(v.hdr[:])
	if h.flags&vnetFlagNeedsCsum != 0 {
		// The checksum field holds the pseudo-header sum; fold in the rest
		// (skb_checksum_help's work).
		start, at := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
		if start < n && at+2 <= n {
			sum := checksum.Checksum(buf[start:n], 0)
			binary.BigEndian.PutUint16(buf[at:], sum)
		}
	}
	return n, nil
}

// writeVnet sends frame with a header: plain, or, when gsoSize > 0, a TCP
// super-segment for the kernel to cut into gsoSize-byte segments, over
// IPv4 or IPv6 as the version of the IP header says (GSO_TCPV4 or
// GSO_TCPV6). A super-segment's TCP checksum must hold the pseudo-header
// sum (not complemented), with csumStart at the TCP header.
func (d *Device) writeVnet(frame []byte, gsoSize, csumStart, hdrLen int) error {
	var h vnetHdr
	if gsoSize > 0 {
		h = vnetHdr{flags: vnetFlagNeedsCsum, gsoType: gsoTypeOf(frame, d.tap), hdrLen: uint16(hdrLen),
			gsoSize: uint16(gsoSize), csumStart: uint16(csumStart), csumOffset: 16}
	}
	v := getVnetIO()
	defer v.put()
	h.encode(v.hdr[:])
	v.iov = [2][]byte{v.hdr[:], frame}
	// Under the descriptor's write lock, one writer at a time. Writing
	// under a reference only (RawConn.Control) lets writers into the
	// kernel side by side, which moves 1.75 times the frames a second in
	// BenchmarkDeviceWriteParallel, but cost bench's tap-wrk 5 % of its
	// requests and a fifth more p99 latency on two CPUs: each write runs
	// the kernel's receive of the frame, waking the peer, and two at once
	// leave it no CPU.
	err := d.txQueue(frame).rc.Write(v.writev)
	if err == nil {
		err = v.err
	}
	return d.mapClosed(err)
}
