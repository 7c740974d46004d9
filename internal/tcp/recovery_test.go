package tcp

import (
	"testing"
	"time"
)

// Each loss-recovery path, as a simulator scenario with deterministic
// drops and delays: one flow of n full segments (1448 bytes with
// timestamps) over 10 ms RTT and 100 Mbit/s, and exact counts of what the
// sender retransmitted.

const recISN = Seq(0xFFFF0000)

// recSeg returns the sequence number of the sender's k-th data segment.
func recSeg(k int) Seq { return recISN.Add(1 + 1448*k) }

type recScenario struct {
	segs  int                     // flow length in segments
	drop  map[int]int             // segment → how many of its transmissions to drop
	delay map[int]time.Duration   // segment → extra delay of its first transmission
	cfg   *Config                 // nil: defaults (SACK, CUBIC)
	check func(*testing.T, Stats) // assertions on the sender's counters
	trace bool
	_     struct{} // keeps literals keyed
}

func (r recScenario) run(t *testing.T) Stats {
	t.Helper()
	s := newSim(t, 1, simImpair{Delay: 5 * time.Millisecond, Rate: 12.5e6, Queue: 10 * time.Millisecond}, r.cfg, recISN, 0x10000)
	size := int64(r.segs) * 1448
	s.trace = r.trace
	s.ends[0].total = size
	sent := map[Seq]int{}
	s.drop = func(from int, seg *Segment) bool {
		if from != 0 || len(seg.Payload) == 0 {
			return false
		}
		k := int(seg.Seq.Sub(recSeg(0))) / 1448
		sent[seg.Seq]++
		return sent[seg.Seq] <= r.drop[k]
	}
	s.delay = func(from int, seg *Segment) time.Duration {
		if from != 0 || len(seg.Payload) == 0 {
			return 0
		}
		k := int(seg.Seq.Sub(recSeg(0))) / 1448
		if sent[seg.Seq] == 1 {
			return r.delay[k]
		}
		return 0
	}
	if err := s.run(time.Hour); err != nil || s.ends[1].recvd != size {
		t.Fatalf("%v (received %d of %d)", err, s.ends[1].recvd, size)
	}
	st := s.ends[0].conn.Stats()
	t.Logf("retransmits %d timeouts %d recoveries %d TLPs %d RACK-lost %d D-SACKs %d, %v",
		st.Retransmits, st.Timeouts, st.FastRetransmits, st.TLPs, st.RACKLost, st.DSACKs, s.lastData.Sub(s.start))
	return st
}

func wantCounts(t *testing.T, st Stats, retrans, timeouts, recoveries uint64) {
	t.Helper()
	if st.Retransmits != retrans || st.Timeouts != timeouts || st.FastRetransmits != recoveries {
		t.Errorf("retransmits %d timeouts %d recoveries %d, want %d %d %d",
			st.Retransmits, st.Timeouts, st.FastRetransmits, retrans, timeouts, recoveries)
	}
}

// One loss: SACK blocks for the segments after it, RACK marks it lost
// (three segments SACKed, no reordering seen: reorder window 0), one
// retransmission, one recovery, no timeout.
func TestRecoveryOneLoss(t *testing.T) {
	st := recScenario{segs: 100, drop: map[int]int{30: 1}}.run(t)
	wantCounts(t, st, 1, 0, 1)
	if st.RACKLost != 1 {
		t.Errorf("RACK marked %d lost, want 1", st.RACKLost)
	}
}

// A burst of five losses in one window: all are marked lost by the same
// SACKs and retransmitted in one recovery.
func TestRecoveryBurstLoss(t *testing.T) {
	st := recScenario{segs: 100, drop: map[int]int{30: 1, 31: 1, 32: 1, 33: 1, 34: 1}}.run(t)
	wantCounts(t, st, 5, 0, 1)
}

// A lost retransmission: RACK sees that segments sent after the
// retransmission were delivered and marks it lost again (RFC 8985 §2.2),
// with no RTO.
func TestRecoveryLostRetransmission(t *testing.T) {
	st := recScenario{segs: 200, drop: map[int]int{30: 2}}.run(t)
	wantCounts(t, st, 2, 0, 1)
}

// A tail loss: the last three segments of the flow are lost, no SACK can
// come; the tail loss probe resends the last one after 2·SRTT, its SACK
// lets RACK mark the other two, and recovery repairs them without an RTO.
func TestRecoveryTailLoss(t *testing.T) {
	st := recScenario{segs: 60, drop: map[int]int{57: 1, 58: 1, 59: 1}}.run(t)
	wantCounts(t, st, 3, 0, 1)
	if st.TLPs != 1 {
		t.Errorf("%d tail loss probes, want 1", st.TLPs)
	}
}

// The same tail loss without SACK waits for the RTO (for comparison).
func TestRecoveryTailLossNoSACK(t *testing.T) {
	st := recScenario{segs: 60, drop: map[int]int{57: 1, 58: 1, 59: 1}, cfg: &Config{NoSACK: true}}.run(t)
	if st.Timeouts == 0 || st.TLPs != 0 {
		t.Errorf("timeouts %d TLPs %d, want an RTO and no probe", st.Timeouts, st.TLPs)
	}
}

// Reordering within RACK's window causes no retransmission: a segment
// held back 1 ms (the window is a quarter of the 10 ms minimum RTT) while
// two later ones overtake it is waited for, not resent. The flow is
// app-limited to small bursts so that fewer than DupThresh segments
// overtake it.
func TestRecoveryReorderWithinWindow(t *testing.T) {
	st := recScenario{segs: 40, delay: map[int]time.Duration{3: time.Millisecond}, cfg: &Config{SendBuf: 4 * 1448}}.run(t)
	wantCounts(t, st, 0, 0, 0)
}

// Reordering beyond the window: the first time a segment is overtaken by
// many, RACK (no reordering seen yet, reorder window 0) retransmits it
// once; the D-SACK for that spurious retransmission teaches RACK that the
// path reorders, and later segments held back by less than the widened
// window are not retransmitted.
func TestRecoveryReorderLearned(t *testing.T) {
	st := recScenario{segs: 400, delay: map[int]time.Duration{
		30: 2 * time.Millisecond, 150: 2 * time.Millisecond, 250: 2 * time.Millisecond, 350: 2 * time.Millisecond,
	}}.run(t)
	if st.Retransmits > 1 || st.FastRetransmits > 1 || st.Timeouts != 0 || st.DSACKs > 1 {
		t.Errorf("retransmits %d recoveries %d timeouts %d D-SACKs %d: want at most the first, spurious, one",
			st.Retransmits, st.FastRetransmits, st.Timeouts, st.DSACKs)
	}
}
