package tcp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
)

// BBR on the simulator's virtual clock. Payload capacity of a 12.5 MB/s
// (100 Mbit/s) bottleneck: the simulator serializes the TCP segment plus
// 40 bytes, so full segments (1448 bytes of payload behind 32 of header
// with timestamps) carry 1448/1520 of the rate.
const simPayloadRate = 12.5e6 * 1448 / 1520 // bytes per second

// lossyLongPath is the path: 100 Mbit/s, 100 ms RTT, a drop-tail
// queue of one BDP at the bottleneck, random loss on the data's way (the
// ACKs' way is clean).
func lossyLongPath(loss float64) (fwd, rev simImpair) {
	fwd = simImpair{Delay: 50 * time.Millisecond, Rate: 12.5e6, Queue: 100 * time.Millisecond, Loss: loss}
	rev = simImpair{Delay: 50 * time.Millisecond}
	return fwd, rev
}

// simBulk starts an endless transfer from end 0 to end 1 over fwd (rev
// for the ACKs) with the congestion control newCC.
func simBulk(tb testing.TB, seed uint64, fwd, rev simImpair, newCC func(int) CongestionControl) *sim {
	s := newSim(tb, seed, fwd, &Config{NewCC: newCC}, 1000, 2000)
	s.link[1] = rev
	s.ends[0].total = 1 << 40
	s.ends[0].conn.Connect(s.now)
	return s
}

// runUntil drives the simulation until virtual time t since its start.
func (s *sim) runUntil(t time.Duration) {
	deadline := s.start.Add(t)
	for {
		if _, err := s.apps(); err != nil {
			s.tb.Fatalf("seed %d: %v", s.seed, err)
		}
		next, err := s.next()
		if err != nil {
			s.tb.Fatalf("seed %d: %v", s.seed, err)
		}
		if next.After(deadline) {
			s.now = deadline
			return
		}
		s.advance(next)
	}
}

func mbits(bytes int64, d time.Duration) float64 { return float64(bytes) * 8 / d.Seconds() / 1e6 }

// TestBBRLossyLongPath is the must-show: on 100 Mbit/s with a
// 100 ms RTT and 1 % random loss, BBR keeps most of the path busy (the
// loss is below its 2 % threshold), while CUBIC, which takes every loss
// for congestion, gets a few Mbit/s. Three seeds (one under the race
// detector), 20 s each.
func TestBBRLossyLongPath(t *testing.T) {
	const d = 20 * time.Second
	capacity := simPayloadRate * 8 / 1e6
	var sum float64
	seeds := []uint64{1, 2, 3}
	if raceEnabled {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		seed = simSeed(seed)
		var goodput [2]float64
		for i, newCC := range []func(int) CongestionControl{NewBBR, NewCubic} {
			fwd, rev := lossyLongPath(0.01)
			s := simBulk(t, seed, fwd, rev, newCC)
			s.runUntil(d)
			if s.ends[0].err != nil || s.ends[1].err != nil {
				t.Fatalf("seed %d: %v / %v", seed, s.ends[0].err, s.ends[1].err)
			}
			goodput[i] = mbits(s.ends[1].recvd, d)
			if b := s.ends[0].conn.bbr(); b != nil {
				// The side table holds about a note per segment in flight.
				if n, limit := b.rate.live(), 4*s.ends[0].conn.txq.n+64; n > limit {
					t.Errorf("seed %d: %d rate notes for %d records in flight", seed, n, s.ends[0].conn.txq.n)
				}
			}
		}
		t.Logf("seed %d: BBR %5.1f Mbit/s, CUBIC %4.1f Mbit/s over %v (BBR/CUBIC %.0fx)", seed, goodput[0], goodput[1], d, goodput[0]/goodput[1])
		sum += goodput[0]
		if goodput[1] > 0.1*capacity {
			t.Errorf("seed %d: CUBIC %.1f Mbit/s; loss should hold it far below the path's %.1f", seed, goodput[1], capacity)
		}
		if r := goodput[0] / goodput[1]; r < 3 {
			t.Errorf("seed %d: BBR/CUBIC = %.1f, want at least 3", seed, r)
		}
	}
	if mean := sum / float64(len(seeds)); mean < 0.5*capacity {
		t.Errorf("BBR: %.1f Mbit/s on average, want at least half of %.1f", mean, capacity)
	}
}

// TestBBRStartupPlateau: on a clean path with a deep buffer (no loss),
// Startup ends because the bandwidth stops growing, a few rounds after
// the pipe is full, with the bottleneck's rate as its estimate; Drain then
// empties the queue Startup built, so the RTT returns to the path's.
func TestBBRStartupPlateau(t *testing.T) {
	fwd, rev := lossyLongPath(0)
	fwd.Queue = 300 * time.Millisecond // deeper than Startup's overshoot: no loss
	s := simBulk(t, simSeed(22), fwd, rev, NewBBR)
	var filled uint64 // the round in which the estimate first reached 90 % of the rate
	for ms := 10; ms <= 4000; ms += 10 {
		s.runUntil(time.Duration(ms) * time.Millisecond)
		b := s.ends[0].conn.bbr()
		if b != nil && filled == 0 && b.maxBw >= 0.9*simPayloadRate {
			filled = b.roundCount
		}
	}
	c := s.ends[0].conn
	b := c.bbr()
	t.Logf("full in round %d, Startup ended in round %d (loss: %v), max bw %.1f Mbit/s, state %v, srtt %v, entered %v, retransmits %d",
		filled, b.startupRound, b.startupLoss, b.maxBw*8/1e6, b.mode, c.rtt.srtt, b.entered, c.Stats().Retransmits)
	switch {
	case !b.fullBwReached || b.startupLoss:
		t.Fatalf("Startup did not end on the plateau (full %v, on loss %v)", b.fullBwReached, b.startupLoss)
	case filled == 0 || b.startupRound < filled || b.startupRound > filled+bbrFullBwCount+1:
		t.Errorf("Startup ended in round %d; the pipe was full in round %d", b.startupRound, filled)
	case b.maxBw < 0.95*simPayloadRate || b.maxBw > 1.05*simPayloadRate:
		t.Errorf("bandwidth estimate %.1f Mbit/s, want the bottleneck's %.1f", b.maxBw*8/1e6, simPayloadRate*8/1e6)
	case b.entered[bbrDrain] != 1 || !b.inProbeBW():
		t.Errorf("entered %v, now %v: want one Drain, then ProbeBW", b.entered, b.mode)
	case c.Stats().Retransmits != 0:
		t.Errorf("%d retransmissions with a buffer deeper than Startup's queue", c.Stats().Retransmits)
	case c.rtt.srtt > 110*time.Millisecond:
		t.Errorf("srtt %v after Drain, want the path's 100 ms (the queue drained)", c.rtt.srtt)
	}
}

// TestBBRProbeRTT: every five seconds without a lower RTT sample, BBR
// holds its flight at half the BDP for at least 200 ms and a round, then
// returns to ProbeBW with its window restored.
func TestBBRProbeRTT(t *testing.T) {
	fwd, rev := lossyLongPath(0)
	s := simBulk(t, simSeed(23), fwd, rev, NewBBR)
	var (
		inProbe            bool
		start, longest     time.Duration
		maxPipe, cwndAfter int
		probes             int
	)
	for ms := 5; ms <= 12000; ms += 5 {
		now := time.Duration(ms) * time.Millisecond
		s.runUntil(now)
		c := s.ends[0].conn
		b := c.bbr()
		if b == nil {
			continue
		}
		switch {
		case b.mode == bbrProbeRTT && !inProbe:
			inProbe, start = true, now
			probes++
		case b.mode == bbrProbeRTT && b.probeRTTDoneAt != 0:
			maxPipe = max(maxPipe, c.pipe()) // once the flight has come down
		case b.mode != bbrProbeRTT && inProbe:
			inProbe = false
			longest = max(longest, now-start)
			cwndAfter = b.cwnd
		}
	}
	b := s.ends[0].conn.bbr()
	payload := simPayloadRate
	bdp := int(payload / 10)
	t.Logf("%d ProbeRTTs, longest %v, flight in them at most %d (BDP %d), cwnd after %d, entered %v",
		probes, longest, maxPipe, bdp, cwndAfter, b.entered)
	switch {
	case probes < 2:
		t.Fatalf("%d ProbeRTTs in 12 s, want one every 5 s", probes)
	case maxPipe > bdp/2+4*s.ends[0].conn.mss:
		t.Errorf("flight %d during ProbeRTT, want at most half the BDP (%d)", maxPipe, bdp/2)
	case longest < bbrProbeRTTDuration:
		t.Errorf("ProbeRTT lasted %v, want at least %v", longest, bbrProbeRTTDuration)
	case longest > bbrProbeRTTDuration+500*time.Millisecond:
		t.Errorf("ProbeRTT lasted %v", longest)
	case cwndAfter < bdp:
		t.Errorf("cwnd %d after ProbeRTT, want it restored above the BDP %d", cwndAfter, bdp)
	}
}

// TestBBRPacing: the sender never emits faster than its pacing rate
// allows (with a burst of a send quantum or the slack for late timers):
// over every 10 ms, even as cwnd comes back after ProbeRTT, which an
// unpaced sender would fill in one burst.
func TestBBRPacing(t *testing.T) {
	fwd, rev := lossyLongPath(0)
	s := simBulk(t, simSeed(24), fwd, rev, NewBBR)
	const win = 10 * time.Millisecond
	var (
		from     = 3 * time.Second
		windows  = map[int64]int{}
		maxRate  float64
		maxBurst int
	)
	s.drop = func(from0 int, seg *Segment) bool {
		at := s.now.Sub(s.start)
		if from0 == 0 && at >= from {
			windows[int64(at/win)] += len(seg.Payload)
			if b := s.ends[0].conn.bbr(); b != nil {
				maxRate = max(maxRate, b.pacingRate)
				maxBurst = max(maxBurst, b.sendQuantum)
			}
		}
		return false
	}
	s.runUntil(12 * time.Second)
	most := 0
	for _, n := range windows {
		most = max(most, n)
	}
	burst := max(maxBurst, int(maxRate*bbrPacingSlack.Seconds()))
	limit := int(maxRate*win.Seconds()) + burst + s.ends[0].conn.mss
	t.Logf("most sent in %v: %d bytes; pacing allows %d (rate up to %.1f Mbit/s, burst %d); ProbeRTTs %d",
		win, most, limit, maxRate*8/1e6, burst, s.ends[0].conn.bbr().entered[bbrProbeRTT])
	if s.ends[0].conn.bbr().entered[bbrProbeRTT] == 0 {
		t.Fatal("no ProbeRTT in the window")
	}
	if most > limit {
		t.Errorf("%d bytes sent in %v, pacing allows %d", most, win, limit)
	}
}

// TestBBRPaceDeadline: a send that pacing holds is one of the
// connection's deadlines, so the shell's one timer wakes it (the engine
// needs no timer of its own for pacing).
func TestBBRPaceDeadline(t *testing.T) {
	fwd, rev := lossyLongPath(0)
	s := simBulk(t, simSeed(27), fwd, rev, NewBBR)
	holds := 0
	for ms := 1; ms <= 3000; ms++ {
		s.runUntil(time.Duration(ms) * time.Millisecond)
		c := s.ends[0].conn
		b := c.bbr()
		if b == nil || b.paceAt == 0 || !c.timeOf(b.paceAt).After(s.now) {
			continue
		}
		holds++
		if d := c.NextDeadline(); d.IsZero() || d.After(c.timeOf(b.paceAt)) {
			t.Fatalf("at %v pacing holds until %v, but NextDeadline is %v", s.now.Sub(s.start), c.timeOf(b.paceAt).Sub(s.start), d)
		}
	}
	t.Logf("pacing held a send at %d of 3000 millisecond steps", holds)
	if holds == 0 {
		t.Fatal("pacing never held a send")
	}
}

// TestBBRTransfers: BBR moves data intact both ways through the
// simulator's worst: loss, duplication, reordering and corruption,
// selected by Config and switched to by SetCC in the middle.
func TestBBRTransfers(t *testing.T) {
	for i, loss := range []float64{0, 0.05, 0.2} {
		seed := simSeed(uint64(250 + i))
		imp := simImpair{
			Delay: 5 * time.Millisecond, Rate: 125e6, Loss: loss,
			Dup: 0.01, Reorder: 0.02, Jitter: 3 * time.Millisecond, Corrupt: 0.005,
		}
		s := simTransfer(t, seed, imp, &Config{NewCC: NewBBR}, 4<<20, Seq(0xFFFFFFFF-1000), 7)
		t.Logf("loss %g%%: %v virtual", loss*100, s.lastData.Sub(s.start).Round(time.Millisecond))
	}
	// SetCC mid-stream, on a clean path.
	s := newSim(t, simSeed(260), simImpair{Delay: 2 * time.Millisecond, Rate: 12.5e6}, nil, 1, 2)
	s.ends[0].total, s.ends[1].total = 8<<20, 1<<20
	s.ends[0].conn.Connect(s.now)
	s.runUntil(200 * time.Millisecond)
	s.ends[0].conn.SetCC(NewBBR)
	if s.ends[0].conn.bbr() == nil {
		t.Fatal("SetCC(NewBBR) did not select BBR")
	}
	if err := s.run(time.Hour); err != nil || s.ends[1].recvd != 8<<20 || s.ends[0].recvd != 1<<20 {
		t.Fatalf("after SetCC: %v, received %d and %d", err, s.ends[1].recvd, s.ends[0].recvd)
	}
}

// TestRateSampler checks delivery-rate samples against a hand-made
// flight: ten segments sent 1 ms apart, delivered 1 ms apart from 50 ms
// on, give 1000 bytes per ms; an app-limited flight gives samples that
// say so.
func TestRateSampler(t *testing.T) {
	var r rateSampler
	ms := time.Millisecond
	for i := 0; i < 10; i++ {
		r.onSend(time.Duration(i)*ms, Seq(i*1000), Seq(i*1000+1000), i*1000, false)
	}
	for i := 0; i < 10; i++ {
		r.onDelivered(50*ms+time.Duration(i)*ms, time.Duration(i)*ms, Seq(i*1000), 1000)
		rs := r.sample(0, 10*ms)
		if i == 0 {
			// The first ACK covers no interval yet: 1000 bytes over the
			// 50 ms since the flight started.
			if rs.delivered != 1000 || rs.rtt != 50*ms {
				t.Fatalf("first sample %+v", rs)
			}
			continue
		}
		want := float64(i*1000+1000) / (50*ms + time.Duration(i)*ms).Seconds()
		if rs.deliveryRate < want*0.999 || rs.deliveryRate > want*1.001 || rs.txInFlight != (i+1)*1000 {
			t.Fatalf("sample %d: rate %.0f, want %.0f; %+v", i, rs.deliveryRate, want, rs)
		}
	}
	if r.live() != 0 {
		t.Fatalf("%d notes left after everything was delivered", r.live())
	}
	// Short of data: the next flight's samples are app-limited until it
	// is delivered.
	r.markAppLimited(0)
	r.onSend(100*ms, 10000, 11000, 0, false)
	r.onDelivered(150*ms, 100*ms, 10000, 1000)
	if rs := r.sample(0, 10*ms); !rs.appLimited {
		t.Fatalf("sample %+v not app-limited", rs)
	}
	r.onSend(160*ms, 11000, 12000, 0, false)
	r.onDelivered(210*ms, 160*ms, 11000, 1000)
	if rs := r.sample(0, 10*ms); rs.appLimited {
		t.Fatalf("sample %+v still app-limited", rs)
	}
	// A retransmission supersedes the first transmission's note.
	r.onSend(300*ms, 12000, 13000, 0, false)
	r.onLost(300*ms, 12000, 1000)
	r.onSend(400*ms, 12000, 13000, 0, true)
	r.supersede(300*ms, 12000)
	r.onDelivered(450*ms, 400*ms, 12000, 1000)
	if rs := r.sample(0, 10*ms); rs.rtt != -1 || rs.lost != 0 || rs.newlyLost != 1000 {
		t.Fatalf("sample after retransmission %+v", rs)
	}
	if r.live() != 0 {
		t.Fatalf("%d notes left", r.live())
	}
}

// The shared bottleneck: flows from their own client to their own server
// through one drop-tail queue, each with its own congestion control. The
// ACKs come back over a clean path.
type flowSim struct {
	sim
	rate  float64       // bytes per second at the bottleneck
	queue time.Duration // its drop-tail queue, in time at rate
	delay time.Duration // one-way propagation delay
	busy  time.Time
	flows []*simFlow
	ends  []flowEnd
}

type flowEnd struct {
	f      *simFlow
	server bool
	addr   netip.AddrPort
}

type simFlow struct {
	cli, srv *Conn
	lis      *Listener
	start    time.Time
	recvd    int64
	buf      []byte
}

func newFlowSim(tb testing.TB, seed uint64, rate float64, delay, queue time.Duration) *flowSim {
	fs := &flowSim{rate: rate, delay: delay, queue: queue}
	fs.tb, fs.seed = tb, seed
	fs.rnd = newSim(tb, seed, simImpair{}, nil, 0, 0).rnd
	fs.start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fs.now = fs.start
	return fs
}

// addFlow adds a bulk flow with newCC that starts at start.
func (fs *flowSim) addFlow(newCC func(int) CongestionControl, start time.Duration) *simFlow {
	i := len(fs.flows)
	f := &simFlow{start: fs.start.Add(start), buf: make([]byte, 256<<10)}
	cli := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}), 40000)
	srv := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), 80)
	ci, si := len(fs.ends), len(fs.ends)+1
	fs.ends = append(fs.ends, flowEnd{f: f, addr: cli}, flowEnd{f: f, server: true, addr: srv})
	cfg := &Config{NewCC: newCC}
	f.cli = NewConn(cfg, cli, srv, Seq(1000*(i+1)), EmitFunc(func(s *Segment) { fs.send(ci, si, s) }))
	f.lis = NewListener(cfg, srv, 4, fs.rnd)
	fs.flows = append(fs.flows, f)
	return f
}

// send carries a segment from end i to end j: through the bottleneck on
// the data's way, straight back on the ACKs'.
func (fs *flowSim) send(i, j int, seg *Segment) {
	src, dst := fs.ends[i].addr, fs.ends[j].addr
	n := seg.HeaderLen() + len(seg.Payload)
	buf := fs.getBuf(n)
	seg.Encode(buf, checksum.Pseudo(src.Addr(), dst.Addr(), 6, n))
	at := fs.now
	if !fs.ends[i].server {
		if fs.busy.After(at) {
			at = fs.busy
		}
		if at.Sub(fs.now) > fs.queue {
			fs.stats[0].dropped++
			fs.pool = append(fs.pool, buf[:cap(buf)])
			return
		}
		at = at.Add(time.Duration(float64(n+40) / fs.rate * 1e9))
		fs.busy = at
	}
	fs.push(simPacket{at: at.Add(fs.delay), to: j, buf: buf})
}

func (fs *flowSim) deliver(p simPacket) {
	e := fs.ends[p.to]
	from := fs.ends[p.to^1].addr
	seg, err := Parse(p.buf, checksum.Pseudo(from.Addr(), e.addr.Addr(), 6, len(p.buf)))
	if err != nil {
		fs.tb.Fatalf("parse: %v", err)
	}
	f := e.f
	switch {
	case !e.server:
		f.cli.Input(fs.now, &seg)
	case f.srv != nil:
		f.srv.Input(fs.now, &seg)
	default:
		srvIdx := p.to
		if c := f.lis.Input(fs.now, &seg, from, EmitFunc(func(s *Segment) { fs.send(srvIdx, srvIdx^1, s) })); c != nil {
			f.srv = c
			f.lis.Accepted()
		}
	}
	fs.pool = append(fs.pool, p.buf[:cap(p.buf)])
}

// apps writes as much as each client takes and reads what each server has.
func (fs *flowSim) apps() {
	for _, f := range fs.flows {
		if fs.now.Before(f.start) {
			continue
		}
		if f.cli.State() == Closed && f.cli.sndMax == f.cli.iss {
			f.cli.Connect(fs.now)
		}
		f.cli.TakeEvents()
		if f.cli.State() == Established {
			for {
				n, err := f.cli.Write(fs.now, f.buf)
				if err != nil {
					fs.tb.Fatalf("write: %v", err)
				}
				if n < len(f.buf) {
					break
				}
			}
		}
		if f.srv != nil {
			f.srv.TakeEvents()
			for {
				n, _ := f.srv.Read(fs.now, f.buf)
				f.recvd += int64(n)
				if n == 0 {
					break
				}
			}
		}
	}
}

// runUntil drives the flows until virtual time t since the start.
func (fs *flowSim) runUntil(t time.Duration) {
	deadline := fs.start.Add(t)
	for {
		fs.apps()
		next := deadline
		if len(fs.heap) > 0 && fs.heap[0].at.Before(next) {
			next = fs.heap[0].at
		}
		for _, f := range fs.flows {
			for _, c := range []*Conn{f.cli, f.srv} {
				if c != nil {
					if d := c.NextDeadline(); !d.IsZero() && d.Before(next) {
						next = d
					}
				}
			}
			if f.start.After(fs.now) && f.start.Before(next) {
				next = f.start
			}
		}
		if next.After(fs.now) {
			fs.now = next
		}
		if !fs.now.Before(deadline) {
			return
		}
		for len(fs.heap) > 0 && !fs.heap[0].at.After(fs.now) {
			fs.deliver(fs.pop())
			fs.apps()
		}
		for _, f := range fs.flows {
			for _, c := range []*Conn{f.cli, f.srv} {
				if c != nil {
					if d := c.NextDeadline(); !d.IsZero() && !d.After(fs.now) {
						c.Timer(fs.now)
					}
				}
			}
		}
	}
}

// TestBBRSharesWithCubic: a BBR flow and a CUBIC flow share a 50 Mbit/s
// bottleneck with a 40 ms RTT and a one-BDP drop-tail queue. BBR must
// not starve CUBIC (its ProbeBW leaves headroom below inflight_hi and
// backs off on loss above 2 %), and together they keep the link busy.
func TestBBRSharesWithCubic(t *testing.T) {
	const rate, delay = 6.25e6, 20 * time.Millisecond // 50 Mbit/s, 40 ms RTT
	d, from := 30*time.Second, 10*time.Second         // shares are measured after both have settled
	if raceEnabled {
		d, from = 20*time.Second, 8*time.Second
	}
	for _, order := range []string{"cubic first", "bbr first"} {
		fs := newFlowSim(t, simSeed(26), rate, delay, 2*delay)
		var bbrFlow, cubicFlow *simFlow
		if order == "cubic first" {
			cubicFlow = fs.addFlow(NewCubic, 0)
			bbrFlow = fs.addFlow(NewBBR, time.Second)
		} else {
			bbrFlow = fs.addFlow(NewBBR, 0)
			cubicFlow = fs.addFlow(NewCubic, time.Second)
		}
		fs.runUntil(from)
		b0, c0 := bbrFlow.recvd, cubicFlow.recvd
		fs.runUntil(d)
		bb, cb := bbrFlow.recvd-b0, cubicFlow.recvd-c0
		total := float64(bb + cb)
		capacity := rate * 1448 / 1520 * (d - from).Seconds()
		t.Logf("%s: BBR %.1f Mbit/s (%.0f %%), CUBIC %.1f Mbit/s (%.0f %%), link %.0f %% busy, %d drops",
			order, mbits(bb, d-from), 100*float64(bb)/total, mbits(cb, d-from), 100*float64(cb)/total,
			100*total/capacity, fs.stats[0].dropped)
		if float64(cb) < 0.1*total {
			t.Errorf("%s: CUBIC got %.0f %% of the link", order, 100*float64(cb)/total)
		}
		if float64(bb) < 0.1*total {
			t.Errorf("%s: BBR got %.0f %% of the link", order, 100*float64(bb)/total)
		}
		if total < 0.8*capacity {
			t.Errorf("%s: the flows used %.0f %% of the link", order, 100*total/capacity)
		}
	}
}
