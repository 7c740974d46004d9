package stack

import "testing"

// TestFIFO checks order across wrap-around and growth, and that a queue
// that is drained as fast as it is filled stops allocating.
func TestFIFO(t *testing.T) {
	var q fifo[int]
	next, want := 0, 0
	for round := range 50 {
		for range round % 7 * 5 {
			q.push(next)
			next++
		}
		for q.len() > round%3 {
			if got := q.front(); got != want {
				t.Fatalf("round %d: front %d, want %d", round, got, want)
			}
			q.pop()
			want++
		}
	}
	for q.len() > 0 {
		if got := q.front(); got != want {
			t.Fatalf("drain: front %d, want %d", got, want)
		}
		q.pop()
		want++
	}
	if want != next {
		t.Fatalf("popped %d of %d", want, next)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range 10 {
			q.push(i)
		}
		for range 10 {
			q.pop()
		}
	})
	if allocs != 0 {
		t.Errorf("steady push/pop allocated %v times per run", allocs)
	}
}
