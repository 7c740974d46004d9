package stack

import (
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gotcpip/netstack/internal/dhcp"
	"github.com/gotcpip/netstack/internal/stats"
)

// DHCP client and server ports (RFC 2131 §4.1).
const (
	dhcpClientPort = 68
	dhcpServerPort = 67
)

// dhcpRunner runs the DHCPv4 client of Config.DHCP on a goroutine of its
// own. The client (internal/dhcp) does no I/O: the runner feeds it what
// arrives on UDP port 68, its timer and the conflicts ARP reports, and does
// what it asks: sends its messages, probes an offered address with ARP,
// and applies a lease to the stack (its address, default routes, DNS
// servers and MTU) or takes a lost one away.
type dhcpRunner struct {
	s        *Stack
	c        *dhcp.Client // used by run's goroutine only
	ep       *UDPEndpoint // 0.0.0.0:68
	conflict chan netip.Addr
	stop     chan struct{} // closed by Close: release the lease and return
	exited   chan struct{} // closed when run returns

	mu     sync.Mutex
	lease  dhcp.Lease // applied; its Addr is invalid when there is none
	added  bool       // the lease's address was added by us (not there before)
	stats  dhcp.Stats // the client's counters after its last step
	counts struct{ leases, renewals, lost uint64 }
}

// newDHCP makes the client and binds UDP port 68; New starts its
// goroutine, run.
func (s *Stack) newDHCP() error {
	if !s.link.Ethernet() {
		return errors.New("netstack: DHCP needs an Ethernet link (a TAP device, not a TUN)")
	}
	c, err := dhcp.New(dhcp.Config{
		MAC:      s.mac,
		Rand:     mrand.NewPCG(uint64(s.rand32())<<32|uint64(s.rand32()), uint64(s.rand32())),
		HostName: s.cfg.HostName,
		ClientID: s.cfg.DHCPClientID,
		ProbeNum: s.cfg.DHCPProbes,
	})
	if err != nil {
		return err
	}
	ep, err := s.ListenUDP(Binding{Addr: netip.IPv4Unspecified()}, dhcpClientPort, netip.AddrPort{})
	if err != nil {
		return err
	}
	s.dhcp = &dhcpRunner{
		s:        s,
		c:        c,
		ep:       ep,
		conflict: make(chan netip.Addr, 1),
		stop:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	return nil
}

// run is the client's goroutine.
func (d *dhcpRunner) run() {
	defer close(d.exited)
	defer d.ep.Close()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	buf := make([]byte, 1<<16)
	d.c.Start(time.Now())
	for {
		d.do()
		n, _, err, wait := d.ep.Read(buf)
		if wait == nil {
			if err == nil {
				now := time.Now()
				d.c.Input(now, buf[:n])
				if next := d.c.Next(); !next.IsZero() && !now.Before(next) {
					d.c.Timer(now) // a flood of input does not hold the timer up
				}
			} else if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a soft error (the address went): nothing for the client
		}
		wait4 := time.Hour
		if next := d.c.Next(); !next.IsZero() {
			wait4 = max(time.Until(next), minTimerWait)
		}
		t.Reset(wait4)
		select {
		case <-wait:
		case <-t.C:
			d.c.Timer(time.Now())
		case a := <-d.conflict:
			d.c.Conflict(time.Now(), a)
		case <-d.stop:
			d.c.Release(time.Now())
			d.do()
			return
		}
	}
}

// do performs the client's pending actions.
func (d *dhcpRunner) do() {
	s := d.s
	d.mu.Lock()
	d.stats = d.c.Stats() // before the actions, which others may see
	d.mu.Unlock()
	for _, a := range d.c.Actions() {
		switch a.Kind {
		case dhcp.Send:
			from := netip.AddrPortFrom(a.Src, dhcpClientPort)
			if err := s.sendUDP(from, netip.AddrPortFrom(a.Dst, dhcpServerPort), a.Msg); err != nil {
				s.log.Debug("netstack: DHCP send failed", "dst", a.Dst, "err", err)
			}
		case dhcp.Probe:
			s.host.Probe(a.Addr)
		case dhcp.Apply:
			d.count(&d.counts.leases) // first: AddrsChanged may hear of the lease before apply returns
			d.apply(a.Lease)
		case dhcp.Update:
			d.count(&d.counts.renewals)
			d.update(a.Lease)
		case dhcp.Lost:
			d.count(&d.counts.lost)
			d.lose(a.Lease)
		}
	}
}

// count adds one to a counter of d.counts.
func (d *dhcpRunner) count(n *uint64) {
	d.mu.Lock()
	*n++
	d.mu.Unlock()
}

// apply gives the stack a new lease.
func (d *dhcpRunner) apply(l dhcp.Lease) {
	s := d.s
	s.host.Unwatch()
	d.mu.Lock()
	old := d.lease
	d.mu.Unlock()
	if old.Addr.IsValid() {
		d.lose(old)
	}
	// Routes, DNS servers and MTU first: whoever hears of the address
	// (AddrsChanged) finds them in place.
	d.mu.Lock()
	d.lease = l
	d.mu.Unlock()
	d.update(l)
	err := s.host.AddAddr(l.Addr)
	d.mu.Lock()
	d.added = err == nil
	d.mu.Unlock()
	// The server is where the RELEASE goes when the stack closes, by
	// unicast: learn its hardware address now.
	s.host.Resolve(time.Now(), l.Server)
	s.log.Info("netstack: DHCP lease", "addr", l.Addr, "routers", l.Routers, "dns", l.DNS, "server", l.Server, "lease", l.Duration)
}

// update applies a lease's parameters other than its address: routers,
// DNS servers, MTU.
func (d *dhcpRunner) update(l dhcp.Lease) {
	s := d.s
	s.host.SetLeaseRouters(l.Routers, l.Addr.Masked())
	s.linkMTU4.Store(int32(s.host.SetLinkMTU4(l.MTU)))
	d.mu.Lock()
	d.lease.DNS, d.lease.Routers, d.lease.MTU = l.DNS, l.Routers, l.MTU
	d.mu.Unlock()
}

// lose takes a lease that ended away from the stack: its address, with
// the connections from it, its routes, DNS servers and MTU.
func (d *dhcpRunner) lose(l dhcp.Lease) {
	s := d.s
	s.host.Unwatch()
	d.mu.Lock()
	added := d.added && d.lease.Addr == l.Addr
	d.lease, d.added = dhcp.Lease{}, false
	d.mu.Unlock()
	if added {
		s.removeAddr(l.Addr.Addr())
	}
	s.host.SetLeaseRouters(nil, netip.Prefix{})
	s.linkMTU4.Store(int32(s.host.SetLinkMTU4(0)))
	s.log.Info("netstack: DHCP lease lost", "addr", l.Addr)
}

// close releases the lease (a RELEASE to the server) and waits for the
// client's goroutine to end.
func (d *dhcpRunner) close() {
	close(d.stop)
	<-d.exited
}

// dns returns the DNS servers of the lease.
func (d *dhcpRunner) dns() []netip.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.lease.DNS)
}

// countInto copies the client's counters into st.
func (d *dhcpRunner) countInto(st *stats.DHCP) {
	d.mu.Lock()
	c, n := d.stats, d.counts
	d.mu.Unlock()
	*st = stats.DHCP{
		Sent: c.Sent, Received: c.Received, Offers: c.Offers, Acks: c.Acks, Naks: c.Naks,
		Declines: c.Declines, Leases: n.leases, Renewals: n.renewals, Lost: n.lost,
		DropMalformed: c.DropMalformed, DropNotOurs: c.DropNotOurs + c.DropUnexpected,
		DropBadLease: c.DropBadOffer + c.DropBadAck, DropFlood: c.DropOfferFlood,
	}
}
