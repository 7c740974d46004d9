// Package leaktest checks that a test leaves no goroutines behind.
package leaktest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Check records the goroutine count now and, when the test ends (after the
// cleanups registered later, which run first), fails it if more goroutines
// are still running after a bounded wait, printing the ones that mention
// this module. It compares counts, so it must not be used by parallel
// tests.
func Check(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines leaked:\n%s", n-before, Ours(string(buf)))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// Ours keeps the goroutines of a runtime.Stack dump that mention this
// module.
func Ours(dump string) string {
	var keep []string
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "gotcpip/netstack") {
			keep = append(keep, g)
		}
	}
	return strings.Join(keep, "\n\n")
}
