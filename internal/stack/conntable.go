package stack

import (
	"hash/maphash"
	"iter"
)

// connTable is the TCP demux table: the connections by their 4-tuple. A
// slot holds the endpoint's pointer and 32 bits of its key's hash; the key
// itself is the endpoint's own addresses. So an entry costs 16 to 32
// bytes, where a map entry, which holds the 36-byte key beside the pointer
// in groups kept at most 7/8 full, costs 60 to 110: with thousands of idle
// connections that is a good part of each one's memory.
//
// Open addressing with linear probing, at most 3/4 full. A probe compares
// the stored hash first, so it reads an endpoint only for the entry it
// returns (1 in 2^32 otherwise); the hashes of neighbouring slots share a
// cache line, so a lookup that finds nothing (a SYN for a listener, a
// dial's search for a free port) costs a few comparisons. Deletion shifts
// the following entries back, using the stored hashes, so there are no
// tombstones and nothing is hashed again. It is guarded by the tcpTable's
// lock; the zero value is empty.
type connTable struct {
	hashes []uint32       // 0: the slot is empty; a power of two long, or nil
	slots  []*TCPEndpoint // the entries, beside their hashes
	n      int
	seed   maphash.Seed
}

// minConnSlots is the length of the first slices.
const minConnSlots = 64

// hash returns k's hash for the table, never 0.
func (t *connTable) hash(k tcpKey) uint32 {
	h := uint32(maphash.Comparable(t.seed, k))
	if h == 0 {
		h = 1
	}
	return h
}

// find returns the slot of the entry filed under k with hash h, or -1.
func (t *connTable) find(k tcpKey, h uint32) int {
	mask := uint32(len(t.hashes) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.hashes[i] {
		case 0:
			return -1
		case h:
			if t.slots[i].key() == k {
				return int(i)
			}
		}
	}
}

// get returns the connection filed under k, or nil.
func (t *connTable) get(k tcpKey) *TCPEndpoint {
	if t.n == 0 {
		return nil
	}
	if i := t.find(k, t.hash(k)); i >= 0 {
		return t.slots[i]
	}
	return nil
}

// put files c under k, which must be c's own key, replacing the entry
// there.
func (t *connTable) put(k tcpKey, c *TCPEndpoint) {
	if t.hashes == nil {
		t.seed = maphash.MakeSeed()
		t.hashes, t.slots = make([]uint32, minConnSlots), make([]*TCPEndpoint, minConnSlots)
	}
	h := t.hash(k)
	if i := t.find(k, h); i >= 0 {
		t.slots[i] = c
		return
	}
	if 4*(t.n+1) > 3*len(t.hashes) {
		t.grow()
	}
	t.place(h, c)
	t.n++
}

// place puts c with hash h into the first empty slot of its probe
// sequence.
func (t *connTable) place(h uint32, c *TCPEndpoint) {
	mask := uint32(len(t.hashes) - 1)
	i := h & mask
	for t.hashes[i] != 0 {
		i = (i + 1) & mask
	}
	t.hashes[i], t.slots[i] = h, c
}

// grow doubles the table and files every entry again, by its stored hash.
func (t *connTable) grow() {
	hashes, slots := t.hashes, t.slots
	t.hashes, t.slots = make([]uint32, 2*len(hashes)), make([]*TCPEndpoint, 2*len(slots))
	for i, h := range hashes {
		if h != 0 {
			t.place(h, slots[i])
		}
	}
}

// delete removes the connection filed under k, if any, and moves back the
// entries after it whose probe sequence passed its slot.
func (t *connTable) delete(k tcpKey) {
	if t.n == 0 {
		return
	}
	hole := t.find(k, t.hash(k))
	if hole < 0 {
		return
	}
	t.n--
	mask := uint32(len(t.hashes) - 1)
	i := uint32(hole)
	for j := (i + 1) & mask; t.hashes[j] != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole at i unless its home slot lies
		// cyclically in (i, j].
		if home := t.hashes[j] & mask; (j-home)&mask >= (j-i)&mask {
			t.hashes[i], t.slots[i] = t.hashes[j], t.slots[j]
			i = j
		}
	}
	t.hashes[i], t.slots[i] = 0, nil
}

// len returns the number of connections.
func (t *connTable) len() int { return t.n }

// all yields every connection. The table must not change meanwhile.
func (t *connTable) all() iter.Seq[*TCPEndpoint] {
	return func(yield func(*TCPEndpoint) bool) {
		for i, c := range t.slots {
			if t.hashes[i] != 0 && !yield(c) {
				return
			}
		}
	}
}
