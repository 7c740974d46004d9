package netnstest

import (
	"net/netip"
	"os"
	"strconv"
)

// Behind makes ns a router to a second namespace behind it, and returns
// that namespace and its address. The kernel side of ns forwards
// (ip_forward=1) between its device, toward the stack, and a veth pair
// whose two ends, in ns and in the new namespace, both have MTU mtu: a
// narrower next hop, so the kernel's real forwarding path answers larger
// packets that may not be fragmented with ICMP fragmentation-needed.
//
// The peer announces the MSS of ns's own MTU, not its link's, so the
// narrow hop is found only by path MTU discovery. The far side is
// 198.19.N.0/24 (the router at .1, the peer at .2, N as
// for ns), routed back to the stack's subnet through the router. A stack
// on ns.Dev reaches it with ns.KernelAddr as its gateway. Close of the
// returned NS removes the namespace and the veth with it.
func (ns *NS) Behind(mtu int) (*NS, netip.Addr) {
	ns.t.Helper()
	peer := Empty(ns.t)
	third := ns.KernelAddr.As4()[2]
	router := netip.AddrFrom4([4]byte{198, 19, third, 1})
	addr := netip.AddrFrom4([4]byte{198, 19, third, 2})
	vr, vp := "r"+ns.DevName, "p"+ns.DevName
	if len(vr) >= ifNameSize {
		vr, vp = vr[:ifNameSize-1], vp[:ifNameSize-1]
	}
	m := strconv.Itoa(mtu)
	ns.mustIP("-n", ns.Name, "link", "add", vr, "mtu", m, "type", "veth", "peer", "name", vp, "mtu", m, "netns", peer.Name)
	ns.mustIP("-n", ns.Name, "addr", "add", netip.PrefixFrom(router, 24).String(), "dev", vr)
	ns.mustIP("-n", ns.Name, "link", "set", "dev", vr, "up")
	ns.mustIP("-n", peer.Name, "addr", "add", netip.PrefixFrom(addr, 24).String(), "dev", vp)
	ns.mustIP("-n", peer.Name, "link", "set", "dev", vp, "up")
	// advmss: the peer announces the MSS of ns's side of the path (as a
	// host with a wide link of its own would), so that the handshake does
	// not reveal the narrow hop and the path MTU must be discovered.
	ns.mustIP("-n", peer.Name, "route", "add", ns.StackPrefix.Masked().String(), "via", router.String(),
		"advmss", strconv.Itoa(ns.MTU-40))
	if err := ns.Run(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0)
	}); err != nil {
		ns.t.Fatalf("netnstest: forwarding in %s: %v", ns.Name, err)
	}
	return peer, addr
}

// Behind6 is Behind for IPv6: ns (made with the IPv6 option) forwards IPv6
// between its device and a veth pair of MTU mtu to a second namespace,
// whose address it returns. The far side is fd00:19:N::/64 (the router at
// ::1, the peer at ::2, without duplicate address detection), routed back
// to stackNet, the stack's IPv6 prefix on ns.Dev, through the router. A
// stack on ns.Dev reaches the peer with the kernel's address on ns.Dev as
// its gateway; larger packets at the narrow hop draw the kernel's real
// Packet Too Big (RFC 8201). The peer announces the MSS of ns's own MTU,
// so that only path MTU discovery finds the hop.
func (ns *NS) Behind6(mtu int, stackNet netip.Prefix) (*NS, netip.Addr) {
	ns.t.Helper()
	peer := Empty(ns.t, IPv6())
	n := ns.KernelAddr.As4()[2]
	router := netip.MustParseAddr("fd00:19:" + strconv.FormatUint(uint64(n), 16) + "::1")
	addr := netip.MustParseAddr("fd00:19:" + strconv.FormatUint(uint64(n), 16) + "::2")
	vr, vp := "r6"+ns.DevName, "p6"+ns.DevName
	if len(vr) >= ifNameSize {
		vr, vp = vr[:ifNameSize-1], vp[:ifNameSize-1]
	}
	m := strconv.Itoa(mtu)
	ns.mustIP("-n", ns.Name, "link", "add", vr, "mtu", m, "type", "veth", "peer", "name", vp, "mtu", m, "netns", peer.Name)
	ns.mustIP("-n", ns.Name, "-6", "addr", "add", netip.PrefixFrom(router, 64).String(), "dev", vr, "nodad")
	ns.mustIP("-n", ns.Name, "link", "set", "dev", vr, "up")
	ns.mustIP("-n", peer.Name, "-6", "addr", "add", netip.PrefixFrom(addr, 64).String(), "dev", vp, "nodad")
	ns.mustIP("-n", peer.Name, "link", "set", "dev", vp, "up")
	ns.mustIP("-n", peer.Name, "-6", "route", "add", stackNet.Masked().String(), "via", router.String(),
		"advmss", strconv.Itoa(ns.MTU-60))
	if err := ns.Run(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1"), 0)
	}); err != nil {
		ns.t.Fatalf("netnstest: IPv6 forwarding in %s: %v", ns.Name, err)
	}
	return peer, addr
}
