package tcp

import "time"

// Delivery rate estimation (draft-cheng-iccrg-delivery-rate-estimation),
// for BBR: each transmission notes how much the connection had delivered
// when it left and when; the ACK that delivers it then yields a sample of
// the delivery rate over the interval between the two, the longer of the
// send and ACK intervals so that neither a burst of sends nor a
// compressed burst of ACKs inflates it.
//
// The notes live in a side table owned by the BBR state, not in the
// scoreboard's records, so that connections with another congestion
// control keep their records as small as they are. The table holds one
// note per transmission in the order sent; a record finds its note by its
// send time (records and notes share the connection's clock) and start.

// rateNote is what the sampler noted about one transmission (the
// per-packet state P of the draft).
type rateNote struct {
	sent          time.Duration // P.sent_time, the record's sent
	start, end    Seq           // the segment as sent
	delivered     int64         // P.delivered: C.delivered when it was sent
	deliveredTime time.Duration // P.delivered_time
	firstSent     time.Duration // P.first_sent_time
	lost          int64         // C.lost when it was sent (BBR's P.lost)
	txInFlight    int32         // P.tx_in_flight: bytes in flight once it left
	appLimited    bool          // P.is_app_limited
	retrans       bool          // a retransmission: its ACK may be the original's
	done          bool          // delivered, or superseded by a retransmission
}

// rateSample is the draft's rs: what one ACK says about the path.
type rateSample struct {
	deliveryRate   float64       // bytes per second; 0 when invalid
	delivered      int64         // bytes delivered over the interval
	interval       time.Duration // the longer of sendElapsed and ackElapsed
	priorDelivered int64         // P.delivered of the newest packet delivered
	priorTime      time.Duration // P.delivered_time of it
	sendElapsed    time.Duration
	ackElapsed     time.Duration
	rtt            time.Duration // of the newest packet delivered never retransmitted (Karn); -1: none
	txInFlight     int           // P.tx_in_flight of it
	lost           int64         // bytes lost since it was sent
	priorLost      int64
	newlyAcked     int // bytes newly delivered (ACKed or SACKed) by this ACK
	newlyLost      int // bytes newly deemed lost since the last ACK
	appLimited     bool
	has            bool // a delivered packet had a note
}

// rateSampler is the connection-wide delivery state C of the draft and
// the table of notes.
type rateSampler struct {
	notes         []rateNote // notes[head:] are live, in transmission order
	head          int
	delivered     int64         // C.delivered, bytes
	deliveredTime time.Duration // C.delivered_time
	firstSent     time.Duration // C.first_sent_time
	lost          int64         // C.lost, bytes
	appLimited    int64         // C.app_limited: the delivered mark where it ends; 0 when not
	rs            rateSample    // the sample the current ACK builds
	lostAtAck     int64         // C.lost when the last sample was taken
}

// maxRateNotes bounds the table: a note whose segment is never delivered
// (lost, then acknowledged by a retransmission we lost track of) cannot
// make it grow without bound.
const maxRateNotes = 1 << 17

// noteLifetime is, with eight min_rtt, how long an unused note is kept.
const noteLifetime = 2 * time.Second

// live returns the number of notes kept.
func (r *rateSampler) live() int { return len(r.notes) - r.head }

func (r *rateSampler) at(i int) *rateNote { return &r.notes[r.head+i] }

// push appends a note. The served notes before head are reclaimed by
// moving the live ones down once they are at least half of the slice, so
// the array is reused rather than grown while a flight lasts.
func (r *rateSampler) push(x rateNote) {
	if r.live() == maxRateNotes {
		r.head++
	}
	if r.head > 0 && r.head >= len(r.notes)/2 && len(r.notes) == cap(r.notes) {
		k := copy(r.notes, r.notes[r.head:])
		r.notes, r.head = r.notes[:k], 0
	}
	r.notes = append(r.notes, x)
}

// trim drops the notes at the front that have served, and those sent
// before stale: a segment whose note is never used (its record went
// without being delivered) must not hold the table for the rest of a
// flight that never empties.
func (r *rateSampler) trim(stale time.Duration) {
	for r.head < len(r.notes) && (r.notes[r.head].done || r.notes[r.head].sent < stale) {
		r.head++
	}
}

// clear drops every note: nothing is in flight.
func (r *rateSampler) clear() { r.notes, r.head = r.notes[:0], 0 }

// find returns the note of the transmission at sent that covers start, or
// nil.
func (r *rateSampler) find(sent time.Duration, start Seq) *rateNote {
	lo, hi := 0, r.live()
	for lo < hi {
		m := (lo + hi) / 2
		if r.at(m).sent < sent {
			lo = m + 1
		} else {
			hi = m
		}
	}
	for i := lo; i < r.live(); i++ {
		p := r.at(i)
		if p.sent != sent {
			break
		}
		if start.GreaterEq(p.start) && start.LessThan(p.end) {
			return p
		}
	}
	return nil
}

// onSend notes a transmission of [start, end) at now; inFlight is the
// bytes in flight before it, and the segment's own length is added.
func (r *rateSampler) onSend(now time.Duration, start, end Seq, inFlight int, retrans bool) {
	if inFlight == 0 {
		// The draft's "no packets in flight": the send interval starts
		// afresh, and so does the ACK interval.
		r.firstSent, r.deliveredTime = now, now
	}
	r.push(rateNote{
		sent: now, start: start, end: end,
		delivered: r.delivered, deliveredTime: r.deliveredTime, firstSent: r.firstSent,
		lost: r.lost, txInFlight: int32(min(inFlight+int(end.Sub(start)), 1<<30)),
		appLimited: r.appLimited != 0, retrans: retrans,
	})
}

// supersede forgets the note of a transmission that is sent again: the
// new one times the delivery.
func (r *rateSampler) supersede(sent time.Duration, start Seq) {
	if p := r.find(sent, start); p != nil {
		p.done = true
	}
}

// onDelivered counts n bytes of the segment sent at sent and starting at
// start as delivered at now, and makes its note the sample's if it was
// the most recently sent of those this ACK delivers.
func (r *rateSampler) onDelivered(now, sent time.Duration, start Seq, n int) {
	r.delivered += int64(n)
	r.deliveredTime = now
	r.rs.newlyAcked += n
	p := r.find(sent, start)
	if p == nil || p.done {
		return
	}
	p.done = true
	if r.rs.has && p.delivered < r.rs.priorDelivered {
		return
	}
	r.rs.has = true
	r.rs.priorDelivered = p.delivered
	r.rs.priorTime = p.deliveredTime
	r.rs.appLimited = p.appLimited
	r.rs.sendElapsed = p.sent - p.firstSent
	r.rs.ackElapsed = r.deliveredTime - p.deliveredTime
	if !p.retrans {
		// Karn's rule: a retransmission's ACK may be for the original,
		// and its RTT would be too short for the min_rtt filter.
		r.rs.rtt = now - p.sent
	}
	r.rs.txInFlight = int(p.txInFlight)
	r.rs.priorLost = p.lost
	r.firstSent = p.sent
}

// onLost counts n bytes deemed lost and returns the note of the segment
// sent at sent, if it has one.
func (r *rateSampler) onLost(sent time.Duration, start Seq, n int) *rateNote {
	r.lost += int64(n)
	return r.find(sent, start)
}

// markAppLimited notes that the sender ran out of data with room in
// cwnd: samples until what is in flight now is delivered say nothing
// about the path's capacity.
func (r *rateSampler) markAppLimited(inFlight int) {
	r.appLimited = max(r.delivered+int64(inFlight), 1)
}

// sample finishes the sample of the ACK processed at now and starts the
// next one. Samples over an interval shorter than minRTT are dropped as
// ACK compression (the draft's rule); minRTT 0 keeps them all.
func (r *rateSampler) sample(now, minRTT time.Duration) rateSample {
	rs := r.rs
	r.rs = rateSample{rtt: -1}
	if r.appLimited != 0 && r.delivered > r.appLimited {
		r.appLimited = 0
	}
	rs.newlyLost = int(r.lost - r.lostAtAck)
	r.lostAtAck = r.lost
	// A note older than a few round trips and the longest RTO backoff
	// that still leaves the sender alive is of no more use.
	r.trim(now - noteLifetime - 8*minRTT)
	if !rs.has {
		rs.rtt = -1
		return rs
	}
	rs.interval = max(rs.sendElapsed, rs.ackElapsed)
	rs.delivered = r.delivered - rs.priorDelivered
	rs.lost = r.lost - rs.priorLost
	if rs.interval > 0 && rs.interval >= minRTT {
		rs.deliveryRate = float64(rs.delivered) / rs.interval.Seconds()
	}
	return rs
}
