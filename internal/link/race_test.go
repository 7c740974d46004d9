//go:build race

package link_test

// raceEnabled: the race detector is on, and sync.Pool drops some of what
// is put in it.
const raceEnabled = true
