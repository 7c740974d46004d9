package dhcp

import (
	"math/bits"
	"net/netip"
	"time"
)

// Infinite is the Duration, T1 and T2 of a lease that never ends
// (lease time 0xffffffff).
const Infinite = time.Duration(1<<63 - 1)

// A Lease is an address and its configuration as a server granted them.
type Lease struct {
	Addr    netip.Prefix // the address with the subnet mask's length (no mask: its class's, /8, /16 or /24)
	Routers []netip.Addr // only those on the subnet
	DNS     []netip.Addr
	Domain  string
	MTU     int        // 0: none given; values below 68 are ignored
	Server  netip.Addr // the server identifier
	Start   time.Time  // when the REQUEST that got the ACK was first sent
	T1, T2  time.Duration
	// Duration is the length of the lease, Infinite for one that never ends.
	Duration time.Duration
}

// renewAt, rebindAt and endAt are the times T1, T2 and the expiry.
func (l *Lease) renewAt() time.Time  { return l.Start.Add(l.T1) }
func (l *Lease) rebindAt() time.Time { return l.Start.Add(l.T2) }
func (l *Lease) endAt() time.Time    { return l.Start.Add(l.Duration) }

// validAddr reports whether a may be assigned to a host: unicast IPv4, not
// in 0.0.0.0/8, loopback, multicast, the reserved 240.0.0.0/4 or the
// limited broadcast address.
func validAddr(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[0] != 0 && b[0] != 127 && b[0] < 224
}

// leaseFrom checks an OFFER or ACK and makes the lease it grants, counted
// from start. It fails for an address that cannot be a host's, a missing
// or zero lease time, a missing server identifier or a mask that is not
// contiguous or leaves no room for the address.
func leaseFrom(m *Message, start time.Time) (Lease, bool) {
	o := m.Options
	server, ok := o.ServerID()
	if !ok || !validAddr(server) || !validAddr(m.YIAddr) {
		return Lease{}, false
	}
	secs, ok := o.LeaseTime()
	if !ok || secs == 0 {
		return Lease{}, false
	}
	bitsLen := classfulBits(m.YIAddr)
	if _, ok := o[OptSubnetMask]; ok {
		mask, ok := o.SubnetMask()
		if !ok {
			return Lease{}, false
		}
		if bitsLen, ok = maskBits(mask); !ok {
			return Lease{}, false
		}
	}
	p := netip.PrefixFrom(m.YIAddr, bitsLen)
	if bitsLen <= 30 {
		// Neither the network's own address nor its broadcast address.
		net := p.Masked().Addr()
		if m.YIAddr == net || m.YIAddr == lastAddr(p) {
			return Lease{}, false
		}
	}
	l := Lease{Addr: p, Server: server, Start: start, Domain: o.DomainName()}
	for _, r := range o.Routers() {
		if r != m.YIAddr && p.Contains(r) && validAddr(r) {
			l.Routers = append(l.Routers, r)
		}
	}
	for _, d := range o.DNS() {
		if validAddr(d) {
			l.DNS = append(l.DNS, d)
		}
	}
	if mtu, ok := o.MTU(); ok && mtu >= 68 {
		l.MTU = int(mtu)
	}
	if secs == 0xffffffff {
		l.T1, l.T2, l.Duration = Infinite, Infinite, Infinite
		return l, true
	}
	l.Duration = time.Duration(secs) * time.Second
	l.T1, l.T2 = l.Duration/2, l.Duration/8*7
	if t2, ok := o.RebindingTime(); ok && t2 > 0 && time.Duration(t2)*time.Second < l.Duration {
		l.T2 = time.Duration(t2) * time.Second
	}
	if t1, ok := o.RenewalTime(); ok && t1 > 0 {
		l.T1 = time.Duration(t1) * time.Second
	}
	if l.T1 >= l.T2 {
		l.T1 = l.T2 / 7 * 4 // T1 keeps the default ratio 0.5 : 0.875 to T2
	}
	return l, true
}

// maskBits returns the prefix length of a contiguous mask of 1 to 32 bits.
func maskBits(mask netip.Addr) (int, bool) {
	b := mask.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := bits.LeadingZeros32(^v)
	if n == 0 || v<<n != 0 {
		return 0, false
	}
	return n, true
}

// classfulBits is the prefix length when no mask is given: RFC 2131 leaves
// it open, so the class of the address decides, as before CIDR.
func classfulBits(a netip.Addr) int {
	switch b := a.As4(); {
	case b[0] < 128:
		return 8
	case b[0] < 192:
		return 16
	default:
		return 24
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= 1<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
