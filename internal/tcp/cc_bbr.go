package tcp

import (
	"math"
	"math/rand/v2"
	"time"
)

// BBR (version 3, as its authors describe it in draft-ietf-ccwg-bbr):
// congestion control by a model of the path, its bottleneck bandwidth
// (the windowed maximum of delivery-rate samples, rate.go) and its
// round-trip propagation delay (the windowed minimum RTT), rather than
// by losses. The sender paces at a gain times the bandwidth and keeps at
// most a gain times the bandwidth-delay product in flight. Losses above
// a threshold (2 % of what was in flight) bound the model from above
// (inflight_hi) and, for a round, from below (bw_lo, inflight_lo), so
// random loss well below the threshold does not shrink the window as it
// does CUBIC's.
//
// States: Startup doubles the rate every round until the bandwidth stops
// growing; Drain empties the queue Startup built; ProbeBW cycles through
// DOWN (drain below the estimate), CRUISE, REFILL and UP (probe for more
// bandwidth, raising inflight_hi), and ProbeRTT shrinks the flight for a
// moment every five seconds to measure the propagation delay afresh.
//
// The connection feeds it through the hooks at the end of this file;
// BBR's cwnd and pacing rate then govern sendNext and output.

// BBR's states.
type bbrMode uint8

const (
	bbrStartup bbrMode = iota
	bbrDrain
	bbrProbeBWDown
	bbrProbeBWCruise
	bbrProbeBWRefill
	bbrProbeBWUp
	bbrProbeRTT
	bbrModes
)

var bbrModeNames = [bbrModes]string{"Startup", "Drain", "ProbeBW_DOWN", "ProbeBW_CRUISE", "ProbeBW_REFILL", "ProbeBW_UP", "ProbeRTT"}

func (m bbrMode) String() string {
	if m < bbrModes {
		return bbrModeNames[m]
	}
	return "invalid"
}

// Where the ACKs of a bandwidth probe are (the draft's ack_phase).
type bbrAckPhase uint8

const (
	acksInit bbrAckPhase = iota
	acksRefilling
	acksProbeStarting
	acksProbeFeedback
	acksProbeStopping
)

// The draft's parameters.
const (
	bbrStartupPacingGain  = 2.77 // 4·ln 2: doubles the delivery rate each round
	bbrStartupCwndGain    = 2.0
	bbrDrainPacingGain    = 0.35
	bbrDefaultCwndGain    = 2.0
	bbrProbeUpCwndGain    = 2.25
	bbrProbeDownGain      = 0.90
	bbrProbeUpGain        = 1.25
	bbrProbeRTTCwndGain   = 0.5
	bbrLossThresh         = 0.02 // the loss rate a probe tolerates
	bbrBeta               = 0.7  // multiplicative decrease on loss
	bbrHeadroom           = 0.15 // room left below inflight_hi for other flows
	bbrPacingMargin       = 0.01 // pace this much below the bandwidth
	bbrFullBwThresh       = 1.25 // growth that counts as not yet full
	bbrFullBwCount        = 3    // rounds without it that make the pipe full
	bbrStartupFullLossCnt = 6    // discontiguous lost ranges in a round that can end Startup
	bbrMinRTTFilterLen    = 10 * time.Second
	bbrProbeRTTInterval   = 5 * time.Second
	bbrProbeRTTDuration   = 200 * time.Millisecond
	bbrExtraAckedRounds   = 10
	bbrMaxProbeWaitRounds = 63 // the Reno-coexistence bound on rounds between probes
	bbrPacingSlack        = 5 * time.Millisecond
)

// bbrInf stands for an unset upper or lower bound.
const bbrInf = math.MaxInt32

// bbr is the BBR state of one connection; NewBBR makes it.
type bbr struct {
	mss  int
	rate rateSampler
	rs   rateSample // the sample of the ACK being processed
	rng  rand.PCG   // seeded by the connection's ISN: flows do not probe in step

	mode                 bbrMode
	pacingGain, cwndGain float64
	pacingRate           float64 // bytes per second
	sendQuantum          int
	cwnd                 int
	priorCwnd            int
	maxInflight          int
	initDone             bool
	packetConservation   bool
	recovering           bool  // in fast recovery (OnRecoveryStart to OnRecoveryEnd)
	conservationEnd      int64 // C.delivered when recovery began: conservation lasts until it is
	recoveryStart        bool  // recovery began on this ACK: cwnd drops to the flight
	inLoss               bool  // after an RTO, until the connection leaves it
	idleRestart          bool

	// The model: bandwidth (bytes/s) and flight bounds (bytes).
	maxBw        float64
	bwHi         [2]float64 // the max filter over the last two ProbeBW cycles
	cycleCount   uint64
	bwLo, bw     float64
	bwLatest     float64
	inflightLo   int
	inflightHi   int
	inflightLast int // the draft's inflight_latest
	extraAcked   int
	extraSlots   [2]int // windowed max of extra_acked, in halves of the window
	extraRound   uint64
	extraStart   time.Duration
	extraDeliv   int64

	// Round counting.
	nextRoundDelivered int64
	roundCount         uint64
	roundStart         bool

	// Startup's plateau detection, also used by ProbeBW_UP.
	fullBw        float64
	fullBwCount   int
	fullBwNow     bool
	fullBwReached bool

	// Losses per round.
	lossRoundDelivered int64
	lossRoundStart     bool
	lossInRound        bool
	lossRoundLost      int64   // C.lost when the loss round began
	lossRanges         int     // discontiguous lost ranges in this loss round
	lastLostEnd        Seq     // the end of the last lost segment, to count ranges
	roundLossRate      float64 // of the last complete loss round: lost/(lost+delivered)
	roundLossRanges    int     // of the last complete loss round
	recoveryRound      uint64  // the loss round in which recovery began
	lossRounds         uint64

	// ProbeBW.
	ackPhase         bbrAckPhase
	cycleStamp       time.Duration
	bwProbeWait      time.Duration
	roundsSinceProbe int
	bwProbeSamples   bool
	bwProbeUpRounds  int
	bwProbeUpAcks    int // bytes
	probeUpCnt       int

	// min_rtt and ProbeRTT.
	minRTT           time.Duration // 0: unknown
	minRTTStamp      time.Duration
	probeRTTMinDelay time.Duration
	probeRTTMinStamp time.Duration
	probeRTTExpired  bool
	probeRTTDoneAt   time.Duration // 0: not yet
	probeRTTRoundEnd bool

	// Pacing: the time the next byte may leave, on the connection's
	// clock; sends are held while it is in the future.
	nextSend time.Duration
	paceAt   tick // the deadline that wakes a held sender; 0: none

	// For tests and Info: how often each state was entered, and why
	// Startup ended.
	entered      [bbrModes]uint32
	startupRound uint64 // the round in which Startup ended
	startupLoss  bool   // Startup ended on loss, not on the plateau
}

// NewBBR returns BBR congestion control (draft-ietf-ccwg-bbr, BBRv3) for
// a connection whose sender MSS is mss. It paces the connection's sends.
func NewBBR(mss int) CongestionControl {
	mss = max(mss, 1)
	b := &bbr{mss: mss, cwnd: initialWindow(mss), inflightHi: bbrInf, inflightLo: bbrInf}
	b.bwLo = math.Inf(1)
	b.rate.rs.rtt = -1
	return b
}

func (b *bbr) Cwnd() int { return b.cwnd }

// Ssthresh is not part of BBR's model; it reports the largest possible
// value before the pipe is full, as Linux's bbr does, and cwnd after.
func (b *bbr) Ssthresh() int {
	if !b.fullBwReached {
		return 1 << 30
	}
	return b.cwnd
}

// OnAck is not used: BBR takes every ACK, through the connection's
// bbrAckDone.
func (b *bbr) OnAck(now time.Time, acked, inFlight int, rtt time.Duration) {}

// OnRecoveryStart enters fast recovery: cwnd falls to what is in flight
// (set by the ACK that started it, in onAck), held there for a round by
// packet conservation.
func (b *bbr) OnRecoveryStart(now time.Time, inFlight int) {
	b.saveCwnd()
	b.packetConservation, b.recoveryStart, b.recovering = true, true, true
	b.recoveryRound = b.lossRounds
	b.conservationEnd = b.rate.delivered
}

// OnRecoveryEnd leaves fast recovery and restores the window saved when
// it began.
func (b *bbr) OnRecoveryEnd(now time.Time, inFlight int) {
	b.packetConservation, b.recoveryStart, b.recovering = false, false, false
	b.restoreCwnd()
}

// OnTimeout collapses cwnd to one segment for the retransmissions after
// an RTO; the model is kept, and cwnd returns when the loss is repaired.
func (b *bbr) OnTimeout(now time.Time, inFlight int) {
	b.saveCwnd()
	b.cwnd = b.mss
	b.inLoss = true
	b.recoveryRound = b.lossRounds
	b.packetConservation, b.recoveryStart, b.recovering = false, false, false
}

// OnIdle restarts after idle: the window stays; in ProbeBW the rate
// falls back to the bandwidth estimate (there is no queue to drain), and
// the idle time does not count as a ProbeRTT (idleRestart).
func (b *bbr) OnIdle(now time.Time, idle, rto time.Duration) {
	b.idleRestart = true
	if b.inProbeBW() {
		b.setPacingRate(1)
	}
}

func (b *bbr) saveCwnd() {
	if !b.packetConservation && !b.inLoss && b.mode != bbrProbeRTT {
		b.priorCwnd = b.cwnd
	} else {
		b.priorCwnd = max(b.priorCwnd, b.cwnd)
	}
}

func (b *bbr) restoreCwnd() { b.cwnd = max(b.cwnd, b.priorCwnd) }

// init sets the initial pacing rate from the handshake's RTT: the initial
// window per SRTT (per millisecond if unknown), times Startup's gain.
func (b *bbr) init(now, srtt time.Duration, seed uint64) {
	b.initDone = true
	b.rng.Seed(seed, 0x6262723376)
	b.minRTT, b.minRTTStamp = srtt, now
	b.probeRTTMinDelay, b.probeRTTMinStamp = srtt, now
	b.extraStart = now
	b.resetCongestionSignals()
	b.resetLowerBounds()
	b.resetFullBw()
	rtt := srtt
	if rtt <= 0 {
		rtt = time.Millisecond
	}
	b.pacingRate = bbrStartupPacingGain * float64(b.cwnd) / rtt.Seconds()
	b.setSendQuantum()
	b.enter(bbrStartup, bbrStartupPacingGain, bbrStartupCwndGain)
}

func (b *bbr) enter(m bbrMode, pacingGain, cwndGain float64) {
	b.mode, b.pacingGain, b.cwndGain = m, pacingGain, cwndGain
	b.entered[m]++
}

// bbrAck is what the connection knows after processing an ACK.
type bbrAck struct {
	now         time.Duration // the connection's clock
	inFlight    int           // the pipe after the ACK
	cwndLimited bool
	srtt        time.Duration
	seed        uint64 // for init, if the ACK comes before any send
}

// onAck runs BBR's per-ACK update (BBRUpdateOnACK): the model and the
// state, then the pacing rate, the send quantum and cwnd.
func (b *bbr) onAck(a bbrAck) {
	if !b.initDone {
		b.init(a.now, a.srtt, a.seed)
	}
	b.rs = b.rate.sample(a.now, b.minRTT)
	if b.recoveryStart {
		b.recoveryStart = false
		b.cwnd = a.inFlight + max(b.rs.newlyAcked, b.mss)
	}
	b.updateModelAndState(a)
	b.setPacingRate(b.pacingGain)
	b.setSendQuantum()
	b.setCwnd(a)
}

func (b *bbr) updateModelAndState(a bbrAck) {
	b.updateLatestDeliverySignals()
	b.updateCongestionSignals()
	b.updateAckAggregation(a)
	b.checkFullBwReached()
	b.checkStartupDone()
	b.checkDrainDone(a)
	b.updateProbeBWCyclePhase(a)
	b.updateMinRTT(a)
	b.checkProbeRTT(a)
	b.advanceLatestDeliverySignals()
	b.bw = math.Min(b.maxBw, b.bwLo)
}

// updateRound counts round trips: a round ends when the data sent at its
// start is delivered.
func (b *bbr) updateRound() {
	b.roundStart = false
	if b.rs.has && b.rs.priorDelivered >= b.nextRoundDelivered {
		b.nextRoundDelivered = b.rate.delivered
		b.roundCount++
		b.roundsSinceProbe++
		b.roundStart = true
	}
	if b.packetConservation && b.rs.has && b.rs.priorDelivered >= b.conservationEnd {
		b.packetConservation = false // one round of conservation in recovery
	}
}

func (b *bbr) startRound() { b.nextRoundDelivered = b.rate.delivered }

func (b *bbr) updateMaxBw() {
	b.updateRound()
	r := b.rs.deliveryRate
	if r > 0 && (r >= b.maxBw || !b.rs.appLimited) {
		b.bwHi[0] = math.Max(b.bwHi[0], r)
		b.maxBw = math.Max(b.bwHi[0], b.bwHi[1])
	}
}

// advanceMaxBwFilter starts a new ProbeBW cycle's slot of the max filter,
// forgetting the cycle before the last.
func (b *bbr) advanceMaxBwFilter() {
	b.cycleCount++
	b.bwHi[1], b.bwHi[0] = b.bwHi[0], 0
	b.maxBw = b.bwHi[1]
}

func (b *bbr) updateLatestDeliverySignals() {
	b.lossRoundStart = false
	b.bwLatest = math.Max(b.bwLatest, b.rs.deliveryRate)
	b.inflightLast = max(b.inflightLast, int(min(b.rs.delivered, bbrInf)))
	if b.rs.has && b.rs.priorDelivered >= b.lossRoundDelivered {
		// The loss rate of the round that ends, for Startup's exit.
		lost := float64(b.rate.lost - b.lossRoundLost)
		if all := lost + float64(b.rate.delivered-b.lossRoundDelivered); all > 0 {
			b.roundLossRate = lost / all
		}
		b.roundLossRanges, b.lossRanges = b.lossRanges, 0
		b.lossRoundDelivered, b.lossRoundLost = b.rate.delivered, b.rate.lost
		b.lossRoundStart = true
		b.lossRounds++
	}
}

func (b *bbr) advanceLatestDeliverySignals() {
	if b.lossRoundStart {
		b.bwLatest = b.rs.deliveryRate
		b.inflightLast = int(min(b.rs.delivered, bbrInf))
	}
}

func (b *bbr) resetCongestionSignals() {
	b.lossInRound = false
	b.bwLatest = 0
	b.inflightLast = 0
}

func (b *bbr) resetLowerBounds() {
	b.bwLo = math.Inf(1)
	b.inflightLo = bbrInf
}

func (b *bbr) resetFullBw() {
	b.fullBw, b.fullBwCount, b.fullBwNow = 0, 0, false
}

// updateCongestionSignals updates the max filter and, once a round, the
// lower bounds from the losses of the round.
func (b *bbr) updateCongestionSignals() {
	b.updateMaxBw()
	if b.rs.newlyLost > 0 {
		b.lossInRound = true
	}
	if !b.lossRoundStart {
		return
	}
	b.adaptLowerBoundsFromCongestion()
	b.lossInRound = false
}

// isProbingBw reports the states that look for more bandwidth, in which
// losses do not lower the bounds.
func (b *bbr) isProbingBw() bool {
	return b.mode == bbrStartup || b.mode == bbrProbeBWRefill || b.mode == bbrProbeBWUp
}

func (b *bbr) adaptLowerBoundsFromCongestion() {
	if b.isProbingBw() || !b.lossInRound {
		return
	}
	if math.IsInf(b.bwLo, 1) {
		b.bwLo = b.maxBw
	}
	if b.inflightLo == bbrInf {
		b.inflightLo = b.cwnd
	}
	b.bwLo = math.Max(b.bwLatest, bbrBeta*b.bwLo)
	b.inflightLo = max(b.inflightLast, int(bbrBeta*float64(b.inflightLo)))
}

// updateAckAggregation estimates how many bytes arrive in ACKs beyond
// what the bandwidth explains (stretched and aggregated ACKs), so that
// cwnd leaves room to keep sending while they are late.
func (b *bbr) updateAckAggregation(a bbrAck) {
	interval := a.now - b.extraStart
	expected := int64(b.bw * interval.Seconds())
	if b.extraDeliv <= expected {
		b.extraDeliv, b.extraStart, expected = 0, a.now, 0
	}
	b.extraDeliv += int64(b.rs.newlyAcked)
	extra := int(min(b.extraDeliv-expected, int64(b.cwnd)))
	window := uint64(bbrExtraAckedRounds / 2)
	if !b.fullBwReached {
		window = 1
	}
	if b.roundCount-b.extraRound >= window {
		b.extraRound = b.roundCount
		b.extraSlots[1], b.extraSlots[0] = b.extraSlots[0], 0
	}
	b.extraSlots[0] = max(b.extraSlots[0], extra)
	b.extraAcked = max(b.extraSlots[0], b.extraSlots[1])
}

// checkFullBwReached detects the plateau: three rounds in which the
// bandwidth grew by less than a quarter.
func (b *bbr) checkFullBwReached() {
	if b.fullBwNow || !b.roundStart || b.rs.appLimited {
		return
	}
	if b.maxBw >= b.fullBw*bbrFullBwThresh {
		b.resetFullBw()
		b.fullBw = b.maxBw
		return
	}
	b.fullBwCount++
	b.fullBwNow = b.fullBwCount >= bbrFullBwCount
	if b.fullBwNow && !b.fullBwReached {
		b.fullBwReached = true
		b.startupRound = b.roundCount
	}
}

// checkStartupDone ends Startup on the plateau, or on loss above the
// threshold with enough loss events in a round.
func (b *bbr) checkStartupDone() {
	b.checkStartupHighLoss()
	if b.mode == bbrStartup && b.fullBwReached {
		b.enter(bbrDrain, bbrDrainPacingGain, bbrStartupCwndGain)
	}
}

// checkStartupHighLoss ends Startup when the queue overflows: at the
// end of a round spent wholly in recovery, the round lost more than
// BBRLossThresh of its data in at least BBRStartupFullLossCnt
// discontiguous ranges. Judging a whole round, not an ACK, keeps
// scattered random losses from ending Startup early.
func (b *bbr) checkStartupHighLoss() {
	if b.fullBwReached || b.mode != bbrStartup || !b.lossRoundStart {
		return
	}
	wholeRound := (b.recovering || b.inLoss) && b.recoveryRound+1 < b.lossRounds
	if wholeRound && b.roundLossRanges >= bbrStartupFullLossCnt && b.roundLossRate > bbrLossThresh {
		b.inflightHi = max(b.bdpMultiple(1), b.inflightLast)
		b.fullBwReached, b.startupLoss = true, true
		b.startupRound = b.roundCount
	}
}

func (b *bbr) checkDrainDone(a bbrAck) {
	if b.mode == bbrDrain && a.inFlight <= b.inflight(1) {
		b.enterProbeBW(a)
	}
}

func (b *bbr) enterProbeBW(a bbrAck) {
	b.cwndGain = bbrDefaultCwndGain
	b.startProbeBWDown(a)
}

func (b *bbr) startProbeBWDown(a bbrAck) {
	b.resetCongestionSignals()
	b.probeUpCnt = bbrInf
	// PickProbeWait: a random offset so that flows do not probe in step.
	b.roundsSinceProbe = int(b.rng.Uint64() % 2)
	b.bwProbeWait = 2*time.Second + time.Duration(b.rng.Uint64()%uint64(time.Second))
	b.cycleStamp = a.now
	b.ackPhase = acksProbeStopping
	b.startRound()
	b.enter(bbrProbeBWDown, bbrProbeDownGain, bbrDefaultCwndGain)
}

func (b *bbr) startProbeBWCruise() {
	b.enter(bbrProbeBWCruise, 1, bbrDefaultCwndGain)
}

func (b *bbr) startProbeBWRefill() {
	b.resetLowerBounds()
	b.bwProbeUpRounds, b.bwProbeUpAcks = 0, 0
	b.ackPhase = acksRefilling
	b.startRound()
	b.enter(bbrProbeBWRefill, 1, bbrDefaultCwndGain)
}

func (b *bbr) startProbeBWUp(a bbrAck) {
	b.ackPhase = acksProbeStarting
	b.startRound()
	b.resetFullBw()
	b.fullBw = b.maxBw
	b.cycleStamp = a.now
	b.enter(bbrProbeBWUp, bbrProbeUpGain, bbrProbeUpCwndGain)
	b.raiseInflightHiSlope()
}

func (b *bbr) inProbeBW() bool { return b.mode >= bbrProbeBWDown && b.mode <= bbrProbeBWUp }

func (b *bbr) updateProbeBWCyclePhase(a bbrAck) {
	if !b.fullBwReached {
		return
	}
	b.adaptUpperBounds(a)
	if !b.inProbeBW() {
		return
	}
	switch b.mode {
	case bbrProbeBWDown:
		if b.checkTimeToProbeBW(a) {
			return
		}
		if b.checkTimeToCruise(a) {
			b.startProbeBWCruise()
		}
	case bbrProbeBWCruise:
		b.checkTimeToProbeBW(a)
	case bbrProbeBWRefill:
		if b.roundStart {
			b.bwProbeSamples = true
			b.startProbeBWUp(a)
		}
	case bbrProbeBWUp:
		if b.checkTimeToGoDown(a) {
			b.startProbeBWDown(a)
		}
	}
}

// checkTimeToProbeBW starts a probe when the wait has passed, or when a
// Reno flow sharing the path would have grown its window by as much.
func (b *bbr) checkTimeToProbeBW(a bbrAck) bool {
	if b.rs.has && (a.now-b.cycleStamp > b.bwProbeWait || b.renoCoexistenceProbeTime()) {
		b.startProbeBWRefill()
		return true
	}
	return false
}

func (b *bbr) renoCoexistenceProbeTime() bool {
	rounds := min(b.targetInflight()/b.mss, bbrMaxProbeWaitRounds)
	return b.roundsSinceProbe >= rounds
}

func (b *bbr) checkTimeToCruise(a bbrAck) bool {
	if a.inFlight > b.inflightWithHeadroom() {
		return false
	}
	return a.inFlight <= b.inflight(1)
}

func (b *bbr) checkTimeToGoDown(a bbrAck) bool {
	if a.cwndLimited && b.cwnd >= b.inflightHi {
		b.resetFullBw()
		b.fullBw = b.maxBw
	} else if b.fullBwNow {
		return true
	}
	return false
}

// adaptUpperBounds raises inflight_hi while a probe sees no excess loss,
// and starts a new slot of the bandwidth filter at each cycle.
func (b *bbr) adaptUpperBounds(a bbrAck) {
	if b.ackPhase == acksProbeStarting && b.roundStart {
		b.ackPhase = acksProbeFeedback
	}
	if b.ackPhase == acksProbeStopping && b.roundStart {
		// The samples of the probe are in: the best time to forget the
		// cycle before it.
		b.bwProbeSamples = false
		b.ackPhase = acksInit
		if b.inProbeBW() && !b.rs.appLimited {
			b.advanceMaxBwFilter()
		}
	}
	if b.checkInflightTooHigh(a) {
		return
	}
	if b.inflightHi == bbrInf {
		return
	}
	if b.rs.txInFlight > b.inflightHi {
		b.inflightHi = b.rs.txInFlight
	}
	if b.mode == bbrProbeBWUp {
		b.probeInflightHiUpward(a)
	}
}

func (b *bbr) inflightTooHigh() bool {
	return b.rs.has && float64(b.rs.lost) > float64(b.rs.txInFlight)*bbrLossThresh
}

func (b *bbr) checkInflightTooHigh(a bbrAck) bool {
	if !b.inflightTooHigh() {
		return false
	}
	if b.bwProbeSamples {
		b.handleInflightTooHigh(a)
	}
	return true
}

func (b *bbr) handleInflightTooHigh(a bbrAck) {
	b.bwProbeSamples = false
	if !b.rs.appLimited {
		b.inflightHi = max(b.rs.txInFlight, int(float64(b.targetInflight())*bbrBeta))
	}
	if b.mode == bbrProbeBWUp {
		b.startProbeBWDown(a)
	}
}

// onLost checks, per lost segment, whether a probe has pushed the loss
// rate past the threshold (the draft's BBRHandleLostPacket), so that UP
// ends at the first sign rather than a round later.
func (b *bbr) onLost(now time.Duration, s *txSeg, p *rateNote, inFlight int) {
	if s.start != b.lastLostEnd {
		b.lossRanges++
	}
	b.lastLostEnd = s.end
	n := s.len()
	if p == nil || !b.bwProbeSamples {
		return
	}
	tx := int(p.txInFlight)
	lost := b.rate.lost - p.lost
	if float64(lost) <= float64(tx)*bbrLossThresh {
		return
	}
	// The flight at which the loss rate crossed the threshold.
	prevTx, prevLost := float64(tx-n), float64(lost)-float64(n)
	prefix := (bbrLossThresh*prevTx - prevLost) / (1 - bbrLossThresh)
	saved := b.rs
	b.rs.has, b.rs.appLimited = true, p.appLimited
	b.rs.txInFlight = max(int(prevTx+prefix), b.mss)
	b.handleInflightTooHigh(bbrAck{now: now, inFlight: inFlight})
	b.rs = saved
}

func (b *bbr) raiseInflightHiSlope() {
	// growth_this_round = 2^rounds segments: one ACKed cwnd of data adds that much.
	b.probeUpCnt = max(b.cwnd/b.mss>>b.bwProbeUpRounds, 1)
	b.bwProbeUpRounds = min(b.bwProbeUpRounds+1, 30)
}

// probeInflightHiUpward grows inflight_hi during UP, exponentially per
// round, while cwnd is what limits the flow.
func (b *bbr) probeInflightHiUpward(a bbrAck) {
	if !a.cwndLimited || b.cwnd < b.inflightHi {
		return
	}
	b.bwProbeUpAcks += b.rs.newlyAcked // bytes; probeUpCnt is in segments
	if per := b.probeUpCnt * b.mss; b.bwProbeUpAcks >= per {
		delta := b.bwProbeUpAcks / per
		b.bwProbeUpAcks -= delta * per
		b.inflightHi = min(b.inflightHi+delta*b.mss, bbrInf-1)
	}
	if b.roundStart {
		b.raiseInflightHiSlope()
	}
}

// updateMinRTT keeps the windowed minimum RTT (10 s) and the shorter
// window (5 s) whose expiry calls for ProbeRTT.
func (b *bbr) updateMinRTT(a bbrAck) {
	b.probeRTTExpired = a.now > b.probeRTTMinStamp+bbrProbeRTTInterval
	if r := b.rs.rtt; r >= 0 && (r < b.probeRTTMinDelay || b.probeRTTMinDelay <= 0 || b.probeRTTExpired) {
		b.probeRTTMinDelay, b.probeRTTMinStamp = max(r, 1), a.now
	}
	expired := a.now > b.minRTTStamp+bbrMinRTTFilterLen
	if b.probeRTTMinDelay > 0 && (b.probeRTTMinDelay < b.minRTT || b.minRTT <= 0 || expired) {
		b.minRTT, b.minRTTStamp = b.probeRTTMinDelay, b.probeRTTMinStamp
	}
}

func (b *bbr) checkProbeRTT(a bbrAck) {
	if b.mode != bbrProbeRTT && b.probeRTTExpired && !b.idleRestart {
		b.enter(bbrProbeRTT, 1, bbrProbeRTTCwndGain)
		b.saveCwnd()
		b.probeRTTDoneAt = 0
		b.ackPhase = acksProbeStopping
		b.startRound()
	}
	if b.mode == bbrProbeRTT {
		b.handleProbeRTT(a)
	}
	if b.rs.delivered > 0 {
		b.idleRestart = false
	}
}

func (b *bbr) handleProbeRTT(a bbrAck) {
	// Samples while the flight is held low say nothing of the capacity.
	b.rate.markAppLimited(a.inFlight)
	switch {
	case b.probeRTTDoneAt == 0 && a.inFlight <= b.probeRTTCwnd():
		b.probeRTTDoneAt = a.now + bbrProbeRTTDuration
		b.probeRTTRoundEnd = false
		b.startRound()
	case b.probeRTTDoneAt != 0:
		if b.roundStart {
			b.probeRTTRoundEnd = true
		}
		if b.probeRTTRoundEnd && a.now > b.probeRTTDoneAt {
			b.probeRTTMinStamp = a.now
			b.restoreCwnd()
			b.exitProbeRTT(a)
		}
	}
}

func (b *bbr) exitProbeRTT(a bbrAck) {
	b.resetLowerBounds()
	if b.fullBwReached {
		b.startProbeBWDown(a)
		b.startProbeBWCruise()
	} else {
		b.enter(bbrStartup, bbrStartupPacingGain, bbrStartupCwndGain)
	}
}

// bdpMultiple returns gain times the estimated bandwidth-delay product;
// the initial window while no RTT is known.
func (b *bbr) bdpMultiple(gain float64) int {
	if b.minRTT <= 0 || b.bw <= 0 {
		return initialWindow(b.mss)
	}
	return int(gain * b.bw * b.minRTT.Seconds())
}

// quantizationBudget adds what pacing in quanta and delayed ACKs hold
// back to a target flight.
func (b *bbr) quantizationBudget(inflight int) int {
	inflight = max(inflight, 3*b.sendQuantum, b.minPipeCwnd())
	if b.mode == bbrProbeBWUp {
		inflight += 2 * b.mss
	}
	return inflight
}

// inflight is the target flight at gain times the bandwidth.
func (b *bbr) inflight(gain float64) int { return b.quantizationBudget(b.bdpMultiple(gain)) }

func (b *bbr) minPipeCwnd() int { return 4 * b.mss }

func (b *bbr) targetInflight() int { return min(b.bdpMultiple(1), b.cwnd) }

func (b *bbr) inflightWithHeadroom() int {
	if b.inflightHi == bbrInf {
		return bbrInf
	}
	headroom := max(b.mss, int(bbrHeadroom*float64(b.inflightHi)))
	return max(b.inflightHi-headroom, b.minPipeCwnd())
}

func (b *bbr) probeRTTCwnd() int {
	return max(b.bdpMultiple(bbrProbeRTTCwndGain), b.minPipeCwnd())
}

// setPacingRate paces at gain times the bandwidth, less a margin; before
// the pipe is full it never lowers the rate.
func (b *bbr) setPacingRate(gain float64) {
	if b.bw <= 0 {
		return
	}
	rate := gain * b.bw * (1 - bbrPacingMargin)
	if b.fullBwReached || rate > b.pacingRate {
		b.pacingRate = rate
	}
}

// setSendQuantum sizes the bursts pacing allows: a millisecond at the
// pacing rate, between two segments and 64 KiB.
func (b *bbr) setSendQuantum() {
	b.sendQuantum = min(max(int(b.pacingRate/1000), 2*b.mss), 64<<10)
}

func (b *bbr) setCwnd(a bbrAck) {
	b.maxInflight = b.quantizationBudget(b.bdpMultiple(b.cwndGain) + b.extraAcked)
	if b.inLoss {
		// After an RTO: grow from one segment by what is delivered,
		// as slow start would.
		b.cwnd += b.rs.newlyAcked
	} else {
		if b.rs.newlyLost > 0 {
			b.cwnd = max(b.cwnd-b.rs.newlyLost, b.mss)
		}
		if b.packetConservation {
			b.cwnd = max(b.cwnd, a.inFlight+b.rs.newlyAcked)
		} else {
			switch {
			case b.fullBwReached:
				b.cwnd = min(b.cwnd+b.rs.newlyAcked, b.maxInflight)
			case b.cwnd < b.maxInflight || b.rate.delivered < int64(initialWindow(b.mss)):
				b.cwnd += b.rs.newlyAcked
			}
			b.cwnd = max(b.cwnd, b.minPipeCwnd())
		}
	}
	if b.mode == bbrProbeRTT {
		b.cwnd = min(b.cwnd, b.probeRTTCwnd())
	}
	limit := bbrInf
	switch {
	case b.inProbeBW() && b.mode != bbrProbeBWCruise:
		limit = b.inflightHi
	case b.mode == bbrProbeRTT || b.mode == bbrProbeBWCruise:
		limit = b.inflightWithHeadroom()
	}
	limit = max(min(limit, b.inflightLo), b.minPipeCwnd())
	b.cwnd = min(b.cwnd, limit, 1<<30)
}

// Pacing. A send of n bytes moves nextSend on by n at the pacing rate;
// a send is held while nextSend is in the future. nextSend never lags
// now by more than a send quantum or bbrPacingSlack, whichever is
// longer, so a sender that paused may send that much at once, not the
// backlog of its pause.
//
// The slack is for the shell's timer, which wakes the sender late by
// some amount under load: without it the time lost on each wakeup would
// be lost to the rate too, the delivery rate would fall below the pacing
// rate, and BBR, whose bandwidth estimate follows the delivery rate,
// would pace slower and slower.

// paceHold reports whether pacing holds a send at now, and arms the
// deadline that ends the hold.
func (b *bbr) paceHold(now time.Duration) bool {
	if b.pacingRate <= 0 || b.nextSend <= now {
		return false
	}
	b.paceAt = tick(b.nextSend) + 1
	return true
}

// paced accounts a send of n bytes at now.
func (b *bbr) paced(now time.Duration, n int) {
	if b.pacingRate <= 0 || n <= 0 {
		return
	}
	burst := max(time.Duration(float64(b.sendQuantum)/b.pacingRate*1e9), bbrPacingSlack)
	b.nextSend = max(b.nextSend, now-burst) + time.Duration(float64(n)/b.pacingRate*1e9)
}

// info returns the model for Conn.Info.
func (b *bbr) info() BBRInfo {
	i := BBRInfo{
		State: b.mode.String(), MinRTT: b.minRTT, PacingRate: b.pacingRate,
		PacingGain: b.pacingGain, CwndGain: b.cwndGain, Rounds: b.roundCount,
	}
	if !math.IsInf(b.bw, 1) {
		i.Bandwidth = b.bw
	}
	if b.inflightHi != bbrInf {
		i.InflightHi = b.inflightHi
	}
	if b.inflightLo != bbrInf {
		i.InflightLo = b.inflightLo
	}
	return i
}

// The connection's hooks. A connection uses BBR when its congestion
// control is one; the check is a comparison of the interface's type, so
// the Conn carries no field for it.

func (c *Conn) bbr() *bbr {
	b, _ := c.cc.(*bbr)
	return b
}

// bbrSent notes a data segment [start, end) sent at now; retrans when it
// is a retransmission of the record whose last transmission was at prev.
func (c *Conn) bbrSent(now time.Time, start, end Seq, retrans bool, prev time.Duration) {
	b := c.bbr()
	if b == nil {
		return
	}
	t := c.sinceEpoch(now)
	if !b.initDone {
		b.init(t, c.rtt.srtt, uint64(c.iss))
	}
	if retrans {
		b.rate.supersede(prev, start)
	}
	b.rate.onSend(t, start, end, c.pipe(), retrans)
	b.paced(t, int(end.Sub(start)))
}

// bbrDelivered counts a record the peer now holds.
func (c *Conn) bbrDelivered(now time.Time, s *txSeg) {
	if b := c.bbr(); b != nil {
		b.rate.onDelivered(c.sinceEpoch(now), s.sent, s.start, s.len())
	}
}

// bbrLost counts a record deemed lost.
func (c *Conn) bbrLost(s *txSeg) {
	if b := c.bbr(); b != nil {
		p := b.rate.onLost(s.sent, s.start, s.len())
		b.onLost(b.rate.deliveredTime, s, p, c.pipe())
	}
}

// bbrAckDone runs BBR's update once an ACK is processed.
func (c *Conn) bbrAckDone(now time.Time) {
	b := c.bbr()
	if b == nil {
		return
	}
	if b.inLoss && !c.inLoss {
		b.inLoss = false
		b.restoreCwnd()
	}
	b.onAck(bbrAck{now: c.sinceEpoch(now), inFlight: c.pipe(), cwndLimited: c.cwndLimited, srtt: c.rtt.srtt, seed: uint64(c.iss)})
	if c.txq.n == 0 {
		b.rate.clear()
	}
}

// bbrAppLimited notes that the sender has nothing to send.
func (c *Conn) bbrAppLimited() {
	if b := c.bbr(); b != nil && c.pipe() < b.cwnd {
		b.rate.markAppLimited(c.pipe())
	}
}

// bbrPaceHold reports whether pacing holds the next send.
func (c *Conn) bbrPaceHold(now time.Time) bool {
	b := c.bbr()
	return b != nil && b.paceHold(c.sinceEpoch(now))
}

// bbrPaceDeadline returns the pacing deadline, 0 if none.
func (c *Conn) bbrPaceDeadline() tick {
	if b := c.bbr(); b != nil {
		return b.paceAt
	}
	return 0
}
