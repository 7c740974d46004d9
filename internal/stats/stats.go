// Package stats holds netstack's counters: one struct of plain uint64 fields
// per layer, grouped in Stats. The live copy is updated with atomic adds
// (Inc, Add) and read out with Snapshot, so the exported type is also the
// snapshot type and no field list is written twice.
package stats

import (
	"reflect"
	"sync/atomic"
)

// Stats is a snapshot of a stack's counters, one group per layer. Every
// field counts events since the stack started. Drop counters are named by
// their reason.
type Stats struct {
	Link     Link
	Ethernet Ethernet
	ARP      ARP
	IPv4     IPv4
	IPv6     IPv6
	ICMP     ICMP
	ICMPv6   ICMPv6
	NDP      NDP
	TCP      TCP
	UDP      UDP
	DHCP     DHCP
}

// Link counts frames crossing the link.
type Link struct {
	FramesIn, FramesOut uint64
	BytesIn, BytesOut   uint64
	WriteErrors         uint64 // frames the link refused to send
}

// Ethernet counts Ethernet II frames received.
type Ethernet struct {
	Received        uint64
	DropTruncated   uint64 // shorter than a header
	DropNotForUs    uint64 // unicast to another MAC
	DropMulticast   uint64 // multicast other than broadcast (IPv6 ND/MLD, ...)
	DropIPv6        uint64 // no longer counted: IPv6 frames go to the IPv6 counters
	DropUnknownType uint64
}

// ARP counts RFC 826 traffic and the neighbour cache.
type ARP struct {
	Received        uint64
	RequestsIn      uint64
	RepliesIn       uint64
	RequestsOut     uint64
	RepliesOut      uint64
	Gratuitous      uint64 // announcements sent
	DropMalformed   uint64
	DropNotForUs    uint64 // requests for another address
	ResolveFailed   uint64 // next hops that never answered
	QueueDrops      uint64 // packets dropped from a full pending queue
	CacheEvictions  uint64 // entries evicted by the size bound
	PendingFlushed  uint64 // packets sent once their next hop resolved
	PendingExpired  uint64 // packets dropped because resolution failed
	CacheSizeReject uint64 // resolutions refused: cache full of pending entries
	GatewayDead     uint64 // gateways taken out of use: their neighbour entry failed
	GatewayRevived  uint64 // dead gateways heard from again
	Probes          uint64 // RFC 5227 probes sent (of an address DHCP offered)
	Conflicts       uint64 // ARP from another host claiming an address being probed
}

// DHCP counts the DHCPv4 client's messages (RFC 2131) and leases.
type DHCP struct {
	Sent          uint64 // DISCOVER, REQUEST, DECLINE and RELEASE messages
	Received      uint64 // messages on port 68
	Offers        uint64 // valid OFFERs
	Acks          uint64
	Naks          uint64
	Declines      uint64 // offered addresses ARP showed in use
	Leases        uint64 // leases applied
	Renewals      uint64 // leases extended (renewing or rebinding)
	Lost          uint64 // leases ended: expired, NAKed, conflicting or released
	DropMalformed uint64 // not a well-formed DHCP message
	DropNotOurs   uint64 // another client's, or unexpected in the client's state
	DropBadLease  uint64 // OFFERs and ACKs refused: no server id, lease 0, unusable address
	DropFlood     uint64 // OFFERs beyond the number kept while choosing
}

// IPv4 counts RFC 791 packets.
type IPv4 struct {
	Received           uint64
	Delivered          uint64 // handed to ICMP, TCP or UDP
	Sent               uint64
	DropTruncated      uint64 // shorter than its header or total length
	DropBadVersion     uint64
	DropBadIHL         uint64
	DropBadLength      uint64 // total length below IHL or beyond the buffer
	DropBadChecksum    uint64
	DropNotForUs       uint64
	DropBadSource      uint64 // broadcast, multicast or zero source
	DropBadOptions     uint64 // malformed option list (RFC 1122 §3.2.1.8): answered with parameter problem
	DropSourceRoute    uint64 // source-routed (LSRR, SSRR): dropped as Linux does with accept_source_route=0
	DropBroadcastTCP   uint64 // TCP to a broadcast address (RFC 1122 §4.2.3.10)
	DropUnknownProto   uint64 // answered with protocol unreachable
	DropNoRoute        uint64 // sends with no on-link or gateway route
	DropTooBig         uint64 // sends over the MTU with DF set
	FragmentsIn        uint64
	Reassembled        uint64
	FragDropOverlap    uint64 // datagrams dropped for overlapping fragments (RFC 5722)
	FragDropTimeout    uint64 // datagrams that never completed
	FragDropMemory     uint64 // fragments refused or datagrams evicted at the memory cap
	FragDropMalformed  uint64 // bad offsets, lengths past 65535, conflicting ends
	FragmentsOut       uint64
	FragmentedPackets  uint64 // packets split on output
	SendErrors         uint64
	DropHostUnreach    uint64 // sends whose next hop never resolved
	DropNoBufferToSend uint64
	DropSendBadSource  uint64 // sends refused: broadcast or multicast source (RFC 1122 §3.2.1.3)
	PathMTUEvicted     uint64 // learned path MTUs dropped to make room (Limits.PathMTUCache)
}

// IPv6 counts RFC 8200 packets.
type IPv6 struct {
	Received          uint64
	Delivered         uint64 // handed to ICMPv6, TCP or UDP
	Sent              uint64
	DropTruncated     uint64 // shorter than the header or its payload length
	DropBadVersion    uint64
	DropJumbo         uint64 // payload length 0 (jumbograms, RFC 2675, are not supported)
	DropBadSource     uint64 // multicast source
	DropNotForUs      uint64 // to an address or group that is not ours
	DropTentative     uint64 // to an address still under DAD (RFC 4862 §5.4)
	DropBadExtension  uint64 // malformed extension header or option
	DropHopByHopLate  uint64 // a hop-by-hop header not first (RFC 8200 §4.3)
	DropOption        uint64 // an unrecognized option whose type says discard (RFC 8200 §4.2)
	DropRoutingHeader uint64 // routing header with segments left (type 0: RFC 5095)
	DropNoNextHeader  uint64 // next header 59
	DropUnknownProto  uint64 // answered with parameter problem (RFC 8200 §4)
	DropUDPZeroSum    uint64 // UDP without a checksum (RFC 8200 §8.1)
	DropNoRoute       uint64 // sends with no on-link prefix or default router
	DropTooBig        uint64 // sends over 65535 bytes of payload
	DropSendBadSource uint64 // sends from an address that is not ours or usable
	DropHostUnreach   uint64 // sends whose next hop never resolved
	FragmentsIn       uint64
	AtomicFragments   uint64 // offset 0, M clear: delivered at once (RFC 6946)
	Reassembled       uint64
	FragDropOverlap   uint64 // datagrams dropped for overlapping fragments (RFC 5722)
	FragDropTimeout   uint64 // datagrams that never completed
	FragDropMemory    uint64 // fragments refused or datagrams evicted at the memory cap
	FragDropMalformed uint64 // bad lengths, offsets past 65535, conflicting ends
	FragmentsOut      uint64
	FragmentedPackets uint64 // packets split on output
	PathMTUEvicted    uint64 // learned IPv6 path MTUs dropped to make room (Limits.PathMTUCache)
}

// ICMPv6 counts RFC 4443 messages.
type ICMPv6 struct {
	Received        uint64
	EchoRequestsIn  uint64
	EchoRepliesIn   uint64
	EchoRepliesOut  uint64
	EchoRequestsOut uint64
	ErrorsIn        uint64 // destination unreachable, packet too big, ... delivered up
	PacketTooBigIn  uint64
	UnreachOut      uint64
	ParamProblemOut uint64
	TimeExceededOut uint64
	EchoForwarded   uint64 // echo requests to other addresses handed to a Forwarder
	RateLimited     uint64
	DropMalformed   uint64
	DropBadChecksum uint64
	DropUnhandled   uint64
}

// NDP counts RFC 4861 neighbour discovery, RFC 4862 autoconfiguration and
// RFC 3810 MLD reports.
type NDP struct {
	NSIn, NSOut       uint64
	NAIn, NAOut       uint64
	RSOut             uint64
	RAIn              uint64
	MLDReportsOut     uint64
	MLDQueriesIn      uint64 // queries answered with a report of our groups
	MLDQueriesIgnored uint64 // invalid, or within a second of the last answered
	DropBadHopLimit   uint64 // not 255 (RFC 4861 §7.1.1)
	DropBadCode       uint64
	DropBadOption     uint64 // zero-length or overrunning option, or a forbidden one
	DropMalformed     uint64 // short message, multicast target, bad source
	DropNotForUs      uint64 // solicitations for another target
	DADStarted        uint64
	DADSucceeded      uint64
	DADConflicts      uint64 // addresses found duplicate and never used
	DADLoopedBack     uint64 // our own DAD solicitations seen again (RFC 7527 nonce): ignored
	SLAACAddrs        uint64 // addresses formed from prefix information
	RouterLimit       uint64 // routers not recorded: Config.MaxRouters reached
	PrefixLimit       uint64 // prefixes or addresses not recorded: limit reached
	RDNSSLimit        uint64 // DNS servers not recorded: limit reached
	MTUOptionIgnored  uint64 // MTU options out of range (below 1280 or above the link's)
	TimerIgnored      uint64 // RA Reachable Times above an hour, Retrans Timers above a minute
}

// ICMP counts RFC 792 messages.
type ICMP struct {
	Received        uint64
	EchoRequestsIn  uint64
	EchoRepliesIn   uint64
	EchoRepliesOut  uint64
	EchoRequestsOut uint64
	ErrorsIn        uint64 // destination unreachable, time exceeded, ... delivered up
	UnreachOut      uint64
	ParamProblemOut uint64 // parameter problems sent about malformed IP options
	RateLimited     uint64 // errors not sent because of the rate limit
	DropMalformed   uint64
	DropBadChecksum uint64
	DropUnhandled   uint64 // types we do not handle
	DropSocketFull  uint64 // copies for an ICMP socket whose queue was full
	EchoForwarded   uint64 // echo requests to other addresses handed to a Forwarder
	DropEchoPending uint64 // forwarded echo requests dropped: a Forwarder's MaxPendingEcho await an answer
}

// TCP counts segments and connections.
type TCP struct {
	SegmentsIn, SegmentsOut uint64
	Retransmits             uint64
	ActiveOpens             uint64
	PassiveOpens            uint64
	ResetsOut               uint64
	ResetsIn                uint64
	DropMalformed           uint64
	DropBadChecksum         uint64
	DropNoPort              uint64 // answered with RST
	DropListenOverflow      uint64 // SYNs dropped: half-open or accept queue full
	DropForwardPending      uint64 // SYNs dropped: a Forwarder's MaxPending requests await an answer
	DropSynFin              uint64 // SYNs that also carried FIN, discarded as Linux does
	FragNeeded              uint64 // ICMP fragmentation-needed about our segments (RFC 1191)
	FragNeededAccepted      uint64 // of those, naming data in flight of a connection (RFC 5927): its path MTU fell
	FragNeededRejected      uint64 // of those, for no connection or a sequence outside SND.UNA..SND.NXT: ignored
	DropAcceptOverflow      uint64 // established connections reset: accept queue full
	DropConnLimit           uint64 // dials refused and SYNs dropped at Limits.MaxConnections
	TimeWaitEvicted         uint64 // connections ended in TIME-WAIT to make room at Limits.MaxConnections
	SynCookiesSent          uint64 // SYNs answered statelessly, the half-open queue being full (RFC 4987)
	SynCookiesValid         uint64 // connections completed from a cookie
	SynCookiesInvalid       uint64 // ACKs with a bad or expired cookie, answered with RST
	BufferBudgetHits        uint64 // buffer growth refused at Limits.TCPBufferMemory (a ring, a window, autotuning)
	DropMemory              uint64 // data within the window dropped at Limits.TCPBufferMemory
	TCPConns
}

// TCPConns are the counters each TCP connection keeps, summed over the
// stack's connections, live and closed.
type TCPConns struct {
	Timeouts        uint64 // retransmission timer expiries
	FastRetransmits uint64 // fast recoveries entered (SACK/RACK loss or three duplicate ACKs)
	TLPs            uint64 // tail loss probes sent (RFC 8985)
	ChallengeAcks   uint64 // RFC 5961 challenge ACKs sent for a blind RST, SYN or ACK
	OutOfOrder      uint64 // segments held out of order
	DropUnaccept    uint64 // segments failing the acceptance test (outside the window)
	DropPAWS        uint64 // old duplicates dropped by PAWS (RFC 7323)
	DropWindow      uint64 // segments trimmed at the right window edge: the receive buffer was full
	DropOOOFull     uint64 // out-of-order segments dropped: too many holes
	// Packetization-layer path MTU discovery (RFC 4821).
	PLPMTUDFallbacks   uint64 // black holes suspected: the MSS fell back
	PLPMTUDProbes      uint64 // probe segments sent
	PLPMTUDProbesAcked uint64 // of those, acknowledged: the MSS grew
	PLPMTUDProbesLost  uint64 // of those, lost: the search narrowed
	// Explicit Congestion Notification (RFC 3168).
	CEReceived    uint64 // data segments that arrived marked CE (congestion experienced)
	ECEReceived   uint64 // ACKs that arrived with ECE: the peer echoed a CE mark
	ECNReductions uint64 // congestion window reductions for ECE (at most one per window)
}

// UDP counts datagrams.
type UDP struct {
	DatagramsIn, DatagramsOut uint64
	DropMalformed             uint64
	DropBadChecksum           uint64
	DropNoPort                uint64 // answered with port unreachable
	DropQueueFull             uint64
	DropFlowLimit             uint64 // a new forwarded flow past Limits.ForwardedUDPFlows
}

// Inc adds one to the live counter c.
func Inc(c *uint64) { atomic.AddUint64(c, 1) }

// Add adds n to the live counter c.
func Add(c *uint64, n uint64) { atomic.AddUint64(c, n) }

// Snapshot returns a copy of the live counters s, each read atomically.
func (s *Stats) Snapshot() Stats {
	var out Stats
	copyCounters(reflect.ValueOf(&out).Elem(), reflect.ValueOf(s).Elem())
	return out
}

func copyCounters(dst, src reflect.Value) {
	for i := 0; i < src.NumField(); i++ {
		f := src.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			copyCounters(dst.Field(i), f)
		case reflect.Uint64:
			dst.Field(i).SetUint(atomic.LoadUint64(f.Addr().Interface().(*uint64)))
		}
	}
}
