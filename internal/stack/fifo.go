package stack

// fifo is a queue in a ring that doubles when full, so that a steady flow
// through it (connections entering TIME-WAIT and leaving it) allocates
// nothing once it has grown to the flow's depth. The zero value is empty.
type fifo[T any] struct {
	buf  []T
	head int // index of the front in buf
	n    int // items queued
}

func (q *fifo[T]) len() int { return q.n }

// front returns the oldest item; the queue is not empty.
func (q *fifo[T]) front() T { return q.buf[q.head] }

// pop drops the oldest item; the queue is not empty.
func (q *fifo[T]) pop() {
	var zero T
	q.buf[q.head] = zero // no reference kept
	q.head = (q.head + 1) % len(q.buf)
	q.n--
}

// push adds v behind the newest item.
func (q *fifo[T]) push(v T) {
	if q.n == len(q.buf) {
		buf := make([]T, max(16, 2*len(q.buf)))
		k := copy(buf, q.buf[q.head:])
		copy(buf[k:], q.buf[:q.head])
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
}
