//go:build race

package netstack

// raceEnabled: the race detector slows the data path about tenfold, so
// bulk transfers under it move less; `make test` runs them again at full
// size without it.
const raceEnabled = true
