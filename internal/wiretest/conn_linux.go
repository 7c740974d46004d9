package wiretest

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// Conn is the testbench's end of one TCP connection with the DUT. It
// tracks sequence numbers, windows and timestamps from what it sends and
// from every segment of the connection it reads, so a test says only what
// differs from an ordinary next segment.
type Conn struct {
	b *Bench
	// LocalPort is the testbench's port, RemotePort the DUT's.
	LocalPort, RemotePort uint16

	// ISS is the testbench's initial sequence number, IRS the DUT's.
	ISS, IRS uint32
	// SndNxt is the testbench's next sequence number; SndUna the highest
	// acknowledgment the DUT sent.
	SndNxt, SndUna uint32
	// RcvNxt is the next sequence number expected from the DUT: it
	// advances over every in-order segment read.
	RcvNxt uint32
	// Window is the window field the testbench sends (scaled by WScale
	// once the handshake is done).
	Window uint16
	// WScale is the shift the testbench offers; PeerWScale the DUT's
	// (-1: none; both are used only when both sides offered one).
	WScale, PeerWScale int
	// PeerMSS is the MSS the DUT announced.
	PeerMSS int
	// PeerWnd is the DUT's last window, scaled.
	PeerWnd uint32
	// TS and SACK report whether timestamps and SACK were negotiated.
	TS, SACK bool
	// TSRecent is the last TSval read from the DUT, echoed as TSecr.
	TSRecent uint32

	tsBase  uint32
	start   time.Time
	lastAck uint32
}

// NewConn returns a connection to the DUT's port from a random port of the
// testbench, with a random ISS, not yet opened.
func (b *Bench) NewConn(dutPort uint16) *Conn {
	return b.NewConnFrom(uint16(20000+rand.IntN(40000)), dutPort)
}

// NewConnFrom is NewConn from a chosen testbench port.
func (b *Bench) NewConnFrom(port, dutPort uint16) *Conn {
	iss := rand.Uint32()
	return &Conn{
		b: b, LocalPort: port, RemotePort: dutPort,
		ISS: iss, SndNxt: iss, SndUna: iss,
		Window: 0xffff, WScale: 7, PeerWScale: -1,
		tsBase: rand.Uint32() >> 1, start: time.Now(),
	}
}

// TSNow is the testbench's timestamp clock (RFC 7323 §5.4), one tick per
// millisecond.
func (c *Conn) TSNow() uint32 { return c.tsBase + uint32(time.Since(c.start)/time.Millisecond) }

// Seg describes a segment for Send. Zero fields take the connection's
// state: Seq SndNxt (which then advances), Ack RcvNxt (when the ACK flag is
// set), Window the connection's, Options a timestamps option when they
// were negotiated.
type Seg struct {
	Flags   uint8
	Payload []byte
	Seq     *uint32
	Ack     *uint32
	Window  *uint16
	// Options replaces the default options (use []byte{} for none).
	Options []byte
	// TSval replaces the timestamp clock in the default options.
	TSval *uint32
	// IPOptions are IP options for the packet carrying the segment.
	IPOptions []byte
	// Dst replaces the DUT's address, DstMAC its Ethernet address.
	Dst    netip.Addr
	DstMAC *MAC
}

// U32 returns a pointer to v, for Seg's optional fields.
func U32(v uint32) *uint32 { return &v }

// U16 returns a pointer to v, for Seg's optional fields.
func U16(v uint16) *uint16 { return &v }

// Send sends s on the connection and returns the segment as sent.
func (c *Conn) Send(t testing.TB, s Seg) *TCP {
	t.Helper()
	seg := &TCP{SrcPort: c.LocalPort, DstPort: c.RemotePort, Flags: s.Flags, Payload: s.Payload, Window: c.Window}
	if s.Seq != nil {
		seg.Seq = *s.Seq
	} else {
		seg.Seq = c.SndNxt
		c.SndNxt += uint32(len(s.Payload))
		if s.Flags&(SYN|FIN) != 0 {
			c.SndNxt++
		}
	}
	if s.Ack != nil {
		seg.Ack = *s.Ack
	} else if s.Flags&ACK != 0 {
		seg.Ack = c.RcvNxt
	}
	if s.Flags&ACK != 0 {
		c.lastAck = seg.Ack
	}
	if s.Window != nil {
		seg.Window = *s.Window
	}
	switch {
	case s.Options != nil:
		seg.Options = s.Options
	case c.TS:
		v := c.TSNow()
		if s.TSval != nil {
			v = *s.TSval
		}
		seg.Options = Opts(NOPs(2), TSOpt(v, c.TSRecent))
	}
	dst := c.b.DUTAddr
	if s.Dst.IsValid() {
		dst = s.Dst
	}
	mac := c.b.DUTMAC
	if s.DstMAC != nil {
		mac = *s.DstMAC
	}
	c.b.SendIPTo(t, mac, &IPv4{Proto: ProtoTCP, Dst: dst, Options: s.IPOptions, Payload: BuildTCP(c.b.Addr, dst, seg)})
	return seg
}

// SynOptions are the options of the testbench's SYN, in the order Linux
// sends them: MSS 1460, SACK permitted, timestamps, window scale WScale.
func (c *Conn) SynOptions() []byte {
	return Opts(MSSOpt(1460), SACKPermOpt(), TSOpt(c.TSNow(), 0), NOPs(1), WSOpt(uint8(c.WScale)))
}

// Connect opens the connection to a listening DUT: SYN with SynOptions,
// the DUT's SYN-ACK, ACK. It returns the SYN-ACK, and fails t unless the
// SYN-ACK acknowledges the SYN.
func (c *Conn) Connect(t testing.TB) *TCP {
	t.Helper()
	c.Send(t, Seg{Flags: SYN, Options: c.SynOptions()})
	sa := c.Expect(t, "SYN-ACK", func(s *TCP) bool { return s.Flags&(SYN|RST) != 0 })
	if sa.Flags != SYN|ACK || sa.Ack != c.ISS+1 {
		t.Fatalf("wiretest: handshake: got [%s] ack %d, want SYN-ACK ack %d", FlagString(sa.Flags), sa.Ack, c.ISS+1)
	}
	c.Send(t, Seg{Flags: ACK})
	return sa
}

// AcceptConn waits for a SYN from the DUT (a Dial to the testbench's
// port), answers it with a SYN-ACK offering what the SYN offered (MSS 1460,
// window scale WScale, SACK, timestamps) and waits for the DUT's ACK. It
// returns the connection and the SYN.
func (b *Bench) AcceptConn(t testing.TB, port uint16) (*Conn, *TCP) {
	t.Helper()
	f := b.Expect(t, Timeout, "SYN from the DUT", func(f *Frame) bool {
		return b.FromDUT(f) && f.TCP != nil && f.TCP.DstPort == port && f.TCP.Flags == SYN
	})
	syn := f.TCP
	c := b.NewConnFrom(port, syn.SrcPort)
	c.observe(syn)
	opts := MSSOpt(1460)
	if syn.SACKPerm {
		opts = Opts(opts, SACKPermOpt())
	}
	if syn.HasTS {
		opts = Opts(opts, TSOpt(c.TSNow(), syn.TSval))
	}
	if syn.WS >= 0 {
		opts = Opts(opts, NOPs(1), WSOpt(uint8(c.WScale)))
	} else {
		c.WScale = -1
	}
	c.Send(t, Seg{Flags: SYN | ACK, Options: opts})
	c.Expect(t, "ACK of the SYN-ACK", func(s *TCP) bool { return s.Flags&ACK != 0 && s.Ack == c.ISS+1 })
	return c, syn
}

// observe updates the connection's state from a segment the DUT sent.
func (c *Conn) observe(s *TCP) {
	if s.Flags&SYN != 0 {
		c.IRS, c.RcvNxt = s.Seq, s.Seq+1
		c.TS = s.HasTS
		c.SACK = s.SACKPerm
		c.PeerMSS = s.MSS
		if s.WS >= 0 {
			c.PeerWScale = s.WS
		} else {
			c.WScale = -1
		}
	}
	if s.HasTS {
		c.TSRecent = s.TSval
	}
	end := s.Seq + uint32(len(s.Payload))
	if s.Flags&SYN != 0 {
		end++
	}
	if s.Flags&FIN != 0 {
		end++
	}
	if SeqLE(s.Seq, c.RcvNxt) && SeqLT(c.RcvNxt, end) {
		c.RcvNxt = end
	}
	if s.Flags&ACK != 0 {
		if SeqLT(c.SndUna, s.Ack) {
			c.SndUna = s.Ack
		}
		w := uint32(s.Window)
		if s.Flags&SYN == 0 && c.PeerWScale >= 0 && c.WScale >= 0 {
			w <<= c.PeerWScale
		}
		c.PeerWnd = w
	}
}

// Mine reports whether f is a segment of this connection from the DUT.
func (c *Conn) Mine(f *Frame) bool {
	return c.b.FromDUT(f) && f.TCP != nil && f.TCP.SrcPort == c.RemotePort && f.TCP.DstPort == c.LocalPort
}

// Expect waits up to Timeout for a segment of the connection satisfying
// want; see ExpectT.
func (c *Conn) Expect(t testing.TB, what string, want func(*TCP) bool) *TCP {
	t.Helper()
	return c.ExpectT(t, Timeout, what, want)
}

// ExpectT waits up to timeout for a segment of the connection satisfying
// want and returns it. Every segment of the connection read on the way
// updates its state (RcvNxt, TSRecent, SndUna, PeerWnd); a segment with a
// bad checksum fails t.
func (c *Conn) ExpectT(t testing.TB, timeout time.Duration, what string, want func(*TCP) bool) *TCP {
	t.Helper()
	f := c.b.Expect(t, timeout, what, func(f *Frame) bool {
		if !c.Mine(f) {
			return false
		}
		if !f.TCP.ChecksumOK || !f.IP.ChecksumOK {
			t.Errorf("wiretest: bad checksum: %v", f)
		}
		c.observe(f.TCP)
		return want(f.TCP)
	})
	return f.TCP
}

// ExpectFrame is ExpectT returning the whole frame, for a test that also
// looks at its IP header or arrival time.
func (c *Conn) ExpectFrame(t testing.TB, timeout time.Duration, what string, want func(*TCP) bool) *Frame {
	t.Helper()
	return c.b.Expect(t, timeout, what, func(f *Frame) bool {
		if !c.Mine(f) {
			return false
		}
		c.observe(f.TCP)
		return want(f.TCP)
	})
}

// Flags matches segments whose flags are exactly f.
func Flags(f uint8) func(*TCP) bool { return func(s *TCP) bool { return s.Flags == f } }

// Data matches segments that carry data.
func Data(s *TCP) bool { return len(s.Payload) > 0 }

// AckAtLeast matches ACKs of ack or more.
func AckAtLeast(ack uint32) func(*TCP) bool {
	return func(s *TCP) bool { return s.Flags&ACK != 0 && SeqLE(ack, s.Ack) }
}

// SeqLT reports a < b in sequence space (RFC 9293 §3.4).
func SeqLT(a, b uint32) bool { return int32(a-b) < 0 }

// SeqLE reports a <= b in sequence space.
func SeqLE(a, b uint32) bool { return int32(a-b) <= 0 }

// ReadData reads n bytes of data from the DUT in order, acknowledging each
// segment as it arrives, and returns them. check, if not nil, sees every
// data segment first.
func (c *Conn) ReadData(t testing.TB, n int, check func(*TCP)) []byte {
	t.Helper()
	var got []byte
	for len(got) < n {
		want := c.RcvNxt
		s := c.Expect(t, "data from the DUT", func(s *TCP) bool { return Data(s) && s.Seq == want })
		if check != nil {
			check(s)
		}
		got = append(got, s.Payload...)
		c.Send(t, Seg{Flags: ACK})
	}
	return got
}

// SndAckSent is the acknowledgment number of the last ACK the testbench
// sent: the left edge of the window it offered.
func (c *Conn) SndAckSent() uint32 { return c.lastAck }
