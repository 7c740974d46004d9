package dhcp

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// toState drives a new client with a well-behaved server into state st
// and returns it with the time reached.
func toState(t *testing.T, st State) (*Client, time.Time) {
	c := newClient(t, Config{Rand: rand.NewPCG(3, 4)})
	s := newServer()
	now := t0
	switch st {
	case Init:
		return c, now
	case Selecting, Requesting:
		c.Start(now)
		if st == Requesting {
			disc, _ := sent(t, c)
			c.Input(now, s.reply(disc, Offer, offered))
		}
		return c, now
	case Probing:
		acked(t, c, s)
		return c, now
	}
	now, _ = bound(t, c, s)
	for c.State() != st {
		now = c.Next()
		c.Timer(now)
	}
	return c, now
}

// FuzzClient feeds a payload to a client in each state, the transaction
// ID, hardware address and cookie patched in when patch is set so that
// the options reach the state machine, then runs its timers for a while.
// It must not panic and must never apply an address a host cannot have.
func FuzzClient(f *testing.F) {
	s := newServer()
	for st := range Rebinding + 1 {
		f.Add(uint8(st), true, s.reply(&Message{}, Offer, offered))
		f.Add(uint8(st), true, s.reply(&Message{}, Ack, offered))
		f.Add(uint8(st), true, s.reply(&Message{}, Nak, offered))
		f.Add(uint8(st), false, []byte{2, 1, 6})
	}
	f.Fuzz(func(t *testing.T, st uint8, patch bool, b []byte) {
		c, now := toState(t, State(st%uint8(Rebinding+1)))
		c.Actions()
		if patch && len(b) >= fixedLen+cookieLen {
			b[0], b[1], b[2] = OpReply, 1, 6
			binary.BigEndian.PutUint32(b[4:], c.xid)
			copy(b[28:], mac[:])
			binary.BigEndian.PutUint32(b[fixedLen:], magicValue)
		}
		c.Input(now, b)
		c.Input(now, b)
		for range 10 {
			for _, a := range c.Actions() {
				if (a.Kind == Apply || a.Kind == Update) && (!validAddr(a.Lease.Addr.Addr()) || !a.Lease.Addr.IsValid() ||
					a.Lease.T1 > a.Lease.T2 || a.Lease.T2 > a.Lease.Duration || a.Lease.Duration <= 0) {
					t.Fatalf("applied %+v", a.Lease)
				}
			}
			if c.Next().IsZero() {
				break
			}
			now = c.Next()
			c.Timer(now)
		}
	})
}
