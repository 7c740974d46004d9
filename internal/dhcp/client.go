package dhcp

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"
)

// Timing constants of RFC 2131 and RFC 5227 §1.1.
const (
	RetransmitMin = 4 * time.Second  // first DISCOVER or REQUEST retransmission
	RetransmitMax = 64 * time.Second // the backoff's ceiling
	RenewMin      = 60 * time.Second // shortest wait between REQUESTs while renewing or rebinding
	DeclineWait   = 10 * time.Second // from a DECLINE to the next DISCOVER
	ProbeWait     = 1 * time.Second  // longest random wait before the first probe
	ProbeMin      = 1 * time.Second  // shortest wait between probes
	ProbeMax      = 2 * time.Second  // longest wait between probes
	AnnounceWait  = 2 * time.Second  // from the last probe to using the address
	MaxRequests   = 4                // REQUESTs sent in SELECTING before starting again
)

var (
	broadcast   = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	unspecified = netip.IPv4Unspecified()
	paramList   = []byte{OptSubnetMask, OptRouters, OptDNS, OptHostName, OptDomainName,
		OptInterfaceMTU, OptBroadcast, OptLeaseTime, OptServerID, OptRenewalTime, OptRebindingTime}
)

// A State is a state of the client (RFC 2131 §4.4, Figure 5), with
// Probing for the address check of RFC 5227 between ACK and BOUND.
type State uint8

// The client's states.
const (
	Init State = iota
	Selecting
	Requesting
	Probing
	Bound
	Renewing
	Rebinding
)

var stateNames = [...]string{"INIT", "SELECTING", "REQUESTING", "PROBING", "BOUND", "RENEWING", "REBINDING"}

// String returns the name of s in RFC 2131's capitals.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// An ActionKind says what the caller must do for an Action.
type ActionKind uint8

// The kinds of Action.
const (
	Send   ActionKind = iota // send Msg in a UDP datagram from Src:68 to Dst:67
	Probe                    // send one ARP probe for Addr (sender address 0.0.0.0)
	Apply                    // configure Lease (and announce it, RFC 5227 §2.3); the client is bound
	Update                   // Lease was renewed; its times or parameters may have changed
	Lost                     // Lease is gone: remove its address and routes
)

var kindNames = [...]string{"Send", "Probe", "Apply", "Update", "Lost"}

// String returns the name of k.
func (k ActionKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "ActionKind(" + strconv.Itoa(int(k)) + ")"
}

// An Action is one thing the client asks its caller to do.
type Action struct {
	Kind  ActionKind
	Msg   []byte     // Send: the UDP payload
	Src   netip.Addr // Send: the leased address when renewing, rebinding or releasing; else 0.0.0.0
	Dst   netip.Addr // Send: the server when renewing or releasing; else 255.255.255.255
	Addr  netip.Addr // Probe: the address probed
	Lease Lease      // Apply, Update, Lost
}

// Stats counts the client's messages and events.
type Stats struct {
	Sent, Retransmits, Received  uint64
	Offers, Acks, Naks           uint64
	Declines, Releases           uint64
	DropMalformed, DropNotOurs   uint64 // unparsable; another client's or not a reply
	DropUnexpected               uint64 // a reply the state does not expect
	DropBadOffer, DropBadAck     uint64 // failed the checks on address, lease time, mask or server
	DropOfferFlood               uint64 // OFFERs beyond Config.MaxOffers
	Expired, Conflicts, Restarts uint64
}

// Config configures a Client.
type Config struct {
	MAC      [6]byte     // required
	Rand     rand.Source // for transaction IDs and jitter; nil: a random one
	ClientID []byte      // option 61; nil: 1 (Ethernet) followed by MAC
	HostName string      // option 12 of DISCOVER and REQUEST when non-empty
	PrevAddr netip.Addr  // asked for in the first DISCOVER when valid
	// OfferWait is how long OFFERs are collected after the first before
	// one is chosen; 0 takes the first valid one.
	OfferWait time.Duration
	MaxOffers int // OFFERs kept while waiting; 0: 8
	// ProbeNum is the number of ARP probes of an acknowledged address;
	// 0: 3; negative: none, the lease applies on the ACK.
	ProbeNum int
	// MaxMessageSize is sent as option 57; 0: 1472, values below 576: 576.
	MaxMessageSize uint16
}

// A Client is a DHCPv4 client for one interface. It does no I/O and reads
// no clock: each call takes the current time, and the caller performs the
// Actions it returns and calls Timer at Next. A Client is not safe for
// concurrent use.
//
// Start sends the first DISCOVER at once; a caller wanting the random
// 1 to 10 second delay of RFC 2131 §4.4.1 calls Start that much later.
type Client struct {
	cfg     Config
	rng     *rand.Rand
	state   State
	actions []Action
	stats   Stats

	xid     uint32
	began   time.Time // first message of this exchange, for secs
	reqSent time.Time // first REQUEST of this exchange
	at      time.Time // the state's next deadline
	tries   int       // messages sent in this state
	offerAt time.Time // end of OfferWait
	offers  []*Message
	prev    netip.Addr // address to ask for in DISCOVER
	chosen  *Message   // the OFFER requested
	lease   Lease      // the ACKed lease from Probing on
	probes  int        // probes sent
}

// ErrNoMAC is returned by New for a zero hardware address.
var ErrNoMAC = errors.New("dhcp: zero MAC address")

// New returns a client in state Init for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.MAC == ([6]byte{}) {
		return nil, ErrNoMAC
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	if cfg.ClientID == nil {
		cfg.ClientID = append([]byte{1}, cfg.MAC[:]...)
	} else {
		cfg.ClientID = bytes.Clone(cfg.ClientID)
	}
	if cfg.MaxOffers <= 0 {
		cfg.MaxOffers = 8
	}
	if cfg.ProbeNum == 0 {
		cfg.ProbeNum = 3
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = 1472
	}
	cfg.MaxMessageSize = max(cfg.MaxMessageSize, 576)
	return &Client{cfg: cfg, rng: rand.New(cfg.Rand), prev: cfg.PrevAddr}, nil
}

// State returns the client's state.
func (c *Client) State() State { return c.state }

// Stats returns the client's counters.
func (c *Client) Stats() Stats { return c.stats }

// Next returns when Timer must next be called, or the zero Time for never.
func (c *Client) Next() time.Time {
	if !c.offerAt.IsZero() && c.offerAt.Before(c.at) {
		return c.offerAt
	}
	return c.at
}

// Actions returns the pending actions in order and clears them.
func (c *Client) Actions() []Action {
	a := c.actions
	c.actions = nil
	return a
}

// Lease returns the lease while the client is Bound, Renewing or Rebinding.
func (c *Client) Lease() (Lease, bool) {
	if c.state < Bound {
		return Lease{}, false
	}
	return c.lease, true
}

// Start begins acquiring an address: it sends a DISCOVER.
func (c *Client) Start(now time.Time) { c.discover(now) }

// discover enters Selecting with a new transaction.
func (c *Client) discover(now time.Time) {
	c.state, c.xid, c.began = Selecting, c.rng.Uint32(), now
	c.tries, c.offers, c.offerAt, c.chosen = 0, nil, time.Time{}, nil
	c.sendDiscover(now)
}

func (c *Client) sendDiscover(now time.Time) {
	m := c.message(now, Discover, FlagBroadcast)
	if validAddr(c.prev) {
		m.Options.SetAddrs(OptRequestedIP, c.prev)
	}
	c.send(m, unspecified, broadcast)
	c.backoff(now)
}

func (c *Client) sendSelect(now time.Time) {
	m := c.message(now, Request, FlagBroadcast)
	m.Options.SetAddrs(OptRequestedIP, c.chosen.YIAddr)
	m.Options[OptServerID] = c.chosen.Options[OptServerID]
	c.send(m, unspecified, broadcast)
	c.backoff(now)
}

// sendRenew sends the REQUEST of Renewing (to the server) or Rebinding
// (broadcast), and waits half the time left to T2 or the expiry, at least
// RenewMin (RFC 2131 §4.4.5).
func (c *Client) sendRenew(now time.Time) {
	m := c.message(now, Request, 0)
	m.CIAddr = c.lease.Addr.Addr()
	dst, end := c.lease.Server, c.lease.rebindAt()
	if c.state == Rebinding {
		dst, end = broadcast, c.lease.endAt()
	}
	c.send(m, c.lease.Addr.Addr(), dst)
	c.at = now.Add(max(end.Sub(now)/2, RenewMin))
	if end.Before(c.at) {
		c.at = end
	}
}

// message returns a request of type t with the options every message of
// the client's exchanges carries.
func (c *Client) message(now time.Time, t MessageType, flags uint16) *Message {
	m := &Message{Op: OpRequest, XID: c.xid, Flags: flags, CHAddr: c.cfg.MAC, Type: t,
		Options: Options{OptClientID: c.cfg.ClientID}}
	m.Secs = uint16(min(now.Sub(c.began)/time.Second, 0xffff))
	if t == Discover || t == Request {
		m.Options[OptParamRequest] = paramList
		m.Options.SetUint16(OptMaxMessageSize, c.cfg.MaxMessageSize)
		if c.cfg.HostName != "" {
			m.Options[OptHostName] = []byte(c.cfg.HostName)
		}
	}
	if t == Request && c.tries == 0 {
		c.reqSent = now
	}
	return m
}

func (c *Client) send(m *Message, src, dst netip.Addr) {
	c.actions = append(c.actions, Action{Kind: Send, Msg: m.Append(nil), Src: src, Dst: dst})
	c.stats.Sent++
	if c.tries > 0 {
		c.stats.Retransmits++
	}
	c.tries++
}

// backoff sets the retransmission deadline: 4 s doubling to 64 s, each
// moved by up to a second either way (RFC 2131 §4.1).
func (c *Client) backoff(now time.Time) {
	d := min(RetransmitMin<<min(c.tries-1, 4), RetransmitMax)
	c.at = now.Add(d + c.jitter(-time.Second, time.Second))
}

// jitter returns a random duration in [lo, hi].
func (c *Client) jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1))
}

// Timer runs what is due at now: retransmissions, the choice among OFFERs,
// probes, renewal, rebinding and expiry.
func (c *Client) Timer(now time.Time) {
	if !c.offerAt.IsZero() && !now.Before(c.offerAt) {
		c.offerAt = time.Time{}
		c.choose(now)
		return
	}
	if c.at.IsZero() || now.Before(c.at) {
		return
	}
	switch c.state {
	case Init:
		c.discover(now)
	case Selecting:
		c.sendDiscover(now)
	case Requesting:
		if c.tries >= MaxRequests {
			c.stats.Restarts++
			c.discover(now)
			return
		}
		c.sendSelect(now)
	case Probing:
		c.probe(now)
	case Bound, Renewing, Rebinding:
		c.renew(now)
	}
}

// renew moves between Bound, Renewing and Rebinding by the lease's times,
// a timer that fires late skipping states, and sends a REQUEST or, at the
// lease's end, gives the lease up.
func (c *Client) renew(now time.Time) {
	next := Renewing
	switch {
	case !now.Before(c.lease.endAt()):
		c.stats.Expired++
		c.lose(now, false)
		return
	case !now.Before(c.lease.rebindAt()):
		next = Rebinding
	}
	if c.state != next {
		c.state, c.xid, c.began, c.tries = next, c.rng.Uint32(), now, 0
	}
	c.sendRenew(now)
}

// choose requests the OFFER for the address asked for, if there is one,
// or else the first.
func (c *Client) choose(now time.Time) {
	if len(c.offers) == 0 {
		return
	}
	c.chosen = c.offers[0]
	for _, o := range c.offers {
		if o.YIAddr == c.prev {
			c.chosen = o
			break
		}
	}
	c.offers = nil
	c.state, c.tries = Requesting, 0
	c.sendSelect(now)
}

// probe sends the next ARP probe, or binds when all were sent and
// AnnounceWait has passed without a conflict (RFC 5227 §2.1.1).
func (c *Client) probe(now time.Time) {
	if c.probes == c.cfg.ProbeNum {
		c.bind(now)
		return
	}
	c.actions = append(c.actions, Action{Kind: Probe, Addr: c.lease.Addr.Addr()})
	c.probes++
	if c.probes < c.cfg.ProbeNum {
		c.at = now.Add(c.jitter(ProbeMin, ProbeMax))
	} else {
		c.at = now.Add(AnnounceWait)
	}
}

// bind enters Bound with c.lease and asks for it to be applied.
func (c *Client) bind(now time.Time) {
	c.state, c.prev = Bound, c.lease.Addr.Addr()
	c.actions = append(c.actions, Action{Kind: Apply, Lease: c.lease})
	c.setRenew()
}

func (c *Client) setRenew() {
	c.at = time.Time{}
	if c.lease.Duration != Infinite {
		c.at = c.lease.renewAt()
	}
}

// Input handles a UDP payload received on port 68.
func (c *Client) Input(now time.Time, payload []byte) {
	c.stats.Received++
	m, err := Parse(payload)
	if err != nil {
		c.stats.DropMalformed++
		return
	}
	if m.Op != OpReply || m.XID != c.xid || m.CHAddr != c.cfg.MAC ||
		(m.Options[OptClientID] != nil && !bytes.Equal(m.Options[OptClientID], c.cfg.ClientID)) {
		c.stats.DropNotOurs++
		return
	}
	switch {
	case c.state == Selecting && m.Type == Offer:
		c.offer(now, m)
	case c.state == Requesting && m.Type == Ack:
		c.ack(now, m)
	case c.state == Requesting && m.Type == Nak:
		if _, ok := m.Options.ServerID(); ok && !c.fromChosen(m) {
			c.stats.DropUnexpected++
			return
		}
		c.stats.Naks++
		c.stats.Restarts++
		c.discover(now)
	case (c.state == Renewing || c.state == Rebinding) && m.Type == Ack:
		c.ack(now, m)
	case (c.state == Renewing || c.state == Rebinding) && m.Type == Nak:
		c.stats.Naks++
		c.lose(now, false)
	default:
		c.stats.DropUnexpected++
	}
}

func (c *Client) fromChosen(m *Message) bool {
	id, _ := m.Options.ServerID()
	sid, _ := c.chosen.Options.ServerID()
	return id == sid
}

func (c *Client) offer(now time.Time, m *Message) {
	if _, ok := leaseFrom(m, now); !ok {
		c.stats.DropBadOffer++
		return
	}
	c.stats.Offers++
	if c.cfg.OfferWait <= 0 {
		c.offers = []*Message{m}
		c.choose(now)
		return
	}
	if len(c.offers) >= c.cfg.MaxOffers {
		c.stats.DropOfferFlood++
		return
	}
	if len(c.offers) == 0 {
		c.offerAt = now.Add(c.cfg.OfferWait)
	}
	c.offers = append(c.offers, m)
}

func (c *Client) ack(now time.Time, m *Message) {
	l, ok := leaseFrom(m, c.reqSent)
	if ok && c.state == Requesting && (m.YIAddr != c.chosen.YIAddr || !c.fromChosen(m)) {
		ok = false
	}
	if !ok {
		c.stats.DropBadAck++
		return
	}
	c.stats.Acks++
	if c.state == Requesting {
		c.state, c.lease, c.probes = Probing, l, 0
		if c.cfg.ProbeNum < 0 {
			c.bind(now)
			return
		}
		c.at = now.Add(c.jitter(0, ProbeWait))
		return
	}
	old := c.lease
	c.lease, c.state = l, Bound
	if l.Addr.Addr() != old.Addr.Addr() {
		c.actions = append(c.actions, Action{Kind: Lost, Lease: old}, Action{Kind: Apply, Lease: l})
	} else {
		c.actions = append(c.actions, Action{Kind: Update, Lease: l})
	}
	c.prev = l.Addr.Addr()
	c.setRenew()
}

// lose gives up the lease and starts again: at once, or after DeclineWait
// with a DECLINE sent first when the address was found in use.
func (c *Client) lose(now time.Time, declined bool) {
	if c.state >= Bound {
		c.actions = append(c.actions, Action{Kind: Lost, Lease: c.lease})
	}
	if !declined {
		c.prev = c.lease.Addr.Addr()
		c.lease = Lease{}
		c.stats.Restarts++
		c.discover(now)
		return
	}
	c.xid, c.began, c.tries = c.rng.Uint32(), now, 0
	m := c.message(now, Decline, 0)
	m.Options.SetAddrs(OptRequestedIP, c.lease.Addr.Addr())
	m.Options.SetAddrs(OptServerID, c.lease.Server)
	c.send(m, unspecified, broadcast)
	c.stats.Declines++
	c.stats.Restarts++
	c.state, c.lease, c.prev, c.tries = Init, Lease{}, netip.Addr{}, 0
	c.at = now.Add(DeclineWait)
}

// Conflict reports that ARP showed addr in use by another host. For the
// address being probed or held, the client sends a DECLINE, gives up the
// lease if it was applied (Action Lost; RFC 5227 §2.4 (a)) and starts
// again after DeclineWait (RFC 2131 §3.1.5) without asking for addr.
func (c *Client) Conflict(now time.Time, addr netip.Addr) {
	if c.state < Probing || addr != c.lease.Addr.Addr() {
		return
	}
	c.stats.Conflicts++
	c.lose(now, true)
}

// Release gives the lease back: while Bound, Renewing or Rebinding it
// sends a RELEASE to the server from the leased address, asks for the
// lease to be removed (Action Lost) and stops in Init until Start.
func (c *Client) Release(now time.Time) {
	if c.state < Bound {
		return
	}
	c.xid, c.began, c.tries = c.rng.Uint32(), now, 0
	m := c.message(now, Release, 0)
	m.CIAddr = c.lease.Addr.Addr()
	m.Options.SetAddrs(OptServerID, c.lease.Server)
	c.send(m, c.lease.Addr.Addr(), c.lease.Server)
	c.stats.Releases++
	c.actions = append(c.actions, Action{Kind: Lost, Lease: c.lease})
	c.state, c.lease, c.at, c.tries = Init, Lease{}, time.Time{}, 0
}
