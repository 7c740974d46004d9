package ip

import (
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/stats"
)

// Reassembly of IPv4 fragments (RFC 791 §3.2, with the bookkeeping of
// RFC 815 kept as a sorted list of received spans rather than holes: the
// holes are the gaps between spans).
//
// Overlaps: a fragment that partly overlaps data already received drops the
// whole datagram, as RFC 5722 requires for IPv6 and Linux does for IPv4 since
// 4.19; a fragment entirely inside received data is a duplicate and is
// ignored without touching the data already held, so nothing received first
// is ever overwritten.

const (
	// reasmHeadroom is the space kept in front of a datagram's payload for
	// its IPv4 header (up to 60 bytes) and an Ethernet header, so the whole
	// packet can be answered in place (an echo reply) without a copy.
	reasmHeadroom = EthernetHeaderLen + 60
	// reasmOverhead is what each datagram costs beyond its buffer, counted
	// against the memory cap so a flood of tiny fragments is bounded too.
	reasmOverhead = 256
)

type fragKey struct {
	src, dst [4]byte
	id       uint16
	proto    uint8
}

type span struct{ start, end int }

type datagram struct {
	key      fragKey
	buf      []byte // reasmHeadroom bytes, then payload
	hdr      [60]byte
	hdrLen   int    // 0 until the first fragment (offset 0) arrives
	spans    []span // received payload ranges, sorted and merged
	total    int    // payload length, -1 until the last fragment arrives
	cost     int
	deadline time.Time
	prev     *datagram // expiry list, oldest first
	next     *datagram
}

type reassembler struct {
	mu      sync.Mutex
	m       map[fragKey]*datagram
	oldest  *datagram
	newest  *datagram
	mem     int
	maxMem  int
	timeout time.Duration
	st      *stats.IPv4
}

func newReassembler(maxMem int, timeout time.Duration, st *stats.IPv4) *reassembler {
	return &reassembler{m: make(map[fragKey]*datagram), maxMem: maxMem, timeout: timeout, st: st}
}

// add takes one fragment (hdr validated, pkt cut to its total length). When
// it completes a datagram, add returns a buffer holding the whole packet at
// buf[off:] (a header with the fragment fields cleared, then the payload),
// with at least EthernetHeaderLen bytes free before off.
func (r *reassembler) add(now time.Time, hdr IPv4Header, pkt []byte) (buf []byte, off int) {
	stats.Inc(&r.st.FragmentsIn)
	payload := pkt[hdr.HeaderLen():]
	start := hdr.FragOffset()
	end := start + len(payload)
	last := !hdr.MF()
	// RFC 791: every fragment but the last carries a multiple of 8 bytes,
	// and no datagram exceeds 65535 bytes with its header.
	if (!last && len(payload)%8 != 0) || end+hdr.HeaderLen() > IPv4MaxLen || (len(payload) == 0 && !last) {
		stats.Inc(&r.st.FragDropMalformed)
		return nil, 0
	}
	k := fragKey{src: hdr.Src().As4(), dst: hdr.Dst().As4(), id: hdr.ID(), proto: hdr.Protocol()}

	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.m[k]
	if d == nil {
		d = &datagram{key: k, total: -1, deadline: now.Add(r.timeout), cost: reasmOverhead}
		if !r.reserve(d.cost) {
			stats.Inc(&r.st.FragDropMemory)
			return nil, 0
		}
		r.m[k] = d
		r.pushNewest(d)
	}
	if last {
		if (d.total >= 0 && d.total != end) || (len(d.spans) > 0 && d.spans[len(d.spans)-1].end > end) {
			r.drop(d, &r.st.FragDropMalformed)
			return nil, 0
		}
		d.total = end
	} else if d.total >= 0 && end > d.total {
		r.drop(d, &r.st.FragDropMalformed)
		return nil, 0
	}

	// Place the span: find the first span ending after our start.
	i, _ := slices.BinarySearchFunc(d.spans, start, func(s span, v int) int {
		if s.end <= v {
			return -1
		}
		return 1
	})
	if i < len(d.spans) && d.spans[i].start < end && len(payload) > 0 {
		if d.spans[i].start <= start && end <= d.spans[i].end {
			return nil, 0 // duplicate: already have every byte of it
		}
		r.drop(d, &r.st.FragDropOverlap)
		return nil, 0
	}
	if need := reasmHeadroom + end; need > len(d.buf) {
		size := max(need, min(2*len(d.buf), reasmHeadroom+IPv4MaxLen))
		if !r.reserve(size - len(d.buf)) {
			r.drop(d, &r.st.FragDropMemory)
			return nil, 0
		}
		nb := make([]byte, size)
		copy(nb, d.buf)
		d.cost += size - len(d.buf)
		d.buf = nb
	}
	copy(d.buf[reasmHeadroom+start:], payload)
	if start == 0 {
		d.hdrLen = copy(d.hdr[:], hdr)
	}
	d.spans = slices.Insert(d.spans, i, span{start, end})
	// Merge with neighbours so the list stays short.
	if i+1 < len(d.spans) && d.spans[i+1].start == end {
		d.spans[i].end = d.spans[i+1].end
		d.spans = slices.Delete(d.spans, i+1, i+2)
	}
	if i > 0 && d.spans[i-1].end == start {
		d.spans[i-1].end = d.spans[i].end
		d.spans = slices.Delete(d.spans, i, i+1)
	}

	if d.total < 0 || d.hdrLen == 0 || len(d.spans) != 1 || d.spans[0].start != 0 || d.spans[0].end != d.total {
		return nil, 0
	}
	// Complete: put the first fragment's header in front, fragment fields
	// cleared and the total length set (RFC 791 §3.2 reassembly step 3).
	r.remove(d)
	stats.Inc(&r.st.Reassembled)
	off = reasmHeadroom - d.hdrLen
	h := d.buf[off:reasmHeadroom]
	copy(h, d.hdr[:d.hdrLen])
	tot := d.hdrLen + d.total
	h[2], h[3] = byte(tot>>8), byte(tot)
	h[6], h[7] = 0, 0
	h[10], h[11] = 0, 0
	binary.BigEndian.PutUint16(h[10:12], checksum.Checksum(h, 0))
	return d.buf[:reasmHeadroom+d.total], off
}

// reserve accounts n more bytes, evicting the oldest datagrams when the cap
// would be passed (as Linux does past ipfrag_high_thresh). It reports false
// when even an empty table could not hold n.
func (r *reassembler) reserve(n int) bool {
	if n > r.maxMem {
		return false
	}
	for r.mem+n > r.maxMem && r.oldest != nil {
		r.drop(r.oldest, &r.st.FragDropMemory)
	}
	r.mem += n
	return true
}

func (r *reassembler) drop(d *datagram, counter *uint64) {
	stats.Inc(counter)
	r.remove(d)
}

func (r *reassembler) remove(d *datagram) {
	delete(r.m, d.key)
	r.mem -= d.cost
	if d.prev != nil {
		d.prev.next = d.next
	} else {
		r.oldest = d.next
	}
	if d.next != nil {
		d.next.prev = d.prev
	} else {
		r.newest = d.prev
	}
	d.prev, d.next = nil, nil
}

func (r *reassembler) pushNewest(d *datagram) {
	d.prev = r.newest
	if r.newest != nil {
		r.newest.next = d
	} else {
		r.oldest = d
	}
	r.newest = d
}

// expire drops datagrams whose time ran out (RFC 791: the reassembly timer;
// Linux's ipfrag_time is 30 s). Deadlines are arrival plus a constant, so
// the list is in deadline order.
func (r *reassembler) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.oldest != nil && !now.Before(r.oldest.deadline) {
		r.drop(r.oldest, &r.st.FragDropTimeout)
	}
}

// nextDeadline returns the earliest expiry, or the zero time.
func (r *reassembler) nextDeadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.oldest == nil {
		return time.Time{}
	}
	return r.oldest.deadline
}

// memory reports the bytes held, for tests.
func (r *reassembler) memory() (bytes, datagrams int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mem, len(r.m)
}
