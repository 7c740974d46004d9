//go:build race

package tcp

// raceEnabled: the race detector slows the simulator some 25 times, so
// the long simulations run smaller.
const raceEnabled = true
