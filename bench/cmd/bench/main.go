// Command bench runs issue 7's workloads on netstack, gVisor's netstack and
// the kernel, and writes a results table (RESULTS.md) and a chart of the
// netstack/gVisor ratios (ratios.svg).
//
//	cd bench && go run ./cmd/bench -runs 3 -out RESULTS.md
//
// It needs root for the namespaces (kernel pairs, TAP and veth); without it
// those cells report the failure and everything else still runs.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/bench/internal/netns"
	"github.com/gotcpip/netstack/bench/internal/pair"
	"github.com/gotcpip/netstack/bench/internal/work"
)

type metric struct {
	name, unit string
	higher     bool // higher is better
	noRatio    bool // not a performance figure (e.g. the drop rate applied)
}

type workload struct {
	id, title string
	metrics   []metric
	mtu       int
	tap       bool
	loss      int    // lossy TAP workloads: percent dropped each way; -1 otherwise
	baseline  string // id of the same workload without loss, for the loss-cost table
	v4        string // IPv6 rows: id of the IPv4 row they repeat (run on kind.mem6, kind.tapped6)
	run       func(ctx context.Context, p *pair.Pair) ([]float64, error)
}

// netstackOnly holds the rows that only netstack runs, each on a variant
// of its pair (input over more than one core), by id.
var netstackOnly = map[string]pair.Factory{}

// alternates names, by id, the row that a row's runs alternate with (see
// interleave).
var alternates = map[string]string{}

type kind struct {
	name          string
	mem, tapped   pair.Factory
	mem6, tapped6 pair.Factory // the same over IPv6
	lossy         func(loss int) pair.Factory
	wg            pair.Factory             // the wg-* workloads: through a WireGuard tunnel (nil: not run)
	fwd           pair.Factory             // the fwd-* workloads: through a forwarding stack (nil: not run)
	many          func(n int) pair.Factory // the idlebig workload: n connections at once (nil: not run)
	long          pair.Factory             // the lossy-* workloads: a long lossy path (nil: not run; only netstack has BBR)
}

var tapQueues = flag.Int("queues", 0, "queues of the multi-queue TAP rows (tap-up-mq, tap-up8-mq); 0: GOMAXPROCS")

// idleBigN is the -idlebig flag, for factory.
var idleBigN int

var lossGSO = flag.Bool("lossgso", false, "on the lossy TAP workloads let netstack write TSO super-segments (which the bridge then drops whole)")

var kinds = []kind{
	{"netstack", pair.Netstack, pair.NetstackTAP, pair.Netstack6, pair.NetstackTAP6, func(loss int) pair.Factory { return pair.NetstackLossyTAP(loss, *lossGSO) }, pair.WireGuard(true), pair.NetstackForward, pair.NetstackMany, pair.NetstackLongPath},
	{"gVisor", pair.GVisor, pair.GVisorTAP, pair.GVisor6, pair.GVisorTAP6, pair.GVisorLossyTAP, pair.WireGuard(false), pair.GVisorForward, nil, nil},
	{"kernel", pair.Kernel, pair.Veth, pair.Kernel6, pair.Veth6, pair.LossyVeth, nil, nil, nil, nil},
}

type runResult struct {
	vals []float64
	err  error
	cpu  float64 // CPU seconds (user+system) of this process and its children
	dur  time.Duration
	note string // the workload's p.Note (lossy workloads: nftables counters)
}

func main() {
	var (
		runs     = flag.Int("runs", 3, "runs of each workload on each stack (median, min, max)")
		out      = flag.String("out", "RESULTS.md", "results table to write")
		svg      = flag.String("svg", "ratios.svg", "ratio chart to write (empty: none)")
		sizeS    = flag.String("size", "1GiB", "bytes per stream workload (e.g. 64MiB)")
		duplexS  = flag.String("duplex", "256MiB", "bytes each way of the lossy TAP workloads")
		idleN    = flag.Int("idle", 10000, "idle connections")
		idleBig  = flag.Int("idlebig", 1000000, "idle connections of the idlebig workload (netstack only)")
		rrN      = flag.Int("rr", 100000, "1-byte round trips at most (see -dur)")
		ccN      = flag.Int("cc", 50000, "connect+close cycles at most (see -dur)")
		dur      = flag.Duration("dur", 5*time.Second, "time bound of the rr and connect+close loops")
		wrkDur   = flag.Duration("wrkdur", 10*time.Second, "wrk -d")
		longDur  = flag.Duration("longdur", 20*time.Second, "time each stream of the lossy-* workloads sends")
		timeout  = flag.Duration("timeout", 3*time.Minute, "limit per run; past it the run counts as failed")
		only     = flag.String("only", "", "regexp: run only workloads whose id matches")
		stacks   = flag.String("stacks", "netstack,gVisor,kernel", "stacks to run")
		noTAP    = flag.Bool("notap", false, "skip the TAP/veth workloads")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile of the whole run")
		idleprof = flag.String("idleprofile", "", "write a heap profile of the idle connections of each idle workload to this file (the last run wins; combine with -only)")
		memprof  = flag.String("memprofile", "", "write an allocation profile of the whole run at its end")
	)
	flag.Parse()
	size, err := parseSize(*sizeS)
	if err != nil {
		fatal(err)
	}
	dsize, err := parseSize(*duplexS)
	if err != nil {
		fatal(err)
	}
	defer netns.Cleanup()
	raiseNoFile(4**idleN + 4096)
	work.HeapProfile = *idleprof
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *memprof != "" {
		defer writeHeapProfile(*memprof)
	}
	gib := fmtSize(size)
	wls := []workload{
		{"stream-1500", "1 stream, " + gib + ", MTU 1500", []metric{{"throughput", "Gbit/s", true, false}}, 1500, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Stream(ctx, p, size, 1, false) }},
		{"stream-65000", "1 stream, " + gib + ", MTU 65000", []metric{{"throughput", "Gbit/s", true, false}}, 65000, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Stream(ctx, p, size, 1, false) }},
		{"stream8-1500", "8 streams, " + gib + " total, MTU 1500", []metric{{"throughput", "Gbit/s", true, false}}, 1500, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Stream(ctx, p, size, 8, false) }},
		{"rr", "1-byte request/response", []metric{{"round trip", "µs", false, false}}, 0, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.RR(ctx, p, *rrN, *dur) }},
		{"connclose", "connect+close", []metric{{"rate", "conns/s", true, false}}, 0, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.ConnClose(ctx, p, *ccN, *dur) }},
		{"idle", fmt.Sprintf("%d idle connections (both ends in-process, counted together)", *idleN),
			[]metric{{"heap per conn", "bytes", false, false}, {"goroutines per conn", "", false, false}}, 0, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Idle(ctx, p, *idleN) }},
		{"idle-used", fmt.Sprintf("%d idle connections after one request (100 B) and response (1,000 B) each", *idleN),
			[]metric{{"heap per conn", "bytes", false, false}, {"goroutines per conn", "", false, false}}, 0, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.IdleUsed(ctx, p, *idleN) }},
		{"tap-wrk", fmt.Sprintf("TAP: wrk -t2 -c64 -d%s, http.Server on the stack", *wrkDur),
			[]metric{{"requests", "req/s", true, false}, {"p99 latency", "ms", false, false}}, 1500, true, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Wrk(ctx, p, 2, 64, *wrkDur) }},
		{"tap-up", "TAP: " + gib + " kernel → stack", []metric{{"throughput", "Gbit/s", true, false}}, 1500, true, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Stream(ctx, p, size, 1, false) }},
		{"tap-down", "TAP: " + gib + " stack → kernel", []metric{{"throughput", "Gbit/s", true, false}}, 1500, true, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Stream(ctx, p, size, 1, true) }},
	}
	// Input past one core (issue 21): 8 streams into the stack beside 1,
	// over a TAP of one queue and of one queue per CPU (netstack only),
	// and in memory with input workers; each row alternates its runs with
	// the ones before it, so the ratios compare like with like.
	ncpu := runtime.GOMAXPROCS(0)
	stream := func(n int) func(ctx context.Context, p *pair.Pair) ([]float64, error) {
		return func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Stream(ctx, p, size, n, false) }
	}
	tput := []metric{{"throughput", "Gbit/s", true, false}}
	nq := cmp.Or(*tapQueues, ncpu)
	mq := fmt.Sprintf("TAP, %d queues: ", nq)
	wk := fmt.Sprintf(", %d input workers", ncpu)
	row := func(id, title string, tap bool, n int, ns pair.Factory, with string) workload {
		if ns != nil {
			netstackOnly[id] = ns
		}
		alternates[id] = with
		return workload{id, title, tput, 1500, tap, -1, "", "", stream(n)}
	}
	wls = slices.Insert(wls, slices.IndexFunc(wls, func(w workload) bool { return w.id == "tap-down" }),
		row("tap-up8", "TAP: 8 streams, "+gib+" total kernel → stack", true, 8, nil, "tap-up"),
		row("tap-up-mq", mq+gib+" kernel → stack", true, 1, pair.NetstackTAPQueues(nq), "tap-up8"),
		row("tap-up8-mq", mq+"8 streams, "+gib+" total kernel → stack", true, 8, pair.NetstackTAPQueues(nq), "tap-up-mq"))
	alternates["stream8-1500"] = "stream-1500"
	wls = slices.Insert(wls, slices.IndexFunc(wls, func(w workload) bool { return w.id == "rr" }),
		row("stream-1500-w", "1 stream, "+gib+", MTU 1500"+wk, false, 1, pair.NetstackWorkers(ncpu), "stream8-1500"),
		row("stream8-1500-w", "8 streams, "+gib+" total, MTU 1500"+wk, false, 8, pair.NetstackWorkers(ncpu), "stream-1500-w"))
	// The same workers on the latency and connection rows, to weigh a
	// default of InputWorkers on: each frame then costs a hand-off.
	variant := func(id, with string) workload {
		i := slices.IndexFunc(wls, func(w workload) bool { return w.id == with })
		w := wls[i]
		w.id, w.title = id, w.title+wk
		netstackOnly[id], alternates[id] = pair.NetstackWorkers(ncpu), with
		return w
	}
	wls = slices.Insert(wls, slices.IndexFunc(wls, func(w workload) bool { return w.id == "connclose" }), variant("rr-w", "rr"))
	// wrk's two threads against a TAP of one queue per CPU, each queue
	// read by its own goroutine (netstack only).
	wrkMQ := wls[slices.IndexFunc(wls, func(w workload) bool { return w.id == "tap-wrk" })]
	wrkMQ.id, wrkMQ.title = "tap-wrk-mq", strings.Replace(wrkMQ.title, "TAP: ", mq, 1)
	netstackOnly[wrkMQ.id], alternates[wrkMQ.id] = pair.NetstackTAPQueues(nq), "tap-wrk"
	wls = slices.Insert(wls, slices.IndexFunc(wls, func(w workload) bool { return w.id == "tap-up" }), wrkMQ)
	wls = slices.Insert(wls, slices.IndexFunc(wls, func(w workload) bool { return w.id == "idle" }), variant("connclose-w", "connclose"))
	// IPv6 (issue 17): these rows again over IPv6, each listed right after
	// its IPv4 row.
	wls = withIPv6(wls, map[string]string{"stream-1500": "stream6-1500", "connclose": "connclose6", "tap-up": "tap6-up", "tap-down": "tap6-down"})
	dgib := fmtSize(dsize)
	duplex := func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Duplex(ctx, p, dsize) }
	goodput := []metric{
		{name: "goodput kernel → stack", unit: "Gbit/s", higher: true},
		{name: "goodput stack → kernel", unit: "Gbit/s", higher: true},
	}
	wls = append(wls,
		workload{"tap-duplex-0", "TAP via bridge: " + dgib + " each way at once, 0 % loss", goodput, 1500, true, 0, "", "", duplex},
		workload{"tap-duplex-1", "TAP via bridge: " + dgib + " each way at once, 1 % loss each way",
			append(slices.Clone(goodput),
				metric{name: "dropped kernel → stack", unit: "% of frames", noRatio: true},
				metric{name: "dropped stack → kernel", unit: "% of frames", noRatio: true}),
			1500, true, 1, "tap-duplex-0", "", duplex},
	)
	// Through a WireGuard tunnel on loopback UDP (issue 19): wireguard-go
	// devices on netstack's drop-in against wireguard-go's own gVisor
	// tun/netstack. Each stream run also reports the CPU seconds it used
	// per GiB moved (both ends and both wireguard-go devices together).
	perGiB := func(n int) func(ctx context.Context, p *pair.Pair) ([]float64, error) {
		return func(ctx context.Context, p *pair.Pair) ([]float64, error) {
			cpu0 := cpuSeconds()
			v, err := work.Stream(ctx, p, size, n, false)
			if err != nil {
				return nil, err
			}
			return append(v, (cpuSeconds()-cpu0)/(float64(size)/(1<<30))), nil
		}
	}
	// One client address and one server port: netstack, like Linux to a
	// non-loopback peer, keeps each closed connection's 4-tuple in
	// TIME-WAIT for 60 s, so a run fails with EADDRNOTAVAIL once the
	// 28,232 ephemeral ports (32768–60999) are used. Both stacks make the
	// same number of connections, fewer than that.
	wgConns := min(*ccN, 25000)
	wgStream := []metric{{"throughput", "Gbit/s", true, false}, {"CPU per GiB", "s", false, false}}
	wls = append(wls,
		workload{"wg-stream", "WireGuard, loopback UDP: 1 stream, " + gib + ", tunnel MTU 1420", wgStream, 0, false, -1, "", "", perGiB(1)},
		workload{"wg-stream8", "WireGuard, loopback UDP: 8 streams, " + gib + " total", wgStream, 0, false, -1, "", "", perGiB(8)},
		workload{"wg-connclose", fmt.Sprintf("WireGuard, loopback UDP: connect+close, %d conns at most", wgConns), []metric{{"rate", "conns/s", true, false}}, 0, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) {
				return work.ConnClose(ctx, p, wgConns, *dur)
			}},
	)
	// Through a forwarding stack (issue 20): netstack's Forwarder against
	// gVisor's tcp.NewForwarder, the same netstack client dialing a new
	// address in 198.19.0.0/16 for every connection (pair.NetstackForward,
	// pair.GVisorForward). connect+close makes at most 50,000
	// connections: either end may close first, and netstack's forwarder
	// counts its TIME-WAIT connections (60 s each) against
	// Limits.MaxConnections (65,536) and drops SYNs past it.
	fwdConns := min(*ccN, 50000)
	wls = append(wls,
		workload{"fwd-stream", "Forwarder: 1 forwarded stream, " + gib, wgStream, 1500, false, -1, "", "", perGiB(1)},
		workload{"fwd-connect", fmt.Sprintf("Forwarder: connect+close, a new destination each, %d conns at most", fwdConns), []metric{{"rate", "conns/s", true, false}}, 1500, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) {
				return work.ConnClose(ctx, p, fwdConns, *dur)
			}},
		workload{"fwd-idle", fmt.Sprintf("Forwarder: %d idle forwarded connections (client and forwarder ends counted together)", *idleN),
			[]metric{{"heap per conn", "bytes", false, false}, {"goroutines per conn", "", false, false}}, 1500, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.Idle(ctx, p, *idleN) }},
	)
	// Issue 21: a million idle connections between two in-memory stacks,
	// whose Limits.MaxConnections take them all, over enough server ports
	// for as many 4-tuples (pair.NetstackMany).
	idleBigN = *idleBig
	wls = append(wls, workload{"idlebig", fmt.Sprintf("%d idle connections, opened one after the other (both ends counted together)", *idleBig),
		[]metric{{"heap per conn", "bytes", false, false}, {"time to open all", "s", false, false}}, 0, false, -1, "", "",
		func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.IdleMany(ctx, p, *idleBig) }})
	// A long lossy path (issue 21): two netstack stacks in memory joined
	// through link.Impair, 100 Mbit/s, 100 ms RTT, 1 % random loss the
	// data's way (pair.NetstackLongPath). gVisor and the kernel have no
	// BBR to choose here: those cells are not run.
	longTitle := fmt.Sprintf("Lossy long path (%.0f Mbit/s, %v RTT, %g %% loss), in memory", pair.LongPathRate*8/1e6, 2*pair.LongPathDelay, 100*pair.LongPathLoss)
	wls = append(wls,
		workload{"lossy-bbr", longTitle + fmt.Sprintf(": one stream with BBR, then one with CUBIC, %v each", *longDur),
			[]metric{{"goodput BBR", "Mbit/s", true, false}, {"goodput CUBIC", "Mbit/s", true, false}, {"BBR/CUBIC", "×", true, true}}, 1500, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) { return work.LongPath(ctx, p, *longDur) }},
		workload{"lossy-share", longTitle + fmt.Sprintf(": a BBR and a CUBIC stream at once, %v", *longDur),
			[]metric{{"goodput BBR", "Mbit/s", true, false}, {"goodput CUBIC", "Mbit/s", true, false}, {"CUBIC's share", "%", true, true}}, 1500, false, -1, "", "",
			func(ctx context.Context, p *pair.Pair) ([]float64, error) {
				return work.LongPathShare(ctx, p, *longDur)
			}},
	)
	var re *regexp.Regexp
	if *only != "" {
		re = regexp.MustCompile(*only)
	}
	wantStack := map[string]bool{}
	for _, s := range strings.Split(*stacks, ",") {
		wantStack[strings.TrimSpace(s)] = true
	}
	if err := netns.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: namespaces unavailable (%v): kernel, TAP and veth cells will fail\n", err)
	}
	results := map[string]map[string][]runResult{}
	var ran []workload
	for _, w := range wls {
		if (re != nil && !re.MatchString(w.id)) || (w.tap && *noTAP) {
			continue
		}
		ran = append(ran, w)
		results[w.id] = map[string][]runResult{}
	}
	started := time.Now()
	for _, g := range interleave(ran) {
		for r := range *runs {
			for _, w := range g {
				if w.loss >= 0 {
					work.PrepareDuplex(dsize)
				}
				for _, k := range kinds {
					f := factory(k, w)
					if !wantStack[k.name] || f == nil {
						continue
					}
					res := runOnce(w, f, *timeout)
					results[w.id][k.name] = append(results[w.id][k.name], res)
					status := fmt.Sprint(res.vals)
					if res.err != nil {
						status = "FAILED: " + res.err.Error()
					}
					fmt.Fprintf(os.Stderr, "%-13s %-8s run %d/%d  %6.2fs  cpu %6.2fs  %s\n", w.id, k.name, r+1, *runs, res.dur.Seconds(), res.cpu, status)
					if res.note != "" {
						fmt.Fprintf(os.Stderr, "%-13s %-8s run %d/%d  %s\n", w.id, k.name, r+1, *runs, res.note)
					}
				}
			}
		}
	}
	total := time.Since(started)
	md := report(ran, results, *runs, size, total, os.Args[1:])
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		fatal(err)
	}
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(chart(ran, results)), 0o644); err != nil {
			fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: wrote %s in %s\n", *out, total.Round(time.Second))
}

// writeHeapProfile writes the allocations of the whole run (go tool pprof
// -sample_index=alloc_space or alloc_objects) to path.
func writeHeapProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		fatal(err)
	}
}

// factory is the pair k runs w on, nil if k does not run w.
func factory(k kind, w workload) pair.Factory {
	switch {
	case netstackOnly[w.id] != nil && k.name == "netstack":
		return netstackOnly[w.id]
	case netstackOnly[w.id] != nil:
		return nil
	case w.id == "idlebig":
		if k.many == nil {
			return nil
		}
		return k.many(idleBigN)
	case strings.HasPrefix(w.id, "wg-"):
		return k.wg
	case strings.HasPrefix(w.id, "fwd-"):
		return k.fwd
	case strings.HasPrefix(w.id, "lossy-"):
		return k.long
	case w.loss >= 0:
		return k.lossy(w.loss)
	case w.v4 != "" && w.tap:
		return k.tapped6
	case w.v4 != "":
		return k.mem6
	case w.tap:
		return k.tapped
	}
	return k.mem
}

// interleave groups wls for running: each IPv6 workload with its IPv4 row
// when that ran just before it, and each row with the row named by its
// with field when that one is in the group just before it; every other
// workload alone. The runs of a
// group alternate between its workloads (run 1 of each, then run 2, ...),
// so that a change in the machine's load during the runs shows in both
// rows alike rather than in their ratio.
func interleave(wls []workload) [][]workload {
	var gs [][]workload
	for _, w := range wls {
		if n := len(gs); n > 0 && ((w.v4 != "" && gs[n-1][0].id == w.v4) ||
			(alternates[w.id] != "" && slices.ContainsFunc(gs[n-1], func(x workload) bool { return x.id == alternates[w.id] }))) {
			gs[n-1] = append(gs[n-1], w)
			continue
		}
		gs = append(gs, []workload{w})
	}
	return gs
}

// withIPv6 returns wls with, after each workload whose id is a key of ids,
// a copy of it under the id ids gives that runs over IPv6.
func withIPv6(wls []workload, ids map[string]string) []workload {
	var out []workload
	for _, w := range wls {
		out = append(out, w)
		if id, ok := ids[w.id]; ok {
			w6 := w
			w6.id, w6.title, w6.v4 = id, w.title+", IPv6", w.id
			out = append(out, w6)
		}
	}
	return out
}

func runOnce(w workload, f pair.Factory, timeout time.Duration) (res runResult) {
	start := time.Now()
	defer func() { res.dur = time.Since(start) }()
	p, err := f(w.mtu)
	if err != nil {
		return runResult{err: fmt.Errorf("setup: %w", err)}
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type out struct {
		v   []float64
		err error
	}
	c := make(chan out, 1)
	cpu0 := cpuSeconds()
	go func() {
		defer func() {
			if r := recover(); r != nil {
				c <- out{err: fmt.Errorf("panic: %v", r)}
			}
		}()
		v, err := w.run(ctx, p)
		c <- out{v, err}
	}()
	select {
	case o := <-c:
		res.vals, res.err, res.note = o.v, o.err, p.Note
		if p.Counters != nil {
			res.note = strings.TrimPrefix(res.note+"; "+p.Counters(), "; ")
		}
	case <-time.After(timeout + 15*time.Second):
		res.err = fmt.Errorf("timeout: no result after %s (deadlines did not unblock it)", timeout+15*time.Second)
	}
	res.cpu = cpuSeconds() - cpu0
	if res.err != nil && ctx.Err() != nil {
		res.err = fmt.Errorf("timeout after %s: %w", timeout, res.err)
	}
	return res
}

// cpuSeconds is user+system time of this process and its waited-for
// children (wrk).
func cpuSeconds() float64 {
	var s, c syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &c)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(s.Utime) + tv(s.Stime) + tv(c.Utime) + tv(c.Stime)
}

type summary struct {
	ok            int
	med, min, max []float64
	cpu           float64 // median CPU seconds of successful runs
	errs          []string
}

func summarize(rs []runResult, nm int) summary {
	var s summary
	var cpus []float64
	cols := make([][]float64, nm)
	for _, r := range rs {
		if r.err != nil || len(r.vals) != nm {
			if r.err != nil {
				s.errs = append(s.errs, r.err.Error())
			}
			continue
		}
		s.ok++
		cpus = append(cpus, r.cpu)
		for i, v := range r.vals {
			cols[i] = append(cols[i], v)
		}
	}
	if s.ok == 0 {
		return s
	}
	for _, c := range cols {
		s.med = append(s.med, median(c))
		s.min = append(s.min, slices.Min(c))
		s.max = append(s.max, slices.Max(c))
	}
	s.cpu = median(cpus)
	return s
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func num(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// familyCost writes, for each IPv6 workload whose IPv4 row also ran, each
// stack's IPv6 figures beside its IPv4 ones, and the netstack/gVisor ratio
// of both rows.
func familyCost(b *strings.Builder, wls []workload, res map[string]map[string][]runResult, runs int) {
	byID := map[string]workload{}
	for _, w := range wls {
		byID[w.id] = w
	}
	head := false
	for _, w := range wls {
		w4, ok := byID[w.v4]
		if !ok {
			continue
		}
		if !head {
			b.WriteString("## IPv6 beside IPv4\n\n")
			b.WriteString("Medians of the runs above (each IPv6 row's runs alternate with its IPv4 row's); IPv6/IPv4 is the IPv6 row's median over the IPv4 row's, per stack; the netstack/gVisor lines give that ratio for each row. CPU is the median CPU seconds of a run, as in the main table.\n\n")
			b.WriteString("| Workload | Metric | Stack | IPv4 | IPv6 | IPv6/IPv4 | CPU s IPv4 / IPv6 |\n|---|---|---|---|---|---|---|\n")
			head = true
		}
		ratio := func(num, den float64, ok bool) string {
			if !ok || den == 0 {
				return "–"
			}
			return fmt.Sprintf("%.2f", num/den)
		}
		for i, m := range w.metrics {
			s4, s6 := map[string]summary{}, map[string]summary{}
			for _, k := range kinds {
				s4[k.name] = summarize(res[w4.id][k.name], len(w4.metrics))
				s6[k.name] = summarize(res[w.id][k.name], len(w.metrics))
				if s4[k.name].ok == 0 && s6[k.name].ok == 0 {
					continue
				}
				cpu := "″"
				if i == 0 {
					cpu = fmt.Sprintf("%.2f / %.2f", s4[k.name].cpu, s6[k.name].cpu)
				}
				fmt.Fprintf(b, "| %s / %s | %s | %s | %s | %s | %s | %s |\n", w4.id, w.id, m.name, k.name, cell(s4[k.name], i, runs), cell(s6[k.name], i, runs),
					ratio(med(s6[k.name], i), med(s4[k.name], i), s4[k.name].ok > 0 && s6[k.name].ok > 0), cpu)
			}
			if m.noRatio {
				continue
			}
			n4, g4, n6, g6 := s4["netstack"], s4["gVisor"], s6["netstack"], s6["gVisor"]
			fmt.Fprintf(b, "| %s / %s | %s | netstack/gVisor | %s | %s | | |\n", w4.id, w.id, m.name,
				ratio(med(n4, i), med(g4, i), n4.ok > 0 && g4.ok > 0), ratio(med(n6, i), med(g6, i), n6.ok > 0 && g6.ok > 0))
		}
	}
	if head {
		b.WriteString("\n")
	}
}

// med is s's median of metric i, 0 if no run succeeded.
func med(s summary, i int) float64 {
	if s.ok == 0 {
		return 0
	}
	return s.med[i]
}

// lossCost writes, for each lossy workload whose baseline also ran, the
// goodput with loss beside the goodput without it, per stack, and the
// nftables counters of every run.
func lossCost(b *strings.Builder, wls []workload, res map[string]map[string][]runResult, runs int) {
	byID := map[string]workload{}
	for _, w := range wls {
		byID[w.id] = w
	}
	for _, w := range wls {
		base, ok := byID[w.baseline]
		if w.baseline == "" {
			continue
		}
		fmt.Fprintf(b, "## %s: goodput beside %s\n\n", w.id, w.baseline)
		if ok {
			b.WriteString("Medians of the runs above; the ratio is goodput with loss / goodput without.\n\n")
			b.WriteString("| Stack | Direction | " + base.id + " | " + w.id + " | ratio |\n|---|---|---|---|---|\n")
			for _, k := range kinds {
				s0 := summarize(res[base.id][k.name], len(base.metrics))
				s1 := summarize(res[w.id][k.name], len(w.metrics))
				for i, m := range base.metrics {
					if m.noRatio {
						continue
					}
					r := "–"
					if s0.ok > 0 && s1.ok > 0 && s0.med[i] > 0 {
						r = fmt.Sprintf("%.2f", s1.med[i]/s0.med[i])
					}
					fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", k.name, strings.TrimPrefix(m.name, "goodput "), cell(s0, i, runs), cell(s1, i, runs), r)
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("nftables counters at the bridge (IPv4 TCP frames; mean is bytes of IP packet per frame; frames over 1500 B would be super-segments):\n\n")
		for _, x := range []workload{base, w} {
			if x.id == "" {
				continue
			}
			for _, k := range kinds {
				for j, r := range res[x.id][k.name] {
					if r.note != "" {
						fmt.Fprintf(b, "- %s / %s run %d: %s\n", x.id, k.name, j+1, r.note)
					}
				}
			}
		}
		b.WriteString("\n")
	}
}

func cell(s summary, i, runs int) string {
	if s.ok == 0 {
		if len(s.errs) == 0 {
			return "not run"
		}
		return "**FAILED**"
	}
	c := fmt.Sprintf("%s [%s–%s]", num(s.med[i]), num(s.min[i]), num(s.max[i]))
	if s.ok < runs {
		c += fmt.Sprintf(" (%d/%d ok)", s.ok, runs)
	}
	return c
}

func report(wls []workload, res map[string]map[string][]runResult, runs int, size int64, total time.Duration, args []string) string {
	var b strings.Builder
	uname, _ := exec.Command("uname", "-sr").Output()
	fmt.Fprintf(&b, "# netstack vs gVisor netstack vs kernel\n\n")
	fmt.Fprintf(&b, "Written by `go run ./cmd/bench %s` on %s: %d CPUs, %s, %s; %d run(s) per cell, stream size %s; the whole run took %s.\n\n",
		strings.Join(args, " "), time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), strings.TrimSpace(string(uname)), runtime.Version(), runs, fmtSize(size), total.Round(time.Second))
	b.WriteString("Cells are median [min–max] of the successful runs. The ratio is netstack/gVisor of the medians (the arrow says which way is better). ")
	b.WriteString("CPU is the median CPU seconds (user+system, `getrusage` of this process and of wrk) one run used, from the first byte to the last, both ends together.\n\n")
	b.WriteString("| Workload | Metric | netstack | gVisor | kernel | netstack/gVisor | CPU s netstack / gVisor / kernel |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	var fails []string
	for _, w := range wls {
		ss := map[string]summary{}
		for _, k := range kinds {
			ss[k.name] = summarize(res[w.id][k.name], len(w.metrics))
			for j, e := range ss[k.name].errs {
				fails = append(fails, fmt.Sprintf("- **%s / %s** run %d: `%s`", w.id, k.name, j+1, e))
			}
		}
		for i, m := range w.metrics {
			ratio := "–"
			n, g := ss["netstack"], ss["gVisor"]
			if n.ok > 0 && g.ok > 0 && g.med[i] != 0 && !m.noRatio {
				arrow := "↑"
				if !m.higher {
					arrow = "↓"
				}
				ratio = fmt.Sprintf("%.2f× %s", n.med[i]/g.med[i], arrow)
			}
			unit := m.name
			if m.unit != "" {
				unit += " (" + m.unit + ")"
			}
			cpu := "″"
			if i == 0 {
				var cs []string
				for _, k := range kinds {
					if s := ss[k.name]; s.ok > 0 {
						cs = append(cs, strconv.FormatFloat(s.cpu, 'f', 2, 64))
					} else {
						cs = append(cs, "–")
					}
				}
				cpu = strings.Join(cs, " / ")
			}
			title := w.title
			if i > 0 {
				title = "″"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", title, unit,
				cell(ss["netstack"], i, runs), cell(ss["gVisor"], i, runs), cell(ss["kernel"], i, runs), ratio, cpu)
		}
	}
	b.WriteString("\n![netstack/gVisor](ratios.svg)\n\n")
	familyCost(&b, wls, res, runs)
	lossCost(&b, wls, res, runs)
	if len(fails) > 0 {
		b.WriteString("## Failed runs\n\n")
		b.WriteString(strings.Join(fails, "\n") + "\n\n")
	}
	b.WriteString(method)
	return b.String()
}

const method = `## How it is measured

- **In memory.** Two stacks in this process, 198.18.0.1 (client) and .2 (server), on an Ethernet
  cable made in memory. netstack: ` + "`netstack.NewPacketLinkPair`" + `, two PacketLinks back to back, each
  queueing 1024 frames; each stack's frames are copied into the other's queue (one copy per frame), and
  the stack's own link-reader goroutine, the one goroutine per direction that drains a queue, reads
  each frame where it lies; a full queue holds the sending stack's TCP back rather than dropping (the
  Queue capability), and the stream rows note each stack's TCP retransmissions. gVisor: ` + "`ethernet.New(channel.New(1024, mtu, mac))`" + `
  on each side (the channel queue also holds 1024 frames and drops when full) and one pump goroutine per
  direction that serializes each outgoing PacketBuffer into a fresh view (one copy) and injects it into
  the peer's NIC. Same MTU on both, ARP on both, checksums computed in software on both. gVisor has its
  default TCP options plus SACK on (netstack does SACK); connections through ` + "`adapters/gonet`" + `.
  Kernel: for the streams, loopback inside a fresh network namespace whose lo has the workload's MTU
  (1500 or 65000), both sockets from package net made on a thread inside it; for request/response,
  connect+close and idle connections (MTU 1500 on the two userspace stacks), the root namespace's
  loopback (MTU 65536), so that no dial pays the hop to a thread in a namespace. The kernel's own work
  is in system time of this process.
- **Streams** write 64 KiB at a time; the clock runs from the first write (connections already
  established) to the last byte read. 8 streams split the size evenly.
- **1-byte request/response**: one connection, TCP_NODELAY where the conn has SetNoDelay, up to -rr
  round trips or -dur, µs per round trip.
- **connect+close**: dial, Close, repeat (the server accepts and closes each), up to -cc or -dur.
  The client closes first, so TIME-WAIT lands on the client.
- **Idle connections**: HeapInuse (after two GCs) and runtime.NumGoroutine with N established
  connections minus before, divided by N; "before" is read once the heap and goroutines left by the
  run before have stopped shrinking (gVisor's forwarder frees its connections for seconds after Close). The kernel pair holds two descriptors per connection, so
  where RLIMIT_NOFILE's hard limit is below 2N+256 (and cannot be raised) it opens (limit−256)/2
  connections instead (9872 under this sandbox's 20000). Both ends are in this process, so each connection is counted
  with its client and its server end together; the kernel column counts only Go's side (its socket
  buffers are kernel memory).
- **idlebig** (netstack only): the idle-connection measure with -idlebig connections (a million by
  default) between two in-memory stacks whose Limits.MaxConnections take them all; the server listens
  on one port per 25,000 connections (5001 up) and the client dials them in turn, so that its 28,232
  ephemeral ports give each connection its own 4-tuple. Keep-alive is off at both ends: with Go's
  15 s default, the two million ends would probe 133,000 times a second once the first 15 s pass,
  slowing the opening of the rest. Reports HeapInuse per connection (both ends) and the seconds the
  sequential dial+accept loop took to open them all; the connections are left open for the pair's
  Close to end.
- **TAP**: a TAP device opened by this process, moved into a fresh namespace with 198.18.N.1/24 on the
  kernel side; the stack under test is 198.18.N.2/24 (netstack: ` + "`netstack.OpenTAP`" + `; gVisor: ` + "`fdbased`" + `
  on the TAP fd). The kernel is the client (sockets made on a thread inside the namespace; wrk run
  with ` + "`ip netns exec`" + `). The kernel column is the reference: two namespaces joined by a veth pair,
  kernel to kernel. Everything is deleted at the end, on failure and on SIGINT/SIGTERM too.
- **TAP via bridge, ` + "`-duplex`" + ` bytes each way at once** (tap-duplex-0, tap-duplex-1): one connection, the
  kernel (client) and the stack (server) each write the same pseudo-random payload (the server's rotated
  by half) in 64 KiB writes while reading the other's; each reader hashes what it gets with SHA-256 and
  the run fails unless both digests match what was sent. Goodput of each direction runs from the first
  write to the last byte of that direction read. The loss is applied on the kernel's side, so every stack
  sees the same: in the namespace the TAP is the one port of a Linux bridge br0 that holds the kernel's
  address (198.18.N.1/24), and an nftables table in the bridge family counts every IPv4 TCP frame that
  crosses the port and drops 1 % of them, independently each way
  (` + "`iifname \"TAP\" ip protocol tcp numgen random mod 100 < 1 counter drop`" + ` in a ` + "`type filter hook input`" + ` chain
  for stack → kernel, the same with ` + "`oifname`" + ` in a ` + "`hook output`" + ` chain for kernel → stack: with the address on
  the bridge, frames to and from the kernel are delivered locally, not forwarded, so a forward-hook rule
  would never match). The 0 % workload is the same bridge and counters without the drop rule. TSO, GSO
  and GRO are off (ethtool) and gso_max_segs is 1 on br0 and the port, so the kernel hands the bridge
  MTU-sized segments and one drop is one segment; the counters also count frames over 1500 bytes of IP
  packet, and every run reports 0 of them (listed below the table, with the real drop rates). netstack
  opens the TAP with ` + "`netstack.OpenTAP`" + ` (virtio-net header, checksum offload) but is handed the Link without
  its WriteGSO, so it writes MTU-sized frames; gVisor's fdbased has no GSO here either. With
  ` + "`-lossgso`" + ` netstack writes TSO super-segments, and they cross the bridge whole (measured, 256 MiB each way,
  one run: at 0 % loss 5590 of 98454 stack → kernel frames were over 1500 B, mean 2779 B a frame; at 1 %,
  8057 of 156306, so a drop there loses up to 44 segments at once, which is why it is off by default).
  The kernel → stack direction never carried a super-segment through the bridge with its offloads off.
  The kernel column: namespace A (the server, in the stack's place) with 198.18.N.2/24 on a veth end
  (offloads off), its peer a port of the same lossy bridge in namespace B, where the client runs.
- **WireGuard, loopback UDP** (wg-stream, wg-stream8, wg-connclose): two wireguard-go devices
  (golang.zx2c4.com/wireguard) in this process joined by UDP on 127.0.0.1, tunnel 198.18.0.1 (client) to
  198.18.0.2 (server), MTU 1420; the netstack column runs both devices on netstack's drop-in
  (` + "`github.com/gotcpip/netstack/wireguard`" + `), the gVisor column on wireguard-go's own ` + "`tun/netstack`" + ` (gVisor
  through gonet). The same stream and connect+close loops as above, through the tunnel; CPU per GiB is
  the run's CPU seconds (both stacks, both devices, the kernel's UDP loopback) over the GiB moved.
  connect+close makes at most 25,000 connections: netstack keeps each closed 4-tuple in TIME-WAIT for
  60 s, as Linux does to a non-loopback peer, so one client address to one server port runs out of
  the 28,232 ephemeral ports after that many.
- **IPv6** (stream6-1500, connclose6, tap6-up, tap6-down): the IPv4 row's workload over IPv6, each row
  right after its IPv4 one. In memory: fd00::1 (client) and fd00::2 (server), /64, on the same links
  as the IPv4 rows; netstack with duplicate address detection off (` + "`DADTransmits: -1`" + `), gVisor with
  ` + "`ipv6.NewProtocol`" + ` alone (its default leaves DAD off) and the /64 as its one route; neighbor discovery in
  place of ARP on both. Kernel: the same loopback as the IPv4 row over ::1 (a fresh namespace with
  IPv6 on for the stream, the root namespace's for connect+close). TAP: the kernel side
  fd00:0:0:N::1/64 (` + "`nodad`" + `), the stack fd00:0:0:N::2, the namespace's IPv6 on; the kernel column is the
  veth pair with fd00:0:0:N::1 and ::2. The runs of an IPv6 row alternate with those of its IPv4 row
  (run 1 of both, then run 2, ...), so that the machine's load drifting during the runs shows in both;
  the section "IPv6 beside IPv4" above sets each stack's IPv6 figure beside its IPv4 one.
- **Forwarder** (fwd-stream, fwd-connect, fwd-idle): a netstack client, 198.18.0.1/24 with 198.18.0.2 as
  its gateway, dials addresses in 198.19.0.0/16, off every subnet, a new address (and after 65,000 of
  them a new port) for each connection, through a forwarding stack at 198.18.0.2 that takes TCP for
  any destination. The client is netstack in both columns, so the columns differ only in the forwarder.
  netstack: ` + "`Config.Forwarder`" + ` whose TCP handler calls Accept; the two stacks on
  ` + "`NewPacketLinkPair`" + ` as in the in-memory rows. gVisor, set up as tun2socks does: promiscuous mode and spoofing on the NIC, a default
  route, ` + "`tcp.NewForwarder(s, 0, 1024, h)`" + ` (default receive window, 1024 requests in flight) with h
  calling CreateEndpoint (the handshake), Complete(false), turning keepalive on (netstack's forwarded
  connections have it on) and wrapping the endpoint in ` + "`gonet.NewTCPConn`" + `; the client's frames reach the
  gVisor NIC through a queue of 1024 frames and a pump goroutine, gVisor's reach the client through a
  second pump, one copy per frame each way. Both handlers hand the accepted connection to the same
  in-process server, the workload's server side: the sink of the stream, the closer of connect+close,
  the holder of the idle connections. fwd-stream moves -size bytes client → forwarder and also reports
  CPU seconds per GiB (both stacks together). fwd-connect is connect+close as above, at most 50,000
  connections (netstack's forwarder counts its TIME-WAIT connections, 60 s each, against
  Limits.MaxConnections, 65,536, and drops SYNs past it). fwd-idle is the idle-connection measure with
  the client's and the forwarder's ends counted together (the client's share is the same netstack in
  both columns).
- **Lossy long path** (lossy-bbr, lossy-share; netstack only, as gVisor and the kernel have no BBR
  to choose here): two netstack stacks on PacketLinks whose Output injects into the other's queue of
  1024 frames (no Queue capability: the path drops, not the stacks' hold), each behind a
  ` + "`link.Impair`" + ` on its way out: 50 ms each way; the client's (data) way also crosses a 100 Mbit/s
  bottleneck (` + "`Impairment.Rate`" + `: serialization per frame behind a FIFO of one bandwidth-delay product,
  1.25 MB, that tail-drops) and loses 1 % of frames at random; the ACKs' way has the delay alone.
  lossy-bbr sends one stream for -longdur with ` + "`SetCongestionControl(\"bbr\")`" + `, then one for -longdur
  with CUBIC, on the same pair, and reports the goodput of each (bytes read by the server over
  -longdur) and their ratio. lossy-share sends a BBR stream and a CUBIC stream at once for -longdur:
  the goodput of each and CUBIC's share of the two.
- A run that returns an error or passes -timeout is reported as failed with its error text; the other
  runs still count.
`

// chart draws the netstack/gVisor ratio of each metric as a horizontal bar
// on a log scale, oriented so that right of 1× means netstack is better.
func chart(wls []workload, res map[string]map[string][]runResult) string {
	type bar struct {
		label string
		v     float64 // relative performance, >1 netstack better
		ok    bool
	}
	var bars []bar
	for _, w := range wls {
		n := summarize(res[w.id]["netstack"], len(w.metrics))
		g := summarize(res[w.id]["gVisor"], len(w.metrics))
		for i, m := range w.metrics {
			if m.noRatio {
				continue
			}
			b := bar{label: w.id + " " + m.name}
			if n.ok > 0 && g.ok > 0 && n.med[i] > 0 && g.med[i] > 0 {
				b.v, b.ok = n.med[i]/g.med[i], true
				if !m.higher {
					b.v = 1 / b.v
				}
			}
			bars = append(bars, b)
		}
	}
	const (
		left, width, rowH, top = 250, 500, 26, 50
		lo, hi                 = -2.0, 1.0 // log10 range: 0.01× … 10×
	)
	x := func(v float64) float64 {
		l := math.Max(lo, math.Min(hi, math.Log10(v)))
		return left + (l-lo)/(hi-lo)*width
	}
	h := top + rowH*len(bars) + 40
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", left+width+120, h)
	fmt.Fprintf(&s, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&s, `<text x="10" y="20" font-size="14" font-weight="bold">netstack relative to gVisor (log scale; right of 1× = netstack better)</text>`+"\n")
	for _, t := range []float64{0.01, 0.03, 0.1, 0.3, 1, 3, 10} {
		xx := x(t)
		fmt.Fprintf(&s, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", xx, top-10, xx, top+rowH*len(bars), map[bool]string{true: "black", false: "#ddd"}[t == 1])
		fmt.Fprintf(&s, `<text x="%.1f" y="%d" text-anchor="middle">%g×</text>`+"\n", xx, top+rowH*len(bars)+16, t)
	}
	for i, b := range bars {
		y := top + i*rowH
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-8, y+16, esc(b.label))
		if !b.ok {
			fmt.Fprintf(&s, `<text x="%d" y="%d" fill="#b00">failed / not run</text>`+"\n", left+4, y+16)
			continue
		}
		x0, x1 := x(1), x(b.v)
		col := "#2a8a2a"
		if b.v < 1 {
			col = "#c0392b"
			x0, x1 = x1, x0
		}
		fmt.Fprintf(&s, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y+4, math.Max(x1-x0, 1), rowH-8, col)
		fmt.Fprintf(&s, `<text x="%.1f" y="%d">%.2f×</text>`+"\n", math.Max(x(b.v), x(1))+4, y+16, b.v)
	}
	s.WriteString("</svg>\n")
	return s.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad -size %q", s)
	}
	return n * mult, nil
}

func fmtSize(n int64) string {
	switch {
	case n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// raiseNoFile lifts RLIMIT_NOFILE to n so that the kernel pair can hold
// the idle connections' descriptors (two per connection).
func raiseNoFile(n int) {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil || r.Cur >= uint64(n) {
		return
	}
	want := syscall.Rlimit{Cur: uint64(n), Max: max(r.Max, uint64(n))}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		want.Max = r.Max
		want.Cur = min(uint64(n), r.Max)
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	netns.Cleanup()
	os.Exit(1)
}
