package stats

import (
	"sync"
	"testing"
)

func TestSnapshotCopiesEveryGroup(t *testing.T) {
	var s Stats
	Inc(&s.Link.FramesIn)
	Add(&s.IPv4.DropBadChecksum, 3)
	Inc(&s.UDP.DropQueueFull)
	got := s.Snapshot()
	if got.Link.FramesIn != 1 || got.IPv4.DropBadChecksum != 3 || got.UDP.DropQueueFull != 1 {
		t.Fatalf("snapshot lost counts: %+v", got)
	}
	if got.TCP.SegmentsIn != 0 {
		t.Fatalf("untouched counter is %d", got.TCP.SegmentsIn)
	}
}

func TestConcurrentIncrements(t *testing.T) {
	var s Stats
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				Inc(&s.ICMP.Received)
				_ = s.Snapshot()
			}
		}()
	}
	wg.Wait()
	if n := s.Snapshot().ICMP.Received; n != 4000 {
		t.Fatalf("got %d, want 4000", n)
	}
}
