package ip

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// The neighbour cache: next hop → MAC, filled by ARP (RFC 826) for IPv4
// and by neighbour discovery (RFC 4861) for IPv6, and resolved on demand with a few requests a retry interval apart (RFC 1122
// §2.3.2.1 asks for a rate limit of one request a second per address).
//
// States follow Linux's neighbour table and RFC 4861 §7.3.2: INCOMPLETE
// while resolving, with a bounded queue of packets waiting; REACHABLE for
// NeighReachable after a reply; then STALE (a REACHABLE entry past its
// time), still used; its next use enters DELAY, and 5 s later
// (delay_first_probe_time) PROBE sends unicast solicitations a retry
// interval apart; if they go unanswered the entry is deleted. There is no
// upper-layer reachability confirmation (RFC 4861 §7.3.1): every entry in
// use is probed once per NeighReachable.
//
// For IPv6 neighbours a router advertisement may set both times (RFC 4861
// §6.3.4): its Reachable Time becomes the base of a reachable time drawn
// at random between half and one and a half of it, and its Retrans Timer
// the retry interval of solicitations (and of duplicate address
// detection). IPv4 keeps the configured ones, as Linux's ARP and ND
// tables keep their own parameters.

type neighState uint8

const (
	neighIncomplete neighState = iota
	neighReachable
	neighProbing // PROBE: stale, used, being confirmed by unicast probes
	neighDelay   // DELAY: stale and used, first probe due in delayFirstProbe
)

// delayFirstProbe is RFC 4861 §10's DELAY_FIRST_PROBE_TIME, Linux's
// delay_first_probe_time.
const delayFirstProbe = 5 * time.Second

type neighbour struct {
	addr     netip.Addr
	mac      MAC
	state    neighState
	updated  time.Time // last confirmation
	tries    int       // requests sent in this round
	retryAt  time.Time // next request, or failure when tries is spent
	pending  [][]byte  // frames waiting for resolution (INCOMPLETE) or for the flush before them
	draining bool      // resolved, and the frames that waited are being sent: new ones queue behind them
	lastUsed time.Time
	created  time.Time
}

type neighConfig struct {
	size          int           // entry bound
	queueLen      int           // frames queued per unresolved entry
	retries       int           // requests per resolution
	retryInterval time.Duration // between requests
	reachable     time.Duration // how long a reply is trusted
}

type neighTable struct {
	mu       sync.RWMutex
	cfg      neighConfig
	reach6   atomic.Int64 // IPv6 reachable time from an RA, ns; 0: cfg.reachable
	base6    atomic.Int64 // the RA's Reachable Time it was drawn from, ns
	retrans6 atomic.Int64 // IPv6 retry interval from an RA, ns; 0: cfg.retryInterval
	m        map[netip.Addr]*neighbour
	// last is the entry lookupFast found last, while it is in m: most
	// frames go to the same next hop (the gateway, or the one peer), and
	// comparing an address is cheaper than hashing it. Set under the read
	// lock, cleared under the write lock when the entry leaves m.
	last       atomic.Pointer[neighbour]
	incomplete int // entries in INCOMPLETE
	st         *stats.ARP
}

func newNeighTable(cfg neighConfig, st *stats.ARP) *neighTable {
	return &neighTable{cfg: cfg, m: make(map[netip.Addr]*neighbour), st: st}
}

// reachable returns how long a confirmation of addr is trusted.
func (t *neighTable) reachable(addr netip.Addr) time.Duration {
	if d := t.reach6.Load(); d != 0 && addr.Is6() {
		return time.Duration(d)
	}
	return t.cfg.reachable
}

// retryInterval returns the time between solicitations of addr.
func (t *neighTable) retryInterval(addr netip.Addr) time.Duration {
	if d := t.retrans6.Load(); d != 0 && addr.Is6() {
		return time.Duration(d)
	}
	return t.cfg.retryInterval
}

// setND6 takes the Reachable Time and Retrans Timer of a router
// advertisement, where nonzero (RFC 4861 §6.3.4): a new base draws a new
// reachable time, a base heard again keeps the one drawn.
func (t *neighTable) setND6(reachable, retrans time.Duration) {
	if reachable > 0 && int64(reachable) != t.base6.Load() {
		t.base6.Store(int64(reachable))
		t.reach6.Store(int64(reachable/2 + rand.N(reachable)))
	}
	if retrans > 0 {
		t.retrans6.Store(int64(retrans))
	}
}

// lookupFast returns the MAC of a usable entry under the read lock, the
// path every established-flow packet takes. It reports false when the entry
// is missing, incomplete, or due for confirmation (the slow path handles it).
func (t *neighTable) lookupFast(addr netip.Addr, now time.Time) (MAC, bool) {
	t.mu.RLock()
	n := t.last.Load()
	if n == nil || n.addr != addr {
		if n = t.m[addr]; n != nil {
			t.last.Store(n)
		}
	}
	ok := n != nil && n.state == neighReachable && !n.draining && now.Sub(n.updated) < t.reachable(addr)
	var mac MAC
	if ok {
		mac = n.mac
	}
	t.mu.RUnlock()
	return mac, ok
}

// resolveAction tells the caller what to do after resolve.
type resolveAction struct {
	mac       MAC
	send      bool // send the frame now to mac
	queued    bool // frame copied into the pending queue
	request   bool // send an ARP request (broadcast unless unicast is set)
	unicast   bool // the request is a unicast probe to mac
	full      bool // the pending queue was full: frame dropped
	noRoom    bool // no cache entry could be made
	scheduled bool // a new retry deadline exists: re-arm the timer
}

// resolve is the slow path: it finds or creates the entry for addr and
// decides whether frame goes now, waits in the queue, or is dropped.
func (t *neighTable) resolve(addr netip.Addr, frame []byte, now time.Time) resolveAction {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.m[addr]
	if n == nil {
		// Unanswered resolutions (a flood of SYNs from spoofed on-link
		// sources makes them) may hold at most half the cache, and never
		// push out entries that work.
		if t.incomplete >= max(t.cfg.size/2, 1) {
			t.evictOldestIncomplete()
		}
		if len(t.m) >= t.cfg.size && !t.evictLocked(now) {
			stats.Inc(&t.st.CacheSizeReject)
			return resolveAction{noRoom: true}
		}
		n = &neighbour{addr: addr, state: neighIncomplete, tries: 1, retryAt: now.Add(t.retryInterval(addr)), created: now}
		t.m[addr] = n
		t.incomplete++
		n.pending = append(n.pending, clone(frame))
		return resolveAction{queued: true, request: true, scheduled: true}
	}
	n.lastUsed = now
	switch {
	case n.state == neighIncomplete, n.draining:
		if len(n.pending) >= t.cfg.queueLen {
			stats.Inc(&t.st.QueueDrops)
			return resolveAction{full: true}
		}
		n.pending = append(n.pending, clone(frame))
		return resolveAction{queued: true}
	case n.state == neighReachable:
		if now.Sub(n.updated) < t.reachable(addr) {
			return resolveAction{mac: n.mac, send: true}
		}
		// Stale: keep using it; confirm with a unicast request after the
		// DELAY state (RFC 4861 §7.3.3).
		n.state = neighDelay
		n.tries = 0
		n.retryAt = now.Add(delayFirstProbe)
		return resolveAction{mac: n.mac, send: true, scheduled: true}
	default: // delay, probing
		return resolveAction{mac: n.mac, send: true}
	}
}

// evictLocked makes room for one entry: the least recently used resolved
// entry goes, or failing that the oldest unresolved one. It reports false
// only for an empty table.
func (t *neighTable) evictLocked(now time.Time) bool {
	var victim *neighbour
	last := func(n *neighbour) time.Time {
		if n.lastUsed.After(n.updated) {
			return n.lastUsed
		}
		return n.updated
	}
	for _, n := range t.m {
		if n.state != neighIncomplete && (victim == nil || last(n).Before(last(victim))) {
			victim = n
		}
	}
	if victim == nil {
		return t.evictOldestIncomplete()
	}
	t.removeLocked(victim)
	stats.Inc(&t.st.CacheEvictions)
	return true
}

// evictOldestIncomplete drops the oldest unresolved entry and its queue.
func (t *neighTable) evictOldestIncomplete() bool {
	var victim *neighbour
	for _, n := range t.m {
		if n.state == neighIncomplete && (victim == nil || n.created.Before(victim.created)) {
			victim = n
		}
	}
	if victim == nil {
		return false
	}
	stats.Add(&t.st.QueueDrops, uint64(len(victim.pending)))
	t.removeLocked(victim)
	stats.Inc(&t.st.CacheEvictions)
	return true
}

func (t *neighTable) removeLocked(n *neighbour) {
	if n.state == neighIncomplete {
		t.incomplete--
	}
	delete(t.m, n.addr)
	if t.last.Load() == n {
		t.last.Store(nil)
	}
}

// learn records addr at mac (RFC 826: merge when the sender is known, add
// when the packet is for us) and returns frames that were waiting for it,
// which the caller sends, then asks drained for those queued meanwhile.
// While an earlier caller is still sending them, it returns none.
func (t *neighTable) learn(addr netip.Addr, mac MAC, now time.Time, create bool) [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.m[addr]
	if n == nil {
		if !create {
			return nil
		}
		if len(t.m) >= t.cfg.size && !t.evictLocked(now) {
			stats.Inc(&t.st.CacheSizeReject)
			return nil
		}
		n = &neighbour{addr: addr, created: now}
		t.m[addr] = n
	} else if n.state == neighIncomplete {
		t.incomplete--
	}
	n.mac = mac
	n.state = neighReachable
	n.updated = now
	n.tries = 0
	if n.draining {
		return nil // the caller that holds them sends them, then the rest
	}
	p := n.pending
	n.pending = nil
	n.draining = len(p) > 0
	return p
}

// drained returns the frames for addr queued while the ones learn
// returned were sent, so that they go after them, in order. With none
// left it ends the draining: frames to addr go straight out again.
func (t *neighTable) drained(addr netip.Addr) [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.m[addr]
	if n == nil {
		return nil
	}
	p := n.pending
	n.pending = nil
	n.draining = len(p) > 0
	return p
}

// request describes an ARP request the timer wants sent.
type arpRequest struct {
	target  netip.Addr
	mac     MAC
	unicast bool
}

// timer retries requests that are due and fails entries whose tries are
// spent. It appends the requests to send to reqs and returns the frames
// of failed resolutions, so the caller can report them unreachable, and
// the addresses whose entries failed.
func (t *neighTable) timer(now time.Time, reqs []arpRequest) ([]arpRequest, [][]byte, []netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var failed [][]byte
	var lost []netip.Addr
	for addr, n := range t.m {
		if n.state == neighReachable || now.Before(n.retryAt) {
			continue
		}
		if n.tries >= t.cfg.retries {
			if n.state == neighIncomplete {
				stats.Inc(&t.st.ResolveFailed)
				stats.Add(&t.st.PendingExpired, uint64(len(n.pending)))
				failed = append(failed, n.pending...)
			}
			lost = append(lost, addr)
			t.removeLocked(n)
			continue
		}
		if n.state == neighDelay {
			n.state = neighProbing
		}
		n.tries++
		n.retryAt = now.Add(t.retryInterval(addr))
		reqs = append(reqs, arpRequest{target: addr, mac: n.mac, unicast: n.state == neighProbing})
	}
	return reqs, failed, lost
}

// probe starts resolving addr with nothing queued, unless it has an entry
// already, and reports whether to send the first request.
func (t *neighTable) probe(addr netip.Addr, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m[addr] != nil || t.incomplete >= max(t.cfg.size/2, 1) || len(t.m) >= t.cfg.size {
		return false
	}
	t.m[addr] = &neighbour{addr: addr, state: neighIncomplete, tries: 1, retryAt: now.Add(t.retryInterval(addr)), created: now}
	t.incomplete++
	return true
}

// nextDeadline returns the earliest retry time, or the zero time.
func (t *neighTable) nextDeadline() time.Time {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var d time.Time
	for _, n := range t.m {
		if n.state != neighReachable && (d.IsZero() || n.retryAt.Before(d)) {
			d = n.retryAt
		}
	}
	return d
}

// get returns a copy of the entry for addr, for tests and diagnostics.
func (t *neighTable) get(addr netip.Addr) (MAC, neighState, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.m[addr]
	if n == nil {
		return MAC{}, 0, false
	}
	return n.mac, n.state, true
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
