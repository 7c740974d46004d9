package netstack

import (
	"context"
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
//
// A Link may do more than move frames: see CapableLink.
type Link interface {
	ReadFrame(buf []byte) (int, error)
	WriteFrame(frame []byte) error
	// MTU is the largest IP packet the link carries (1500 on Ethernet).
	MTU() int
	// Ethernet reports whether frames carry a 14-byte Ethernet II header.
	Ethernet() bool
	Close() error
}

// Capabilities are what a link can do beyond Link's five methods:
//
//   - GSO: the link cuts TCP super-segments itself, as a NIC's TSO does. The
//     stack then hands it segments of up to 64 KiB through
//     WriteGSO(frame []byte, gsoSize, csumStart, hdrLen int) error: frame's
//     TCP checksum field holds the folded pseudo-header sum, csumStart is
//     the offset of the TCP header and hdrLen the length of all headers, and
//     each cut segment carries gsoSize bytes of payload. Its ReadFrame may
//     likewise deliver coalesced TCP segments of up to 64 KiB (GRO), with
//     checksums complete.
//   - Lend: the link keeps received frames in buffers of its own and lends
//     them, through NextFrame() ([]byte, error), which blocks as ReadFrame
//     does, and Release(frame []byte), which gives a frame back exactly once
//     before the next NextFrame. The stack may modify a lent frame. On a link
//     without Ethernet headers, the IP packet starts 14 bytes into the
//     returned slice; the stack may write to the bytes before it.
//   - Batch: the link moves many frames per call, through
//     ReadFrames(bufs [][]byte, sizes []int) (int, error), which blocks as
//     ReadFrame does and then reads the frames already waiting, up to
//     len(bufs), frame i into bufs[i] and its length into sizes[i]; and
//     WriteFrames(frames [][]byte) (int, error), which sends them in order
//     and returns how many it sent. The stack reads through ReadFrames
//     when the link does not lend; on a link without GSO it cuts each TCP
//     super-segment into a batch of frames, as a NIC's TSO would, and
//     writes them with one WriteFrames call.
//   - Queue: the link's transmit queue can hold the stack back instead of
//     dropping what does not fit, as a NIC's driver stops the kernel's
//     queue and wakes it, through Backpressure() <-chan struct{}, which
//     the stack calls once, before traffic, and after which a
//     WriteFrame, WriteGSO or WriteFrames call that finds the queue
//     without room for all it carries sends none of it and returns
//     ErrLinkFull; and NotifyRoom(), which asks for one value on the
//     channel Backpressure returned once the queue has room again (at
//     once if it has now), and never blocks; and Queued() (tx, rx int),
//     the frames waiting in its queues, sent and not yet read by the far
//     end, and received and not yet read by the stack. The stack then
//     keeps the TCP frames refused, in order, sends no more data until
//     the signal, only ACKs, and puts at most a super-segment of each
//     connection in the queue at a time; its tail loss probes wait while
//     frames wait, since nothing is lost, only queued. So TCP loses
//     nothing to its own link. Other packets a full queue refuses are
//     lost, as a full queue's are. Pipe and the links of
//     NewPacketLinkPair have it.
type Capabilities = link.Capabilities

// ErrLinkFull is what a link with the Queue capability returns for a write
// its full queue refused (see Capabilities).
var ErrLinkFull = link.ErrFull

// SegmentTCP does in software what a NIC's TSO does, for a Link that
// declares GSO and has no hardware to cut with: it cuts frame, a TCP
// super-segment as WriteGSO receives it, into segments of gsoSize bytes of
// payload (the last one the rest), each behind a copy of frame's headers,
// with the IP length (and for IPv4 a consecutive identification and the
// header checksum), the TCP sequence number, flags and checksum set. ipOff
// is the offset of the IP header in frame: 14 on an Ethernet link, 0 on a
// link without Ethernet. Segment i is written into next(i, n)[:n], n being
// its length, so a link can cut straight into its own buffers; SegmentTCP
// returns how many segments there were, or an error, having written
// nothing, if frame is no such super-segment.
func SegmentTCP(frame []byte, ipOff, gsoSize, csumStart, hdrLen int, next func(i, n int) []byte) (int, error) {
	return link.Segment(frame, ipOff, gsoSize, csumStart, hdrLen, next)
}

// A CapableLink is a Link that declares Capabilities. For each capability
// it reports it must have that capability's methods; New checks. The
// links of this package declare theirs, and PcapLink reports and passes
// on those of the link it wraps.
type CapableLink interface {
	Link
	Capabilities() Capabilities
}

// OpenTAP attaches to the Linux TAP device name, creating it if needed
// (root or CAP_NET_ADMIN). Frames are Ethernet; the stack is a host behind
// the device with a MAC address of its own.
//
// The device is opened with the virtio-net header and TCP offloads when the
// kernel allows (IFF_VNET_HDR, TUNSETOFFLOAD): the kernel and the stack then
// exchange TCP super-segments of up to 64 KiB, which cuts the system calls
// per byte by about forty. Otherwise it is opened plainly.
func OpenTAP(name string) (*Device, error) {
	d, err := link.OpenTAPOffload(name)
	if err != nil {
		return nil, err
	}
	return &Device{d}, nil
}

// OpenTUN attaches to the Linux TUN device name, creating it if needed.
// Frames are bare IP packets, IPv4 or IPv6 as the version in their first
// nibble says: no Ethernet header, no ARP and no neighbor discovery.
// Offloads are used as OpenTAP describes, for TCP over either family.
func OpenTUN(name string) (*Device, error) {
	d, err := link.OpenTUNOffload(name)
	if err != nil {
		return nil, err
	}
	return &Device{d}, nil
}

// OpenTAPQueues is OpenTAP with queues receive queues, 1 to 256
// (IFF_MULTI_QUEUE), so that receiving uses more than one core: the
// kernel spreads flows over the queues by their hash, and the stack reads
// each queue with a goroutine of its own. The kernel steers a flow to the
// queue the stack last sent its packets on, and the device sends each
// flow's packets on one queue picked by a hash of its addresses and
// ports, so once the stack has answered a flow it stays on one queue, its
// packets in order; before that (a SYN) and after its steering entry
// ages out (seconds idle) the kernel's own hash picks the queue, and a
// packet or two in flight at the switch may be reordered, which TCP
// tolerates. If the kernel
// refuses several queues the device is opened as OpenTAP opens it;
// Device.Queues reports how many it has. Stack.InputFrames shows how many
// frames each queue's reader took.
func OpenTAPQueues(name string, queues int) (*Device, error) {
	d, err := link.OpenTAPOffloadQueues(name, queues)
	if err != nil {
		return nil, err
	}
	return &Device{d}, nil
}

// OpenTUNQueues is OpenTUN with queues receive queues, as OpenTAPQueues.
func OpenTUNQueues(name string, queues int) (*Device, error) {
	d, err := link.OpenTUNOffloadQueues(name, queues)
	if err != nil {
		return nil, err
	}
	return &Device{d}, nil
}

// A Device is a TAP or TUN device, as OpenTAP and OpenTUN return it: a
// CapableLink (GSO when opened with offloads), whose Name is the interface
// name the kernel chose, whose Offload reports the virtio-net header and
// whose Queues reports its receive queues (see OpenTAPQueues).
type Device struct{ *link.Device }

// Pipe returns two in-memory Ethernet links joined back to back with an MTU
// of 1500, as two hosts on one cable. Each direction queues a bounded
// number of frames and drops (and counts) what does not fit, as a NIC's ring
// does; a Stack on an end makes it hold its TCP sender back instead (the
// Queue capability), so that TCP loses nothing to the pipe. Closing either
// end closes both.
func Pipe() (*PipeEnd, *PipeEnd) { return NewPipe(PipeConfig{}) }

// A PipeEnd is one end of a Pipe: a CapableLink that lends its frames, and
// whose Stats count what it sent, received and dropped.
type PipeEnd struct{ *link.PipeEnd }

// PipeStats counts what one end of a pipe has sent and received, and the
// frames dropped because the peer's queue was full.
type PipeStats = link.PipeStats

// PipeConfig configures NewPipe.
type PipeConfig struct {
	// MTU is the largest IP packet either end carries; 0 means 1500. A
	// jumbo MTU (up to 65535) makes the pipe carry jumbo frames.
	MTU int
	// Depth is how many frames each direction queues before it drops;
	// 0 means 1024.
	Depth int
}

// NewPipe is Pipe with the MTU and queue depth of cfg.
func NewPipe(cfg PipeConfig) (*PipeEnd, *PipeEnd) {
	a, b := link.NewPipe(link.PipeConfig{MTU: cfg.MTU, Depth: cfg.Depth})
	return &PipeEnd{a}, &PipeEnd{b}
}

// PcapLink wraps l so that every frame it reads or writes is also written
// to w in libpcap format (Ethernet or raw-IP link type, per l.Ethernet();
// raw IP holds IPv4 and IPv6 packets alike), for Wireshark or tshark. It
// reports and passes on l's capabilities, so a stack on PcapLink(tap)
// still sends super-segments, which the capture records whole as tcpdump
// does on a NIC with TSO.
// Closing the returned Link closes l, not w.
func PcapLink(l Link, w io.Writer) (Link, error) {
	p, err := link.NewPcap(l, w)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// PacketLinkConfig configures a PacketLink.
type PacketLinkConfig struct {
	// MTU is the largest IP packet; 0 means 1500.
	MTU int
	// Ethernet makes packets Ethernet frames; false means bare IP
	// packets, IPv4 or IPv6 by the version in their first nibble, as a TUN
	// device or a VPN transport carries.
	Ethernet bool
	// Depth bounds each direction's queue in packets; 0 means 1024.
	Depth int
	// Output, if set, receives each packet the stack sends, synchronously on
	// the sending goroutine; pkt is valid only during the call, and a slow
	// Output slows the stack's senders. If Output and OutputBatch are nil,
	// sent packets queue for Outbound and are dropped (counted) when it is
	// full.
	Output func(pkt []byte)
	// OutputBatch, if set, receives what the stack sends instead of
	// Output, in batches: the segments of a TCP write, cut from one
	// super-segment in one go (up to 64 of them), or a single packet. The
	// packets are valid only during the call. A transport that sends many
	// packets per system call, or per lock, wants this.
	OutputBatch func(pkts [][]byte)
}

// NewPacketLinkPair returns two PacketLinks joined back to back, as two
// whose Output injects into the other would be, with one copy per packet,
// which the receiving stack reads where it lies. Unlike such Outputs, each
// sees the other's queue and reports the Queue capability: when it is
// full the sending stack holds its TCP frames back until it drains,
// rather than lose them. cfg's Output and OutputBatch are not used;
// Inject still works on either link.
func NewPacketLinkPair(cfg PacketLinkConfig) (a, b *PacketLink) {
	ca, cb := link.NewChannelPair(link.ChannelConfig{MTU: cfg.MTU, Ethernet: cfg.Ethernet, Depth: cfg.Depth})
	return &PacketLink{ch: ca}, &PacketLink{ch: cb}
}

// PacketLinkStats counts a PacketLink's traffic and drops.
type PacketLinkStats = link.ChannelStats

// PacketLink is a Link the caller feeds: a VPN or tunnel transport pushes
// received packets in with Inject and takes the stack's packets from
// Output or Outbound. Its methods are safe for concurrent use.
type PacketLink struct{ ch *link.Channel }

// NewPacketLink returns a PacketLink; pass it as Config.Link.
func NewPacketLink(cfg PacketLinkConfig) *PacketLink {
	return &PacketLink{ch: link.NewChannel(link.ChannelConfig{
		MTU: cfg.MTU, Ethernet: cfg.Ethernet, Depth: cfg.Depth, Output: cfg.Output, OutputBatch: cfg.OutputBatch,
	})}
}

// Inject hands a received packet to the stack. It copies pkt and never
// blocks: when the stack is behind and the queue is full it drops the
// packet, counts it, and returns an error. After Close it returns
// net.ErrClosed. That copy is the only one: the stack reads the queued
// packet where it lies, and its buffer is reused for later packets.
func (l *PacketLink) Inject(pkt []byte) error { return l.ch.Inject(pkt) }

// InjectContext is Inject that waits for room in the queue until ctx
// ends: back-pressure for a transport that can wait.
func (l *PacketLink) InjectContext(ctx context.Context, pkt []byte) error {
	return l.ch.InjectContext(ctx, pkt)
}

// Outbound returns the channel of packets the stack sends when
// PacketLinkConfig.Output is nil, else nil. Each packet is the receiver's.
func (l *PacketLink) Outbound() <-chan []byte { return l.ch.Outbound() }

// Stats returns the link's counters.
func (l *PacketLink) Stats() PacketLinkStats { return l.ch.Stats() }

// ReadFrame implements Link.
func (l *PacketLink) ReadFrame(buf []byte) (int, error) { return l.ch.ReadFrame(buf) }

// WriteFrame implements Link.
func (l *PacketLink) WriteFrame(frame []byte) error { return l.ch.WriteFrame(frame) }

// Capabilities reports Lend (the stack reads injected packets in place),
// Batch when PacketLinkConfig.OutputBatch is set, and Queue for a link of
// NewPacketLinkPair.
func (l *PacketLink) Capabilities() Capabilities { return l.ch.Capabilities() }

// Backpressure makes a link of NewPacketLinkPair refuse, with ErrLinkFull,
// a packet its peer's full queue cannot take, rather than drop it (the
// Queue capability); it returns the channel NotifyRoom signals, nil for
// any other PacketLink. The stack calls it.
func (l *PacketLink) Backpressure() <-chan struct{} { return l.ch.Backpressure() }

// NotifyRoom asks for one value on the channel Backpressure returned once
// the peer's queue is at most half full, at once if it is now.
func (l *PacketLink) NotifyRoom() { l.ch.NotifyRoom() }

// Queued returns the packets waiting in the peer's queue (for a link of
// NewPacketLinkPair; else 0) and in this link's own.
func (l *PacketLink) Queued() (tx, rx int) { return l.ch.Queued() }

// ReadFrames reads the next injected packet and those queued behind it,
// up to len(bufs) (the Batch capability; it works without OutputBatch
// too).
func (l *PacketLink) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	return l.ch.ReadFrames(bufs, sizes)
}

// WriteFrames sends frames to OutputBatch in one call, else one by one as
// WriteFrame does (the Batch capability).
func (l *PacketLink) WriteFrames(frames [][]byte) (int, error) { return l.ch.WriteFrames(frames) }

// NextFrame lends the stack the next injected packet (see Capabilities).
func (l *PacketLink) NextFrame() ([]byte, error) { return l.ch.NextFrame() }

// Release gives back a packet from NextFrame.
func (l *PacketLink) Release(frame []byte) { l.ch.Release(frame) }

// MTU implements Link.
func (l *PacketLink) MTU() int { return l.ch.MTU() }

// Ethernet implements Link.
func (l *PacketLink) Ethernet() bool { return l.ch.Ethernet() }

// Close implements Link.
func (l *PacketLink) Close() error { return l.ch.Close() }
