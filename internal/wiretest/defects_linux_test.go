package wiretest

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
)

// The tests in this file pin down behaviour where netstack was found to
// differ from Linux; knownNetstackFailures says which still do.

// TestTimeWaitNewSYN: a SYN that arrives for a connection in TIME-WAIT,
// with a higher sequence number and a newer timestamp, opens a new
// connection (RFC 9293 §3.10.7.4 and RFC 6191), and the new ISN lies beyond
// the old connection's SND.NXT, so old duplicates cannot be taken for new
// data. Linux picks tw_snd_nxt + 65537 (tcp_timewait_state_process).
func TestTimeWaitNewSYN(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		l := h.DUT.Listen(t, 80)
		c := h.NewConn(80)
		c.Connect(t)
		dc := Accept(t, l)
		// Move SND.NXT well past where the ISN clock will be.
		data := bytes.Repeat([]byte("t"), 64<<10)
		werr := Write(dc, data)
		c.ReadData(t, len(data), nil)
		if err := <-werr; err != nil {
			t.Fatal(err)
		}
		dc.Close()
		c.Expect(t, "FIN from the DUT", func(s *TCP) bool { return s.Flags&FIN != 0 })
		c.Send(t, Seg{Flags: FIN | ACK})
		c.Expect(t, "ACK of the FIN", func(s *TCP) bool { return s.Flags == ACK && s.Ack == c.SndNxt })
		oldSndNxt := c.RcvNxt // TIME-WAIT now

		c2 := h.NewConnFrom(c.LocalPort, 80)
		c2.ISS, c2.SndNxt = c.SndNxt+100000, c.SndNxt+100000
		c2.tsBase, c2.start = c.tsBase, c.start // a newer TSval than any before
		c2.Send(t, Seg{Flags: SYN, Options: c2.SynOptions()})
		sa := c2.Expect(t, "SYN-ACK for the SYN in TIME-WAIT", func(s *TCP) bool { return true })
		if sa.Flags != SYN|ACK || sa.Ack != c2.ISS+1 {
			t.Fatalf("got [%s] ack %d, want SYN-ACK ack %d", FlagString(sa.Flags), sa.Ack, c2.ISS+1)
		}
		if !SeqLT(oldSndNxt, sa.Seq) {
			t.Errorf("new ISN %d is not beyond the old connection's SND.NXT %d", sa.Seq, oldSndNxt)
		}
		c2.Send(t, Seg{Flags: ACK})
		Accept(t, l)
	})
}

// TestSynFinInListen: a SYN with FIN set, sent to a listener, is discarded
// as Linux does (tcp_rcv_state_process: "if (th->fin) goto discard"; RFC
// 9293 §3.10.7.2 leaves other controls on a SYN unspecified); a proper SYN
// from the same port then opens the connection.
func TestSynFinInListen(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		h.DUT.Listen(t, 80)
		bad := h.NewConn(80)
		bad.Send(t, Seg{Flags: SYN | FIN, Options: bad.SynOptions()})
		good := h.NewConnFrom(bad.LocalPort, 80)
		good.Send(t, Seg{Flags: SYN, Options: good.SynOptions()})
		h.ExpectBefore(t, Timeout, "SYN-ACK for the proper SYN",
			func(f *Frame) bool { return good.Mine(f) && f.TCP.Flags == SYN|ACK && f.TCP.Ack == good.ISS+1 },
			func(f *Frame) bool { return good.Mine(f) })
	})
}

// TestTCPToBroadcast: a SYN to the subnet's broadcast address draws
// nothing, neither a SYN-ACK from a listening port nor a RST from a closed
// one (RFC 1122 §4.2.3.10: a SYN to a broadcast or multicast address is
// ignored; RFC 9293 §3.10.7.1: no RST for them either), whether the frame
// is addressed to the broadcast MAC or to the DUT's.
func TestTCPToBroadcast(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		h.DUT.Listen(t, 80)
		bcast := lastAddr(h.Prefix)
		var ports []uint16
		for _, port := range []uint16{80, 9} {
			for _, mac := range []MAC{Broadcast, h.DUTMAC} {
				c := h.NewConn(port)
				c.Send(t, Seg{Flags: SYN, Options: c.SynOptions(), Dst: bcast, DstMAC: &mac})
				ports = append(ports, c.LocalPort)
			}
		}
		sentinel := h.NewConn(9)
		sentinel.Send(t, Seg{Flags: SYN, Options: sentinel.SynOptions()})
		h.ExpectBefore(t, Timeout, "RST from the DUT's own address (the sentinel)",
			func(f *Frame) bool { return sentinel.Mine(f) && f.TCP.Flags&RST != 0 },
			func(f *Frame) bool {
				return f.TCP != nil && f.IP.Dst == h.Addr && (f.IP.Src == bcast || slices.Contains(ports, f.TCP.DstPort))
			})
	})
}

// TestIPOptionBadLength: a datagram whose IP option length is impossible
// (running past the header, or below 2) is not processed: no echo reply,
// no SYN-ACK (RFC 1122 §3.2.1.8 and RFC 791; Linux's ip_options_compile
// drops it and may send a parameter problem, which is allowed).
func TestIPOptionBadLength(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		h.DUT.Listen(t, 80)
		bad := [][]byte{
			{0x94, 6, 0, 0},           // Router Alert claiming 6 bytes of 4
			{OptNOP, 0x94, 1, OptEOL}, // a length below 2
			{7, 39, 4, 0, 0, 0, 0, 0}, // Record Route claiming 39 bytes of 8
		}
		var synPorts []uint16
		for i, o := range bad {
			h.SendIP(t, &IPv4{Proto: ProtoICMP, Options: o, Payload: BuildEcho(0x66, uint16(i), []byte("bad option"))})
			c := h.NewConn(80)
			c.Send(t, Seg{Flags: SYN, Options: c.SynOptions(), IPOptions: o})
			synPorts = append(synPorts, c.LocalPort)
		}
		h.SendIP(t, &IPv4{Proto: ProtoICMP, Payload: BuildEcho(0x66, 100, []byte("sentinel"))})
		h.ExpectBefore(t, Timeout, "echo reply to the sentinel", echoReply(h, 0x66, 100), func(f *Frame) bool {
			if !h.FromDUT(f) {
				return false
			}
			if f.ICMP != nil && f.ICMP.Type == ICMPEchoReply && f.ICMP.ID == 0x66 && f.ICMP.Seq < 100 {
				return true
			}
			return f.TCP != nil && slices.Contains(synPorts, f.TCP.DstPort) && f.TCP.Flags&SYN != 0
		})
	})
}

// TestRecordRoute: an echo request with a Record Route option is answered
// with the option in the reply, the DUT's address recorded in it (RFC 791
// §3.1, Record Route; RFC 1122 §3.2.2.6: "If a Record Route and/or Time
// Stamp option is received in an ICMP Echo Request, this option (these
// options) SHOULD be updated to include the current host and included in
// the IP header of the Echo Reply message").
func TestRecordRoute(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		rr := make([]byte, 39) // nine empty slots
		rr[0], rr[1], rr[2] = 7, 39, 4
		h.SendIP(t, &IPv4{Proto: ProtoICMP, Options: rr, Payload: BuildEcho(0x44, 1, []byte("where have you been"))})
		f := h.Expect(t, Timeout, "echo reply", echoReply(h, 0x44, 1))
		o := findIPOption(f.IP.Options, 7)
		if o == nil {
			t.Fatalf("echo reply has no Record Route option (options %x)", f.IP.Options)
		}
		if len(o) < 3 || o[2] < 8 {
			t.Fatalf("Record Route %x: pointer %d, nothing recorded", o, o[2])
		}
		dut := h.DUTAddr.As4()
		found := false
		for i := 3; i+4 <= int(o[2])-1 && i+4 <= len(o); i += 4 {
			found = found || bytes.Equal(o[i:i+4], dut[:])
		}
		if !found {
			t.Errorf("Record Route %x does not hold the DUT's address %v", o, h.DUTAddr)
		}
		t.Logf("reply's Record Route: %x", o)
	})
}

// findIPOption returns the IP option of kind in opts, or nil.
func findIPOption(opts []byte, kind byte) []byte {
	for len(opts) > 0 {
		switch {
		case opts[0] == OptEOL:
			return nil
		case opts[0] == OptNOP:
			opts = opts[1:]
			continue
		case len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts):
			return nil
		case opts[0] == kind:
			return opts[:opts[1]]
		}
		opts = opts[opts[1]:]
	}
	return nil
}

// TestTCPOptionBadLength: a segment with a malformed TCP option (a length
// wrong for its kind, one running past the header, one below 2) still has
// its data accepted, as Linux does: tcp_parse_options skips an option of
// the wrong size and stops at one that cannot be parsed, and the segment
// is processed without it (RFC 9293 §3.2: a TCP must be prepared to handle
// an illegal option length without crashing; RFC 1122 §4.2.2.5).
func TestTCPOptionBadLength(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		for i, bad := range [][]byte{
			{OptMSS, 5, 0x05, 0xb4, 0},    // MSS with a length of 5
			{OptNOP, OptNOP, 0xfe, 40, 0}, // an option claiming 40 bytes
			{OptNOP, OptNOP, 0xfe, 0},     // an option of length 0
		} {
			payload := []byte(fmt.Sprintf("bad option %d", i))
			c.Send(t, Seg{Flags: ACK | PSH, Payload: payload, Options: Opts(NOPs(2), TSOpt(c.TSNow(), c.TSRecent), bad)})
			c.Expect(t, "ACK of the data", AckAtLeast(c.SndNxt))
			if got := ReadFull(t, dc, len(payload)); !bytes.Equal(got, payload) {
				t.Fatalf("DUT read %q, want %q", got, payload)
			}
		}
	})
}

// dupAckSACK sends data at off from base and returns the SACK blocks of the
// duplicate ACK it draws, relative to base.
func dupAckSACK(t testing.TB, c *Conn, base uint32, off, n int) []Block {
	t.Helper()
	c.Send(t, Seg{Flags: ACK, Seq: U32(base + uint32(off)), Payload: bytes.Repeat([]byte{byte(off)}, n)})
	a := c.Expect(t, "duplicate ACK", func(s *TCP) bool { return s.Flags&ACK != 0 && len(s.Payload) == 0 })
	if a.Ack != base {
		t.Fatalf("ack %d, want the duplicate %d", a.Ack, base)
	}
	var rel []Block
	for _, b := range a.SACK {
		rel = append(rel, Block{b.Left - base, b.Right - base})
	}
	return rel
}

// TestSACKBlockOrder: with several holes, the first SACK block is the one
// holding the segment that triggered the ACK, and the others follow most
// recently reported first (RFC 2018 §4).
func TestSACKBlockOrder(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, _ := h.Establish(t, 80)
		base := c.SndNxt
		for _, step := range []struct {
			off  int
			want []Block
		}{
			{1000, []Block{{1000, 1100}}},
			{3000, []Block{{3000, 3100}, {1000, 1100}}},
			{5000, []Block{{5000, 5100}, {3000, 3100}, {1000, 1100}}},
			{1100, []Block{{1000, 1200}, {5000, 5100}, {3000, 3100}}},
			{3100, []Block{{3000, 3200}, {1000, 1200}, {5000, 5100}}},
		} {
			if got := dupAckSACK(t, c, base, step.off, 100); !slices.Equal(got, step.want) {
				t.Errorf("after data at +%d: SACK %v, want %v", step.off, got, step.want)
			}
		}
	})
}

// TestDSACKPartialOld: a segment half already received and half new is
// acknowledged to its end with a D-SACK block for the old half as first
// block (RFC 2883 §4.1.1; Linux's tcp_data_queue).
func TestDSACKPartialOld(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, _ := h.Establish(t, 80)
		base := c.SndNxt
		c.Send(t, Seg{Flags: ACK, Payload: bytes.Repeat([]byte("a"), 1000)})
		c.Expect(t, "ACK of the first 1000 bytes", AckAtLeast(base+1000))
		c.SndNxt = base + 500
		c.Send(t, Seg{Flags: ACK, Payload: bytes.Repeat([]byte("a"), 1000)})
		a := c.Expect(t, "ACK of the overlapping segment", AckAtLeast(base+1500))
		want := Block{base + 500, base + 1000}
		if a.Ack != base+1500 || len(a.SACK) == 0 || a.SACK[0] != want {
			t.Fatalf("got ack +%d SACK %v, want ack +1500 with D-SACK %v first", a.Ack-base, a.SACK, want)
		}
	})
}

// TestDSACKDuplicateOutOfOrder: a duplicate of data held out of order is
// reported by a D-SACK block first and then the SACK block containing it
// (RFC 2883 §4.1.2 and §5; Linux's tcp_data_queue_ofo and
// tcp_sack_new_ofo_skb), the other blocks after.
func TestDSACKDuplicateOutOfOrder(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, _ := h.Establish(t, 80)
		base := c.SndNxt
		dupAckSACK(t, c, base, 1000, 1000)
		dupAckSACK(t, c, base, 3000, 1000)
		got := dupAckSACK(t, c, base, 1000, 500)
		want := []Block{{1000, 1500}, {1000, 2000}, {3000, 4000}}
		if len(got) < 2 || !slices.Equal(got[:2], want[:2]) {
			t.Fatalf("SACK %v, want %v", got, want)
		}
		if !slices.Equal(got, want) {
			t.Logf("SACK %v; Linux sends %v", got, want)
		}
	})
}

// ackRound is what one round of pairs (see pairs) drew.
type ackRound struct {
	pairEnd uint32 // the end of the pair's second segment
	before  []*TCP // ACKs before the one the out-of-order segment drew
	acks    []*TCP // every ACK of the round
}

// pairs plays n rounds of: two 1000-byte segments back to back, then a
// third one 1000 bytes beyond them (out of order, so it draws an immediate
// duplicate ACK, RFC 5681 §4.2), then the missing 1000 bytes (which fill
// the hole and draw an immediate ACK). Whether the pair drew an ACK of its
// own shows in the order of the ACKs, without timing anything: if the DUT
// held it back, the first ACK of the pair's end is the duplicate ACK
// carrying a SACK block. Each segment has its own TSval, recorded by
// sequence number. The DUT reads each round's data before the next round,
// so its application keeps up, as the receiver in RFC 9293 §3.8.6.3's
// rule does; the rounds are more than Linux's initial quick ACKs
// (TCP_MAX_QUICKACKS, 16).
func pairs(t testing.TB, c *Conn, dc io.Reader, n int) (rounds []ackRound, tsval map[uint32]uint32) {
	t.Helper()
	tsval = make(map[uint32]uint32)
	seg := func(seq uint32, b byte) {
		v := c.TSNow() + uint32(len(tsval))
		tsval[seq] = v
		c.Send(t, Seg{Flags: ACK, Seq: U32(seq), Payload: bytes.Repeat([]byte{b}, 1000), TSval: &v})
	}
	for range n {
		base := c.SndNxt
		r := ackRound{pairEnd: base + 2000}
		seg(base, 'a')
		seg(base+1000, 'b')
		seg(base+3000, 'd')
		for {
			a := c.Expect(t, "duplicate ACK for the out-of-order segment", func(s *TCP) bool { return s.Flags&ACK != 0 })
			r.acks = append(r.acks, a)
			if len(a.SACK) > 0 {
				break
			}
			r.before = append(r.before, a)
		}
		seg(base+2000, 'c')
		for {
			a := c.Expect(t, "ACK of the round", func(s *TCP) bool { return s.Flags&ACK != 0 })
			r.acks = append(r.acks, a)
			if SeqLE(base+4000, a.Ack) {
				break
			}
		}
		c.SndNxt = base + 4000
		if _, err := io.ReadFull(dc, make([]byte, 4000)); err != nil {
			t.Fatalf("DUT read: %v", err)
		}
		rounds = append(rounds, r)
	}
	return rounds, tsval
}

// TestDelayedACKEverySecondSegment: a receiver delaying ACKs still sends
// one for at least every second full-sized segment (RFC 9293 §3.8.6.3,
// RFC 1122 §4.2.3.2). "Full-sized" is the size the peer sends, here 1000
// bytes, below the announced MSS: Linux measures it (rcv_mss in
// tcp_measure_rcv_mss) and acknowledges once more than one such segment is
// unacknowledged. Linux does so only while the window's right edge
// advances (__tcp_ack_snd_check), and now and then, its reader lagging,
// folds a pair's ACK into the next one; so the test asks for a pair's own
// ACK in at least half of the rounds (Linux: about nine in ten; a receiver
// that waits for three segments: none).
func TestDelayedACKEverySecondSegment(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		rounds, _ := pairs(t, c, dc, 24)
		var missed []int
		for i, r := range rounds {
			acked := false
			for _, a := range r.before {
				acked = acked || SeqLE(r.pairEnd, a.Ack)
			}
			if !acked {
				missed = append(missed, i)
			}
		}
		t.Logf("rounds whose pair drew no ACK of its own: %v of %d", missed, len(rounds))
		if len(missed) > len(rounds)/2 {
			t.Errorf("in %d of %d rounds two 1000-byte segments drew no ACK of their own", len(missed), len(rounds))
		}
	})
}

// TestDelayedACKTSecr: an ACK that acknowledges several segments echoes
// the TSval of the earliest of them, the first one not acknowledged before
// (RFC 7323 §4.3: TS.Recent is updated only from a segment at
// Last.ACK.sent; Linux's tcp_store_ts_recent when seq is not after
// rcv_wup).
func TestDelayedACKTSecr(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		c, dc := h.Establish(t, 80)
		prev := c.SndNxt
		rounds, tsval := pairs(t, c, dc, 24)
		delayed := 0
		for _, r := range rounds {
			for _, a := range r.acks {
				if !SeqLT(prev, a.Ack) {
					continue // a duplicate
				}
				if a.Ack-prev > 1000 {
					delayed++
				}
				if want := tsval[prev]; !a.HasTS || a.TSecr != want {
					t.Errorf("ACK of %d..%d echoes %d, want %d (the TSval of the segment at %d)", prev, a.Ack, a.TSecr, want, prev)
				}
				prev = a.Ack
			}
		}
		if delayed == 0 {
			t.Errorf("every segment was acknowledged on its own; no delayed ACK to check")
		}
	})
}
