package netstack

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/dhcp"
)

// fakeDHCP is a DHCP server on a stack of its own: the test decides each
// reply.
type fakeDHCP struct {
	t  *testing.T
	pc net.PacketConn
}

// next returns the next message from the client, skipping none.
func (f *fakeDHCP) next() *dhcp.Message {
	f.t.Helper()
	buf := make([]byte, 1500)
	f.pc.SetReadDeadline(time.Now().Add(60 * time.Second)) // a bound against a hang
	n, _, err := f.pc.ReadFrom(buf)
	if err != nil {
		f.t.Fatalf("server read: %v", err)
	}
	m, err := dhcp.Parse(buf[:n])
	if err != nil {
		f.t.Fatalf("client sent a malformed message: %v", err)
	}
	return m
}

// send broadcasts a reply to the client's message req, of type typ
// offering yiaddr, with options opts; edit may change the message last.
func (f *fakeDHCP) send(req *dhcp.Message, typ dhcp.MessageType, yiaddr netip.Addr, opts dhcp.Options, edit func(*dhcp.Message)) {
	f.t.Helper()
	m := &dhcp.Message{Op: dhcp.OpReply, XID: req.XID, Flags: req.Flags, YIAddr: yiaddr, CHAddr: req.CHAddr, Type: typ, Options: opts}
	if edit != nil {
		edit(m)
	}
	f.raw(m.Append(nil))
}

// raw broadcasts b to the client's port.
func (f *fakeDHCP) raw(b []byte) {
	f.t.Helper()
	if _, err := f.pc.WriteTo(b, &net.UDPAddr{IP: net.IPv4bcast, Port: 68}); err != nil {
		f.t.Fatalf("server write: %v", err)
	}
}

// leaseOpts are the options of a good lease from server.
func leaseOpts(server netip.Addr, secs uint32) dhcp.Options {
	o := dhcp.Options{}
	o.SetAddrs(dhcp.OptServerID, server)
	o.SetAddrs(dhcp.OptSubnetMask, netip.AddrFrom4([4]byte{255, 255, 255, 0}))
	o.SetAddrs(dhcp.OptRouters, server)
	o.SetAddrs(dhcp.OptDNS, server)
	o.SetUint32(dhcp.OptLeaseTime, secs)
	return o
}

// TestDHCPRogueOffers answers the stack's DISCOVER with broken OFFERs
// (lease time 0, a broadcast or loopback address, no server id, another
// client's, garbage) and a flood from other servers before a good one,
// and its REQUEST with an ACK for another address before the right one:
// each bad one is counted and dropped, and the only address the stack
// ever takes, and reports, is the good one. Close then releases it.
func TestDHCPRogueOffers(t *testing.T) {
	checkGoroutines(t)
	la, lb := Pipe()
	server := netip.MustParseAddr("198.18.0.1")
	srvStack, err := New(Config{Link: lb, Addr: netip.PrefixFrom(server, 24)})
	if err != nil {
		t.Fatal(err)
	}
	defer srvStack.Close()
	pc, err := srvStack.ListenPacket("udp4", ":67")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	f := &fakeDHCP{t: t, pc: pc}

	reports := make(chan []netip.Prefix, 64)
	// Closing a Pipe discards what it holds, so the RELEASE the stack sends
	// as it closes is taken from its writes.
	sent := &dhcpWrites{Link: la, msgs: make(chan *dhcp.Message, 256)}
	s, err := New(Config{Link: sent, DHCP: true, HostName: "rogue-test", AddrsChanged: func(a []netip.Prefix) { reports <- a }})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	disc := f.next()
	if disc.Type != dhcp.Discover || disc.Options.HostName() != "rogue-test" || disc.Flags&dhcp.FlagBroadcast == 0 {
		t.Fatalf("first message %v, host name %q, flags %#x: want a broadcast DISCOVER naming us", disc.Type, disc.Options.HostName(), disc.Flags)
	}
	good := netip.MustParseAddr("198.18.0.50")
	zeroLease := leaseOpts(server, 0)
	noServer := leaseOpts(server, 3600)
	delete(noServer, dhcp.OptServerID)
	f.send(disc, dhcp.Offer, good, zeroLease, nil)
	f.send(disc, dhcp.Offer, netip.AddrFrom4([4]byte{255, 255, 255, 255}), leaseOpts(server, 3600), nil)
	f.send(disc, dhcp.Offer, netip.MustParseAddr("127.0.0.1"), leaseOpts(server, 3600), nil)
	f.send(disc, dhcp.Offer, good, noServer, nil)
	f.send(disc, dhcp.Offer, good, leaseOpts(server, 3600), func(m *dhcp.Message) { m.XID++ }) // another client's
	f.raw([]byte{2, 1, 6, 0, 0xde, 0xad})                                                      // garbage
	// The good one, then OFFERs from a crowd of other servers.
	f.send(disc, dhcp.Offer, good, leaseOpts(server, 3600), nil)
	for i := range 50 {
		other := netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)})
		f.send(disc, dhcp.Offer, other, leaseOpts(other, 3600), nil)
	}
	req := f.next()
	if ip, _ := req.Options.RequestedIP(); req.Type != dhcp.Request || ip != good {
		t.Fatalf("after the offers: %v for %v, want a REQUEST for %v", req.Type, ip, good)
	}
	if id, _ := req.Options.ServerID(); id != server {
		t.Fatalf("REQUEST names server %v, want %v", id, server)
	}
	// An ACK for another address, then the right one.
	f.send(req, dhcp.Ack, netip.MustParseAddr("198.18.0.51"), leaseOpts(server, 3600), nil)
	f.send(req, dhcp.Ack, good, leaseOpts(server, 3600), nil)

	// The lease applies after the ARP probes: a few seconds.
	want := netip.PrefixFrom(good, 24)
	deadline := time.After(60 * time.Second)
	for got := false; !got; {
		select {
		case a := <-reports:
			for _, p := range a {
				if p.Addr().Is4() && p != want {
					t.Fatalf("reported %v: only %v was good", a, want)
				}
			}
			got = slices.Contains(a, want)
		case <-deadline:
			t.Fatalf("no lease within 60 s: Addrs %v, DHCP stats %+v", s.Addrs(), s.Stats().DHCP)
		}
	}
	st := s.Stats()
	if st.DHCP.DropBadLease < 5 || st.DHCP.DropMalformed < 1 || st.DHCP.DropNotOurs < 51 || st.DHCP.Leases != 1 || st.ARP.Probes != 3 {
		t.Errorf("stats %+v (ARP probes %d): want every bad reply counted and 1 lease after 3 probes", st.DHCP, st.ARP.Probes)
	}
	if !slices.ContainsFunc(s.Routes(), func(r Route) bool { return r.Dst.Bits() == 0 && r.Gateway == server }) {
		t.Errorf("routes %v: no default route by %v", s.Routes(), server)
	}
	if !slices.Contains(s.e.DNSServers(), server) {
		t.Errorf("DNS servers %v: want %v", s.e.DNSServers(), server)
	}
	// The lease works: the stack pings its server from the leased address.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.Ping(ctx, server); err != nil {
		t.Fatalf("ping from the lease: %v", err)
	}

	closed = true
	s.Close()
	var rel *dhcp.Message
	for rel == nil || rel.Type != dhcp.Release {
		select {
		case rel = <-sent.msgs:
		default:
			t.Fatalf("Close sent no RELEASE (last: %v)", rel)
		}
	}
	if rel.Type != dhcp.Release || rel.CIAddr != good {
		t.Fatalf("at Close: %v from %v, want a RELEASE of %v", rel.Type, rel.CIAddr, good)
	}
	if id, _ := rel.Options.ServerID(); id != server {
		t.Errorf("RELEASE names server %v, want %v", id, server)
	}
}

// dhcpWrites is a link that passes on the DHCP messages the stack writes
// to it to msgs, as it writes them.
type dhcpWrites struct {
	Link
	msgs chan *dhcp.Message
}

func (l *dhcpWrites) WriteFrame(f []byte) error {
	const udpOff = 14 + 20 // Ethernet, an IPv4 header without options
	if len(f) > udpOff+8 && f[12] == 8 && f[13] == 0 && f[23] == 17 && f[udpOff+2] == 0 && f[udpOff+3] == 67 {
		if m, err := dhcp.Parse(f[udpOff+8:]); err == nil {
			select {
			case l.msgs <- m:
			default:
			}
		}
	}
	return l.Link.WriteFrame(f)
}
