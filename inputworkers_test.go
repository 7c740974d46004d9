package netstack

import (
	"os"
	"strconv"
)

// NETSTACK_TEST_INPUT_WORKERS=n runs every stack the tests make with n
// input workers (Config.InputWorkers), unless a test sets its own.
func init() {
	if n, err := strconv.Atoi(os.Getenv("NETSTACK_TEST_INPUT_WORKERS")); err == nil {
		defaultInputWorkers = n
	}
}
