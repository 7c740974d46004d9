package link

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// arrival is a frame as it came out of an Impair, with the virtual time
// since the first frame went in.
type arrival struct {
	at    time.Duration
	frame []byte
}

// impairRun pushes frames, one every gap, through one direction of an
// Impair over a pipe, inside a synctest bubble so that delays cost no real
// time, and returns what came out and the direction's counters.
func impairRun(t *testing.T, ingress bool, imp Impairment, seed uint64, frames [][]byte, gap time.Duration) (got []arrival, st ImpairStats) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		a, b := Pipe(1500)
		cfg := ImpairConfig{Seed: seed}
		var src, dst Link // frames go in at src and come out of dst
		var im *Impair
		if ingress {
			cfg.Ingress = imp
			im = NewImpair(a, cfg)
			src, dst = b, im
		} else {
			cfg.Egress = imp
			im = NewImpair(a, cfg)
			src, dst = im, b
		}
		start := time.Now()
		var mu sync.Mutex
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			buf := make([]byte, 2000)
			for {
				n, err := dst.ReadFrame(buf)
				if err != nil {
					return
				}
				mu.Lock()
				got = append(got, arrival{time.Since(start), slices.Clone(buf[:n])})
				mu.Unlock()
			}
		}()
		for i, f := range frames {
			if i > 0 && gap > 0 {
				time.Sleep(gap) // virtual time
			}
			if err := src.WriteFrame(f); err != nil {
				t.Errorf("WriteFrame %d: %v", i, err)
			}
		}
		// Long enough for every delay and hold to expire.
		time.Sleep(imp.Delay + imp.Jitter + imp.ReorderHold + DefaultReorderHold + time.Second)
		synctest.Wait()
		eg, in := im.Stats()
		st = eg
		if ingress {
			st = in
		}
		im.Close()
		<-readerDone
	})
	return got, st
}

func numbered(n int) [][]byte {
	fs := make([][]byte, n)
	for i := range fs {
		fs[i] = []byte(fmt.Sprintf("frame %03d", i))
	}
	return fs
}

func frameList(got []arrival) string {
	var s []string
	for _, a := range got {
		s = append(s, strings.TrimPrefix(string(a.frame), "frame "))
	}
	return strings.Join(s, " ")
}

func TestImpairDeterministicCases(t *testing.T) {
	tests := []struct {
		name string
		imp  Impairment
		n    int
		want string        // frames in arrival order
		at   time.Duration // arrival time of every frame, if nonzero
		st   ImpairStats
	}{
		{name: "none", n: 3, want: "000 001 002", st: ImpairStats{Frames: 3}},
		{name: "drop all", imp: Impairment{Drop: 1}, n: 3, want: "", st: ImpairStats{Frames: 3, Dropped: 3}},
		{name: "duplicate all", imp: Impairment{Duplicate: 1}, n: 2, want: "000 000 001 001", st: ImpairStats{Frames: 2, Duplicated: 2}},
		// Every frame is held until the next one comes; the last one, with
		// no successor, leaves after the hold time.
		{name: "reorder all", imp: Impairment{Reorder: 1}, n: 5, want: "001 000 003 002 004", st: ImpairStats{Frames: 5, Reordered: 3}},
		{name: "delay", imp: Impairment{Delay: 50 * time.Millisecond}, n: 3, want: "000 001 002", at: 50 * time.Millisecond, st: ImpairStats{Frames: 3, Delayed: 3}},
	}
	for _, dir := range []string{"egress", "ingress"} {
		for _, tt := range tests {
			t.Run(dir+"/"+tt.name, func(t *testing.T) {
				got, st := impairRun(t, dir == "ingress", tt.imp, 1, numbered(tt.n), 0)
				if s := frameList(got); s != tt.want {
					t.Errorf("frames arrived as %q, want %q", s, tt.want)
				}
				if tt.at != 0 {
					for _, a := range got {
						if a.at != tt.at {
							t.Errorf("frame %q arrived after %v, want %v", a.frame, a.at, tt.at)
						}
					}
				}
				if st != tt.st {
					t.Errorf("stats = %+v, want %+v", st, tt.st)
				}
			})
		}
	}
}

// TestImpairReorderHold checks the tail: a lone held frame leaves after
// ReorderHold, not never.
func TestImpairReorderHold(t *testing.T) {
	got, _ := impairRun(t, false, Impairment{Reorder: 1, ReorderHold: 30 * time.Millisecond}, 1, numbered(1), 0)
	if len(got) != 1 || got[0].at != 30*time.Millisecond {
		t.Fatalf("got %v, want frame 000 after 30ms", got)
	}
}

func TestImpairCorrupt(t *testing.T) {
	frames := numbered(50)
	got, st := impairRun(t, false, Impairment{Corrupt: 1}, 7, frames, 0)
	if len(got) != len(frames) || st.Corrupted != uint64(len(frames)) {
		t.Fatalf("%d frames arrived, %d corrupted; want %d, all", len(got), st.Corrupted, len(frames))
	}
	for i, a := range got {
		diff := 0
		for j := range a.frame {
			diff += bits.OnesCount8(a.frame[j] ^ frames[i][j])
		}
		if diff != 1 {
			t.Errorf("frame %d differs in %d bits, want exactly 1", i, diff)
		}
	}
}

func TestImpairJitter(t *testing.T) {
	imp := Impairment{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}
	got, st := impairRun(t, false, imp, 3, numbered(100), 0)
	if len(got) != 100 || st.Delayed != 100 {
		t.Fatalf("%d arrived, %d delayed; want 100", len(got), st.Delayed)
	}
	distinct := map[time.Duration]bool{}
	for _, a := range got {
		if a.at < imp.Delay || a.at > imp.Delay+imp.Jitter {
			t.Errorf("frame %q arrived after %v, outside [%v, %v]", a.frame, a.at, imp.Delay, imp.Delay+imp.Jitter)
		}
		distinct[a.at] = true
	}
	if len(distinct) < 50 {
		t.Errorf("only %d distinct delays among 100 frames: jitter not applied", len(distinct))
	}
}

// TestImpairRates checks that probabilities are honoured roughly, and that
// a seed replays exactly while another seed does not.
func TestImpairRates(t *testing.T) {
	imp := Impairment{Drop: 0.1, Duplicate: 0.05, Reorder: 0.05, Corrupt: 0.02, Jitter: time.Millisecond}
	frames := numbered(2000)
	for _, dir := range []string{"egress", "ingress"} {
		t.Run(dir, func(t *testing.T) {
			got1, st1 := impairRun(t, dir == "ingress", imp, 42, frames, 100*time.Microsecond)
			got2, st2 := impairRun(t, dir == "ingress", imp, 42, frames, 100*time.Microsecond)
			got3, _ := impairRun(t, dir == "ingress", imp, 43, frames, 100*time.Microsecond)
			if st1 != st2 || !slices.EqualFunc(got1, got2, func(a, b arrival) bool { return a.at == b.at && bytes.Equal(a.frame, b.frame) }) {
				t.Errorf("seed 42 did not replay: %+v vs %+v", st1, st2)
			}
			if frameList(got1) == frameList(got3) {
				t.Error("seeds 42 and 43 gave the same run")
			}
			n := float64(len(frames))
			for _, c := range []struct {
				what string
				got  uint64
				p    float64
			}{{"dropped", st1.Dropped, imp.Drop}, {"duplicated", st1.Duplicated, imp.Duplicate * (1 - imp.Drop)},
				{"corrupted", st1.Corrupted, imp.Corrupt * (1 - imp.Drop)}} {
				if want := c.p * n; float64(c.got) < want/2 || float64(c.got) > want*1.5 {
					t.Errorf("%s %d of %v frames, want about %.0f", c.what, c.got, n, want)
				}
			}
			if want := st1.Frames - st1.Dropped + st1.Duplicated; uint64(len(got1)) != want {
				t.Errorf("%d frames arrived, want offered-dropped+duplicated = %d", len(got1), want)
			}
		})
	}
}

func TestImpairClose(t *testing.T) {
	a, b := Pipe(1500)
	im := NewImpair(a, ImpairConfig{Egress: Impairment{Delay: time.Hour}, Ingress: Impairment{Delay: time.Hour}})
	im.WriteFrame([]byte("pending egress"))
	b.WriteFrame([]byte("pending ingress"))
	readErr := make(chan error, 1)
	go func() {
		_, err := im.ReadFrame(make([]byte, 100))
		readErr <- err
	}()
	if err := im.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-readErr; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked ReadFrame after Close = %v, want net.ErrClosed", err)
	}
	if err := im.WriteFrame([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteFrame after Close = %v, want net.ErrClosed", err)
	}
	if err := im.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close = %v, want net.ErrClosed", err)
	}
	// Close waits for its goroutines, so none may be left, now, without waiting.
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, "link.(*Impair)") || strings.Contains(g, "link.(*scheduler)") {
			t.Errorf("goroutine left after Close:\n%s", g)
		}
	}
}

// TestImpairLinkClosedUnderneath: when the wrapped link closes (here, the
// peer closes the pipe), ReadFrame reports it.
func TestImpairLinkClosedUnderneath(t *testing.T) {
	a, b := Pipe(1500)
	im := NewImpair(a, ImpairConfig{})
	defer im.Close()
	b.WriteFrame([]byte("last"))
	buf := make([]byte, 10)
	if n, err := im.ReadFrame(buf); err != nil || string(buf[:n]) != "last" {
		t.Fatalf("ReadFrame = %q, %v", buf[:n], err)
	}
	b.Close()
	if _, err := im.ReadFrame(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrame after the link closed = %v, want net.ErrClosed", err)
	}
}

// TestImpairConcurrent runs both directions at once with every impairment
// on, for -race.
func TestImpairConcurrent(t *testing.T) {
	a, b := Pipe(1500)
	imp := Impairment{Drop: 0.1, Duplicate: 0.1, Reorder: 0.1, Corrupt: 0.1, Jitter: 100 * time.Microsecond}
	im := NewImpair(a, ImpairConfig{Seed: 9, Egress: imp, Ingress: imp})
	var wg, writers sync.WaitGroup
	for _, w := range []Link{im, im, b, b} {
		writers.Go(func() {
			for i := range 300 {
				w.WriteFrame([]byte{byte(i)})
			}
		})
	}
	for _, r := range []Link{im, b} {
		wg.Go(func() {
			buf := make([]byte, 10)
			for {
				if _, err := r.ReadFrame(buf); err != nil {
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			im.Stats()
		}
	})
	writers.Wait()
	im.Close()
	wg.Wait()
	// Ingress frames still queued in the pipe at Close are discarded, so
	// only egress has an exact count.
	if eg, _ := im.Stats(); eg.Frames != 600 {
		t.Errorf("egress saw %d frames, want 600: %+v", eg.Frames, eg)
	}
}

// sized returns n frames of size bytes, each starting with its number.
func sized(n, size int) [][]byte {
	fs := numbered(n)
	for i := range fs {
		fs[i] = append(fs[i], make([]byte, size-len(fs[i]))...)
	}
	return fs
}

// TestImpairRate: a bottleneck of 1 MB/s sends 1000-byte frames 1 ms
// apart, in order, after the propagation delay; a burst beyond its
// 10 kB FIFO is tail-dropped and counted, and frames offered slower than
// the rate pass with only their serialization time added.
func TestImpairRate(t *testing.T) {
	const ms = time.Millisecond
	imp := Impairment{Rate: 1e6, Queue: 10000, Delay: 5 * ms}
	got, st := impairRun(t, false, imp, 1, sized(50, 1000), 0)
	if st.RateDropped != 40 || len(got) != 10 {
		t.Fatalf("burst of 50: %d arrived, %d tail-dropped; want 10 and 40 (%+v)", len(got), st.RateDropped, st)
	}
	for i, a := range got {
		if want := 5*ms + time.Duration(i+1)*ms; a.at != want || !bytes.HasPrefix(a.frame, fmt.Appendf(nil, "frame %03d", i)) {
			t.Errorf("frame %d (%q) arrived at %v, want frame %d at %v", i, a.frame[:9], a.at, i, want)
		}
	}
	got, st = impairRun(t, true, imp, 1, sized(20, 1000), 2*ms)
	if st.RateDropped != 0 || len(got) != 20 {
		t.Fatalf("paced below the rate: %d arrived, %d dropped", len(got), st.RateDropped)
	}
	for i, a := range got {
		if want := time.Duration(i)*2*ms + 6*ms; a.at != want {
			t.Errorf("frame %d arrived at %v, want %v", i, a.at, want)
		}
	}
	// The default FIFO is one bandwidth-delay product: 1 MB/s × 2·50 ms.
	imp = Impairment{Rate: 1e6, Delay: 50 * ms}
	if _, st = impairRun(t, false, imp, 1, sized(300, 1000), 0); st.RateDropped != 300-100 {
		t.Errorf("default queue: %d of 300 tail-dropped, want 200", st.RateDropped)
	}
}
