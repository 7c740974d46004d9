package tcp

import (
	"net/netip"
	"testing"
	"time"
)

// FuzzParse: the codec never panics, and what it accepts re-encodes to
// something it parses the same way.
func FuzzParse(f *testing.F) {
	for _, s := range []Segment{
		{SrcPort: 1, DstPort: 2, Flags: FlagSYN, Opts: Options{MSS: 1460, HasWScale: true, WScale: 7, SACKPermitted: true, HasTS: true, TSVal: 9}},
		{SrcPort: 1, DstPort: 2, Flags: FlagACK, Opts: Options{NumSACK: 2, SACK: [4]SACKBlock{{1, 2}, {3, 4}}}, Payload: []byte("data")},
	} {
		b := make([]byte, s.HeaderLen()+len(s.Payload))
		s.Encode(b, 0)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b, 0)
		if err != nil {
			return
		}
		n := s.HeaderLen() + len(s.Payload)
		out := make([]byte, n)
		s.Encode(out, 0)
		s2, err := Parse(out, 0)
		if err != nil {
			t.Fatalf("re-encoded segment does not parse: %v\n%v", err, s)
		}
		_, s.Opts.NumSACK = s.Opts.layout()
		if s2.String() != s.String() {
			t.Fatalf("round trip\n%v\n%v", s2, s)
		}
	})
}

// fuzzStates are the setups FuzzConn starts from: one per state of RFC
// 9293 §3.3.2 (LISTEN is the listener itself).
var fuzzStates = []State{Closed, Listen, SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait}

// fuzzSetup drives a fresh connection into state st with a scripted peer
// (ISS 5000, ours 1000).
func fuzzSetup(st State, emit func(*Segment)) (*Conn, *Listener, time.Time) {
	now := ttT0
	local, remote := ttLocal, ttRemote
	cfg := &Config{RecvBuf: 8192, SendBuf: 8192, KeepAlive: KeepAlive{Enable: true, Idle: time.Second, Interval: time.Second, Count: 2}}
	in := func(c *Conn, f Flags, seq, ack Seq, n int) {
		s := Segment{SrcPort: remote.Port(), DstPort: local.Port(), Seq: seq, Ack: ack, Flags: f, Wnd: 4096, Payload: make([]byte, n)}
		c.Input(now, &s)
	}
	if st == Listen {
		l := NewListener(cfg, local, 2, fixedRand(3))
		return nil, l, now
	}
	if st == SynReceived {
		l := NewListener(cfg, local, 2, fixedRand(3))
		l.ISN = func(_, _ netip.AddrPort, _ time.Time) Seq { return 1000 }
		s := Segment{SrcPort: remote.Port(), DstPort: local.Port(), Seq: 5000, Flags: FlagSYN, Wnd: 4096, Opts: Options{MSS: 1000, HasWScale: true, WScale: 2, HasTS: true, TSVal: 1}}
		return l.Input(now, &s, remote, EmitFunc(emit)), l, now
	}
	c := NewConn(cfg, local, remote, 1000, EmitFunc(emit))
	if st == Closed {
		return c, nil, now
	}
	c.Connect(now)
	if st == SynSent {
		return c, nil, now
	}
	s := Segment{SrcPort: remote.Port(), DstPort: local.Port(), Seq: 5000, Ack: 1001, Flags: FlagSYN | FlagACK, Wnd: 4096, Opts: Options{MSS: 1000}}
	c.Input(now, &s)
	c.Write(now, make([]byte, 3000))
	switch st {
	case FinWait1:
		c.CloseWrite(now)
	case FinWait2:
		c.CloseWrite(now)
		in(c, FlagACK, 5001, 4002, 0)
	case CloseWait:
		in(c, FlagACK|FlagFIN, 5001, 1001, 10)
	case Closing:
		c.CloseWrite(now)
		in(c, FlagACK|FlagFIN, 5001, 1001, 0)
	case LastAck:
		in(c, FlagACK|FlagFIN, 5001, 1001, 0)
		c.CloseWrite(now)
	case TimeWait:
		c.CloseWrite(now)
		in(c, FlagACK|FlagFIN, 5001, 4002, 0)
	}
	return c, nil, now
}

// FuzzConn feeds arbitrary segments and user calls to a connection in every
// state. It checks that the machine never panics and that its sequence
// variables stay ordered.
func FuzzConn(f *testing.F) {
	for i := range fuzzStates {
		f.Add(byte(i), []byte{0x10, 0, 0, 0, 0, 0x10, 0, 0, 0x20, 0, 0x01, 0x05, 0, 0, 0, 0x20, 0, 0, 0x10})
	}
	f.Add(byte(4), []byte{0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(fuzzConn)
}

func fuzzConn(t *testing.T, which byte, prog []byte) {
	{
		st := fuzzStates[int(which)%len(fuzzStates)]
		emit := func(s *Segment) {
			if len(s.Payload) > 65535 {
				t.Fatalf("oversized segment %v", s)
			}
		}
		c, l, now := fuzzSetup(st, emit)
		buf := make([]byte, 4096)
		// Each step is 10 bytes: op, flags, seq offset (2), ack offset (2),
		// window (2), payload length, time step.
		for len(prog) >= 10 {
			op, fl := prog[0], Flags(prog[1])
			dseq := int(int16(uint16(prog[2])<<8 | uint16(prog[3])))
			dack := int(int16(uint16(prog[4])<<8 | uint16(prog[5])))
			wnd := uint16(prog[6])<<8 | uint16(prog[7])
			n := int(prog[8]) * 8
			now = now.Add(time.Duration(prog[9]) * 37 * time.Millisecond)
			prog = prog[10:]
			if c == nil {
				if l == nil {
					return
				}
				s := Segment{SrcPort: 80, DstPort: 40000, Seq: Seq(5000 + dseq), Ack: Seq(1000 + dack), Flags: fl, Wnd: wnd}
				c = l.Input(now, &s, ttRemote, EmitFunc(emit))
				continue
			}
			if d := c.NextDeadline(); !d.IsZero() && !d.After(now) {
				c.Timer(now)
			}
			switch op % 10 {
			case 0, 1, 2, 3, 4:
				s := Segment{SrcPort: 80, DstPort: 40000, Seq: c.rcvNxt.Add(dseq), Ack: c.sndUna.Add(dack), Flags: fl, Wnd: wnd, Payload: make([]byte, n)}
				if op&0x80 != 0 {
					s.Opts = Options{HasTS: true, TSVal: uint32(dseq), MSS: uint16(dack), HasWScale: true, WScale: uint8(n)}
				}
				c.Input(now, &s)
			case 5:
				c.Write(now, buf[:n])
			case 6:
				c.Read(now, buf[:n])
			case 7:
				switch n % 4 {
				case 0:
					c.CloseWrite(now)
				case 1:
					c.CloseRead(now)
				case 2:
					c.Close(now)
				case 3:
					if op&0x80 != 0 {
						c.Abort(now)
					}
				}
			case 8:
				c.Timer(now.Add(time.Duration(dack&0x7fff) * time.Second))
			case 9:
				c.Connect(now)
			}
			c.TakeEvents()
			if c.sndNxt.GreaterThan(c.sndMax) || c.sndUna.GreaterThan(c.sndMax) || c.snd.len() > int(c.sndBuf) || c.rcv.len() > int(c.rcvBuf) || c.rcv.n < 0 {
				t.Fatalf("state %v: snd.una %d nxt %d max %d snd.n %d rcv.n %d", c.State(),
					c.sndUna, c.sndNxt, c.sndMax, c.snd.n, c.rcv.n)
			}
		}
	}
}
