package netstack

import (
	"runtime"
	"testing"
	"time"
)

// CheckGoroutines fails t if, once its cleanups have run (those registered
// later run first: closing the devices), more goroutines run than when it
// was called, after waiting up to 20 s for them to end. It compares
// counts, so tests using it must not run in parallel. (Exported for the
// external tests of this package.)
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(20 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines leaked:\n%s", runtime.NumGoroutine()-before, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
