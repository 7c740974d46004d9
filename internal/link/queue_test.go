package link

import (
	"errors"
	"fmt"
	"testing"
)

// queueEnds are the links with the Queue capability, each made with a
// queue of depth frames, as the writing end and the reading end.
var queueEnds = []struct {
	name string
	make func(depth int) (w Link, r Lender, dropped func() uint64)
}{
	{"Pipe", func(depth int) (Link, Lender, func() uint64) {
		a, b := NewPipe(PipeConfig{Depth: depth})
		return a, b, func() uint64 { return a.Stats().TxDrops }
	}},
	{"ChannelPair", func(depth int) (Link, Lender, func() uint64) {
		a, b := NewChannelPair(ChannelConfig{Ethernet: true, Depth: depth})
		return a, b, func() uint64 { return b.Stats().InjectDrops }
	}},
}

// isRoom reports whether room holds a signal, taking it.
func isRoom(room <-chan struct{}) bool {
	select {
	case <-room:
		return true
	default:
		return false
	}
}

// TestQueueRefusesWhenFull: after Backpressure a full queue refuses a
// frame (ErrFull) rather than drop it, and NotifyRoom's signal comes once
// the reader has taken the queue down to half, not before.
func TestQueueRefusesWhenFull(t *testing.T) {
	for _, q := range queueEnds {
		t.Run(q.name, func(t *testing.T) {
			w, r, dropped := q.make(4)
			defer w.Close()
			if !CapabilitiesOf(w).Queue {
				t.Fatal("no Queue capability")
			}
			room := w.(Queuer).Backpressure()
			for i := range 4 {
				if err := w.WriteFrame([]byte{byte(i)}); err != nil {
					t.Fatalf("frame %d into a queue of 4: %v", i, err)
				}
			}
			if err := w.WriteFrame([]byte{4}); !errors.Is(err, ErrFull) {
				t.Fatalf("fifth frame into a queue of 4: %v, want ErrFull", err)
			}
			if tx, _ := w.(Queuer).Queued(); tx != 4 {
				t.Errorf("Queued reports %d frames sent and not read, want 4", tx)
			}
			w.(Queuer).NotifyRoom()
			for i := range 2 {
				if isRoom(room) {
					t.Fatalf("room signalled with %d of 4 frames queued", 4-i)
				}
				f, err := r.NextFrame()
				if err != nil || f[0] != byte(i) {
					t.Fatalf("frame %d: % x, %v", i, f, err)
				}
				r.Release(f)
			}
			if !isRoom(room) {
				t.Fatal("no room signal with the queue half empty")
			}
			if err := w.WriteFrame([]byte{4}); err != nil {
				t.Fatalf("write after the room signal: %v", err)
			}
			w.(Queuer).NotifyRoom() // 3 of 4 queued: no room yet
			if isRoom(room) {
				t.Fatal("room signalled with 3 of 4 frames queued")
			}
			if d := dropped(); d != 0 {
				t.Errorf("%d frames dropped", d)
			}
		})
	}
}

// TestQueueNotifyRoomAtOnce: NotifyRoom signals at once when the queue
// has room already, so that a writer that put frames aside after a
// refusal cannot miss a drain that came first.
func TestQueueNotifyRoomAtOnce(t *testing.T) {
	for _, q := range queueEnds {
		t.Run(q.name, func(t *testing.T) {
			w, _, _ := q.make(4)
			defer w.Close()
			room := w.(Queuer).Backpressure()
			w.WriteFrame([]byte{1})
			w.(Queuer).NotifyRoom()
			if !isRoom(room) {
				t.Fatal("no room signal with 1 of 4 frames queued")
			}
		})
	}
}

// TestPipeHoldsSuperSegmentWhole: after Backpressure the pipe takes a
// super-segment whole or refuses it: whole when all its segments fit, or
// when the queue is at most half full (past its depth, so that a writer
// told of room always gets its super-segment in), and never in part.
func TestPipeHoldsSuperSegmentWhole(t *testing.T) {
	const depth, segs, gso = 8, 6, 100
	frame, csumStart, hdrLen := superSegment(false, EthernetHeaderLen, 0x10, make([]byte, segs*gso))
	for _, tt := range []struct {
		queued int
		want   error
	}{{0, nil}, {2, nil}, {4, nil}, {5, ErrFull}, {8, ErrFull}} {
		t.Run(fmt.Sprintf("queued%d", tt.queued), func(t *testing.T) {
			a, _ := NewPipe(PipeConfig{Depth: depth})
			defer a.Close()
			a.Backpressure()
			for range tt.queued {
				a.WriteFrame([]byte{0})
			}
			err := a.WriteGSO(append([]byte(nil), frame...), gso, csumStart, hdrLen)
			if !errors.Is(err, tt.want) {
				t.Fatalf("WriteGSO of %d segments with %d of %d queued: %v, want %v", segs, tt.queued, depth, err, tt.want)
			}
			want := tt.queued
			if err == nil {
				want += segs
			}
			if tx, _ := a.Queued(); tx != want {
				t.Errorf("%d frames queued, want %d", tx, want)
			}
			if st := a.Stats(); st.TxDrops != 0 {
				t.Errorf("%d frames dropped", st.TxDrops)
			}
		})
	}
}

// TestPipeDropsWithoutBackpressure: a pipe whose writer never asked for
// back-pressure drops as it always did; Queue changes nothing until then.
func TestPipeDropsWithoutBackpressure(t *testing.T) {
	a, _ := NewPipe(PipeConfig{Depth: 1})
	defer a.Close()
	a.WriteFrame([]byte{1})
	if err := a.WriteFrame([]byte{2}); err != nil || a.Stats().TxDrops != 1 {
		t.Fatalf("second frame into a queue of 1: %v, %d drops; want nil and 1", err, a.Stats().TxDrops)
	}
}

// TestWrappersPassOnQueue: Pcap and Impair report the Queue capability of
// the link they wrap and forward its methods.
func TestWrappersPassOnQueue(t *testing.T) {
	a, _ := NewPipe(PipeConfig{Depth: 1})
	p, err := NewPcap(a, discard{})
	if err != nil {
		t.Fatal(err)
	}
	im := NewImpair(p, ImpairConfig{})
	defer im.Close()
	for _, l := range []Link{p, im} {
		if !CapabilitiesOf(l).Queue {
			t.Fatalf("%T does not report Queue", l)
		}
	}
	room := im.Backpressure()
	if room == nil {
		t.Fatal("Impair(Pcap(Pipe)).Backpressure returned no channel")
	}
	im.WriteFrame([]byte{1})
	if err := im.WriteFrame([]byte{2}); !errors.Is(err, ErrFull) {
		t.Fatalf("second frame into a queue of 1 through the wrappers: %v, want ErrFull", err)
	}
	if tx, _ := im.Queued(); tx != 1 {
		t.Errorf("Queued through the wrappers: %d, want 1", tx)
	}
	lossy := NewImpair(p, ImpairConfig{Egress: Impairment{Drop: 0.5}})
	defer lossy.Close()
	if tx, rx := lossy.Queued(); tx != 0 || rx != 0 {
		t.Errorf("Queued through an Impair that drops: %d, %d; want nothing, so probes do not wait", tx, rx)
	}
	plain, err := NewPcap(struct{ Link }{a}, discard{}) // a's Link methods only
	if err != nil {
		t.Fatal(err)
	}
	plainIm := NewImpair(struct{ Link }{a}, ImpairConfig{})
	defer plainIm.Close()
	if CapabilitiesOf(plain).Queue || CapabilitiesOf(plainIm).Queue {
		t.Error("a wrapper over a link without Queue reports it")
	}
}
