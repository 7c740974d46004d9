package tcp

import (
	"sync"
	"time"
)

// The sender's scoreboard: one record per segment sent and not yet
// cumulatively acknowledged, in sequence order, with the time it was last
// sent and what the peer's SACK blocks (RFC 2018), RACK (RFC 8985) and the
// retransmission timer concluded about it. It is the scoreboard of RFC 6675
// §3 kept per segment, as Linux's retransmission queue, so that RACK can
// judge each segment by its own transmission time.

// Record flags.
const (
	txSacked  uint8 = 1 << iota // covered by a SACK block
	txLost                      // deemed lost and not yet retransmitted
	txRetrans                   // retransmitted at least once
)

// txSeg is one segment in flight: [start, end) with a FIN counted in end.
type txSeg struct {
	start, end Seq
	sent       time.Duration // last transmission, since the connection's epoch
	flags      uint8
}

func (s *txSeg) len() int { return int(s.end.Sub(s.start)) }

// The scoreboard exists only while something is in flight: an idle
// connection points to emptyTxQueue (never written), and takes a queue
// from txqPool, with the record array it grew before, when it sends.
var (
	emptyTxQueue txQueue
	txqPool      = sync.Pool{New: func() any { return new(txQueue) }}
)

// pushRecord appends a record to the scoreboard.
func (c *Conn) pushRecord(x txSeg) {
	if c.txq == &emptyTxQueue {
		q := txqPool.Get().(*txQueue)
		q.head, q.n, q.rack = 0, 0, rackFlight{}
		c.txq = q
	}
	c.txq.push(x)
}

// releaseTxq returns the scoreboard to the pool, dropping its records.
func (c *Conn) releaseTxq() {
	if q := c.txq; q != &emptyTxQueue {
		q.head, q.n = 0, 0
		c.txq = &emptyTxQueue
		txqPool.Put(q)
	}
}

// txQueue is a growable ring of records.
type txQueue struct {
	s       []txSeg
	head, n int
	rack    rackFlight
}

func (q *txQueue) at(i int) *txSeg {
	j := q.head + i
	if j >= len(q.s) {
		j -= len(q.s)
	}
	return &q.s[j]
}

func (q *txQueue) push(x txSeg) {
	if q.n == len(q.s) {
		s := make([]txSeg, max(2*len(q.s), 16))
		for i := 0; i < q.n; i++ {
			s[i] = *q.at(i)
		}
		q.s, q.head = s, 0
	}
	q.n++
	*q.at(q.n - 1) = x
}

func (q *txQueue) pop() {
	q.head++
	if q.head == len(q.s) {
		q.head = 0
	}
	q.n--
}

// find returns the index of the first record that ends after seq (q.n if
// none): records are sorted and disjoint.
func (q *txQueue) find(seq Seq) int {
	lo, hi := 0, q.n
	for lo < hi {
		m := (lo + hi) / 2
		if q.at(m).end.LessEq(seq) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// pipe is RFC 6675's estimate of the octets in the network: everything sent
// and not cumulatively acknowledged, less what was SACKed (or, without SACK,
// the segments duplicate ACKs report as having left, as Linux counts them)
// and what is deemed lost and not yet sent again.
func (c *Conn) pipe() int {
	return max(int(c.sndNxt.Sub(c.sndUna))-int(c.sackedBytes)-int(c.renoSacked)-int(c.lostBytes), 0)
}

// markLost marks a record lost (RFC 6675 §5 step 4, RFC 8985 §6.2 step 5);
// it will be retransmitted before new data.
func (c *Conn) markLost(s *txSeg) {
	if s.flags&(txSacked|txLost) != 0 {
		return
	}
	s.flags |= txLost
	c.lostBytes += int32(s.len())
	c.rareStats().Lost++
	c.bbrLost(s)
	if c.probing {
		c.probeLost(s)
	}
}

// markSacked records that the peer holds a record.
func (c *Conn) markSacked(now time.Time, s *txSeg) {
	if s.flags&txSacked != 0 {
		return
	}
	if s.flags&txLost != 0 {
		s.flags &^= txLost
		c.lostBytes -= int32(s.len())
	}
	s.flags |= txSacked
	c.sackedBytes += int32(s.len())
	c.rareStats().Sacked++
	c.delivered(now, s)
}

// ackRecords drops the records the cumulative ACK covers, trimming one it
// covers in part, and returns the RTT of the first one never
// retransmitted (0 if none: Karn's rule, RFC 6298 §3); the oldest, as
// Linux's seq_rtt, so that a delayed ACK's wait counts.
func (c *Conn) ackRecords(now time.Time, ack Seq) time.Duration {
	var rtt time.Duration
	for c.txq.n > 0 {
		s := c.txq.at(0)
		if s.start.GreaterEq(ack) {
			break
		}
		whole := s.end.LessEq(ack)
		n := s.len()
		if !whole {
			n = int(ack.Sub(s.start))
		}
		if s.flags&txSacked != 0 {
			c.sackedBytes -= int32(n)
		} else {
			if s.flags&txLost != 0 {
				c.lostBytes -= int32(n)
			}
			if whole {
				c.delivered(now, s)
			}
		}
		if rtt == 0 && whole && s.flags&txRetrans == 0 && s.flags&txSacked == 0 {
			rtt = c.sinceEpoch(now) - s.sent
		}
		if !whole {
			s.start = ack
			break
		}
		c.txq.pop()
	}
	return rtt
}

// onSACK processes the SACK blocks of an ACK (RFC 2018 §3, RFC 6675 §4),
// recognising a D-SACK (RFC 2883 §4: a first block below the cumulative
// ACK or inside the second block) as evidence of reordering or a spurious
// retransmission.
func (c *Conn) onSACK(now time.Time, o *Options) {
	for i := 0; i < o.NumSACK && i < len(o.SACK); i++ {
		b := o.SACK[i]
		if !b.Left.LessThan(b.Right) || b.Right.GreaterThan(c.sndNxt) || b.Right.Sub(b.Left) > 1<<30 {
			continue
		}
		if i == 0 && (b.Right.LessEq(c.sndUna) ||
			(o.NumSACK > 1 && b.Left.GreaterEq(o.SACK[1].Left) && b.Right.LessEq(o.SACK[1].Right))) {
			// A spurious retransmission: the path reorders (or lost
			// an ACK); RACK widens its window from now on.
			c.rareStats().DSACKs++
			c.rackDSACK, c.rackReord = true, true
			continue
		}
		// A block covers our FIN only if it reaches past it: one that stops
		// at the FIN's sequence number says the data before it arrived, not
		// the FIN (which may have been lost). At worst a FIN the peer holds
		// is sent again.
		left, right := MaxSeq(b.Left, c.sndUna), b.Right
		for j := c.txq.find(left); j < c.txq.n; j++ {
			s := c.txq.at(j)
			if s.end.GreaterThan(right) {
				break
			}
			if s.start.GreaterEq(left) {
				c.markSacked(now, s)
			}
		}
		if right.GreaterThan(c.sackHigh) {
			c.sackHigh = right
		}
	}
}

// nextLost returns the first record deemed lost, or nil.
func (c *Conn) nextLost() *txSeg {
	if c.lostBytes <= 0 {
		return nil
	}
	for i := 0; i < c.txq.n; i++ {
		if s := c.txq.at(i); s.flags&txLost != 0 {
			return s
		}
	}
	return nil
}

// sinceEpoch returns now on the connection's clock for records.
