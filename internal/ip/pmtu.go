package ip

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// Path MTU discovery (RFC 1191): the transport validates a fragmentation-
// needed message against the connection it names (RFC 5927) and then
// records the next-hop MTU here, for every later packet and connection to
// that destination.
const (
	// MinPathMTU is the smallest path MTU a message may set: a router
	// reporting less (68, say) is taken to mean this, as Linux's min_pmtu.
	MinPathMTU = 552
	// MinIPv4MTU is the datagram every IPv4 host must take (RFC 791).
	MinIPv4MTU = 68
	// PathMTUExpiry is how long a learned path MTU holds before packets
	// try the link's MTU again (RFC 1191 §6.3; Linux's mtu_expires).
	PathMTUExpiry = 10 * time.Minute
)

// pathMTUs is the cache of path MTUs below the link's, by destination,
// bounded in entries so that a flood of messages cannot grow it.
type pathMTUs struct {
	n   atomic.Int32 // len(m), so the common empty case takes no lock
	mu  sync.Mutex
	m   map[netip.Addr]pmtuEntry
	max int
}

type pmtuEntry struct {
	mtu     int
	expires time.Time
}

// PathMTU returns the MTU of the path to dst: the learned one while it
// holds, else the link's.
func (h *Host) PathMTU(now time.Time, dst netip.Addr) int {
	link := int(h.linkMTU4.Load()) // lowered by a DHCP lease's MTU option
	if dst.Is6() {
		link = int(h.v6.linkMTU.Load()) // lowered by an RA's MTU option
	}
	c := &h.pmtu
	if c.n.Load() == 0 {
		return link
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[dst]; ok {
		if now.Before(e.expires) {
			return e.mtu
		}
		delete(c.m, dst)
		c.n.Store(int32(len(c.m)))
	}
	return link
}

// SetPathMTU records that the path to dst carries packets of at most mtu
// bytes, raised to MinPathMTU (IPv6: to IPv6MinMTU, RFC 8201 §4). It
// returns the path MTU now in force, which
// is unchanged if mtu was not below it.
func (h *Host) SetPathMTU(now time.Time, dst netip.Addr, mtu int) int {
	if dst.Is6() {
		mtu = max(mtu, IPv6MinMTU)
	} else {
		mtu = max(mtu, MinPathMTU)
	}
	cur := h.PathMTU(now, dst)
	if mtu >= cur {
		return cur
	}
	c := &h.pmtu
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[netip.Addr]pmtuEntry)
	}
	if _, ok := c.m[dst]; !ok && len(c.m) >= c.max {
		// Full: drop the entry that would expire first.
		var oldest netip.Addr
		var at time.Time
		for a, e := range c.m {
			if !oldest.IsValid() || e.expires.Before(at) {
				oldest, at = a, e.expires
			}
		}
		delete(c.m, oldest)
		if oldest.Is6() {
			stats.Inc(&h.st.IPv6.PathMTUEvicted)
		} else {
			stats.Inc(&h.st.IPv4.PathMTUEvicted)
		}
	}
	c.m[dst] = pmtuEntry{mtu: mtu, expires: now.Add(PathMTUExpiry)}
	c.n.Store(int32(len(c.m)))
	return mtu
}

// SetLinkMTU4 sets the MTU of IPv4 on the link to mtu, as a DHCP lease's
// interface MTU option asks (RFC 2132 §5.1), within 68 and the link's
// MTU; 0 restores the link's. It returns the MTU in force.
func (h *Host) SetLinkMTU4(mtu int) int {
	if mtu == 0 || mtu > h.cfg.MTU {
		mtu = h.cfg.MTU
	}
	mtu = max(mtu, MinIPv4MTU)
	h.linkMTU4.Store(int32(mtu))
	return mtu
}
