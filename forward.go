package netstack

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/gotcpip/netstack/internal/stack"
)

// Forwarder turns a stack into the far end of a tunnel: it accepts TCP
// connections and UDP flows addressed to any address and port, not only its
// own, and hands each new one to a handler that sees the original source
// and destination. This is what VPN clients and tun2socks-style tools do
// with the packets a TUN device gives them. Set it in Config.Forwarder.
//
// Segments and datagrams for the stack's own address still go to its
// listeners and sockets first. Limits.ForwardedUDPFlows bounds the UDP
// flows held at once.
type Forwarder struct {
	// TCP is called, each time on a new goroutine, for a SYN to an address
	// and port with no listener. The handler must call Accept or Refuse;
	// returning without either refuses.
	TCP func(r *TCPRequest)
	// UDP is called, each time on a new goroutine, for the first datagram of
	// a new flow (a source and destination pair with no socket). The handler
	// must call Accept or Refuse; returning without either refuses.
	UDP func(r *UDPRequest)
	// Echo is called, each time on a new goroutine, for an ICMP or ICMPv6
	// echo request (a ping) to an address not the stack's. The handler
	// answers it with Reply (relaying it to the real destination first, to
	// show true reachability and round-trip times), refuses it with
	// Refuse, or returns without either, which sends nothing, as a lost
	// ping.
	Echo func(r *EchoRequest)
	// MaxPendingEcho bounds the echo requests whose handler still runs;
	// further ones are dropped and counted in Stats.ICMP.DropEchoPending.
	// 0 means 1024.
	MaxPendingEcho int
	// MaxPending bounds the TCP requests waiting for Accept or Refuse;
	// further SYNs are dropped (the peer retries) and counted in
	// Stats.TCP.DropForwardPending. 0 means 1024. A SYN is dropped too,
	// before any handler runs, when the connections and the pending
	// requests already reach Limits.MaxConnections.
	MaxPending int
	// UDPIdleTimeout closes a UDP flow that has seen no datagram either
	// way for this long. 0 means 60 s.
	UDPIdleTimeout time.Duration
	// FullConeUDP makes UDP flows endpoint-independent (RFC 4787 §4.1
	// and §5, "full cone" NAT): a flow is one source's datagrams to every
	// destination, and its replies may come from any address, as STUN,
	// WebRTC, games and QUIC connection migration need. The UDPConn a
	// request accepts then speaks for the far side: ReadFrom returns each
	// datagram with the address it was sent to, and WriteTo(b, addr) sends
	// b to the source from addr, so a relay copies between it and one
	// socket of its own, address for address.
	FullConeUDP bool
}

// engine returns the engine's form of f: its handlers get the public
// request types.
func (f *Forwarder) engine(zone string) *stack.Forward {
	if f == nil {
		return nil
	}
	e := &stack.Forward{MaxPending: f.MaxPending, MaxPendingEcho: f.MaxPendingEcho,
		UDPIdleTimeout: f.UDPIdleTimeout, FullConeUDP: f.FullConeUDP}
	if h := f.Echo; h != nil {
		e.Echo = func(r *stack.EchoRequest) { h(&EchoRequest{r: r}) }
	}
	if h := f.TCP; h != nil {
		e.TCP = func(r *stack.TCPRequest) { h(&TCPRequest{r: r, zone: zone}) }
	}
	if h := f.UDP; h != nil {
		e.UDP = func(r *stack.UDPRequest) { h(&UDPRequest{r: r, zone: zone}) }
	}
	return e
}

// TCPRequest is a connection attempt seen by a Forwarder: a SYN not yet
// answered.
type TCPRequest struct {
	r    *stack.TCPRequest
	zone string
}

// Source returns the address the connection comes from.
func (r *TCPRequest) Source() netip.AddrPort { return r.r.Source() }

// Destination returns the address the peer asked for.
func (r *TCPRequest) Destination() netip.AddrPort { return r.r.Destination() }

// Accept completes the handshake and returns the connection, whose
// LocalAddr is the original destination. It fails if ctx ends first, or the
// peer gives up or resets.
func (r *TCPRequest) Accept(ctx context.Context) (*TCPConn, error) {
	ep, err := r.r.Accept(ctx)
	if err != nil {
		return nil, opError("accept", "tcp", tcpAddr(r.Destination()), tcpAddr(r.Source()), err)
	}
	return newTCPConn(ep, addrView{zone: r.zone}), nil
}

// SetMSS caps the segment size of the connection Accept makes, both
// ways: its SYN-ACK advertises at most mss bytes, and it sends no larger
// segments. A relay sets it from its upstream connection's (TCP_MAXSEG),
// so that the client's segments fit the path beyond the relay, as an MSS
// clamp on a router does. Call it before Accept. An mss outside 88 to
// 65495 fails with EINVAL, as TCP_MAXSEG does on Linux. Keep-alives
// (on by default, as package net's) and buffer sizes are set on the
// accepted TCPConn.
func (r *TCPRequest) SetMSS(mss int) error {
	if err := r.r.SetMSS(mss); err != nil {
		return opError("set", "tcp", tcpAddr(r.Destination()), tcpAddr(r.Source()), err)
	}
	return nil
}

// Refuse answers the SYN with a RST, as a closed port does.
func (r *TCPRequest) Refuse() { r.r.Refuse() }

// UDPRequest is the first datagram of a new flow seen by a Forwarder.
type UDPRequest struct {
	r    *stack.UDPRequest
	zone string
}

// Source returns the address the flow comes from.
func (r *UDPRequest) Source() netip.AddrPort { return r.r.Source() }

// Destination returns the address the datagram was sent to.
func (r *UDPRequest) Destination() netip.AddrPort { return r.r.Destination() }

// Accept returns the flow as a connected socket: Read returns the
// datagrams of the flow, the first one included, and Write answers from
// the original destination (its LocalAddr; RemoteAddr is the source). With
// Forwarder.FullConeUDP, ReadFrom and WriteTo take the far side's
// addresses too. The flow closes after the idle timeout; a blocked Read
// then returns net.ErrClosed.
func (r *UDPRequest) Accept() (*UDPConn, error) {
	ep, err := r.r.Accept()
	if err != nil {
		return nil, opError("accept", "udp", udpAddr(r.Destination()), udpAddr(r.Source()), err)
	}
	return &UDPConn{ep: ep, v: addrView{zone: r.zone}, net: "udp"}, nil
}

// Refuse closes the flow and answers its first datagram with ICMP port
// unreachable.
func (r *UDPRequest) Refuse() { r.r.Refuse() }

// EchoRequest is an ICMP or ICMPv6 echo request seen by a Forwarder.
type EchoRequest struct {
	r *stack.EchoRequest
}

// Source returns the address the request comes from.
func (r *EchoRequest) Source() netip.Addr { return r.r.Source() }

// Destination returns the address the request was sent to.
func (r *EchoRequest) Destination() netip.Addr { return r.r.Destination() }

// ID returns the request's identifier.
func (r *EchoRequest) ID() int { return int(r.r.ID()) }

// Seq returns the request's sequence number.
func (r *EchoRequest) Seq() int { return int(r.r.Seq()) }

// Data returns the request's data, which the reply carries back. The
// caller must not modify it.
func (r *EchoRequest) Data() []byte { return r.r.Data() }

// Reply answers the request with an echo reply from its destination,
// carrying its data. It fails with net.ErrClosed if the request was
// already answered.
func (r *EchoRequest) Reply() error {
	if err := r.r.Reply(); err != nil {
		return opError("write", "ip", &net.IPAddr{IP: r.Destination().AsSlice()}, &net.IPAddr{IP: r.Source().AsSlice()}, err)
	}
	return nil
}

// Refuse answers the request with destination unreachable (host
// unreachable; for ICMPv6, address unreachable) from its destination.
func (r *EchoRequest) Refuse() { r.r.Refuse() }
