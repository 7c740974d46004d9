package tcp

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
)

// The simulator: two TCP machines joined by a simulated link with a virtual
// clock, a propagation delay, a bandwidth with a drop-tail queue, and
// seeded loss, reordering, duplication and corruption. Every random choice
// comes from one PCG seeded by the test, so a failure replays exactly from
// its seed (TCPSIM_SEED=n go test -run ...).

// simImpair describes one direction of the link.
type simImpair struct {
	Delay    time.Duration // one-way propagation delay
	Rate     float64       // bytes per second; 0: unlimited
	Queue    time.Duration // drop-tail queue, in time at Rate; 0: 50 ms
	Loss     float64       // probability a frame is dropped
	Dup      float64       // probability a frame is delivered twice
	Reorder  float64       // probability a frame is held back
	Jitter   time.Duration // how long a reordered frame is held at most
	Corrupt  float64       // probability one bit of the frame flips
	LossBoth bool          // unused; keeps the struct comparable in tables
}

type simPacket struct {
	at  time.Time
	id  uint64
	to  int
	buf []byte
	ecn uint8 // the IP header's ECN field
}

type simStats struct {
	frames, bytes, dropped, dup, reordered, corrupted, badParse, zeroWnd uint64
}

// simEnd is one endpoint: a machine plus a tiny application that writes a
// seeded byte stream and checks the one it reads.
type simEnd struct {
	s      *sim
	idx    int
	addr   netip.AddrPort
	conn   *Conn
	lis    *Listener
	emit   func(*Segment)
	pseudo uint32

	total    int64 // bytes to send
	sent     int64
	recvd    int64
	wantRecv int64
	outPat   []byte // the stream we send repeats this (prime length)
	inPat    []byte // the stream we expect
	rbuf     []byte
	wrClosed bool
	eof      bool

	readPeriod time.Duration // a slow reader: reads only this often (0: at once)
	nextRead   time.Time
	closed     bool
	done       bool // EvClosed seen
	err        error
}

type sim struct {
	tb    testing.TB
	seed  uint64
	rnd   *rand.Rand
	now   time.Time
	start time.Time
	heap  []simPacket
	ids   uint64
	pool  [][]byte
	link  [2]simImpair // link[i] carries frames from end i
	busy  [2]time.Time
	ends  [2]*simEnd
	stats [2]simStats
	trace bool
	drop  func(from int, seg *Segment) bool          // a deterministic drop, before the random ones
	delay func(from int, seg *Segment) time.Duration // extra delay for one frame (reordering)
	mark  func(from int, seg *Segment) bool          // mark the frame CE (an AQM), after the drops

	lastData time.Time // when the last payload byte was delivered
}

const simPatLen = 1048573 // a prime, so the pattern never lines up with windows or rings

func simSeed(def uint64) uint64 {
	if v := os.Getenv("TCPSIM_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err == nil {
			return n
		}
	}
	return def
}

func newSim(tb testing.TB, seed uint64, imp simImpair, cfg *Config, isnA, isnB Seq) *sim {
	s := &sim{tb: tb, seed: seed, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s.start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = s.start
	s.link = [2]simImpair{imp, imp}
	addrA := netip.MustParseAddrPort("198.18.0.1:40000")
	addrB := netip.MustParseAddrPort("198.18.0.2:80")
	for i := range s.ends {
		e := &simEnd{s: s, idx: i, rbuf: make([]byte, 64<<10)}
		e.emit = func(seg *Segment) { s.send(e.idx, seg) }
		s.ends[i] = e
	}
	s.ends[0].addr, s.ends[1].addr = addrA, addrB
	for i, e := range s.ends {
		e.outPat = make([]byte, simPatLen)
		r := rand.New(rand.NewPCG(seed, uint64(i)+1))
		for j := 0; j < len(e.outPat); j += 8 {
			v := r.Uint64()
			for k := j; k < min(j+8, len(e.outPat)); k++ {
				e.outPat[k] = byte(v)
				v >>= 8
			}
		}
	}
	s.ends[0].inPat, s.ends[1].inPat = s.ends[1].outPat, s.ends[0].outPat
	s.ends[0].conn = NewConn(cfg, addrA, addrB, isnA, EmitFunc(s.ends[0].emit))
	s.ends[1].lis = NewListener(cfg, addrB, 16, s.rnd)
	s.ends[1].lis.ISN = func(_, _ netip.AddrPort, _ time.Time) Seq { return isnB }
	return s
}

func (s *sim) getBuf(n int) []byte {
	if k := len(s.pool); k > 0 && cap(s.pool[k-1]) >= n {
		b := s.pool[k-1]
		s.pool = s.pool[:k-1]
		return b[:n]
	}
	return make([]byte, n, max(n, 2048))
}

// send puts one segment from end i on the wire, through the impairments.
func (s *sim) send(i int, seg *Segment) {
	src, dst := s.ends[i].addr.Addr(), s.ends[1-i].addr.Addr()
	n := seg.HeaderLen() + len(seg.Payload)
	buf := s.getBuf(n)
	seg.Encode(buf, checksum.Pseudo(src, dst, 6, n))
	if s.trace {
		s.tb.Logf("%8.3fms %d→ %v", float64(s.now.Sub(s.start))/1e6, i, *seg)
	}
	st := &s.stats[i]
	st.frames++
	if seg.Wnd == 0 && seg.Flags&FlagRST == 0 {
		st.zeroWnd++
	}
	st.bytes += uint64(len(seg.Payload))
	l := &s.link[i]
	if (s.drop != nil && s.drop(i, seg)) || (l.Loss > 0 && s.rnd.Float64() < l.Loss) {
		st.dropped++
		s.pool = append(s.pool, buf[:cap(buf)])
		return
	}
	// Serialization at Rate behind a drop-tail queue.
	dep := s.now
	if l.Rate > 0 {
		if s.busy[i].After(dep) {
			dep = s.busy[i]
		}
		q := l.Queue
		if q == 0 {
			q = 50 * time.Millisecond
		}
		if dep.Sub(s.now) > q {
			st.dropped++
			s.pool = append(s.pool, buf[:cap(buf)])
			return
		}
		dep = dep.Add(time.Duration(float64(n+40) / l.Rate * 1e9))
		s.busy[i] = dep
	}
	at := dep.Add(l.Delay)
	ecn := seg.ECN
	if s.mark != nil && s.mark(i, seg) {
		ecn = CE
	}
	if l.Corrupt > 0 && s.rnd.Float64() < l.Corrupt {
		st.corrupted++
		bit := s.rnd.IntN(n * 8)
		buf[bit/8] ^= 1 << (bit % 8)
	}
	if s.delay != nil {
		at = at.Add(s.delay(i, seg))
	}
	if l.Reorder > 0 && s.rnd.Float64() < l.Reorder {
		st.reordered++
		at = at.Add(time.Duration(s.rnd.Int64N(int64(l.Jitter) + 1)))
	}
	if l.Dup > 0 && s.rnd.Float64() < l.Dup {
		st.dup++
		b2 := s.getBuf(n)
		copy(b2, buf)
		s.push(simPacket{at: at.Add(time.Duration(s.rnd.Int64N(int64(time.Millisecond)))), to: 1 - i, buf: b2, ecn: ecn})
	}
	s.push(simPacket{at: at, to: 1 - i, buf: buf, ecn: ecn})
}

func (s *sim) less(a, b int) bool {
	pa, pb := &s.heap[a], &s.heap[b]
	if !pa.at.Equal(pb.at) {
		return pa.at.Before(pb.at)
	}
	return pa.id < pb.id
}

func (s *sim) push(p simPacket) {
	s.ids++
	p.id = s.ids
	s.heap = append(s.heap, p)
	for i := len(s.heap) - 1; i > 0; {
		up := (i - 1) / 2
		if !s.less(i, up) {
			break
		}
		s.heap[i], s.heap[up] = s.heap[up], s.heap[i]
		i = up
	}
}

func (s *sim) pop() simPacket {
	p := s.heap[0]
	last := len(s.heap) - 1
	s.heap[0] = s.heap[last]
	s.heap = s.heap[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && s.less(l, m) {
			m = l
		}
		if r < last && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s.heap[i], s.heap[m] = s.heap[m], s.heap[i]
		i = m
	}
	return p
}

// deliver parses a frame at its destination and hands it to the machine.
func (s *sim) deliver(p simPacket) {
	e := s.ends[p.to]
	src := s.ends[1-p.to].addr
	seg, err := Parse(p.buf, checksum.Pseudo(src.Addr(), e.addr.Addr(), 6, len(p.buf)))
	seg.ECN = p.ecn
	if err != nil {
		s.stats[p.to].badParse++
	} else if e.conn != nil && e.conn.State() != Closed {
		e.conn.Input(s.now, &seg)
	} else if e.lis != nil && (e.conn == nil || e.conn.ReopenedBy() || e.done) {
		if c := e.lis.Input(s.now, &seg, src, EmitFunc(e.emit)); c != nil {
			e.conn = c
			e.done = false
			e.lis.Accepted()
		}
	} else if e.conn != nil {
		e.conn.Input(s.now, &seg) // CLOSED: answers with a RST
	}
	s.pool = append(s.pool, p.buf[:cap(p.buf)])
}

// app runs the endpoint's application: write until the buffer is full,
// read and check everything available, close when both directions are done.
func (e *simEnd) app() {
	c := e.conn
	if c == nil {
		return
	}
	now := e.s.now
	ev := c.TakeEvents()
	if ev&EvClosed != 0 {
		e.done = true
		if err := c.Err(); err != nil && e.err == nil {
			e.err = err
		}
	}
	if c.State() < Established && c.State() != Closed {
		return
	}
	for e.sent < e.total && !e.wrClosed {
		off := int(e.sent % simPatLen)
		chunk := e.outPat[off:min(simPatLen, off+int(min(e.total-e.sent, 1<<20)))]
		n, err := c.Write(now, chunk)
		if err != nil {
			if e.err == nil {
				e.err = err
			}
			break
		}
		e.sent += int64(n)
		if n < len(chunk) {
			break
		}
	}
	if e.sent == e.total && !e.wrClosed && c.State() >= Established {
		e.wrClosed = true
		c.CloseWrite(now)
	}
	if e.readPeriod > 0 {
		if now.Before(e.nextRead) {
			return
		}
		e.nextRead = now.Add(e.readPeriod)
	}
	for !e.eof {
		n, err := c.Read(now, e.rbuf)
		if n > 0 {
			e.check(e.rbuf[:n])
		}
		if err == io.EOF {
			e.eof = true
		} else if err != nil {
			if e.err == nil {
				e.err = err
			}
			break
		}
		if n == 0 {
			break
		}
	}
	if e.eof && e.wrClosed && !e.closed {
		e.closed = true
		c.Close(now)
	}
	if ev2 := c.TakeEvents(); ev2&EvClosed != 0 {
		e.done = true
		if err := c.Err(); err != nil && e.err == nil {
			e.err = err
		}
	}
}

// check compares received bytes with the expected stream.
func (e *simEnd) check(p []byte) {
	for len(p) > 0 {
		off := int(e.recvd % simPatLen)
		k := min(len(p), simPatLen-off)
		if !bytes.Equal(p[:k], e.inPat[off:off+k]) {
			if e.err == nil {
				e.err = fmt.Errorf("end %d: data differs from the stream at offset %d", e.idx, e.recvd)
			}
			return
		}
		e.recvd += int64(k)
		p = p[k:]
		e.s.lastData = e.s.now
	}
}

// run drives the simulation until both ends are closed, the virtual clock
// passes limit, or something fails.
func (s *sim) run(limit time.Duration) error {
	s.ends[0].conn.Connect(s.now)
	deadline := s.start.Add(limit)
	for {
		if done, err := s.apps(); done || err != nil {
			return err
		}
		next, err := s.next()
		if err != nil {
			return err
		}
		if next.After(deadline) {
			return s.timeLimit(limit)
		}
		s.advance(next)
	}
}

// apps runs both applications and reports whether both ends are done.
func (s *sim) apps() (bool, error) {
	for _, e := range s.ends {
		e.app()
		if e.err != nil {
			return false, e.err
		}
	}
	return s.ends[0].done && s.ends[1].done && s.ends[0].eof && s.ends[1].eof, nil
}

// next returns the time of the next event: a frame arriving, a deadline
// of a connection, a slow reader's next read. Nothing pending is an error.
func (s *sim) next() (time.Time, error) {
	var next time.Time
	if len(s.heap) > 0 {
		next = s.heap[0].at
	}
	for _, e := range s.ends {
		if e.conn == nil {
			continue
		}
		if d := e.conn.NextDeadline(); !e.done && !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
		// A slow reader reads on after its connection closed: the
		// data that arrived before the FIN is still to be read.
		if d := e.nextRead; e.readPeriod > 0 && !e.eof && d.After(s.now) && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	if next.IsZero() {
		return next, fmt.Errorf("stuck at %v: nothing in flight, no timer; states %v/%v, recvd %d/%d",
			s.now.Sub(s.start), s.state(0), s.state(1), s.ends[0].recvd, s.ends[1].recvd)
	}
	return next, nil
}

// advance moves the clock to t (if later) and delivers the frames and
// fires the deadlines due by then.
func (s *sim) advance(t time.Time) {
	if t.After(s.now) {
		s.now = t
	}
	for len(s.heap) > 0 && !s.heap[0].at.After(s.now) {
		p := s.pop()
		s.deliver(p)
		s.ends[p.to].app()
	}
	for _, e := range s.ends {
		if e.conn != nil {
			if d := e.conn.NextDeadline(); !d.IsZero() && !d.After(s.now) {
				e.conn.Timer(s.now)
			}
		}
	}
}

func (s *sim) timeLimit(limit time.Duration) error {
	return fmt.Errorf("virtual time limit %v passed; states %v/%v, recvd %d/%d", limit,
		s.state(0), s.state(1), s.ends[0].recvd, s.ends[1].recvd)
}

func (s *sim) state(i int) State {
	if c := s.ends[i].conn; c != nil {
		return c.State()
	}
	return Closed
}

// simTransfer moves size bytes each way at the same time and checks they
// arrive intact.
func simTransfer(tb testing.TB, seed uint64, imp simImpair, cfg *Config, size int64, isnA, isnB Seq) *sim {
	s := newSim(tb, seed, imp, cfg, isnA, isnB)
	s.ends[0].total, s.ends[1].total = size, size
	err := s.run(2 * time.Hour)
	if err == nil {
		for _, e := range s.ends {
			if e.recvd != size {
				err = fmt.Errorf("end %d received %d of %d bytes", e.idx, e.recvd, size)
			}
		}
	}
	if err != nil {
		tb.Fatalf("seed %d: %v (replay: TCPSIM_SEED=%d go test -run '%s')", seed, err, seed, tb.Name())
	}
	return s
}

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestSimTransfer64MiB is the must-show: 64 MiB each way at the same
// time, byte-identical, under 0/1/5/20 % loss with reordering, duplication
// and corruption, both ISNs just below 2^32. It writes a summary table
// (testdata/sim_summary.golden) so behaviour changes show up as diffs;
// go test -run TestSimTransfer64MiB -update rewrites it.
func TestSimTransfer64MiB(t *testing.T) {
	size := int64(64 << 20)
	if testing.Short() {
		size = 4 << 20
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-6s %5s %12s %10s %9s %9s %9s\n", "loss", "seed", "virtual", "goodput", "frames", "dropped", "corrupt")
	for i, loss := range []float64{0, 0.01, 0.05, 0.20} {
		t.Run(fmt.Sprintf("loss=%g%%", loss*100), func(t *testing.T) {
			imp := simImpair{
				Delay: 5 * time.Millisecond, Rate: 125e6, Loss: loss,
				Dup: 0.01, Reorder: 0.02, Jitter: 3 * time.Millisecond, Corrupt: 0.005,
			}
			seed := simSeed(uint64(100 + i))
			// ISNs just below 2^32: both sequence spaces wrap at once.
			s := simTransfer(t, seed, imp, nil, size, Seq(0xFFFFFFFF-1000), Seq(0xFFFFFF00))
			// Goodput until the last byte arrived (before TIME-WAIT).
			d := s.lastData.Sub(s.start)
			fmt.Fprintf(&table, "%-6s %5d %12v %7.1fMB/s %9d %9d %9d\n", fmt.Sprintf("%g%%", loss*100), seed,
				d.Round(time.Millisecond), float64(2*size)/d.Seconds()/1e6,
				s.stats[0].frames+s.stats[1].frames, s.stats[0].dropped+s.stats[1].dropped,
				s.stats[0].corrupted+s.stats[1].corrupted)
		})
	}
	if size != 64<<20 || os.Getenv("TCPSIM_SEED") != "" || t.Failed() {
		return
	}
	t.Logf("\n%s", table.String())
	checkGolden(t, "testdata/sim_summary.golden", table.String())
}

// checkGolden compares got with the golden file, or rewrites the file
// under -update, so behaviour changes show up as diffs.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s changed (run with -update if intended):\n%s\nwant:\n%s", golden, got, want)
	}
}

// A slow reader behind a small receive buffer: the window closes, the
// sender probes it, and window updates reopen it, with loss on the way.
func TestSimSlowReaderZeroWindow(t *testing.T) {
	for i, loss := range []float64{0, 0.05} {
		seed := simSeed(uint64(200 + i))
		imp := simImpair{Delay: 2 * time.Millisecond, Rate: 10e6, Loss: loss, Reorder: 0.02, Jitter: time.Millisecond}
		cfg := &Config{RecvBuf: 16 << 10, SendBuf: 32 << 10}
		s := newSim(t, seed, imp, cfg, 0xFFFFF000, 0x7FFFFFF0)
		s.ends[0].total, s.ends[1].total = 512<<10, 256<<10
		s.ends[1].readPeriod = 700 * time.Millisecond
		if err := s.run(time.Hour); err != nil || s.ends[1].recvd != 512<<10 || s.ends[0].recvd != 256<<10 {
			t.Fatalf("seed %d: %v (received %d, %d) (replay: TCPSIM_SEED=%d)", seed, err, s.ends[1].recvd, s.ends[0].recvd, seed)
		}
		if s.stats[1].zeroWnd == 0 {
			t.Errorf("seed %d: the window never closed", seed)
		}
		t.Logf("seed %d: %v virtual, %d zero-window segments", seed, s.now.Sub(s.start), s.stats[1].zeroWnd)
	}
}

// Nagle on, delayed ACKs, tiny MSS and many small writes.
func TestSimNagleSmallMSS(t *testing.T) {
	seed := simSeed(300)
	imp := simImpair{Delay: 10 * time.Millisecond, Loss: 0.02, Dup: 0.02, Reorder: 0.05, Jitter: 5 * time.Millisecond}
	cfg := &Config{MSS: 200, Nagle: true, RecvBuf: 4096, SendBuf: 1000}
	s := simTransfer(t, seed, imp, cfg, 256<<10, 1, 2)
	t.Logf("virtual %v", s.now.Sub(s.start))
}

// TestSimSoak runs many seeds (TCPSIM_SOAK=n, default off) at every loss
// rate, with harsher reordering and smaller buffers, 4 MiB each way.
func TestSimSoak(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TCPSIM_SOAK"))
	if n == 0 {
		t.Skip("set TCPSIM_SOAK=n to run n seeds per loss rate")
	}
	for _, loss := range []float64{0, 0.01, 0.05, 0.2, 0.3} {
		for i := 0; i < n; i++ {
			seed := uint64(10000*loss) + uint64(i)*7919 + 1
			imp := simImpair{Delay: 3 * time.Millisecond, Rate: 50e6, Loss: loss, Dup: 0.05, Reorder: 0.1, Jitter: 8 * time.Millisecond, Corrupt: 0.01}
			cfg := &Config{RecvBuf: 64 << 10 << (i % 5), SendBuf: 48 << 10 << (i % 4), Nagle: i%3 == 0, NoSACK: i%2 != 0, MSS: 536 + 100*(i%10)}
			simTransfer(t, seed, imp, cfg, 4<<20, Seq(0xFFFFFFFF-uint32(i*1000)), Seq(0xFFFF0000+uint32(i)))
		}
	}
}
