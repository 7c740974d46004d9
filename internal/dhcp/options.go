package dhcp

import (
	"encoding/binary"
	"net/netip"
)

// Option codes (RFC 2132, RFC 4361).
const (
	optPad            = 0
	OptSubnetMask     = 1
	OptRouters        = 3
	OptDNS            = 6
	OptHostName       = 12
	OptDomainName     = 15
	OptInterfaceMTU   = 26
	OptBroadcast      = 28
	OptRequestedIP    = 50
	OptLeaseTime      = 51
	OptOverload       = 52
	OptMessageType    = 53
	OptServerID       = 54
	OptParamRequest   = 55
	OptMessage        = 56
	OptMaxMessageSize = 57
	OptRenewalTime    = 58
	OptRebindingTime  = 59
	OptClientID       = 61
	optEnd            = 255
)

// Options maps an option code to its value, the pieces of an option that
// appears more than once joined in order.
type Options map[uint8][]byte

// Addr returns the option code as one IPv4 address.
func (o Options) Addr(code uint8) (netip.Addr, bool) {
	v := o[code]
	if len(v) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(v)), true
}

// Addrs returns the option code as a list of IPv4 addresses, or nil when
// its length is not a positive multiple of four.
func (o Options) Addrs(code uint8) []netip.Addr {
	v := o[code]
	if len(v) == 0 || len(v)%4 != 0 {
		return nil
	}
	var as []netip.Addr
	for ; len(v) > 0; v = v[4:] {
		as = append(as, netip.AddrFrom4([4]byte(v)))
	}
	return as
}

// Uint16 returns the option code as a 16-bit number.
func (o Options) Uint16(code uint8) (uint16, bool) {
	v := o[code]
	if len(v) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(v), true
}

// Uint32 returns the option code as a 32-bit number.
func (o Options) Uint32(code uint8) (uint32, bool) {
	v := o[code]
	if len(v) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v), true
}

// SetAddrs sets the option code to the IPv4 addresses as.
func (o Options) SetAddrs(code uint8, as ...netip.Addr) {
	v := make([]byte, 4*len(as))
	for i, a := range as {
		put4(v[4*i:], a)
	}
	o[code] = v
}

// SetUint16 sets the option code to the 16-bit number n.
func (o Options) SetUint16(code uint8, n uint16) {
	o[code] = binary.BigEndian.AppendUint16(nil, n)
}

// SetUint32 sets the option code to the 32-bit number n.
func (o Options) SetUint32(code uint8, n uint32) {
	o[code] = binary.BigEndian.AppendUint32(nil, n)
}

// SubnetMask returns option 1.
func (o Options) SubnetMask() (netip.Addr, bool) { return o.Addr(OptSubnetMask) }

// Routers returns option 3.
func (o Options) Routers() []netip.Addr { return o.Addrs(OptRouters) }

// DNS returns option 6.
func (o Options) DNS() []netip.Addr { return o.Addrs(OptDNS) }

// HostName returns option 12.
func (o Options) HostName() string { return string(o[OptHostName]) }

// DomainName returns option 15.
func (o Options) DomainName() string { return string(o[OptDomainName]) }

// MTU returns option 26.
func (o Options) MTU() (uint16, bool) { return o.Uint16(OptInterfaceMTU) }

// Broadcast returns option 28.
func (o Options) Broadcast() (netip.Addr, bool) { return o.Addr(OptBroadcast) }

// RequestedIP returns option 50.
func (o Options) RequestedIP() (netip.Addr, bool) { return o.Addr(OptRequestedIP) }

// LeaseTime returns option 51 in seconds; 0xffffffff is infinity.
func (o Options) LeaseTime() (uint32, bool) { return o.Uint32(OptLeaseTime) }

// ServerID returns option 54.
func (o Options) ServerID() (netip.Addr, bool) { return o.Addr(OptServerID) }

// ParamRequestList returns option 55.
func (o Options) ParamRequestList() []byte { return o[OptParamRequest] }

// Message returns option 56, the text a server gives with a NAK.
func (o Options) Message() string { return string(o[OptMessage]) }

// MaxMessageSize returns option 57.
func (o Options) MaxMessageSize() (uint16, bool) { return o.Uint16(OptMaxMessageSize) }

// RenewalTime returns option 58, T1, in seconds.
func (o Options) RenewalTime() (uint32, bool) { return o.Uint32(OptRenewalTime) }

// RebindingTime returns option 59, T2, in seconds.
func (o Options) RebindingTime() (uint32, bool) { return o.Uint32(OptRebindingTime) }

// ClientID returns option 61.
func (o Options) ClientID() []byte { return o[OptClientID] }
