package leaktest

import (
	"testing"
)

// fakeT records whether Check reported a leak.
type fakeT struct {
	testing.TB
	cleanups []func()
	failed   bool
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Errorf(format string, a ...any) { f.failed = true }

func (f *fakeT) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestCheckPassesWhenGoroutinesEnd(t *testing.T) {
	f := &fakeT{}
	Check(f)
	done := make(chan struct{})
	go func() { <-done }()
	close(done)
	f.end()
	if f.failed {
		t.Fatal("reported a leak for a goroutine that ended")
	}
}

func TestOursFilters(t *testing.T) {
	dump := "goroutine 1 [running]:\nmain.main()\n\ngoroutine 2 [select]:\ngithub.com/gotcpip/netstack.(*Stack).readLoop()"
	if got := Ours(dump); got != "goroutine 2 [select]:\ngithub.com/gotcpip/netstack.(*Stack).readLoop()" {
		t.Fatalf("got %q", got)
	}
}
