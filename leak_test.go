package netstack

import (
	"testing"

	"github.com/gotcpip/netstack/internal/leaktest"
)

// checkGoroutines fails the test if goroutines started during it are
// still running when it ends; see leaktest.Check.
func checkGoroutines(t *testing.T) { leaktest.Check(t) }
