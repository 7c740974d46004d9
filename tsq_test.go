package netstack

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// queueLinks are the in-memory links that report their queue (the Queue
// capability), each made with depth frames per direction.
var queueLinks = []struct {
	name string
	make func(depth int) (Link, Link, func() (drops uint64))
}{
	{"Pipe", func(depth int) (Link, Link, func() uint64) {
		a, b := NewPipe(PipeConfig{Depth: depth})
		return a, b, func() uint64 { return a.Stats().TxDrops + b.Stats().TxDrops }
	}},
	{"PacketLinkPair", func(depth int) (Link, Link, func() uint64) {
		a, b := NewPacketLinkPair(PacketLinkConfig{Ethernet: true, Depth: depth})
		return a, b, func() uint64 { return a.Stats().InjectDrops + b.Stats().InjectDrops }
	}},
}

// overQueueLinks runs f as a subtest over each of queueLinks, queueing
// depth frames each way (0: the default), joining two stacks.
func overQueueLinks(t *testing.T, depth int, f func(t *testing.T, a, b *Stack, drops func() uint64)) {
	for _, l := range queueLinks {
		t.Run(l.name, func(t *testing.T) {
			checkGoroutines(t)
			la, lb, drops := l.make(depth)
			a, b := newLinkPair(t, Config{}, la, lb)
			f(t, a, b, drops)
		})
	}
}

// pattern fills b with the bytes of a stream from offset off on, so that
// a receiver checks what it reads without holding all that was sent.
func pattern(off int64, b []byte) {
	for i := range b {
		x := off + int64(i)
		b[i] = byte(x ^ x>>8 ^ x>>16)
	}
}

// sendPattern writes n bytes of pattern to c, then closes its write side.
func sendPattern(c net.Conn, n int64) error {
	buf := make([]byte, 256<<10)
	for off := int64(0); off < n; {
		k := min(int64(len(buf)), n-off)
		pattern(off, buf[:k])
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		off += k
	}
	return c.(*TCPConn).CloseWrite()
}

// checkPattern reads c to its end and checks that it carried n bytes of
// pattern.
func checkPattern(c net.Conn, n int64) error {
	buf, want := make([]byte, 256<<10), make([]byte, 256<<10)
	var off int64
	for {
		k, err := c.Read(buf)
		pattern(off, want[:k])
		if !bytes.Equal(buf[:k], want[:k]) {
			return fmt.Errorf("bytes %d to %d differ from those sent", off, off+int64(k))
		}
		off += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", off, err)
		}
	}
	if off != n {
		return fmt.Errorf("received %d bytes, want %d", off, n)
	}
	return nil
}

// TestNoSelfInflictedLoss: over a link that reports its queue, a bulk
// transfer fills the queue without losing a frame to it, so TCP never
// retransmits: the sender holds back while the queue is full and resumes
// when it drains, as Linux's TCP does on the loopback.
func TestNoSelfInflictedLoss(t *testing.T) {
	size := int64(256 << 20)
	if raceEnabled {
		size = 32 << 20
	}
	overQueueLinks(t, 0, func(t *testing.T, a, b *Stack, drops func() uint64) {
		c, sc := pipePairConn(t, a, b, 80)
		sent := make(chan error, 1)
		go func() { sent <- sendPattern(c, size) }()
		sc.SetReadDeadline(time.Now().Add(5 * time.Minute))
		if err := checkPattern(sc, size); err != nil {
			t.Fatal(err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		sa, sb := a.Stats(), b.Stats()
		t.Logf("%d MiB: segments out %d, link write refusals %d, retransmits %d and %d", size>>20,
			sa.TCP.SegmentsOut, sa.Link.WriteErrors, sa.TCP.Retransmits, sb.TCP.Retransmits)
		if sa.TCP.Retransmits != 0 || sb.TCP.Retransmits != 0 {
			t.Errorf("retransmits: sender %d, receiver %d; want none", sa.TCP.Retransmits, sb.TCP.Retransmits)
		}
		if d := drops(); d != 0 {
			t.Errorf("the link dropped %d frames", d)
		}
	})
}

// TestHoldNoDeadlock: two stacks that send to each other at once, at full
// speed, over small queues both finish. Each stack's reader goroutine
// sends ACKs into the other's full queue; it must never wait for room
// there, or the two readers would wait on each other.
func TestHoldNoDeadlock(t *testing.T) {
	size := int64(16 << 20)
	if raceEnabled {
		size = 4 << 20
	}
	overQueueLinks(t, 16, func(t *testing.T, a, b *Stack, drops func() uint64) {
		const conns = 3
		errs := make(chan error, 4*conns)
		for i := range conns {
			c, sc := pipePairConn(t, a, b, uint16(80+i))
			for _, e := range []net.Conn{c, sc} {
				e.SetDeadline(time.Now().Add(5 * time.Minute))
				go func() { errs <- sendPattern(e, size) }()
				go func() { errs <- checkPattern(e, size) }()
			}
		}
		for range 4 * conns {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("link write refusals %d and %d, drops %d, retransmits %d and %d", a.Stats().Link.WriteErrors,
			b.Stats().Link.WriteErrors, drops(), a.Stats().TCP.Retransmits, b.Stats().TCP.Retransmits)
	})
}

// TestQueueCapabilityPassedOn: PcapLink reports and forwards the Queue
// capability of the link it wraps, so a stack on a captured pipe still
// holds back instead of dropping.
func TestQueueCapabilityPassedOn(t *testing.T) {
	checkGoroutines(t)
	la, lb := Pipe()
	pa, err := PcapLink(la, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !pa.(CapableLink).Capabilities().Queue {
		t.Fatal("PcapLink(Pipe) does not report Queue")
	}
	a, b := newLinkPair(t, Config{}, pa, lb)
	c, sc := pipePairConn(t, a, b, 80)
	size := int64(8 << 20)
	go sendPattern(c, size)
	sc.SetReadDeadline(time.Now().Add(time.Minute))
	if err := checkPattern(sc, size); err != nil {
		t.Fatal(err)
	}
	if d := la.Stats().TxDrops; d != 0 || a.Stats().TCP.Retransmits != 0 {
		t.Errorf("%d frames dropped, %d retransmitted", d, a.Stats().TCP.Retransmits)
	}
}

// noQueue declares Queue without the methods it needs.
type noQueue struct{ Link }

func (noQueue) Capabilities() Capabilities { return Capabilities{Queue: true} }

// TestQueueCapabilityNeedsMethods: New refuses a link that declares Queue
// without Backpressure, NotifyRoom and Queued.
func TestQueueCapabilityNeedsMethods(t *testing.T) {
	checkGoroutines(t)
	la, _ := Pipe()
	defer la.Close()
	if _, err := New(Config{Link: noQueue{la}, Addr: netip.MustParsePrefix("198.18.0.1/24")}); err == nil {
		t.Fatal("New accepted a link that reports Queue without its methods")
	}
}
