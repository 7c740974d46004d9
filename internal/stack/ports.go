package stack

import (
	"net/netip"
	"syscall"
)

// Linux's default net.ipv4.ip_local_port_range.
const (
	EphemeralLow  = 32768
	EphemeralHigh = 60999
)

// portTable tracks the local ports in use by one protocol.
type portTable struct {
	used map[uint16]int // refcount
}

// take claims port, or a random free ephemeral port when port is 0, as
// Linux picks them (a random start, then the next free one). It fails with
// EADDRINUSE when port is taken and EADDRNOTAVAIL when the range is full.
func (p *portTable) take(port uint16, rnd func() uint32) (uint16, error) {
	if p.used == nil {
		p.used = make(map[uint16]int)
	}
	if port != 0 {
		if p.used[port] > 0 {
			return 0, syscall.EADDRINUSE
		}
		p.used[port]++
		return port, nil
	}
	n := uint32(EphemeralHigh - EphemeralLow + 1)
	start := rnd() % n
	for i := range n {
		cand := uint16(EphemeralLow + (start+i)%n)
		if p.used[cand] == 0 {
			p.used[cand]++
			return cand, nil
		}
	}
	return 0, syscall.EADDRNOTAVAIL
}

// release gives port back.
func (p *portTable) release(port uint16) {
	if p.used[port]--; p.used[port] <= 0 {
		delete(p.used, port)
	}
}

// BindAddr checks a local address to bind: unspecified or ours, as
// bind(2) fails with EADDRNOTAVAIL otherwise.
func (s *Stack) BindAddr(a netip.Addr) error {
	if a.IsUnspecified() || a == s.Addr() {
		return nil
	}
	return syscall.EADDRNOTAVAIL
}
