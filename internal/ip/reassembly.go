package ip

import (
	"encoding/binary"
	"net/netip"
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

// fragKey names a datagram: RFC 791 §3.2 (source, destination, protocol,
// identification) for IPv4, RFC 8200 §4.5 (source, destination,
// identification) for IPv6.
type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

// fragCounters are the counters of one family's reassembly.
type fragCounters struct {
	in, done, overlap, timeout, memory, malformed *uint64
}

type span struct{ start, end int }

type datagram struct {
	key      fragKey
	ctr      *fragCounters
	nh       uint8  // IPv6: the next header of the first fragment
	v6first  bool   // IPv6: the first fragment arrived
	first    []byte // IPv6: the start of the first fragment, quoted by time exceeded
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
	v4, v6  fragCounters
}

// newReassembler returns the reassembler of both families: one memory cap
// and one timeout, as Linux's ipfrag_high_thresh and ipfrag_time have
// IPv6 twins of the same defaults.
func newReassembler(maxMem int, timeout time.Duration, st4 *stats.IPv4, st6 *stats.IPv6) *reassembler {
	return &reassembler{
		m: make(map[fragKey]*datagram), maxMem: maxMem, timeout: timeout,
		v4: fragCounters{&st4.FragmentsIn, &st4.Reassembled, &st4.FragDropOverlap, &st4.FragDropTimeout, &st4.FragDropMemory, &st4.FragDropMalformed},
		v6: fragCounters{&st6.FragmentsIn, &st6.Reassembled, &st6.FragDropOverlap, &st6.FragDropTimeout, &st6.FragDropMemory, &st6.FragDropMalformed},
	}
}

// add takes one fragment (hdr validated, pkt cut to its total length). When
// it completes a datagram, add returns a buffer holding the whole packet at
// buf[off:] (a header with the fragment fields cleared, then the payload),
// with at least EthernetHeaderLen bytes free before off.
func (r *reassembler) add(now time.Time, hdr IPv4Header, pkt []byte) (buf []byte, off int) {
	stats.Inc(r.v4.in)
	payload := pkt[hdr.HeaderLen():]
	start := hdr.FragOffset()
	end := start + len(payload)
	last := !hdr.MF()
	// RFC 791: every fragment but the last carries a multiple of 8 bytes,
	// and no datagram exceeds 65535 bytes with its header.
	if (!last && len(payload)%8 != 0) || end+hdr.HeaderLen() > IPv4MaxLen || (len(payload) == 0 && !last) {
		stats.Inc(r.v4.malformed)
		return nil, 0
	}
	k := fragKey{src: hdr.Src(), dst: hdr.Dst(), id: uint32(hdr.ID()), proto: hdr.Protocol()}
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.insert(now, k, &r.v4, start, payload, last)
	if d == nil {
		return nil, 0
	}
	if start == 0 {
		d.hdrLen = copy(d.hdr[:], hdr)
	}
	if !d.complete(d.hdrLen != 0) {
		return nil, 0
	}
	// Complete: put the first fragment's header in front, fragment fields
	// cleared and the total length set (RFC 791 §3.2 reassembly step 3).
	r.remove(d)
	stats.Inc(r.v4.done)
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

// add6 takes one IPv6 fragment (RFC 8200 §4.5): the fragmentable part
// payload at byte offset start, its fragment header's next header nh, last
// when M is clear. When it completes a datagram, add6 returns a buffer
// holding at buf[off:] a fixed header (src, dst, the first fragment's next
// header, hop limit 0) and the reassembled payload, with at least
// EthernetHeaderLen bytes free before off. The caller has checked the
// lengths RFC 8200 answers with parameter problem.
// orig is the whole fragment, kept (its first 1232 bytes) from the first
// one for the time exceeded message a timeout sends (RFC 8200 §4.5).
func (r *reassembler) add6(now time.Time, src, dst netip.Addr, id uint32, nh uint8, start int, payload []byte, last bool, orig []byte) (buf []byte, off int) {
	stats.Inc(r.v6.in)
	if len(payload) == 0 && !last {
		stats.Inc(r.v6.malformed)
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.insert(now, fragKey{src: src, dst: dst, id: id}, &r.v6, start, payload, last)
	if d == nil {
		return nil, 0
	}
	if start == 0 && !d.v6first {
		d.v6first, d.nh = true, nh
		if n := min(len(orig), icmpv6MaxErrorPacket-IPv6HeaderLen-8); r.reserve(n) {
			d.first = append([]byte(nil), orig[:n]...)
			d.cost += n
		}
	}
	if !d.complete(d.v6first) {
		return nil, 0
	}
	r.remove(d)
	stats.Inc(r.v6.done)
	off = reasmHeadroom - IPv6HeaderLen
	encodeIPv6(d.buf[off:], d.total, 0, d.nh, 0, src, dst)
	return d.buf[:reasmHeadroom+d.total], off
}

// complete reports whether d holds every byte and its first fragment.
func (d *datagram) complete(first bool) bool {
	return d.total >= 0 && first && len(d.spans) == 1 && d.spans[0].start == 0 && d.spans[0].end == d.total
}

// insert places payload at start in the datagram k, made if new, and
// returns it, or nil when the fragment was dropped (a duplicate, or the
// datagram dropped for an overlap, a conflict or memory). r.mu is held.
func (r *reassembler) insert(now time.Time, k fragKey, ctr *fragCounters, start int, payload []byte, last bool) *datagram {
	end := start + len(payload)
	d := r.m[k]
	if d == nil {
		d = &datagram{key: k, ctr: ctr, total: -1, deadline: now.Add(r.timeout), cost: reasmOverhead}
		if !r.reserve(d.cost) {
			stats.Inc(ctr.memory)
			return nil
		}
		r.m[k] = d
		r.pushNewest(d)
	}
	if last {
		if (d.total >= 0 && d.total != end) || (len(d.spans) > 0 && d.spans[len(d.spans)-1].end > end) {
			r.drop(d, ctr.malformed)
			return nil
		}
		d.total = end
	} else if d.total >= 0 && end > d.total {
		r.drop(d, ctr.malformed)
		return nil
	}

	// Place the span: find the first span ending after our start.
	i, _ := slices.BinarySearchFunc(d.spans, start, func(s span, v int) int {
		if s.end <= v {
			return -1
		}
		return 1
	})
	if i < len(d.spans) && d.spans[i].start < end && len(payload) > 0 {
		if d.spans[i].start <= start && end <= d.spans[i].end && !k.dst.Is6() {
			return nil // duplicate: already have every byte of it
		}
		// RFC 5722 §4: for IPv6 any overlap, an exact duplicate
		// included, drops the whole datagram.
		r.drop(d, ctr.overlap)
		return nil
	}
	if need := reasmHeadroom + end; need > len(d.buf) {
		size := max(need, min(2*len(d.buf), reasmHeadroom+IPv4MaxLen))
		if !r.reserve(size - len(d.buf)) {
			r.drop(d, ctr.memory)
			return nil
		}
		nb := make([]byte, size)
		copy(nb, d.buf)
		d.cost += size - len(d.buf)
		d.buf = nb
	}
	copy(d.buf[reasmHeadroom+start:], payload)
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
	return d
}

// reserve accounts n more bytes, evicting the oldest datagrams when the cap
// would be passed (as Linux does past ipfrag_high_thresh). It reports false
// when even an empty table could not hold n.
func (r *reassembler) reserve(n int) bool {
	if n > r.maxMem {
		return false
	}
	for r.mem+n > r.maxMem && r.oldest != nil {
		r.drop(r.oldest, r.oldest.ctr.memory)
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
// the list is in deadline order. It returns the first fragments of the
// IPv6 datagrams that timed out, to be answered with time exceeded.
func (r *reassembler) expire(now time.Time) (firsts [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.oldest != nil && !now.Before(r.oldest.deadline) {
		if r.oldest.first != nil {
			firsts = append(firsts, r.oldest.first)
		}
		r.drop(r.oldest, r.oldest.ctr.timeout)
	}
	return firsts
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
