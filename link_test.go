package netstack

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestPcapLinkKeepsGSO: a stack on PcapLink over a TAP opened with
// offloads still hands the kernel TCP super-segments, and the capture
// records them whole (frames from the stack longer than the MTU), as
// tcpdump does on a NIC with TSO. The transfer arrives intact.
func TestPcapLinkKeepsGSO(t *testing.T) {
	checkGoroutines(t)
	netnstest.Require(t)
	ns := netnstest.New(t)
	if !ns.Dev.Offload() {
		t.Fatal("the TAP has no offloads")
	}
	var capture bytes.Buffer
	pl, err := PcapLink(ns.Dev, &capture) // Pcap writes each record under its lock
	if err != nil {
		t.Fatal(err)
	}
	if !pl.(CapableLink).Capabilities().GSO {
		t.Fatal("PcapLink over an offloading TAP does not report GSO")
	}
	s, err := New(Config{Link: pl, Addr: ns.StackPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, k := kernelPair(t, ns, s, 9030)
	exchange(t, c, k, 8<<20)
	s.Close()
	big := 0
	for rec := capture.Bytes()[24:]; len(rec) >= 16; {
		incl := int(binary.LittleEndian.Uint32(rec[8:]))
		orig := int(binary.LittleEndian.Uint32(rec[12:]))
		frame := rec[16 : 16+incl]
		fromStack := len(frame) >= 30 && netip.AddrFrom4([4]byte(frame[26:30])) == ns.StackPrefix.Addr()
		if fromStack && orig > 14+ns.Dev.MTU() { // the kernel's GRO frames do not count
			big++
		}
		rec = rec[16+incl:]
	}
	if big == 0 {
		t.Fatal("no frame in the capture is longer than the MTU: GSO was lost behind PcapLink")
	}
	t.Logf("%d super-segments captured", big)
}

// lendingLink is a user's own Link that declares the Lend capability and
// counts the frames the stack took through it.
type lendingLink struct {
	*link.PipeEnd
	lent atomic.Int64
}

func (l *lendingLink) Capabilities() Capabilities { return Capabilities{Lend: true} }

func (l *lendingLink) NextFrame() ([]byte, error) {
	f, err := l.PipeEnd.NextFrame()
	if err == nil {
		l.lent.Add(1)
	}
	return f, err
}

// noWriteGSO declares GSO without the method it needs.
type noWriteGSO struct{ Link }

func (noWriteGSO) Capabilities() Capabilities { return Capabilities{GSO: true} }

// TestUserLinkDeclaresCapability: a Link written outside the package opts
// in to lending its frames, and the stack reads through NextFrame; a link
// that declares a capability without its methods is refused by New.
func TestUserLinkDeclaresCapability(t *testing.T) {
	checkGoroutines(t)
	pa, pb := link.Pipe(1500)
	ua := &lendingLink{PipeEnd: pa}
	a, b := newLinkPair(t, Config{}, ua, pb)
	ln, err := a.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln, 10*time.Second)
	c, err := b.Dial("tcp", "198.18.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := strings.Repeat("lent ", 1000)
	go c.Write([]byte(msg))
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: %v", err)
	}
	if ua.lent.Load() == 0 {
		t.Fatal("the stack never called the link's NextFrame")
	}

	la, _ := Pipe()
	defer la.Close()
	if s, err := New(Config{Link: noWriteGSO{la}, Addr: netip.MustParsePrefix("198.18.0.1/24")}); err == nil {
		s.Close()
		t.Fatal("New took a link that reports GSO without WriteGSO")
	}
}

// batchLink is a user's own Ethernet link that declares only the Batch
// capability, over a pipe end, and counts the calls the stack makes.
type batchLink struct {
	*link.PipeEnd
	reads, writes, written, maxBatch atomic.Int64
}

func (l *batchLink) Capabilities() Capabilities { return Capabilities{Batch: true} }

// ReadFrames returns one frame a call, which the contract allows.
func (l *batchLink) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	n, err := l.PipeEnd.ReadFrame(bufs[0])
	if err != nil {
		return 0, err
	}
	sizes[0] = n
	l.reads.Add(1)
	return 1, nil
}

func (l *batchLink) WriteFrames(frames [][]byte) (int, error) {
	l.writes.Add(1)
	l.written.Add(int64(len(frames)))
	if int64(len(frames)) > l.maxBatch.Load() {
		l.maxBatch.Store(int64(len(frames)))
	}
	for i, f := range frames {
		if err := l.PipeEnd.WriteFrame(f); err != nil {
			return i, err
		}
	}
	return len(frames), nil
}

// noBatch declares Batch without the methods it needs.
type noBatch struct{ Link }

func (noBatch) Capabilities() Capabilities { return Capabilities{Batch: true} }

// TestUserLinkBatch: a Link written outside the package opts in to
// batches; the stack reads through ReadFrames and writes TCP data through
// WriteFrames, many segments of MTU size per call, and the data arrives
// intact each way. A link that declares Batch without its methods is
// refused.
func TestUserLinkBatch(t *testing.T) {
	checkGoroutines(t)
	pa, pb := link.Pipe(1500)
	ua, ub := &batchLink{PipeEnd: pa}, &batchLink{PipeEnd: pb}
	a, b := newLinkPair(t, Config{}, ua, ub)
	c, sc := pipePairConn(t, a, b, 80)
	exchange(t, c, sc, 8<<20)
	for name, l := range map[string]*batchLink{"a": ua, "b": ub} {
		t.Logf("%s: %d reads, %d frames in %d writes, at most %d a write", name, l.reads.Load(),
			l.written.Load(), l.writes.Load(), l.maxBatch.Load())
		// ACKs and other single frames go through WriteFrame; WriteFrames
		// carries the cut data.
		if l.reads.Load() == 0 || l.maxBatch.Load() < 8 || l.written.Load() < 2*l.writes.Load() {
			t.Errorf("%s: the stack read %d times through ReadFrames and wrote %d frames in %d WriteFrames, at most %d a call",
				name, l.reads.Load(), l.written.Load(), l.writes.Load(), l.maxBatch.Load())
		}
	}

	la, _ := Pipe()
	defer la.Close()
	if s, err := New(Config{Link: noBatch{la}, Addr: netip.MustParsePrefix("198.18.0.1/24")}); err == nil {
		s.Close()
		t.Fatal("New took a link that reports Batch without ReadFrames and WriteFrames")
	}
}

// TestPacketLinkOutputBatch: two stacks joined by PacketLinks whose
// OutputBatch hands each batch to the other's Inject, over IPv4 and IPv6:
// TCP data arrives intact each way, and comes out in batches of many
// segments.
func TestPacketLinkOutputBatch(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := "ipv4"
		if v6 {
			name = "ipv6"
		}
		t.Run(name, func(t *testing.T) {
			checkGoroutines(t)
			var la, lb *PacketLink
			var batches, pkts, inMulti, maxBatch atomic.Int64
			forward := func(to **PacketLink) func([][]byte) {
				return func(b [][]byte) {
					batches.Add(1)
					pkts.Add(int64(len(b)))
					if len(b) > 1 {
						inMulti.Add(int64(len(b)))
					}
					if int64(len(b)) > maxBatch.Load() {
						maxBatch.Store(int64(len(b)))
					}
					for _, p := range b {
						(*to).Inject(p) // a full queue drops, as a wire would
					}
				}
			}
			la = NewPacketLink(PacketLinkConfig{MTU: 1420, OutputBatch: forward(&lb)})
			lb = NewPacketLink(PacketLinkConfig{MTU: 1420, OutputBatch: forward(&la)})
			pa, pb := netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
			if v6 {
				pa, pb = netip.MustParsePrefix("fd00::1/64"), netip.MustParsePrefix("fd00::2/64")
			}
			a, err := New(Config{Link: la, Addrs: []netip.Prefix{pa}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := New(Config{Link: lb, Addrs: []netip.Prefix{pb}})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c, sc := pipePairConn(t, a, b, 80)
			exchange(t, c, sc, 8<<20)
			t.Logf("%d packets in %d batches, %d of them in batches of several, at most %d a batch",
				pkts.Load(), batches.Load(), inMulti.Load(), maxBatch.Load())
			// 8 MiB each way is about 12,000 data segments; ACKs come
			// one a batch.
			if maxBatch.Load() < 8 || inMulti.Load() < 3000 {
				t.Fatalf("%d packets in batches of several, at most %d a batch: TCP was not cut into batches", inMulti.Load(), maxBatch.Load())
			}
		})
	}
}

// pipePairConn returns the two ends of a TCP connection from a to b's
// port.
func pipePairConn(t *testing.T, a, b *Stack, port uint16) (client, server net.Conn) {
	t.Helper()
	ln, err := b.Listen("tcp", ":"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return dialPair(t, ln, a, netip.AddrPortFrom(b.Addr(), port))
}

// TestPipeCutsSuperSegments: a Pipe reports GSO and cuts the stack's TCP
// super-segments into MTU-sized frames in the peer's queue, as a veth pair
// does: sending 16 MiB, the stack hands the pipe a fraction of the frames
// the pipe then carries, none longer than the MTU, and the data arrives
// intact.
func TestPipeCutsSuperSegments(t *testing.T) {
	checkGoroutines(t)
	la, lb := Pipe()
	if !la.Capabilities().GSO {
		t.Fatal("a Pipe does not report GSO")
	}
	a, b := newLinkPair(t, Config{}, la, lb)
	c, sc := pipePairConn(t, a, b, 80)
	data := make([]byte, 16<<20)
	for i := range data {
		data[i] = byte(i * 7 / 3)
	}
	go func() { c.Write(data); c.Close() }()
	sc.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(sc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes (%v), want the %d sent", len(got), err, len(data))
	}
	st, ps := a.Stats(), la.Stats()
	t.Logf("%d segments sent in %d frames handed to the pipe, which carried %d frames of %d bytes", st.TCP.SegmentsOut,
		st.Link.FramesOut, ps.TxFrames, ps.TxBytes)
	t.Logf("drops %d, retransmits %d, write errors %d, IPv4 sent %d", ps.TxDrops, st.TCP.Retransmits, st.Link.WriteErrors, st.IPv4.Sent)
	if st.TCP.SegmentsOut < 2*st.Link.FramesOut {
		t.Errorf("%d segments in %d frames: few super-segments", st.TCP.SegmentsOut, st.Link.FramesOut)
	}
	if minFrames := uint64(len(data) / 1460); ps.TxFrames < minFrames || ps.TxBytes < uint64(len(data)) {
		t.Errorf("the pipe carried %d frames of %d bytes for %d bytes of data: want at least %d frames", ps.TxFrames, ps.TxBytes, len(data), minFrames)
	}
	if got := b.Stats().Link.FramesIn; got < uint64(len(data)/1460) {
		t.Errorf("the receiver read %d frames: the segments were not cut", got)
	}
}
