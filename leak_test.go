package netstack

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// checkGoroutines fails the test if goroutines started during it are still
// running when it ends (after its cleanups). It compares stacks, so it must
// not be used by parallel tests.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// Cleanups run last-in first-out: this runs after the stacks are closed.
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines leaked:\n%s", n-before, ours(string(buf)))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// ours keeps the goroutine dumps that mention this module.
func ours(dump string) string {
	var keep []string
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "gotcpip/netstack") {
			keep = append(keep, g)
		}
	}
	return strings.Join(keep, "\n\n")
}
