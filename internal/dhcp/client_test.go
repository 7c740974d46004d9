package dhcp

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

var (
	t0       = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mac      = [6]byte{2, 0, 0, 0, 0, 1}
	serverID = netip.MustParseAddr("198.18.0.1")
	offered  = netip.MustParseAddr("198.18.0.10")
	bcast    = netip.MustParseAddr("255.255.255.255")
)

// server is a fake DHCP server answering the client's messages.
type server struct {
	id    netip.Addr
	lease uint32
	mod   func(*Message) // changes each reply before it is encoded
}

func (s *server) reply(req *Message, t MessageType, yi netip.Addr) []byte {
	m := &Message{Op: OpReply, XID: req.XID, CHAddr: req.CHAddr, YIAddr: yi, Type: t, Options: Options{}}
	m.Options.SetAddrs(OptServerID, s.id)
	if t != Nak {
		m.Options.SetUint32(OptLeaseTime, s.lease)
		m.Options.SetAddrs(OptSubnetMask, netip.MustParseAddr("255.255.255.0"))
		m.Options.SetAddrs(OptRouters, serverID, netip.MustParseAddr("10.0.0.1"))
		m.Options.SetAddrs(OptDNS, serverID)
		m.Options[OptDomainName] = []byte("example.test")
		m.Options.SetUint16(OptInterfaceMTU, 1400)
	}
	if s.mod != nil {
		s.mod(m)
	}
	return m.Append(nil)
}

func newServer() *server { return &server{id: serverID, lease: 3600} }

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	cfg.MAC = mac
	if cfg.Rand == nil {
		cfg.Rand = rand.NewPCG(1, 2)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sent returns the one message the client sent, failing otherwise.
func sent(t *testing.T, c *Client) (*Message, Action) {
	t.Helper()
	as := c.Actions()
	if len(as) != 1 || as[0].Kind != Send {
		t.Fatalf("actions %+v, want one Send", as)
	}
	m, err := Parse(as[0].Msg)
	if err != nil {
		t.Fatal(err)
	}
	return m, as[0]
}

// acked runs DISCOVER, OFFER, REQUEST and ACK at t0.
func acked(t *testing.T, c *Client, s *server) {
	t.Helper()
	c.Start(t0)
	disc, _ := sent(t, c)
	c.Input(t0, s.reply(disc, Offer, offered))
	req, _ := sent(t, c)
	c.Input(t0, s.reply(req, Ack, offered))
}

// bound runs a whole exchange and returns the client in Bound at the
// returned time, with its Apply action.
func bound(t *testing.T, c *Client, s *server) (time.Time, Action) {
	t.Helper()
	now := t0
	c.Start(now)
	disc, _ := sent(t, c)
	c.Input(now, s.reply(disc, Offer, offered))
	req, _ := sent(t, c)
	now = now.Add(time.Second)
	c.Input(now, s.reply(req, Ack, offered))
	for range 20 {
		if c.State() != Probing {
			break
		}
		now = c.Next()
		c.Timer(now)
		as := c.Actions()
		if len(as) == 1 && as[0].Kind == Apply {
			return now, as[0]
		}
	}
	as := c.Actions()
	if c.State() != Bound || len(as) != 1 || as[0].Kind != Apply {
		t.Fatalf("state %v actions %+v, want Bound and Apply", c.State(), as)
	}
	return now, as[0]
}

func TestFullExchange(t *testing.T) {
	c := newClient(t, Config{HostName: "box", PrevAddr: offered})
	s := newServer()
	c.Start(t0)
	if c.State() != Selecting {
		t.Fatalf("state %v", c.State())
	}
	disc, a := sent(t, c)
	if disc.Type != Discover || disc.Flags != FlagBroadcast || a.Src != netip.IPv4Unspecified() || a.Dst != bcast {
		t.Fatalf("DISCOVER %+v from %v to %v", disc, a.Src, a.Dst)
	}
	if !bytes.Equal(disc.Options.ClientID(), append([]byte{1}, mac[:]...)) || disc.Options.HostName() != "box" {
		t.Errorf("client id %x host %q", disc.Options.ClientID(), disc.Options.HostName())
	}
	if r, _ := disc.Options.RequestedIP(); r != offered {
		t.Errorf("requested %v", r)
	}
	if n, _ := disc.Options.MaxMessageSize(); n != 1472 {
		t.Errorf("max size %d", n)
	}
	if !bytes.Equal(disc.Options.ParamRequestList(), []byte{1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59}) {
		t.Errorf("PRL %v", disc.Options.ParamRequestList())
	}
	c.Input(t0, s.reply(disc, Offer, offered))
	req, a := sent(t, c)
	if req.Type != Request || req.XID != disc.XID || req.CIAddr.IsValid() || a.Dst != bcast {
		t.Fatalf("REQUEST %+v to %v", req, a.Dst)
	}
	if r, _ := req.Options.RequestedIP(); r != offered {
		t.Errorf("requested %v", r)
	}
	if id, _ := req.Options.ServerID(); id != serverID {
		t.Errorf("server id %v", id)
	}
	c.Input(t0.Add(time.Second), s.reply(req, Ack, offered))
	if c.State() != Probing || len(c.Actions()) != 0 {
		t.Fatalf("state %v after ACK", c.State())
	}
	if _, ok := c.Lease(); ok {
		t.Error("lease before bound")
	}
	var apply Action
	for c.State() == Probing {
		c.Timer(c.Next())
		for _, a := range c.Actions() {
			if a.Kind == Apply {
				apply = a
			}
		}
	}
	l := apply.Lease
	if l.Addr != netip.MustParsePrefix("198.18.0.10/24") || l.Server != serverID || !l.Start.Equal(t0) ||
		l.Duration != time.Hour || l.T1 != 30*time.Minute || l.T2 != time.Hour/8*7 ||
		len(l.Routers) != 1 || l.Routers[0] != serverID || len(l.DNS) != 1 ||
		l.Domain != "example.test" || l.MTU != 1400 {
		t.Fatalf("lease %+v", l)
	}
	if got, ok := c.Lease(); !ok || got.Addr != l.Addr {
		t.Errorf("Lease() = %v, %v", got, ok)
	}
	st := c.Stats()
	if st.Sent != 2 || st.Received != 2 || st.Offers != 1 || st.Acks != 1 {
		t.Errorf("stats %+v", st)
	}
	if c.State().String() != "BOUND" || Ack.String() != "ACK" || MessageType(99).String() != "MessageType(99)" ||
		State(9).String() != "State(9)" || Apply.String() != "Apply" || ActionKind(9).String() != "ActionKind(9)" {
		t.Error("String")
	}
}

func TestClientIDConfig(t *testing.T) {
	id := []byte{0xff, 1, 2, 3}
	c := newClient(t, Config{ClientID: id})
	id[0] = 0
	c.Start(t0)
	m, _ := sent(t, c)
	if !bytes.Equal(m.Options.ClientID(), []byte{0xff, 1, 2, 3}) {
		t.Fatalf("client id %x", m.Options.ClientID())
	}
}

func TestNewNoMAC(t *testing.T) {
	if _, err := New(Config{}); err != ErrNoMAC {
		t.Fatalf("err %v", err)
	}
	c, err := New(Config{MAC: mac, MaxMessageSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	c.Start(t0)
	m, _ := sent(t, c)
	if n, _ := m.Options.MaxMessageSize(); n != 576 {
		t.Errorf("max size %d", n)
	}
}

func TestOfferWaitAndFlood(t *testing.T) {
	c := newClient(t, Config{OfferWait: 2 * time.Second, MaxOffers: 2, PrevAddr: netip.MustParseAddr("198.18.0.11")})
	c.Start(t0)
	disc, _ := sent(t, c)
	for i, yi := range []string{"198.18.0.12", "198.18.0.11", "198.18.0.13"} {
		s := &server{id: netip.AddrFrom4([4]byte{198, 18, 0, byte(1 + i)}), lease: 600}
		c.Input(t0.Add(time.Duration(i)*100*time.Millisecond), s.reply(disc, Offer, netip.MustParseAddr(yi)))
	}
	if len(c.Actions()) != 0 || !c.Next().Equal(t0.Add(2*time.Second)) {
		t.Fatalf("chose before OfferWait; next %v", c.Next())
	}
	st := c.Stats()
	if st.Offers != 3 || st.DropOfferFlood != 1 {
		t.Errorf("stats %+v", st)
	}
	c.Timer(t0.Add(2 * time.Second))
	req, _ := sent(t, c)
	if r, _ := req.Options.RequestedIP(); r.String() != "198.18.0.11" {
		t.Errorf("chose %v, want the previous address", r)
	}
	if id, _ := req.Options.ServerID(); id.String() != "198.18.0.2" {
		t.Errorf("server %v", id)
	}
}

func TestRetransmitBackoff(t *testing.T) {
	c := newClient(t, Config{})
	c.Start(t0)
	first, _ := sent(t, c)
	last := t0
	for i, d := range []time.Duration{4, 8, 16, 32, 64, 64, 64} {
		next := c.Next()
		gap := next.Sub(last)
		if gap < (d-1)*time.Second || gap > (d+1)*time.Second {
			t.Fatalf("retransmission %d after %v, want %v±1s", i, gap, d*time.Second)
		}
		c.Timer(next.Add(-time.Millisecond)) // early: nothing
		if len(c.Actions()) != 0 {
			t.Fatal("sent before the deadline")
		}
		c.Timer(next)
		m, _ := sent(t, c)
		if m.XID != first.XID || m.Type != Discover || int(m.Secs) != int(next.Sub(t0)/time.Second) {
			t.Fatalf("retransmission %+v", m)
		}
		last = next
	}
	if st := c.Stats(); st.Retransmits != 7 || st.Sent != 8 {
		t.Errorf("stats %+v", st)
	}
}

func TestRequestRetransmitThenRestart(t *testing.T) {
	c := newClient(t, Config{})
	s := newServer()
	c.Start(t0)
	disc, _ := sent(t, c)
	c.Input(t0, s.reply(disc, Offer, offered))
	sent(t, c)
	for range MaxRequests - 1 {
		c.Timer(c.Next())
		if m, _ := sent(t, c); m.Type != Request {
			t.Fatalf("sent %v", m.Type)
		}
	}
	c.Timer(c.Next())
	m, _ := sent(t, c)
	if m.Type != Discover || m.XID == disc.XID || c.State() != Selecting {
		t.Fatalf("after %d REQUESTs: %v in %v", MaxRequests, m.Type, c.State())
	}
}

func TestProbeTiming(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		c := newClient(t, Config{ProbeNum: n, Rand: rand.NewPCG(uint64(n), 9)})
		s := newServer()
		acked(t, c, s)
		last := t0
		for i := range n {
			next := c.Next()
			gap := next.Sub(last)
			lo, hi := ProbeMin, ProbeMax
			if i == 0 {
				lo, hi = 0, ProbeWait
			}
			if gap < lo || gap > hi {
				t.Fatalf("probe %d after %v", i, gap)
			}
			c.Timer(next)
			as := c.Actions()
			if len(as) != 1 || as[0].Kind != Probe || as[0].Addr != offered {
				t.Fatalf("probe %d: %+v", i, as)
			}
			last = next
		}
		if gap := c.Next().Sub(last); gap != AnnounceWait {
			t.Fatalf("bound %v after the last probe", gap)
		}
		c.Timer(c.Next())
		if as := c.Actions(); len(as) != 1 || as[0].Kind != Apply || c.State() != Bound {
			t.Fatalf("%+v in %v", as, c.State())
		}
	}
}

func TestNoProbe(t *testing.T) {
	c := newClient(t, Config{ProbeNum: -1})
	s := newServer()
	acked(t, c, s)
	if as := c.Actions(); len(as) != 1 || as[0].Kind != Apply {
		t.Fatalf("%+v", as)
	}
}

func checkDecline(t *testing.T, c *Client, now time.Time) {
	t.Helper()
	m, a := sent(t, c)
	if m.Type != Decline || a.Src != netip.IPv4Unspecified() || a.Dst != bcast || m.CIAddr.IsValid() {
		t.Fatalf("DECLINE %+v from %v to %v", m, a.Src, a.Dst)
	}
	if r, _ := m.Options.RequestedIP(); r != offered {
		t.Errorf("declined %v", r)
	}
	if id, _ := m.Options.ServerID(); id != serverID {
		t.Errorf("server %v", id)
	}
	if c.State() != Init || !c.Next().Equal(now.Add(DeclineWait)) {
		t.Fatalf("state %v next %v", c.State(), c.Next())
	}
	c.Timer(now.Add(DeclineWait))
	d, _ := sent(t, c)
	if _, ok := d.Options.RequestedIP(); d.Type != Discover || ok {
		t.Fatalf("restart %+v", d)
	}
}

func TestConflictWhileProbing(t *testing.T) {
	c := newClient(t, Config{})
	s := newServer()
	acked(t, c, s)
	now := c.Next()
	c.Timer(now)
	c.Actions()
	c.Conflict(now, netip.MustParseAddr("198.18.0.99")) // another address
	if c.State() != Probing {
		t.Fatal("conflict on another address")
	}
	c.Conflict(now, offered)
	checkDecline(t, c, now)
	if st := c.Stats(); st.Conflicts != 1 || st.Declines != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestConflictWhileBound(t *testing.T) {
	c := newClient(t, Config{})
	now, _ := bound(t, c, newServer())
	c.Conflict(now, offered)
	as := c.Actions()
	if len(as) != 2 || as[0].Kind != Lost || as[0].Lease.Addr.Addr() != offered {
		t.Fatalf("%+v", as)
	}
	c.actions = as[1:]
	checkDecline(t, c, now)
}

func TestRenewRebindExpire(t *testing.T) {
	c := newClient(t, Config{})
	s := newServer()
	s.lease = 1000
	s.mod = func(m *Message) {
		m.Options.SetUint32(OptRenewalTime, 400)
		m.Options.SetUint32(OptRebindingTime, 800)
	}
	_, apply := bound(t, c, s)
	start := apply.Lease.Start
	if !c.Next().Equal(start.Add(400 * time.Second)) {
		t.Fatalf("renew at %v", c.Next().Sub(start))
	}
	c.Input(start, s.reply(&Message{XID: c.xid, CHAddr: mac}, Ack, offered))
	if c.Stats().DropUnexpected != 1 {
		t.Error("ACK in BOUND not ignored")
	}
	// Renewing: unicast, 200 s to T2, then 60 s minimum, then T2.
	var times []time.Duration
	for c.State() != Rebinding || len(times) < 5 {
		now := c.Next()
		c.Timer(now)
		m, a := sent(t, c)
		times = append(times, now.Sub(start)/time.Second)
		if _, ok := m.Options.ServerID(); ok || m.CIAddr != offered || a.Src != offered {
			t.Fatalf("renew %+v from %v", m, a.Src)
		}
		if _, ok := m.Options.RequestedIP(); ok {
			t.Fatal("requested IP while renewing")
		}
		want := serverID
		if c.State() == Rebinding {
			want = bcast
		}
		if a.Dst != want || m.Flags != 0 {
			t.Fatalf("in %v to %v", c.State(), a.Dst)
		}
	}
	want := []time.Duration{400, 600, 700, 760, 800}
	for i := range want {
		if times[i] != want[i] {
			t.Fatalf("REQUESTs at %v, want %v", times, want)
		}
	}
	// Rebinding: 100 s to expiry, then 60, then expiry.
	for _, w := range []time.Duration{900, 960} {
		now := c.Next()
		if now.Sub(start) != w*time.Second {
			t.Fatalf("rebind at %v, want %v", now.Sub(start), w)
		}
		c.Timer(now)
		sent(t, c)
	}
	now := c.Next()
	if now.Sub(start) != 1000*time.Second {
		t.Fatalf("expiry at %v", now.Sub(start))
	}
	c.Timer(now)
	as := c.Actions()
	if len(as) != 2 || as[0].Kind != Lost || as[1].Kind != Send || c.State() != Selecting {
		t.Fatalf("%+v in %v", as, c.State())
	}
	m, _ := Parse(as[1].Msg)
	if r, _ := m.Options.RequestedIP(); m.Type != Discover || r != offered {
		t.Fatalf("after expiry %+v", m)
	}
	if c.Stats().Expired != 1 {
		t.Error("not counted")
	}
}

func TestRenewAck(t *testing.T) {
	c := newClient(t, Config{})
	s := newServer()
	bound(t, c, s)
	now := c.Next()
	c.Timer(now)
	req, _ := sent(t, c)
	s.lease = 7200
	c.Input(now, s.reply(req, Ack, offered))
	as := c.Actions()
	if len(as) != 1 || as[0].Kind != Update || as[0].Lease.Duration != 2*time.Hour || !as[0].Lease.Start.Equal(now) {
		t.Fatalf("%+v", as)
	}
	if c.State() != Bound || !c.Next().Equal(now.Add(time.Hour)) {
		t.Fatalf("%v next %v", c.State(), c.Next())
	}
	// Another address: Lost then Apply.
	now = c.Next()
	c.Timer(now)
	req, _ = sent(t, c)
	other := netip.MustParseAddr("198.18.0.20")
	c.Input(now, s.reply(req, Ack, other))
	as = c.Actions()
	if len(as) != 2 || as[0].Kind != Lost || as[0].Lease.Addr.Addr() != offered ||
		as[1].Kind != Apply || as[1].Lease.Addr.Addr() != other {
		t.Fatalf("%+v", as)
	}
}

func TestNak(t *testing.T) {
	s := newServer()
	// REQUESTING
	c := newClient(t, Config{})
	c.Start(t0)
	disc, _ := sent(t, c)
	c.Input(t0, s.reply(disc, Offer, offered))
	req, _ := sent(t, c)
	other := &server{id: netip.MustParseAddr("198.18.0.2")}
	c.Input(t0, other.reply(req, Nak, netip.Addr{}))
	if c.State() != Requesting || c.Stats().DropUnexpected != 1 {
		t.Fatal("NAK from another server accepted")
	}
	c.Input(t0, s.reply(req, Nak, netip.Addr{}))
	if m, _ := sent(t, c); m.Type != Discover || c.State() != Selecting || c.Stats().Naks != 1 {
		t.Fatalf("after NAK: %v in %v", m.Type, c.State())
	}
	// RENEWING and REBINDING
	for _, st := range []State{Renewing, Rebinding} {
		c := newClient(t, Config{})
		bound(t, c, s)
		var as []Action
		for c.State() != st {
			c.Timer(c.Next())
			as = c.Actions()
		}
		req, _ := Parse(as[len(as)-1].Msg)
		c.Input(c.Next(), s.reply(req, Nak, netip.Addr{}))
		as = c.Actions()
		if len(as) != 2 || as[0].Kind != Lost || as[1].Kind != Send || c.State() != Selecting {
			t.Fatalf("NAK in %v: %+v", st, as)
		}
	}
}

func TestBadOffers(t *testing.T) {
	set := func(code uint8, v ...byte) func(*Message) { return func(m *Message) { m.Options[code] = v } }
	cases := map[string]struct {
		yi  string
		mod func(*Message)
	}{
		"zero":           {"0.0.0.0", nil},
		"this network":   {"0.1.2.3", nil},
		"loopback":       {"127.0.0.1", nil},
		"multicast":      {"224.0.0.1", nil},
		"broadcast":      {"255.255.255.255", nil},
		"reserved":       {"240.0.0.1", nil},
		"subnet bcast":   {"198.18.0.255", nil},
		"subnet network": {"198.18.0.0", nil},
		"lease 0":        {"198.18.0.10", set(OptLeaseTime, 0, 0, 0, 0)},
		"no lease":       {"198.18.0.10", func(m *Message) { delete(m.Options, OptLeaseTime) }},
		"no server":      {"198.18.0.10", func(m *Message) { delete(m.Options, OptServerID) }},
		"bad server":     {"198.18.0.10", set(OptServerID, 224, 0, 0, 1)},
		"mask holes":     {"198.18.0.10", set(OptSubnetMask, 255, 0, 255, 0)},
		"mask zero":      {"198.18.0.10", set(OptSubnetMask, 0, 0, 0, 0)},
		"short mask":     {"198.18.0.10", set(OptSubnetMask, 255)},
	}
	for name, tc := range cases {
		c := newClient(t, Config{})
		s := newServer()
		s.mod = tc.mod
		c.Start(t0)
		disc, _ := sent(t, c)
		c.Input(t0, s.reply(disc, Offer, netip.MustParseAddr(tc.yi)))
		if c.State() != Selecting || len(c.Actions()) != 0 || c.Stats().DropBadOffer != 1 {
			t.Errorf("%s: accepted (%v)", name, c.State())
		}
	}
}

func TestBadAck(t *testing.T) {
	c := newClient(t, Config{})
	s := newServer()
	c.Start(t0)
	disc, _ := sent(t, c)
	c.Input(t0, s.reply(disc, Offer, offered))
	req, _ := sent(t, c)
	c.Input(t0, s.reply(req, Ack, netip.MustParseAddr("198.18.0.11")))
	s.lease = 0
	c.Input(t0, s.reply(req, Ack, offered))
	other := &server{id: netip.MustParseAddr("198.18.0.2"), lease: 60}
	c.Input(t0, other.reply(req, Ack, offered))
	c.Input(t0, s.reply(req, Offer, offered))
	if c.State() != Requesting || c.Stats().DropBadAck != 3 || c.Stats().DropUnexpected != 1 {
		t.Fatalf("state %v stats %+v", c.State(), c.Stats())
	}
}

func TestNotOurs(t *testing.T) {
	c := newClient(t, Config{})
	s := newServer()
	c.Start(t0)
	disc, _ := sent(t, c)
	for _, mod := range []func(*Message){
		func(m *Message) { m.XID++ },
		func(m *Message) { m.CHAddr[5]++ },
		func(m *Message) { m.Op = OpRequest },
		func(m *Message) { m.Options[OptClientID] = []byte{1, 2, 3} },
	} {
		s.mod = mod
		c.Input(t0, s.reply(disc, Offer, offered))
	}
	c.Input(t0, []byte{2, 1, 6})
	if st := c.Stats(); st.DropNotOurs != 4 || st.DropMalformed != 1 || c.State() != Selecting {
		t.Fatalf("stats %+v", st)
	}
}

func TestLeaseTimes(t *testing.T) {
	cases := []struct {
		lease, t1, t2 uint32 // 0: absent
		T1, T2        time.Duration
	}{
		{1000, 0, 0, 500 * time.Second, 875 * time.Second},
		{1000, 300, 600, 300 * time.Second, 600 * time.Second},
		{1000, 900, 800, 800 * time.Second / 7 * 4, 800 * time.Second},
		{1000, 0, 1000, 500 * time.Second, 875 * time.Second},
		{1000, 0, 400, 400 * time.Second / 7 * 4, 400 * time.Second},
		{1, 0, 0, 500 * time.Millisecond, 875 * time.Millisecond},
	}
	for _, tc := range cases {
		m := &Message{YIAddr: offered, Options: Options{}}
		m.Options.SetAddrs(OptServerID, serverID)
		m.Options.SetUint32(OptLeaseTime, tc.lease)
		if tc.t1 != 0 {
			m.Options.SetUint32(OptRenewalTime, tc.t1)
		}
		if tc.t2 != 0 {
			m.Options.SetUint32(OptRebindingTime, tc.t2)
		}
		l, ok := leaseFrom(m, t0)
		if !ok || l.T1 != tc.T1 || l.T2 != tc.T2 {
			t.Errorf("%+v: T1 %v T2 %v", tc, l.T1, l.T2)
		}
	}
	for a, bits := range map[string]int{"10.1.2.3": 8, "172.16.0.5": 16, "198.18.0.10": 24} {
		m := &Message{YIAddr: netip.MustParseAddr(a), Options: Options{}}
		m.Options.SetAddrs(OptServerID, serverID)
		m.Options.SetUint32(OptLeaseTime, 60)
		if l, ok := leaseFrom(m, t0); !ok || l.Addr.Bits() != bits {
			t.Errorf("%s: %v", a, l.Addr)
		}
	}
}

func TestInfiniteLease(t *testing.T) {
	c := newClient(t, Config{})
	s := newServer()
	s.lease = 0xffffffff
	_, apply := bound(t, c, s)
	if apply.Lease.Duration != Infinite || !c.Next().IsZero() {
		t.Fatalf("lease %+v next %v", apply.Lease, c.Next())
	}
}

func TestRelease(t *testing.T) {
	c := newClient(t, Config{})
	c.Release(t0)
	if len(c.Actions()) != 0 {
		t.Fatal("release before bound")
	}
	now, _ := bound(t, c, newServer())
	c.Release(now)
	as := c.Actions()
	if len(as) != 2 || as[0].Kind != Send || as[1].Kind != Lost {
		t.Fatalf("%+v", as)
	}
	m, _ := Parse(as[0].Msg)
	if m.Type != Release || m.CIAddr != offered || as[0].Src != offered || as[0].Dst != serverID {
		t.Fatalf("RELEASE %+v from %v to %v", m, as[0].Src, as[0].Dst)
	}
	if id, _ := m.Options.ServerID(); id != serverID {
		t.Errorf("server %v", id)
	}
	if c.State() != Init || !c.Next().IsZero() {
		t.Fatalf("%v next %v", c.State(), c.Next())
	}
	if _, ok := c.Lease(); ok {
		t.Error("lease after release")
	}
}

func TestLateTimer(t *testing.T) {
	c := newClient(t, Config{})
	_, apply := bound(t, c, newServer())
	start := apply.Lease.Start
	c.Timer(start.Add(apply.Lease.T2))
	m, a := sent(t, c)
	if c.State() != Rebinding || a.Dst != bcast || m.Type != Request {
		t.Fatalf("T1 timer run at T2: %v to %v", c.State(), a.Dst)
	}
	c.Timer(start.Add(apply.Lease.Duration + time.Minute))
	if as := c.Actions(); len(as) != 2 || as[0].Kind != Lost || c.State() != Selecting {
		t.Fatalf("%+v in %v", as, c.State())
	}
}
