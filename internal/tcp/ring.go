package tcp

import "sync"

// ring is a fixed-size byte ring: n bytes starting at head are queued. The
// receive side also writes out-of-order data past the tail (writeAt) and
// later commits it.
type ring struct {
	buf  []byte
	head int32 // int32: a ring is at most 1 GiB (the buffers' limit), and a Conn fits its allocation class
	n    int32
}

// len returns the bytes queued.
func (r *ring) len() int { return int(r.n) }

func (r *ring) free() int { return len(r.buf) - int(r.n) }

// pos returns the index of the byte off bytes after head.
func (r *ring) pos(off int) int {
	p := int(r.head) + off
	if p >= len(r.buf) {
		p -= len(r.buf)
	}
	return p
}

// write appends as much of p as fits and returns how much did.
func (r *ring) write(p []byte) int {
	n := r.writeAt(int(r.n), p)
	r.n += int32(n)
	return n
}

// writeAt copies p to off bytes past head without queueing it; it copies at
// most up to the end of the free space and returns how much it copied.
func (r *ring) writeAt(off int, p []byte) int {
	if off >= len(r.buf) {
		return 0
	}
	p = p[:min(len(p), len(r.buf)-off)]
	i := r.pos(off)
	k := copy(r.buf[i:], p)
	copy(r.buf, p[k:])
	return len(p)
}

// read moves up to len(p) queued bytes into p.
func (r *ring) read(p []byte) int {
	n := min(len(p), int(r.n))
	a, b := r.peek(0, n)
	copy(p, a)
	copy(p[len(a):], b)
	r.discard(n)
	return n
}

// peek returns the n bytes starting off bytes past head as one or two slices.
func (r *ring) peek(off, n int) ([]byte, []byte) {
	i := r.pos(off)
	if i+n <= len(r.buf) {
		return r.buf[i : i+n], nil
	}
	return r.buf[i:], r.buf[:n-(len(r.buf)-i)]
}

// discard drops n bytes from the head.
func (r *ring) discard(n int) {
	// head keeps moving even when the ring empties: out-of-order data
	// may already sit past the tail at head+n+offset.
	r.n -= int32(n)
	r.head = int32(r.pos(n))
}

// rewind moves an empty ring's head back to the start of its buffer, so
// that a ring drained as fast as it fills keeps using its first bytes,
// which stay in the CPU cache, instead of walking through all of its
// buffer. The receive side must not call it while out-of-order data sits
// past the tail.
func (r *ring) rewind() {
	if r.n == 0 {
		r.head = 0
	}
}

// minRing is the smallest ring allocated; rings start small and double as
// data needs, and stay fixed per connection in steady state.
const minRing = 4 << 10

// reserve makes room for need bytes counted from head, growing the ring
// (to at most limit, but never below need) and keeping the first keep
// bytes. It at least doubles the ring each time, so that a buffer
// autotuning raises a little at a time does not make the ring reallocate
// and copy itself each time: callers pass the largest the buffer may
// become as limit, not its size now. The growth is charged to b; when b refuses it, a ring smaller
// than minRing grows to minRing, which b always grants, and a larger one
// stays as it is. It reports whether the ring holds need bytes.
func (r *ring) reserve(b *Budget, need, keep, limit int) bool {
	if need <= len(r.buf) {
		return true
	}
	size := max(len(r.buf)*2, minRing)
	for size < need {
		size *= 2
	}
	size = max(min(size, limit), need)
	if !b.grow(len(r.buf), size) {
		if len(r.buf) >= minRing {
			return false
		}
		size = minRing
		b.grow(len(r.buf), size)
	}
	r.resize(size, keep)
	return size >= need
}

// resize moves the first keep bytes into a new buffer of size bytes (nil
// for 0).
func (r *ring) resize(size, keep int) {
	var b []byte
	switch {
	case size == minRing:
		b = smallRings.Get().(*[minRing]byte)[:]
	case size > 0:
		b = make([]byte, size)
	}
	a, c := r.peek(0, min(keep, len(r.buf), size))
	copy(b[copy(b, a):], c)
	old := r.buf
	r.buf, r.head = b, 0
	putSmall(old)
}

// release drops the ring's memory, queued bytes included, and credits it
// to b.
func (r *ring) release(b *Budget) {
	b.free(len(r.buf))
	putSmall(r.buf)
	*r = ring{}
}

// releaseIfSmall releases an empty ring of minRing bytes: a connection
// that moves a little data at a time (a request, a response) gives its
// ring back each time it drains, so that an idle one holds none, and takes
// a buffer from smallRings when data comes again. A ring that grew is the
// ring of a bulk transfer, kept until the connection closes, so that a
// stream that drains its ring at every read does not reallocate it.
func (r *ring) releaseIfSmall(b *Budget) {
	if r.n == 0 && len(r.buf) == minRing {
		r.release(b)
	}
}

// smallRings holds the buffers of rings of minRing bytes that were
// released. Their contents are never read before they are written: a ring
// reads only the bytes queued in it.
var smallRings = sync.Pool{New: func() any { return new([minRing]byte) }}

func putSmall(b []byte) {
	if len(b) == minRing {
		smallRings.Put((*[minRing]byte)(b))
	}
}
