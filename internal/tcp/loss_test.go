package tcp

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The path: 10 ms RTT, a 100 Mbit/s bottleneck with a drop-tail
// queue of one bandwidth-delay product, random loss both ways.
func lossPath(loss float64) simImpair {
	return simImpair{Delay: 5 * time.Millisecond, Rate: 12.5e6, Queue: 10 * time.Millisecond, Loss: loss}
}

// oneFlow sends size bytes from end 0 to end 1 and returns the goodput in
// Mbit/s (until the last byte arrived) and the sender's counters.
func oneFlow(tb testing.TB, seed uint64, imp simImpair, cfg *Config, size int64) (float64, Stats) {
	s := newSim(tb, seed, imp, cfg, 0xFFFF0000, 0x10000)
	s.ends[0].total = size
	if err := s.run(2 * time.Hour); err != nil || s.ends[1].recvd != size {
		tb.Fatalf("seed %d: %v (received %d of %d)", seed, err, s.ends[1].recvd, size)
	}
	return float64(size) * 8 / s.lastData.Sub(s.start).Seconds() / 1e6, s.ends[0].conn.Stats()
}

var lossConfigs = []struct {
	name string
	cfg  *Config
}{
	{"SACK+CUBIC", nil},
	{"NewReno, no SACK", &Config{NoSACK: true, NewCC: NewReno}},
}

// TestGoodputUnderLoss is the must-show: one 16 MiB flow at 0,
// 0.1, 1 and 5 % random loss, SACK with CUBIC (the defaults) beside
// NewReno without SACK, each cell the mean of two seeds, written to
// testdata/loss_goodput.golden (-update rewrites it). SACK+CUBIC must win
// at 1 %. Under -race or -short the flows are smaller and only run.
func TestGoodputUnderLoss(t *testing.T) {
	size, full := int64(16<<20), !testing.Short() && !raceEnabled
	if !full {
		size = 2 << 20
	}
	var table strings.Builder
	fmt.Fprintf(&table, "# one flow, 10 ms RTT, 100 Mbit/s, queue 1 BDP, %d MiB, goodput in Mbit/s, mean of 2 seeds (retransmits/timeouts, total)\n", size>>20)
	fmt.Fprintf(&table, "%-6s", "loss")
	for _, c := range lossConfigs {
		fmt.Fprintf(&table, " %26s", c.name)
	}
	table.WriteString("\n")
	var at1 [2]float64
	for i, loss := range []float64{0, 0.001, 0.01, 0.05} {
		fmt.Fprintf(&table, "%-6s", fmt.Sprintf("%g%%", loss*100))
		for j, c := range lossConfigs {
			var g float64
			var rtx, rto uint64
			for k := uint64(0); k < 2; k++ {
				gk, st := oneFlow(t, uint64(500+10*i)+k, lossPath(loss), c.cfg, size)
				g += gk / 2
				rtx += st.Retransmits
				rto += st.Timeouts
			}
			fmt.Fprintf(&table, " %13.1f (%5d/%4d)", g, rtx, rto)
			if loss == 0.01 {
				at1[j] = g
			}
		}
		table.WriteString("\n")
	}
	t.Logf("\n%s", table.String())
	if !full {
		return
	}
	if at1[0] <= at1[1] {
		t.Errorf("at 1%% loss SACK+CUBIC %.1f Mbit/s does not beat NewReno without SACK %.1f", at1[0], at1[1])
	}
	checkGolden(t, "testdata/loss_goodput.golden", table.String())
}
