package link

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"
)

// Pcap file constants, from the libpcap file format (pcap-savefile(5) and
// draft-ietf-opsawg-pcap).
const (
	// PcapMagicNano is the magic number of a capture whose timestamps
	// are in nanoseconds, which Pcap writes. Microsecond files use
	// 0xa1b2c3d4.
	PcapMagicNano = 0xa1b23c4d
	// PcapSnaplen is the snapshot length Pcap declares and truncates
	// records to: larger than any frame a link here carries.
	PcapSnaplen = 262144
	// LinkTypeEthernet is LINKTYPE_ETHERNET, for Ethernet II frames.
	LinkTypeEthernet = 1
	// LinkTypeRaw is LINKTYPE_RAW: bare IPv4 or IPv6 packets, the
	// version told by the first nibble.
	LinkTypeRaw = 101
)

const (
	pcapFileHeaderLen   = 24
	pcapRecordHeaderLen = 16
)

// PcapConfig configures a Pcap made by NewPcapWithConfig.
type PcapConfig struct {
	// Now returns the timestamp of each record; nil means time.Now.
	// Tests set it to get reproducible files.
	Now func() time.Time
}

// Pcap is a Link that records every frame read from or written to the
// link it wraps in a libpcap capture file, which tcpdump, tshark and
// Wireshark read.
//
// Records are written whole, under a lock, so one Pcap may be used by a
// reader and writers at once. An error writing the capture does not fail
// the link: it stops the capture and is reported by Err.
type Pcap struct {
	l   Link
	now func() time.Time

	mu  sync.Mutex
	w   io.Writer
	buf []byte // record header and frame, so each record is one Write
	err error
}

// NewPcap writes a capture file header to w and returns l wrapped so that
// every frame is recorded to w, timestamped with time.Now. The capture's
// link type is LinkTypeEthernet if l.Ethernet(), else LinkTypeRaw.
//
// Pcap does not buffer or close w: wrap it in a bufio.Writer for speed and
// flush and close it after closing the Pcap.
func NewPcap(l Link, w io.Writer) (*Pcap, error) {
	return NewPcapWithConfig(l, w, PcapConfig{})
}

// NewPcapWithConfig is NewPcap with the options in cfg.
func NewPcapWithConfig(l Link, w io.Writer, cfg PcapConfig) (*Pcap, error) {
	p := &Pcap{l: l, w: w, now: cfg.Now}
	if p.now == nil {
		p.now = time.Now
	}
	var h [pcapFileHeaderLen]byte
	le := binary.LittleEndian // the magic number tells readers the order
	le.PutUint32(h[0:], PcapMagicNano)
	le.PutUint16(h[4:], 2) // version 2.4
	le.PutUint16(h[6:], 4)
	// h[8:16]: thiszone and sigfigs, always 0.
	le.PutUint32(h[16:], PcapSnaplen)
	lt := uint32(LinkTypeRaw)
	if l.Ethernet() {
		lt = LinkTypeEthernet
	}
	le.PutUint32(h[20:], lt)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return p, nil
}

// ReadFrame reads a frame from the wrapped link and records it.
func (p *Pcap) ReadFrame(buf []byte) (int, error) {
	n, err := p.l.ReadFrame(buf)
	if err == nil {
		p.record(buf[:n])
	}
	return n, err
}

// WriteFrame records frame and writes it to the wrapped link. The frame is
// recorded even if the link then fails to send it, as tcpdump records what
// the host hands the driver.
func (p *Pcap) WriteFrame(frame []byte) error {
	p.record(frame)
	return p.l.WriteFrame(frame)
}

// Capabilities returns the wrapped link's: Pcap records super-segments,
// lent frames and batches as they pass, as tcpdump on an offloading NIC
// shows them.
func (p *Pcap) Capabilities() Capabilities { return CapabilitiesOf(p.l) }

// WriteGSO records the super-segment frame whole and hands it to the
// wrapped link's WriteGSO. It fails if the wrapped link has no GSO.
func (p *Pcap) WriteGSO(frame []byte, gsoSize, csumStart, hdrLen int) error {
	g, ok := p.l.(GSOWriter)
	if !ok || !CapabilitiesOf(p.l).GSO {
		return errors.New("link: WriteGSO on a Pcap over a link without GSO")
	}
	p.record(frame)
	return g.WriteGSO(frame, gsoSize, csumStart, hdrLen)
}

// NextFrame takes the next frame the wrapped link lends and records it. It
// fails if the wrapped link does not lend frames.
func (p *Pcap) NextFrame() ([]byte, error) {
	l, ok := p.l.(Lender)
	if !ok || !CapabilitiesOf(p.l).Lend {
		return nil, errors.New("link: NextFrame on a Pcap over a link that lends no frames")
	}
	f, err := l.NextFrame()
	if err == nil {
		if p.l.Ethernet() {
			p.record(f)
		} else {
			p.record(f[EthernetHeaderLen:]) // the packet, not the scratch before it
		}
	}
	return f, err
}

// ReadFrames reads a batch from the wrapped link and records each frame.
// It fails if the wrapped link has no Batch capability.
func (p *Pcap) ReadFrames(bufs [][]byte, sizes []int) (int, error) {
	b, ok := p.l.(Batcher)
	if !ok || !CapabilitiesOf(p.l).Batch {
		return 0, errors.New("link: ReadFrames on a Pcap over a link without Batch")
	}
	n, err := b.ReadFrames(bufs, sizes)
	for i := range n {
		p.record(bufs[i][:sizes[i]])
	}
	return n, err
}

// WriteFrames records each frame and writes the batch to the wrapped
// link. It fails if the wrapped link has no Batch capability.
func (p *Pcap) WriteFrames(frames [][]byte) (int, error) {
	b, ok := p.l.(Batcher)
	if !ok || !CapabilitiesOf(p.l).Batch {
		return 0, errors.New("link: WriteFrames on a Pcap over a link without Batch")
	}
	for _, f := range frames {
		p.record(f)
	}
	return b.WriteFrames(frames)
}

// Backpressure switches the wrapped link to refusing what its full queue
// cannot take (Queuer); a refused frame is recorded each time it is
// offered, as tcpdump records each transmission. It returns nil if the
// wrapped link has no Queue capability.
func (p *Pcap) Backpressure() <-chan struct{} {
	if q, ok := p.l.(Queuer); ok && CapabilitiesOf(p.l).Queue {
		return q.Backpressure()
	}
	return nil
}

// NotifyRoom asks the wrapped link for a room signal (Queuer).
func (p *Pcap) NotifyRoom() {
	if q, ok := p.l.(Queuer); ok && CapabilitiesOf(p.l).Queue {
		q.NotifyRoom()
	}
}

// Queued returns what waits in the wrapped link's queues (Queuer).
func (p *Pcap) Queued() (tx, rx int) {
	if q, ok := p.l.(Queuer); ok && CapabilitiesOf(p.l).Queue {
		return q.Queued()
	}
	return 0, 0
}

// Release gives a frame from NextFrame back to the wrapped link.
func (p *Pcap) Release(frame []byte) { p.l.(Lender).Release(frame) }

// MTU returns the wrapped link's MTU.
func (p *Pcap) MTU() int { return p.l.MTU() }

// Ethernet returns the wrapped link's Ethernet.
func (p *Pcap) Ethernet() bool { return p.l.Ethernet() }

// Close closes the wrapped link. It does not close the capture's writer.
func (p *Pcap) Close() error { return p.l.Close() }

// Err returns the first error writing the capture, or nil.
func (p *Pcap) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *Pcap) record(frame []byte) {
	ts := p.now()
	incl := min(len(frame), PcapSnaplen)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return
	}
	p.buf = append(p.buf[:0], make([]byte, pcapRecordHeaderLen)...)
	le := binary.LittleEndian
	le.PutUint32(p.buf[0:], uint32(ts.Unix()))
	le.PutUint32(p.buf[4:], uint32(ts.Nanosecond()))
	le.PutUint32(p.buf[8:], uint32(incl))
	le.PutUint32(p.buf[12:], uint32(len(frame)))
	p.buf = append(p.buf, frame[:incl]...)
	_, p.err = p.w.Write(p.buf)
}

var _ Link = (*Pcap)(nil)
