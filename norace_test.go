//go:build !race

package netstack

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
