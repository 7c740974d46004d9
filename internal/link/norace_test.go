//go:build !race

package link_test

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
