// Command tunnel is a tun2socks-style forwarder: every TCP connection and
// UDP flow the kernel routes into a TUN device is terminated by a netstack
// Stack and relayed to a real socket dialed to the original destination
// (or, with -to, to one fixed destination).
//
// The stack runs with a Forwarder, so it accepts SYNs and datagrams for any
// address, not only its own. For each TCP connection it dials upstream
// first and completes the handshake only if that dial succeeded; if it
// failed, the client gets a RST, as if the destination had refused it.
// Bytes then flow both ways, and a FIN from either side becomes a
// CloseWrite on the other, so half-closed protocols work. Each UDP flow
// gets a connected upstream socket; datagrams are relayed both ways until
// the flow has been idle for -udp-idle.
//
// Route what should go through the tunnel into the device:
//
//	sudo go run ./examples/tunnel -tun tun0 -addr 198.18.0.2/24
//	sudo ip addr add 198.18.0.1/24 dev tun0 && sudo ip link set tun0 up
//	sudo ip route add 198.19.0.0/16 dev tun0
//	curl http://198.19.7.7:8080/   # relayed to 198.19.7.7:8080 by the tunnel's own sockets
//
// The upstream sockets are the kernel's, so the kernel must not route them
// back into the device: route only prefixes the upstream dials do not use,
// use -to, or mark the upstream sockets with -mark and keep marked packets
// out of the tunnel's routing table with a policy rule, which lets the
// tunnel take the default route:
//
//	sudo go run ./examples/tunnel -tun tun0 -addr 198.18.0.2/24 -mark 1
//	sudo ip addr add 198.18.0.1/24 dev tun0 && sudo ip link set tun0 up
//	sudo ip route add default dev tun0 table 100
//	sudo ip rule add not fwmark 1 table 100 pref 1000
//
// With -to, every flow, TCP and UDP, goes to that one address.
//
// Pings (ICMP and ICMPv6 echo requests) to any address are relayed too,
// through an unprivileged ping socket of the host's: the reply comes back
// only when the real destination answers, after the real round trip, and
// an unreachable destination is reported as one. The kernel lets a user
// open ping sockets when a group of theirs is in net.ipv4.ping_group_range
// (sysctl -w net.ipv4.ping_group_range="0 2147483647"); without one, pings
// through the tunnel go unanswered.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/examples/internal/addrflag"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func main() {
	tun := flag.String("tun", "tun0", "the TUN device to take packets from (created if missing)")
	addr := flag.String("addr", "198.18.0.2/24", "the stack's own addresses and subnets on the device, comma-separated, of either family")
	to := flag.String("to", "", "relay every flow to this host:port instead of its original destination")
	mark := flag.Int("mark", 0, "set SO_MARK on upstream sockets (Linux), for policy routing around the tunnel")
	idle := flag.Duration("udp-idle", time.Minute, "close a UDP flow after this long without a datagram")
	cone := flag.Bool("full-cone", false, "relay UDP endpoint-independently (full cone): replies from any address reach the client")
	verbose := flag.Bool("v", false, "log every flow")
	flag.Parse()

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	d := &net.Dialer{}
	if *mark != 0 {
		d.Control = markControl(*mark)
	}
	lc := &net.ListenConfig{Control: d.Control}
	r := &Relay{Dial: d.DialContext, To: *to, UDPIdleTimeout: *idle, Log: logger, FullCone: *cone,
		ListenPing: func(v6 bool) (net.PacketConn, error) { return listenPing(v6, *mark) },
		ListenUDP: func(bool) (*net.UDPConn, error) {
			pc, err := lc.ListenPacket(context.Background(), "udp", ":0")
			if err != nil {
				return nil, err
			}
			return pc.(*net.UDPConn), nil
		}}
	if err := run(*tun, *addr, r, logger); err != nil {
		log.Fatal(err)
	}
}

// run relays the traffic of TUN device name until SIGINT or SIGTERM. cidrs
// are the stack's own addresses, comma-separated, of either family.
func run(name, cidrs string, r *Relay, logger *slog.Logger) error {
	prefixes, err := addrflag.Parse(cidrs)
	if err != nil {
		return err
	}
	dev, err := netstack.OpenTUN(name)
	if err != nil {
		return err
	}
	s, err := netstack.New(netstack.Config{Link: dev, Addrs: prefixes, Logger: logger, Forwarder: r.Forwarder()})
	if err != nil {
		dev.Close()
		return err
	}
	logger.Info("relaying", "tun", name, "addrs", prefixes, "to", r.To)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	logger.Info("stopping", "active flows", r.Active())
	return s.Close()
}

// DialFunc dials upstream, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Relay forwards the flows a Stack's Forwarder accepts to real sockets.
// Set its fields before calling Forwarder and do not change them after.
type Relay struct {
	// Dial opens upstream connections; nil means (&net.Dialer{}).DialContext.
	Dial DialFunc
	// To, if set, is the host:port every flow is relayed to, whatever its
	// original destination.
	To string
	// DialTimeout bounds an upstream TCP dial and the handshake with the
	// client that follows it; 0 means 10 s.
	DialTimeout time.Duration
	// UDPIdleTimeout closes a UDP flow with no datagram either way for
	// this long; 0 means the Forwarder's default, 60 s.
	UDPIdleTimeout time.Duration
	// Log receives a line per flow at debug level and failures at info
	// level; nil means silent.
	Log *slog.Logger
	// ListenPing opens the socket a ping is relayed through: an
	// unprivileged ICMP (v6: ICMPv6) socket; nil means one of the host's,
	// unmarked.
	ListenPing func(v6 bool) (net.PacketConn, error)
	// PingTimeout is how long a relayed ping waits for its reply before it
	// goes unanswered; 0 means 5 s.
	PingTimeout time.Duration
	// FullCone relays UDP endpoint-independently (RFC 4787, "full cone"),
	// unless To is set: one upstream socket per client source, to every
	// destination the client sends to, and replies from any address
	// reach the client from that address, as STUN and WebRTC need.
	FullCone bool
	// ListenUDP opens a full-cone flow's upstream socket; nil means an
	// unbound one of the host's.
	ListenUDP func(v6 bool) (*net.UDPConn, error)

	active atomic.Int64
}

// Forwarder returns a Forwarder that relays TCP, UDP and pings through r.
func (r *Relay) Forwarder() *netstack.Forwarder {
	return &netstack.Forwarder{TCP: r.TCP, UDP: r.UDP, Echo: r.Echo, UDPIdleTimeout: r.UDPIdleTimeout,
		FullConeUDP: r.FullCone && r.To == ""}
}

// Active returns the number of flows being relayed or dialed.
func (r *Relay) Active() int { return int(r.active.Load()) }

func (r *Relay) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Relay) dial() DialFunc {
	if r.Dial == nil {
		return (&net.Dialer{}).DialContext
	}
	return r.Dial
}

// target is where a flow for dst goes.
func (r *Relay) target(dst netip.AddrPort) string {
	if r.To != "" {
		return r.To
	}
	return dst.String()
}

// TCP relays one TCP connection: it dials upstream, then accepts the
// client (or refuses it with a RST if the dial failed) with its MSS
// clamped to the upstream connection's, and copies both ways until both
// directions have ended.
func (r *Relay) TCP(req *netstack.TCPRequest) {
	r.active.Add(1)
	defer r.active.Add(-1)
	src, to := req.Source(), r.target(req.Destination())
	log := r.log().With("proto", "tcp", "src", src, "dst", req.Destination(), "to", to)
	timeout := r.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	up, err := r.dial()(ctx, "tcp", to)
	if err != nil {
		log.Info("dial failed, refusing", "err", err)
		req.Refuse()
		return
	}
	// Clamp the client's segments to what the upstream path carries.
	if mss := upstreamMSS(up); mss > 0 {
		req.SetMSS(mss)
	}
	c, err := req.Accept(ctx)
	if err != nil {
		log.Info("accept failed", "err", err)
		up.Close()
		return
	}
	cancel()
	log.Debug("relaying")
	start := time.Now()
	in, out := relay(c, up)
	log.Debug("done", "sent", in, "received", out, "duration", time.Since(start))
}

// relay copies a→b and b→a until both directions end, passing on each
// end of stream as a CloseWrite, then closes both. It returns the bytes
// copied each way. An error either way (a reset, a closed socket) ends both
// directions at once.
func relay(a, b net.Conn) (ab, ba int64) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ba = half(a, b)
	}()
	ab = half(b, a)
	<-done
	a.Close()
	b.Close()
	return ab, ba
}

// half copies src to dst. At src's end of stream it closes dst for writing
// (or entirely, if dst cannot half-close); on an error it closes both, so
// that the other direction's copy stops too.
func half(dst, src net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err != nil {
		dst.Close()
		src.Close()
		return n
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
	return n
}

// UDP relays one UDP flow through a connected upstream socket until the
// flow goes idle (the stack then closes it) or the upstream socket fails.
func (r *Relay) UDP(req *netstack.UDPRequest) {
	r.active.Add(1)
	defer r.active.Add(-1)
	src, to := req.Source(), r.target(req.Destination())
	log := r.log().With("proto", "udp", "src", src, "dst", req.Destination(), "to", to)
	if r.FullCone && r.To == "" {
		r.udpCone(req, log)
		return
	}
	timeout := r.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	up, err := r.dial()(ctx, "udp", to)
	cancel()
	if err != nil {
		log.Info("dial failed, refusing", "err", err)
		req.Refuse()
		return
	}
	c, err := req.Accept()
	if err != nil {
		up.Close()
		return
	}
	log.Debug("relaying")
	var in, out atomic.Int64
	done := make(chan struct{})
	go func() { // client → upstream, until the stack closes the idle flow
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, err := c.Read(buf)
			if err != nil {
				break
			}
			if _, err := up.Write(buf[:n]); err == nil {
				in.Add(int64(n))
			}
		}
		up.Close()
	}()
	buf := make([]byte, 65535)
	for { // upstream → client
		n, err := up.Read(buf)
		if err != nil {
			// A port unreachable for an earlier datagram; the
			// flow goes on, as a connected socket's does.
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			break
		}
		if _, err := c.Write(buf[:n]); err != nil {
			break
		}
		out.Add(int64(n))
	}
	c.Close()
	up.Close()
	<-done
	log.Debug("done", "sent", in.Load(), "received", out.Load())
}

// udpCone relays a full-cone flow through one unconnected upstream
// socket: each datagram goes to the destination the client sent it to,
// and each reply, from wherever it comes, to the client from its source.
func (r *Relay) udpCone(req *netstack.UDPRequest, log *slog.Logger) {
	listen := r.ListenUDP
	if listen == nil {
		listen = func(bool) (*net.UDPConn, error) { return net.ListenUDP("udp", nil) }
	}
	up, err := listen(req.Source().Addr().Is6())
	if err != nil {
		log.Info("upstream socket failed, refusing", "err", err)
		req.Refuse()
		return
	}
	c, err := req.Accept()
	if err != nil {
		up.Close()
		return
	}
	log.Debug("relaying, full cone")
	done := make(chan struct{})
	go func() { // client → any destination, until the stack closes the idle flow
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, dst, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			up.WriteToUDPAddrPort(buf[:n], dst)
		}
		up.Close()
	}()
	buf := make([]byte, 65535)
	for { // any source → client
		n, from, err := up.ReadFromUDPAddrPort(buf)
		if err != nil {
			break
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if _, err := c.WriteToUDPAddrPort(buf[:n], from); err != nil {
			break
		}
	}
	c.Close()
	up.Close()
	<-done
}

// Echo relays one ping: it sends the same echo request (sequence number
// and data; the kernel picks the identifier) from a ping socket to the
// original destination (with To, to To's host), and answers the client
// with the reply when it comes, or with host unreachable when the kernel
// reports the destination unreachable. With no answer within
// PingTimeout the ping goes unanswered, as it would have.
func (r *Relay) Echo(req *netstack.EchoRequest) {
	dst := req.Destination()
	if r.To != "" {
		ap, err := netip.ParseAddrPort(r.To)
		if err != nil {
			return
		}
		dst = ap.Addr()
	}
	log := r.log().With("proto", "icmp", "src", req.Source(), "dst", req.Destination(), "to", dst)
	v6 := dst.Is6() && !dst.Is4In6()
	listen := r.ListenPing
	if listen == nil {
		listen = func(v6 bool) (net.PacketConn, error) { return listenPing(v6, 0) }
	}
	pc, err := listen(v6)
	if err != nil {
		log.Info("no ping socket", "err", err)
		return
	}
	defer pc.Close()
	typ, proto, reply := icmp.Type(ipv4.ICMPTypeEcho), 1, icmp.Type(ipv4.ICMPTypeEchoReply)
	if v6 {
		typ, proto, reply = ipv6.ICMPTypeEchoRequest, 58, ipv6.ICMPTypeEchoReply
	}
	msg, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{Seq: req.Seq(), Data: req.Data()}}).Marshal(nil)
	if err != nil {
		return
	}
	start := time.Now()
	if _, err := pc.WriteTo(msg, &net.UDPAddr{IP: dst.AsSlice()}); err != nil {
		log.Debug("ping failed", "err", err)
		req.Refuse()
		return
	}
	timeout := r.PingTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pc.SetReadDeadline(start.Add(timeout))
	buf := make([]byte, 65535)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
				req.Refuse()
			}
			log.Debug("no reply", "err", err)
			return
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && e.Seq == req.Seq() {
			log.Debug("reply", "rtt", time.Since(start))
			req.Reply()
			return
		}
	}
}
