package tcp

import (
	"fmt"
	"strings"
	"testing"
)

// The state × segment matrix: every state of RFC 9293
// §3.3.2 (set up by fuzzSetup: ISS 1000, peer ISS 5000, 3000 bytes queued
// where the state allows) against each kind of segment, at RCV.NXT and
// acking SND.NXT. Each cell is "reply → next state"; "-" means no reply.
var matrixKinds = []struct {
	name  string
	flags Flags
	n     int
}{
	{"SYN", FlagSYN, 0},
	{"SYN-ACK", FlagSYN | FlagACK, 0},
	{"ACK", FlagACK, 0},
	{"data", FlagACK | FlagPSH, 10},
	{"FIN", FlagACK | FlagFIN, 0},
	{"RST", FlagRST, 0},
	{"RST-ACK", FlagRST | FlagACK, 0},
}

const matrixWant = `
CLOSED        SYN:RST|ACK→CLOSED  SYN-ACK:RST→CLOSED  ACK:RST→CLOSED  data:RST→CLOSED  FIN:RST→CLOSED  RST:-→CLOSED  RST-ACK:-→CLOSED
LISTEN        SYN:SYN|ACK→SYN-RECEIVED  SYN-ACK:RST→LISTEN  ACK:RST→LISTEN  data:RST→LISTEN  FIN:RST→LISTEN  RST:-→LISTEN  RST-ACK:-→LISTEN
SYN-SENT      SYN:SYN|ACK→SYN-RECEIVED  SYN-ACK:ACK→ESTABLISHED  ACK:-→SYN-SENT  data:-→SYN-SENT  FIN:-→SYN-SENT  RST:-→SYN-SENT  RST-ACK:-→CLOSED
SYN-RECEIVED  SYN:ACK→SYN-RECEIVED  SYN-ACK:ACK→SYN-RECEIVED  ACK:-→ESTABLISHED  data:-→ESTABLISHED  FIN:ACK→CLOSE-WAIT  RST:-→CLOSED  RST-ACK:-→CLOSED
ESTABLISHED   SYN:ACK→ESTABLISHED  SYN-ACK:ACK→ESTABLISHED  ACK:-→ESTABLISHED  data:-→ESTABLISHED  FIN:ACK→CLOSE-WAIT  RST:-→CLOSED  RST-ACK:-→CLOSED
FIN-WAIT-1    SYN:ACK→FIN-WAIT-1  SYN-ACK:ACK→FIN-WAIT-1  ACK:-→FIN-WAIT-2  data:-→FIN-WAIT-2  FIN:ACK→TIME-WAIT  RST:-→CLOSED  RST-ACK:-→CLOSED
FIN-WAIT-2    SYN:ACK→FIN-WAIT-2  SYN-ACK:ACK→FIN-WAIT-2  ACK:-→FIN-WAIT-2  data:-→FIN-WAIT-2  FIN:ACK→TIME-WAIT  RST:-→CLOSED  RST-ACK:-→CLOSED
CLOSE-WAIT    SYN:ACK→CLOSE-WAIT  SYN-ACK:ACK→CLOSE-WAIT  ACK:-→CLOSE-WAIT  data:-→CLOSE-WAIT  FIN:-→CLOSE-WAIT  RST:-→CLOSED  RST-ACK:-→CLOSED
CLOSING       SYN:ACK→CLOSING  SYN-ACK:ACK→CLOSING  ACK:-→TIME-WAIT  data:-→TIME-WAIT  FIN:-→TIME-WAIT  RST:-→CLOSED  RST-ACK:-→CLOSED
LAST-ACK      SYN:ACK→LAST-ACK  SYN-ACK:ACK→LAST-ACK  ACK:-→CLOSED  data:-→CLOSED  FIN:-→CLOSED  RST:-→CLOSED  RST-ACK:-→CLOSED
TIME-WAIT     SYN:ACK→TIME-WAIT  SYN-ACK:ACK→TIME-WAIT  ACK:-→TIME-WAIT  data:-→TIME-WAIT  FIN:-→TIME-WAIT  RST:-→CLOSED  RST-ACK:-→CLOSED
`

func TestStateMatrix(t *testing.T) {
	var b strings.Builder
	b.WriteByte('\n')
	for _, st := range fuzzStates {
		fmt.Fprintf(&b, "%-12s", st)
		for _, k := range matrixKinds {
			var replies []string
			emit := func(s *Segment) { replies = append(replies, s.Flags.String()) }
			c, l, now := fuzzSetup(st, emit)
			replies = nil
			seq, ack := Seq(5000), Seq(1001)
			if c != nil {
				c.TakeEvents()
				seq, ack = c.rcvNxt, c.sndMax
				if st == SynSent {
					seq = 5000
				}
			}
			s := Segment{SrcPort: 80, DstPort: 40000, Seq: seq, Ack: ack, Flags: k.flags, Wnd: 4096, Payload: make([]byte, k.n)}
			next := st
			if l != nil && c == nil {
				if nc := l.Input(now, &s, ttRemote, EmitFunc(emit)); nc != nil {
					next = nc.State()
				}
			} else {
				c.Input(now, &s)
				next = c.State()
			}
			r := "-"
			if len(replies) > 0 {
				r = strings.Join(replies, ",")
			}
			fmt.Fprintf(&b, "  %s:%s→%v", k.name, r, next)
		}
		b.WriteByte('\n')
	}
	if got := b.String(); got != matrixWant {
		t.Errorf("state matrix:\n%s\nwant:\n%s", got, matrixWant)
	}
}
