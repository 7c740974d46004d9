package wiretest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/netnstest"
	"golang.org/x/sys/unix"
)

// Timeout is how long Expect waits by default: generous, because the
// machine running the tests may be busy, and harmless, because a passing
// test returns as soon as its frame arrives.
const Timeout = 5 * time.Second

// trace, set by WIRETEST_TRACE=1 in the environment, prints every frame
// the testbench sends and reads to standard error.
var trace = os.Getenv("WIRETEST_TRACE") == "1"

// BenchMAC is the testbench's Ethernet address. It differs from the MAC of
// the interface the testbench sits on, so the kernel on that side treats the
// DUT's frames as addressed to another host and never processes them.
var BenchMAC = MAC{0x02, 0x00, 0x00, 0x77, 0x74, 0x01}

// virtio_net_hdr (include/uapi/linux/virtio_net.h), which PACKET_VNET_HDR
// puts before every frame, in the host's byte order.
const (
	vnetLen       = 10
	vnetNeedsCsum = 1
	vnetGSOTCPv4  = 1
	vnetGSOECN    = 0x80
)

// Bench is the testbench: an AF_PACKET socket on the kernel's end of the
// link to the DUT. It answers ARP for its address, so the DUT can resolve
// it, and queues every other frame it reads for Expect.
//
// Frames are read with PACKET_VNET_HDR: a TCP super-segment the DUT handed
// its device (TSO) is cut into Gso-sized segments, and a checksum left
// partial (checksum offload) is completed, as a NIC would before the frames
// reach the wire. So the testbench sees what a peer across a real link
// would see.
type Bench struct {
	// Addr is the testbench's IPv4 address, MAC its Ethernet address.
	Addr netip.Addr
	MAC  MAC
	// DUTAddr is the DUT's address on Prefix, DUTMAC its Ethernet
	// address.
	DUTAddr netip.Addr
	DUTMAC  MAC
	Prefix  netip.Prefix

	f       *os.File
	frames  chan *Frame
	wg      sync.WaitGroup
	dropped atomic.Int64
	ipID    atomic.Uint32
	close   sync.Once
}

// openBench opens the testbench's socket on interface dev inside ns, with
// address addr, facing a DUT at dut, and starts its reader. Close
// (registered with t.Cleanup) stops it.
func openBench(t testing.TB, ns *netnstest.NS, dev string, addr netip.Addr, dut netip.Prefix) *Bench {
	t.Helper()
	var fd int
	err := ns.Run(func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		// Protocol 0: nothing arrives before bind names the interface.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		for _, o := range []struct{ level, opt, v int }{
			{unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1},
			{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1},
			{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8 << 20},
		} {
			if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
				unix.Close(fd)
				return fmt.Errorf("setsockopt %d/%d: %w", o.level, o.opt, err)
			}
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return fmt.Errorf("bind AF_PACKET to %s: %w", dev, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("wiretest: %v", err)
	}
	b := &Bench{
		Addr:    addr,
		DUTAddr: dut.Addr(),
		Prefix:  dut.Masked(),
		MAC:     BenchMAC,
		f:       os.NewFile(uintptr(fd), "packet:"+dev),
		frames:  make(chan *Frame, 16384),
	}
	b.wg.Add(1)
	go b.readLoop()
	t.Cleanup(b.Close)
	return b
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Close stops the reader and closes the socket.
func (b *Bench) Close() {
	b.close.Do(func() {
		b.f.Close()
		b.wg.Wait()
	})
}

func (b *Bench) readLoop() {
	defer b.wg.Done()
	buf := make([]byte, vnetLen+65536+256)
	for {
		n, err := b.f.Read(buf)
		if err != nil {
			return // closed
		}
		if n < vnetLen+14 {
			continue
		}
		h := buf[:vnetLen]
		frame := append([]byte(nil), buf[vnetLen:n]...)
		now := time.Now()
		var frames [][]byte
		if gso := h[1] &^ vnetGSOECN; gso == vnetGSOTCPv4 {
			frames = cutTSO(frame, int(binary.LittleEndian.Uint16(h[4:])))
		} else {
			if h[0]&vnetNeedsCsum != 0 {
				completeChecksum(frame, int(binary.LittleEndian.Uint16(h[6:])), int(binary.LittleEndian.Uint16(h[8:])))
			}
			frames = [][]byte{frame}
		}
		for _, raw := range frames {
			f := ParseFrame(raw)
			f.At = now
			if trace {
				fmt.Fprintf(os.Stderr, "wiretest %s <- %v\n", now.Format("15:04:05.000"), f)
			}
			if a := f.ARP; a != nil && a.Op == 1 && a.TargetIP == b.Addr && b.Addr.IsValid() {
				// RFC 826: answer a request for our address.
				b.Send(BuildEth(a.SenderMAC, b.MAC, EtherTypeARP, BuildARP(&ARP{
					Op: 2, SenderMAC: b.MAC, SenderIP: b.Addr, TargetMAC: a.SenderMAC, TargetIP: a.SenderIP,
				})))
			}
			select {
			case b.frames <- f:
			default:
				b.dropped.Add(1)
			}
		}
	}
}

// completeChecksum finishes a checksum the sender left partial: the field
// at start+off holds the pseudo-header sum, and the checksum covers
// everything from start on (virtio_net_hdr's NEEDS_CSUM).
func completeChecksum(frame []byte, start, off int) {
	if start+off+2 > len(frame) {
		return
	}
	binary.BigEndian.PutUint16(frame[start+off:], checksum.Checksum(frame[start:], 0))
}

// cutTSO cuts a TCPv4 super-segment into segments of at most mss bytes of
// payload, as a NIC doing TCP segmentation offload does: the headers
// repeat, the sequence number and IP ID advance, FIN and PSH stay on the
// last segment and CWR on the first, and every checksum is computed whole.
func cutTSO(frame []byte, mss int) [][]byte {
	if len(frame) < 14+20 {
		return [][]byte{frame}
	}
	ip := frame[14:]
	ihl := int(ip[0]&0xf) * 4
	if len(ip) < ihl+20 || mss <= 0 {
		return [][]byte{frame}
	}
	doff := int(ip[ihl+12]>>4) * 4
	hdr := 14 + ihl + doff
	if hdr > len(frame) {
		return [][]byte{frame}
	}
	payload := frame[hdr:]
	src := netip.AddrFrom4([4]byte(ip[12:16]))
	dst := netip.AddrFrom4([4]byte(ip[16:20]))
	id := binary.BigEndian.Uint16(ip[4:])
	seq := binary.BigEndian.Uint32(ip[ihl+4:])
	flags := ip[ihl+13]
	var out [][]byte
	for i, off := 0, 0; off < len(payload) || off == 0; i, off = i+1, off+mss {
		end := min(off+mss, len(payload))
		seg := append(append([]byte(nil), frame[:hdr]...), payload[off:end]...)
		sip := seg[14:]
		binary.BigEndian.PutUint16(sip[2:], uint16(len(sip)))
		binary.BigEndian.PutUint16(sip[4:], id+uint16(i))
		sip[10], sip[11] = 0, 0
		binary.BigEndian.PutUint16(sip[10:], checksum.Checksum(sip[:ihl], 0))
		tcp := sip[ihl:]
		binary.BigEndian.PutUint32(tcp[4:], seq+uint32(off))
		f := flags
		if end < len(payload) {
			f &^= FIN | PSH
		}
		if off > 0 {
			f &^= CWR
		}
		tcp[13] = f
		tcp[16], tcp[17] = 0, 0
		binary.BigEndian.PutUint16(tcp[16:], checksum.Checksum(tcp, checksum.Pseudo(src, dst, ProtoTCP, len(tcp))))
		out = append(out, seg)
		if end == len(payload) {
			break
		}
	}
	return out
}

// Send writes one Ethernet frame onto the link, towards the DUT.
func (b *Bench) Send(frame []byte) error {
	if trace {
		fmt.Fprintf(os.Stderr, "wiretest %s -> %v\n", time.Now().Format("15:04:05.000"), ParseFrame(frame))
	}
	buf := make([]byte, vnetLen+len(frame)) // a zero header: no offloads
	copy(buf[vnetLen:], frame)
	_, err := b.f.Write(buf)
	return err
}

// SendIP sends h (whose Src and Dst default to the testbench's and the
// DUT's addresses, and whose ID defaults to a fresh one) to the DUT's MAC.
func (b *Bench) SendIP(t testing.TB, h *IPv4) {
	t.Helper()
	b.SendIPTo(t, b.DUTMAC, h)
}

// SendIPTo is SendIP to the Ethernet address dst.
func (b *Bench) SendIPTo(t testing.TB, dst MAC, h *IPv4) {
	t.Helper()
	if !h.Src.IsValid() {
		h.Src = b.Addr
	}
	if !h.Dst.IsValid() {
		h.Dst = b.DUTAddr
	}
	if h.ID == 0 {
		h.ID = uint16(b.ipID.Add(1))
	}
	if err := b.Send(BuildEth(dst, b.MAC, EtherTypeIPv4, BuildIPv4(h))); err != nil {
		t.Fatalf("wiretest: send: %v", err)
	}
}

// FromDUT matches IPv4 frames the DUT sent to the testbench.
func (b *Bench) FromDUT(f *Frame) bool {
	return f.IP != nil && f.IP.Src == b.DUTAddr && f.IP.Dst == b.Addr
}

// Expect waits up to timeout for a frame satisfying want and returns it.
// Frames that do not satisfy it are consumed and skipped. If none arrives
// in time it fails t, naming what (what the test waited for) and the
// frames it skipped.
func (b *Bench) Expect(t testing.TB, timeout time.Duration, what string, want func(*Frame) bool) *Frame {
	t.Helper()
	return b.ExpectBefore(t, timeout, what, want, nil)
}

// ExpectBefore is Expect that also fails t if a frame satisfying bad (and
// not want) arrives before the one satisfying want. A test that must see nothing of
// one kind uses it with a sentinel: it provokes the frame it must not get,
// then one it must get (an echo reply, a RST), which arrives after the
// forbidden one would have, since one link carries both in order.
func (b *Bench) ExpectBefore(t testing.TB, timeout time.Duration, what string, want, bad func(*Frame) bool) *Frame {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var skipped []string
	for {
		select {
		case f := <-b.frames:
			if want(f) {
				return f
			}
			if bad != nil && bad(f) {
				t.Fatalf("wiretest: while waiting for %s, got a forbidden frame: %v", what, f)
			}
			if f.ARP == nil {
				skipped = append(skipped, f.String())
			}
		case <-deadline.C:
			t.Fatalf("wiretest: no %s within %v (dropped %d); skipped %d frames:%s", what, timeout, b.dropped.Load(), len(skipped), tail(skipped))
			return nil
		}
	}
}

// ExpectNone fails t if a frame satisfying bad arrives within window. Use
// it only where the test means "nothing at all", and keep window short
// (hundreds of milliseconds); ExpectBefore with a sentinel is better where
// there is one.
func (b *Bench) ExpectNone(t testing.TB, window time.Duration, what string, bad func(*Frame) bool) {
	t.Helper()
	deadline := time.NewTimer(window)
	defer deadline.Stop()
	for {
		select {
		case f := <-b.frames:
			if bad(f) {
				t.Fatalf("wiretest: expected no %s within %v, got %v", what, window, f)
			}
		case <-deadline.C:
			return
		}
	}
}

// waitReady returns once the DUT answers an echo request, sending one
// every 100 ms for up to Timeout, and then discards what was read. A new
// interface passes traffic only after the kernel has noticed its carrier
// and given it a queueing discipline (linkwatch), a moment after it came
// up; until then frames are dropped.
func (b *Bench) waitReady(t testing.TB) {
	t.Helper()
	for seq := uint16(0); seq < uint16(Timeout/(100*time.Millisecond)); seq++ {
		b.SendIP(t, &IPv4{Proto: ProtoICMP, Payload: BuildEcho(0xfffe, seq, []byte("ready?"))})
		timer := time.NewTimer(100 * time.Millisecond)
	wait:
		for {
			select {
			case f := <-b.frames:
				if b.FromDUT(f) && f.ICMP != nil && f.ICMP.Type == ICMPEchoReply && f.ICMP.ID == 0xfffe {
					timer.Stop()
					b.Drain()
					return
				}
			case <-timer.C:
				break wait
			}
		}
	}
	t.Fatalf("wiretest: the DUT answered no echo request within %v", Timeout)
}

// Drain discards the frames queued so far.
func (b *Bench) Drain() {
	for {
		select {
		case <-b.frames:
		default:
			return
		}
	}
}

func tail(s []string) string {
	const n = 12
	if len(s) > n {
		s = append([]string{"..."}, s[len(s)-n:]...)
	}
	if len(s) == 0 {
		return " none"
	}
	return "\n\t" + strings.Join(s, "\n\t")
}
