package stack

import (
	"net"
	"net/netip"
	"sync"
)

// A packetQueue is what a datagram socket (UDP, ICMP) holds of what it
// received: a bounded FIFO of datagrams, the soft error an ICMP message
// left for a connected socket, and whether it is closed. Its readiness
// channel is signalled when any of them changes.
type packetQueue struct {
	ready chan struct{} // a datagram or an error arrived, or the socket closed

	mu      sync.Mutex
	queue   []datagram // FIFO; head at queue[0]
	queued  int        // payload bytes in queue
	rcvBuf  int        // bound on queued
	softErr error      // reported once
	closed  bool
}

type datagram struct {
	from netip.AddrPort
	data []byte
}

func newPacketQueue(rcvBuf int) packetQueue {
	return packetQueue{ready: make(chan struct{}, 1), rcvBuf: rcvBuf}
}

// deliver queues a copy of payload from from; false if it was dropped (the
// socket is closed or its buffer full).
func (q *packetQueue) deliver(from netip.AddrPort, payload []byte) bool {
	q.mu.Lock()
	if q.closed || q.queued+len(payload) > q.rcvBuf {
		q.mu.Unlock()
		return false
	}
	q.queue = append(q.queue, datagram{from: from, data: append([]byte(nil), payload...)})
	q.queued += len(payload)
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// setSoftErr leaves err for the next read or write.
func (q *packetQueue) setSoftErr(err error) {
	q.mu.Lock()
	q.softErr = err
	q.mu.Unlock()
	signal(q.ready)
}

// Closed reports whether the socket was closed.
func (q *packetQueue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Read takes the next datagram into b without blocking: its size (a longer
// datagram is truncated, as recvfrom(2) without MSG_TRUNC does) and source.
// With none queued it returns a channel to wait on, signalled when one
// arrives, an error arrives or the socket closes. After Close it returns
// net.ErrClosed; a soft error is returned once.
func (q *packetQueue) Read(b []byte) (int, netip.AddrPort, error, <-chan struct{}) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return 0, netip.AddrPort{}, net.ErrClosed, nil
	}
	if err := q.softErr; err != nil {
		q.softErr = nil
		q.mu.Unlock()
		return 0, netip.AddrPort{}, err, nil
	}
	if len(q.queue) == 0 {
		q.mu.Unlock()
		return 0, netip.AddrPort{}, nil, q.ready
	}
	d := q.queue[0]
	q.queue[0] = datagram{}
	q.queue = q.queue[1:]
	q.queued -= len(d.data)
	more := len(q.queue) > 0
	q.mu.Unlock()
	if more {
		signal(q.ready) // let another reader in
	}
	return copy(b, d.data), d.from, nil, nil
}

// writeState returns whether the socket is closed, and, if connected, the
// soft error it holds, which the write takes.
func (q *packetQueue) writeState(connected bool) (closed bool, softErr error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if connected && q.softErr != nil {
		softErr, q.softErr = q.softErr, nil
	}
	return q.closed, softErr
}

// close marks the queue closed, drops what it holds and wakes its readers;
// false if it was closed already.
func (q *packetQueue) close() bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.closed = true
	q.queue, q.queued = nil, 0
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// SetReadBuffer sets how many bytes of payload the socket queues.
func (q *packetQueue) SetReadBuffer(n int) {
	q.mu.Lock()
	q.rcvBuf = n
	q.mu.Unlock()
}
