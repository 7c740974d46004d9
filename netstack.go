// Package netstack is a userspace TCP/IP stack. A Stack owns one Link (a
// TAP or TUN device, an in-memory Pipe, or a link you implement) and IPv4
// and IPv6 addresses, answers ARP, neighbor discovery and ping, and hands
// out connections that behave like package net's, so code written for the
// kernel's sockets runs over it unmodified.
//
// # Dual stack
//
// Networks are package net's: "tcp", "udp" and "ip" take either family,
// "tcp4", "udp4", "ip4" IPv4 only and "tcp6", "udp6", "ip6" IPv6 only.
// As Go's sockets on Linux, Listen("tcp", ":80") (also with host 0.0.0.0
// or [::]) is one dual-stack listener: its Addr is [::]:80 and it accepts
// connections to the stack's IPv4 and IPv6 addresses, those from IPv4
// peers with addresses in their IPv4-mapped form (::ffff:198.18.0.1),
// which print as IPv4 but compare as 16-byte IPs, as Go presents them.
// "tcp4" with ":80" listens on 0.0.0.0:80 only and "tcp6" on [::]:80
// only. Dial of a name resolves A and AAAA records and races the two
// families per RFC 8305 (see Dialer.FallbackDelay).
//
// A stack has one link, so the zone of a link-local address
// (fe80::1%zone) can name only it: a zone is accepted when it is the
// link's name (Stack.Zone: the device's name for a TAP or TUN, "link"
// otherwise), "1", its index, as a one-interface host numbers it, or
// empty, and any other zone fails with an error. Addresses the stack
// returns (LocalAddr, RemoteAddr, ReadFrom) carry the link's name as the
// zone when they are link-local, as Go's do the interface's name.
//
// This package is the public surface: Stack, Config, the net.Conn,
// net.Listener and net.PacketConn adapters, Dialer, Resolver and the link
// constructors. The engine that does the stack's work (demultiplexing,
// ports, endpoints, timers) is internal/stack, over the protocol layers in
// internal/ip (Ethernet, ARP, IPv4, ICMP), internal/tcp (a sans-I/O TCP
// machine) and internal/udp, and the devices in internal/link.
// ARCHITECTURE.md in the repository shows how a packet travels through
// them.
package netstack

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack/internal/stack"
	"github.com/gotcpip/netstack/internal/stats"
)

// Config describes a Stack.
type Config struct {
	// Link is the device the stack sends and receives on. Required.
	Link Link
	// Addrs are the stack's static addresses with their on-link prefixes,
	// any number of IPv4 (198.18.0.2/24) and IPv6 (fd00::2/64) ones. On an
	// Ethernet link the stack also has an IPv6 link-local address and
	// those it configures from router advertisements (SLAAC); Stack.Addrs
	// lists them all. On an Ethernet link Addrs may be empty: the stack
	// then lives on its link-local address and what routers advertise
	// (an IPv6 host configured by SLAAC alone); on a link without
	// Ethernet headers (TUN, PacketLink) at least one address is required.
	Addrs []netip.Prefix
	// Addr is a shorthand for one more address in Addrs, listed first.
	Addr netip.Prefix
	// Gateways are the next hops for destinations off the on-link
	// prefixes: an IPv4 one on an IPv4 subnet of Addrs, an IPv6 one
	// link-local or on an IPv6 prefix of Addrs. Each is a default route of
	// metric 0 (see Stack.Routes); of one family the first is used while
	// it answers ARP or neighbour solicitations, then the next. Routers
	// learnt from router advertisements are added to them. None means
	// on-link destinations only, until routes are added.
	Gateways []netip.Addr
	// Gateway is a shorthand for one more gateway in Gateways, listed
	// first.
	Gateway netip.Addr
	// DADTransmits is how many neighbor solicitations duplicate address
	// detection sends for each IPv6 address before using it (RFC 4862
	// §5.1), about a second each: 0 means 1, as Linux's dad_transmits;
	// negative means none, so addresses are usable at once (ip-address(8)'s
	// nodad).
	DADTransmits int
	// DNS lists the servers Resolver queries, of either family; the
	// servers router advertisements announce (RDNSS) follow them.
	DNS []netip.AddrPort
	// MTU caps the size of IP packets sent; 0 means the link's MTU. It
	// may not exceed the link's MTU: New fails if it does.
	MTU int
	// MAC is the stack's Ethernet address on an Ethernet link. Nil means a
	// random locally administered unicast address.
	MAC net.HardwareAddr
	// Logger receives diagnostics; nil means silent.
	Logger *slog.Logger
	// TCP holds defaults for TCP connections.
	TCP TCPConfig
	// Forwarder, if set, makes the stack accept TCP connections and UDP
	// flows for any destination and hand them to its handlers. Its TCP and
	// UDP sockets may then use addresses not the stack's, as Linux's
	// IP_TRANSPARENT allows, for transparent proxies: Listen,
	// ListenPacket and Dialer.LocalAddr take any unicast address, send
	// from it, and get what comes back to it.
	Forwarder *Forwarder
	// Limits bounds what the stack holds; each bound that is hit is
	// counted in Stats.
	Limits Limits
	// AddrsChanged, if set, is called with the stack's usable addresses,
	// as Stack.Addrs returns them, each time they change: AddAddr and
	// RemoveAddr, an IPv6 address passing duplicate address detection, an
	// address configured from router advertisements or expiring. Calls
	// come one at a time, in order, from a goroutine of the stack's;
	// changes close together may come as one call. The function may call
	// the stack's methods, except Close, which waits for it to return.
	// It hears of addresses DHCP leases and loses too.
	AddrsChanged func(addrs []netip.Prefix)
	// DHCP runs a DHCPv4 client (RFC 2131) on the link, which must be an
	// Ethernet one (a TAP device): the stack asks for a lease, probes the
	// offered address with ARP and declines it if another host has it
	// (RFC 5227), then takes the lease's address and subnet, its routers
	// as default routes (see Stack.Routes), its DNS servers (ahead of
	// those router advertisements announce, behind Config.DNS) and its
	// interface MTU when lower than the link's. It renews the lease at T1
	// and rebinds at T2; when the lease is lost (expired, refused by the
	// server with a NAK), its address goes as RemoveAddr takes one, and
	// the client asks for a new one. Close releases the lease. Addrs may
	// be empty then; static addresses and gateways are kept beside the
	// lease's. Watch the address come and go with AddrsChanged; Stats.DHCP
	// counts the messages.
	DHCP bool
	// HostName is the name the DHCP client gives the server (option 12),
	// which a server may put in its DNS; empty means the host's name
	// (os.Hostname).
	HostName string
	// InputWorkers, above 1, spreads the input of the link over that many
	// goroutines, so receiving uses more than one core: the link's reader
	// hashes each frame's flow (its addresses, protocol and ports) and
	// hands the frame to that flow's worker, as a NIC's receive-side
	// scaling does. Each flow's packets are input in order; ARP, neighbor
	// discovery, ICMP and IP fragments all go to the first worker. On a
	// link that lends frames (the Lend capability), several are then lent
	// at once and each is released by the worker that input it, in any
	// order and from any goroutine, which Pipe and PacketLink allow. 0 or
	// 1 means one goroutine does all input. A Device opened with several
	// queues (OpenTAPQueues) is read by a goroutine per queue and ignores
	// InputWorkers. Stack.InputFrames shows how input was spread.
	InputWorkers int
}

// defaultInputWorkers is Config.InputWorkers when that is 0; tests set it
// to run every stack with input workers.
var defaultInputWorkers = 0

// Limits bounds a stack's resources, so hostile or simply heavy traffic
// cannot grow its memory without end. Zero fields take the defaults in
// their comments, which follow Linux's.
type Limits struct {
	// MaxConnections bounds TCP connections in every state, TIME-WAIT
	// included. At the bound a new connection ends the oldest one in
	// TIME-WAIT early (counted in Stats.TCP.TimeWaitEvicted), as Linux
	// skips TIME-WAIT past tcp_max_tw_buckets; with none in TIME-WAIT,
	// dials fail with ENOBUFS and SYNs are dropped. 0 means 65536.
	MaxConnections int
	// Backlog bounds, per listener, both the half-open connections and
	// those established but not yet accepted (Linux's somaxconn); 0 means
	// 4096.
	Backlog int
	// ReassemblyMemory bounds the bytes held for IP reassembly; 0 means
	// 4 MiB (Linux's ipfrag_high_thresh).
	ReassemblyMemory int
	// NeighborCache bounds the neighbour cache entries (ARP and NDP
	// together); 0 means 512.
	NeighborCache int
	// NeighborQueue bounds the packets queued per next hop while it is
	// resolved; 0 means 16.
	NeighborQueue int
	// UDPReceiveBuffer is each UDP socket's default queue in bytes of
	// payload (SetReadBuffer changes it); 0 means 212992 (rmem_default).
	UDPReceiveBuffer int
	// TCPBufferMemory bounds the send and receive buffers of all TCP
	// connections together, as Linux's tcp_mem. Past two thirds of it,
	// until use falls back to half (memory pressure), buffers stop
	// growing: windows offer only the memory a connection has, and Write
	// blocks until acknowledgments free room; data that arrives within a
	// window offered before and finds the bound reached is dropped for the
	// peer to resend. Each refusal counts in Stats.TCP.BufferBudgetHits.
	// Each connection still gets 4 KiB each way, so the true bound is this
	// plus 8 KiB per connection (MaxConnections bounds those). 0 means
	// 256 MiB: what tcp_mem allows on a host with about 3 GiB of memory,
	// room for 25 connections at their largest autotuned buffers (6 MiB
	// and 4 MiB), and fixed so that a stack behaves the same on every
	// host.
	TCPBufferMemory int
	// ForwardedUDPFlows bounds the UDP flows a Forwarder holds at once; a
	// datagram that would open one more is dropped and counted in
	// Stats.UDP.DropFlowLimit. 0 means 65536.
	ForwardedUDPFlows int
	// PathMTUCache bounds the destinations whose path MTU, lowered by an
	// ICMP fragmentation-needed message, is remembered (for 10 minutes
	// each, as Linux); past it the entry expiring first is dropped and
	// counted in Stats.IPv4.PathMTUEvicted. 0 means 4096.
	PathMTUCache int
	// Routers bounds the default routers, and RDNSSServers the DNS
	// servers, learnt from IPv6 router advertisements; past either, more
	// are ignored and counted (Stats.NDP.RouterLimit, RDNSSLimit). 0
	// means 8 each.
	Routers, RDNSSServers int
	// Prefixes bounds the on-link prefixes, and separately the SLAAC
	// addresses, learnt from router advertisements; past it more are
	// ignored and counted (Stats.NDP.PrefixLimit). 0 means 16.
	Prefixes int
}

func (l Limits) engine() stack.Limits {
	return stack.Limits{
		MaxConnections:    l.MaxConnections,
		Backlog:           l.Backlog,
		ReassemblyMemory:  l.ReassemblyMemory,
		NeighborCache:     l.NeighborCache,
		NeighborQueue:     l.NeighborQueue,
		UDPReceiveBuffer:  l.UDPReceiveBuffer,
		TCPBufferMemory:   l.TCPBufferMemory,
		ForwardedUDPFlows: l.ForwardedUDPFlows,
		PathMTUCache:      l.PathMTUCache,
		Routers:           l.Routers,
		RDNSSServers:      l.RDNSSServers,
		Prefixes:          l.Prefixes,
	}.WithDefaults()
}

// TCPConfig holds defaults for a stack's TCP connections. Zero fields take
// the defaults in their comments.
type TCPConfig struct {
	// ReceiveBuffer fixes each connection's receive buffer, which bounds
	// the window it offers; 0 means autotuned, from 128 KiB up to 6 MiB as
	// the measured bandwidth-delay product asks (Linux's tcp_rmem).
	ReceiveBuffer int
	// SendBuffer fixes each connection's send buffer; 0 means autotuned,
	// from 64 KiB up to 4 MiB, twice the congestion window (tcp_wmem).
	SendBuffer int
	// TimeWait is how long a closed connection lingers in TIME-WAIT
	// (2·MSL); 0 means 60 s, as Linux.
	TimeWait time.Duration
	// CongestionControl names the algorithm of new connections: "cubic"
	// (RFC 9438, the default, as Linux), "reno" (NewReno, RFC 5681 and
	// 6582) or "bbr" (BBRv3, draft-ietf-ccwg-bbr, which paces its sends).
	// TCPConn.SetCongestionControl changes one connection's.
	CongestionControl string
	// NoSACK turns selective acknowledgments (RFC 2018) off.
	NoSACK bool
	// ECN turns on Explicit Congestion Notification (RFC 3168): new
	// connections ask for it and accept it, and where both ends agree,
	// data goes out ECN-capable and a router's congestion mark reduces
	// the sending rate as a loss would, with nothing retransmitted. Off,
	// connections neither ask for ECN nor accept it (Linux by default,
	// net.ipv4.tcp_ecn=2, accepts it when asked).
	ECN bool
}

// Stats is a snapshot of a stack's counters, grouped per layer: frames,
// packets and segments received and sent, and drops by reason.
type Stats = stats.Stats

// A Stack is one host on a link. Its methods are safe for concurrent use.
type Stack struct {
	e       *stack.Stack
	cfg     Config
	zone    string        // the link's name, the zone of link-local addresses
	dnsNext atomic.Uint32 // the next server of Config.DNS to ask
}

// New starts a stack on cfg.Link: it announces its address with a
// gratuitous ARP and starts its reader and timer goroutines. Close stops
// them and closes the link.
func New(cfg Config) (*Stack, error) {
	if cfg.Link == nil {
		return nil, errors.New("netstack: Config.Link is nil")
	}
	addrs, gws, err := checkAddrs(&cfg)
	if err != nil {
		return nil, err
	}
	mtu := cfg.Link.MTU()
	if cfg.MTU > mtu {
		return nil, fmt.Errorf("netstack: Config.MTU %d exceeds the link's MTU of %d", cfg.MTU, mtu)
	}
	if cfg.MTU > 0 {
		mtu = cfg.MTU
	}
	if mtu > 65535 {
		return nil, fmt.Errorf("netstack: MTU %d above the IPv4 maximum of 65535", mtu)
	}
	if mtu < 68 { // RFC 791: every host must take a 68-byte datagram
		return nil, fmt.Errorf("netstack: MTU %d below the IPv4 minimum of 68", mtu)
	}
	for _, p := range addrs {
		if p.Addr().Is6() && mtu < ipv6MinMTU {
			return nil, fmt.Errorf("netstack: MTU %d below the IPv6 minimum of %d, with IPv6 address %v", mtu, ipv6MinMTU, p)
		}
	}
	cc, err := stack.CCByName(cfg.TCP.CongestionControl)
	if err != nil {
		return nil, err
	}
	var mac [6]byte
	switch {
	case len(cfg.MAC) == 6:
		mac = [6]byte(cfg.MAC)
	case cfg.MAC != nil:
		return nil, fmt.Errorf("netstack: MAC %v is not 6 bytes", cfg.MAC)
	}
	host := cfg.HostName
	if cfg.DHCP && host == "" {
		host, _ = os.Hostname()
	}
	e, err := stack.New(stack.Config{
		Link:         cfg.Link,
		Addrs:        addrs,
		Gateways:     gws,
		DADTransmits: cfg.DADTransmits,
		MTU:          mtu,
		MAC:          mac,
		Logger:       cfg.Logger,
		Limits:       cfg.Limits.engine(),
		TCP: stack.TCPConfig{
			RecvBuf:  cfg.TCP.ReceiveBuffer,
			SendBuf:  cfg.TCP.SendBuffer,
			TimeWait: cfg.TCP.TimeWait,
			NoSACK:   cfg.TCP.NoSACK,
			ECN:      cfg.TCP.ECN,
			NewCC:    cc,
		},
		Forward:      cfg.Forwarder.engine(linkZone(cfg.Link)),
		AddrsChanged: cfg.AddrsChanged,
		DHCP:         cfg.DHCP,
		HostName:     host,
		InputWorkers: cmp.Or(cfg.InputWorkers, defaultInputWorkers),
	})
	if err != nil {
		return nil, err
	}
	return &Stack{e: e, cfg: cfg, zone: linkZone(cfg.Link)}, nil
}

// Addr returns the stack's first IPv4 address (its only one, as most
// stacks have), or, on a stack without IPv4, its first address. A stack
// configured with no address (SLAAC only) returns its first usable
// address that is not link-local, else its link-local one, else (until
// duplicate address detection has passed) the zero Addr.
func (s *Stack) Addr() netip.Addr { return s.e.Addr() }

// Addrs returns the stack's usable addresses now, each with its on-link
// prefix: the static ones of Config and those AddAddr added, and on an
// Ethernet link the IPv6 link-local address and those configured from
// router advertisements (SLAAC), the IPv6 ones once duplicate address
// detection has passed. A prefix holds no
// zone: a link-local one's is Zone.
func (s *Stack) Addrs() []netip.Prefix { return s.e.Addrs() }

// AddAddr gives the stack another address, with its on-link prefix, while
// it runs: an IPv4 one is usable at once and announced to the link with a
// gratuitous ARP, so neighbours learn it; an IPv6 one once duplicate
// address detection has passed (see Config.DADTransmits). Listeners and
// sockets on a wildcard address take its traffic as they take the
// others'. It fails with an error wrapping syscall.EEXIST if the stack has
// the address already, and with EINVAL if p is no unicast prefix.
func (s *Stack) AddAddr(p netip.Prefix) error {
	if err := checkPrefix(p); err != nil {
		return &net.OpError{Op: "addaddr", Net: "ip", Addr: prefixAddr(p), Err: fmt.Errorf("%v %w: %w", p, err, syscall.EINVAL)}
	}
	if err := s.e.AddAddr(p); err != nil {
		return &net.OpError{Op: "addaddr", Net: "ip", Addr: prefixAddr(p), Err: err}
	}
	return nil
}

// RemoveAddr takes the address of p (its prefix length does not matter)
// from the stack while it runs, as Linux acts when an address goes: each
// TCP connection from it is reset and its next call fails with an error
// wrapping syscall.ECONNABORTED, as does Accept on a listener bound to it
// (listeners and sockets on a wildcard address stay), and a UDP socket
// bound to it gets that error once. Connections from other addresses go
// on. It fails with an error wrapping syscall.EADDRNOTAVAIL if the stack
// does not have the address.
func (s *Stack) RemoveAddr(p netip.Prefix) error {
	if err := s.e.RemoveAddr(p.Addr().WithZone("")); err != nil {
		return &net.OpError{Op: "removeaddr", Net: "ip", Addr: prefixAddr(p), Err: err}
	}
	return nil
}

// prefixAddr is p's address as an OpError names it.
func prefixAddr(p netip.Prefix) net.Addr {
	return &net.IPAddr{IP: p.Addr().AsSlice()}
}

// DuplicateAddrs returns the IPv6 addresses duplicate address detection
// found in use by another node on the link (RFC 4862 §5.4.5), which the
// stack therefore does not use; Config.Logger also hears of each.
func (s *Stack) DuplicateAddrs() []netip.Addr { return s.e.DADFailed() }

// Zone returns the name the stack gives its link as the zone of link-local
// IPv6 addresses (fe80::1%zone): the device's name for a TAP or TUN
// device, "link" for other links.
func (s *Stack) Zone() string { return s.zone }

// HardwareAddr returns the stack's Ethernet address.
func (s *Stack) HardwareAddr() net.HardwareAddr {
	mac := s.e.MAC()
	return append(net.HardwareAddr(nil), mac[:]...)
}

// Stats returns a snapshot of the stack's counters.
func (s *Stack) Stats() Stats { return s.e.Stats() }

// InputFrames returns how many frames each of the stack's input
// goroutines has handed to its IP layer: each input worker's (see
// Config.InputWorkers), or each queue's reader's on a Device with several
// queues, or the one reader's.
func (s *Stack) InputFrames() []uint64 { return s.e.InputFrames() }

// Close stops the stack: it resets its connections, closes its listeners
// and the link, and waits for the stack's goroutines to end. Pending Ping
// calls fail with net.ErrClosed. Close is idempotent.
func (s *Stack) Close() error { return s.e.Close() }
