package stack

import (
	"hash/maphash"
	"iter"
)

// connTable is the TCP demux table: the connections by their 4-tuple.
// Each slot holds only a pointer, the key being the endpoint's own
// addresses, so an entry costs 16 to 32 bytes where a map entry, holding
// the 36-byte key beside the pointer in groups kept at most 7/8 full,
// costs 60 to 110: with a million idle connections that is a good part
// of each one's memory. Open addressing with linear probing, at most half
// full, so that a lookup that finds nothing (a SYN for a listener) looks
// at about two slots; deletion shifts the following entries back, so
// there are no tombstones. It is guarded by the tcpTable's lock, as the
// map was; the zero value is empty.
type connTable struct {
	slots []*TCPEndpoint // a power of two long, or nil
	n     int
	seed  maphash.Seed
}

// minConnSlots is the length of the first slice of slots.
const minConnSlots = 64

func (t *connTable) hash(k tcpKey) uint64 { return maphash.Comparable(t.seed, k) }

// keyOfConn is the key c is filed under.
func keyOfConn(c *TCPEndpoint) tcpKey { return keyOf(c.laddr, c.raddr) }

// get returns the connection filed under k, or nil.
func (t *connTable) get(k tcpKey) *TCPEndpoint {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		c := t.slots[i]
		if c == nil || keyOfConn(c) == k {
			return c
		}
	}
}

// put files c under k, which must be c's own key, replacing the one there.
func (t *connTable) put(k tcpKey, c *TCPEndpoint) {
	if t.slots == nil {
		t.seed = maphash.MakeSeed()
		t.slots = make([]*TCPEndpoint, minConnSlots)
	} else if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.hash(k) & mask; ; i = (i + 1) & mask {
		o := t.slots[i]
		if o == nil {
			t.slots[i] = c
			t.n++
			return
		}
		if keyOfConn(o) == k {
			t.slots[i] = c
			return
		}
	}
}

// grow doubles the slots and files every connection again.
func (t *connTable) grow() {
	old := t.slots
	t.slots = make([]*TCPEndpoint, 2*len(old))
	mask := uint64(len(t.slots) - 1)
	for _, c := range old {
		if c == nil {
			continue
		}
		i := t.hash(keyOfConn(c)) & mask
		for t.slots[i] != nil {
			i = (i + 1) & mask
		}
		t.slots[i] = c
	}
}

// delete removes the connection filed under k, if any, and moves back the
// entries after it whose probe sequence passed its slot.
func (t *connTable) delete(k tcpKey) {
	if t.n == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := t.hash(k) & mask
	for {
		c := t.slots[i]
		if c == nil {
			return
		}
		if keyOfConn(c) == k {
			break
		}
		i = (i + 1) & mask
	}
	t.slots[i] = nil
	t.n--
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		home := t.hash(keyOfConn(t.slots[j])) & mask
		// The entry at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i], t.slots[j] = t.slots[j], nil
			i = j
		}
	}
}

// len returns the number of connections.
func (t *connTable) len() int { return t.n }

// all yields every connection. The table must not change meanwhile.
func (t *connTable) all() iter.Seq[*TCPEndpoint] {
	return func(yield func(*TCPEndpoint) bool) {
		for _, c := range t.slots {
			if c != nil && !yield(c) {
				return
			}
		}
	}
}
