package ip

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

var (
	bcastA   = netip.MustParseAddr("198.18.0.255") // prefixA's subnet broadcast
	limBcast = netip.MustParseAddr("255.255.255.255")
)

// ipFrame builds an Ethernet frame from B to dst carrying an IPv4 header
// with opts (a multiple of 4 bytes) and payload; the Ethernet destination
// is the broadcast MAC for a broadcast dst, as on the wire.
func ipFrame(dst netip.Addr, proto uint8, opts, payload []byte) []byte {
	return ipFragment(dst, proto, opts, 0, false, payload)
}

// ipFragment is ipFrame for a fragment at byte offset fragOff.
func ipFragment(dst netip.Addr, proto uint8, opts []byte, fragOff int, mf bool, payload []byte) []byte {
	hl := IPv4MinHeaderLen + len(opts)
	f := make([]byte, EthernetHeaderLen+hl+len(payload))
	mac := macA
	if dst == bcastA || dst == limBcast {
		mac = BroadcastMAC
	}
	EthernetHeader(f).Encode(mac, macB, EtherTypeIPv4)
	encodeIPv4(f[EthernetHeaderLen:], hl+len(payload), 1, false, fragOff, mf, 64, proto, addrB, dst)
	copy(f[Headroom:], opts)
	if len(opts) > 0 {
		setIPv4Options(f[EthernetHeaderLen:], len(opts))
	}
	copy(f[EthernetHeaderLen+hl:], payload)
	return f
}

// synSegment is a 20-byte TCP SYN from port 40000 to port 80 (its
// checksum is not checked below the transport).
func synSegment() []byte {
	s := make([]byte, 20)
	binary.BigEndian.PutUint16(s[0:2], 40000)
	binary.BigEndian.PutUint16(s[2:4], 80)
	binary.BigEndian.PutUint32(s[4:8], 1000)
	s[12] = 5 << 4
	s[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(s[14:16], 65535)
	return s
}

// answerWithRST makes th's TCP answer every segment with a RST from the
// segment's destination, as a transport with no listener does.
func answerWithRST(th *testHost) {
	th.onTCP = func(now time.Time, src, dst netip.Addr, p []byte) {
		rst := make([]byte, Headroom+20)
		copy(rst[Headroom:], p[:20])
		rst[Headroom+13] = 0x14 // RST|ACK
		th.Output(now, rst, ProtoTCP, dst, src, true)
	}
}

// TestTCPToBroadcastDropped: RFC 1122 §4.2.3.10 — a SYN to a broadcast
// address reaches no transport and draws nothing; the same SYN to our
// address is answered (so the transport here would have sent a RST).
func TestTCPToBroadcastDropped(t *testing.T) {
	for _, dst := range []netip.Addr{bcastA, limBcast, netip.IPv4Unspecified()} {
		t.Run(dst.String(), func(t *testing.T) {
			a := newTestHost(t, prefixA, macA, nil)
			a.neigh.learn(addrB, macB, t0, true)
			answerWithRST(a)
			a.Input(t0, ipFrame(dst, ProtoTCP, nil, synSegment()))
			if len(a.tcp) != 0 || a.st.IPv4.DropBroadcastTCP != 1 || a.st.IPv4.Delivered != 0 {
				t.Fatalf("delivered %d segments; stats %+v", len(a.tcp), a.st.IPv4)
			}
			if out := a.take(); len(out) != 0 {
				t.Fatalf("sent %d frames, the first from %v", len(out), IPv4Header(out[0][EthernetHeaderLen:]).Src())
			}
		})
	}
	t.Run("unicast answered", func(t *testing.T) {
		a := newTestHost(t, prefixA, macA, nil)
		a.neigh.learn(addrB, macB, t0, true)
		answerWithRST(a)
		a.Input(t0, ipFrame(addrA, ProtoTCP, nil, synSegment()))
		out := a.take()
		if len(a.tcp) != 1 || len(out) != 1 || IPv4Header(out[0][EthernetHeaderLen:]).Src() != addrA {
			t.Fatalf("delivered %d, sent %d", len(a.tcp), len(out))
		}
	})
	t.Run("reassembled", func(t *testing.T) {
		a := newTestHost(t, prefixA, macA, nil)
		answerWithRST(a)
		seg := append(synSegment(), make([]byte, 12)...)
		a.Input(t0, ipFragment(bcastA, ProtoTCP, nil, 0, true, seg[:16]))
		a.Input(t0, ipFragment(bcastA, ProtoTCP, nil, 16, false, seg[16:]))
		if a.st.IPv4.Reassembled != 1 || a.st.IPv4.DropBroadcastTCP != 1 || len(a.tcp) != 0 || len(a.take()) != 0 {
			t.Fatalf("stats %+v", a.st.IPv4)
		}
	})
	t.Run("multicast", func(t *testing.T) {
		// On an IP link nothing filters by MAC; we join no group, so
		// the segment is not for us.
		a := newTestHost(t, prefixA, macA, func(c *Config) { c.Ethernet = false; c.Promiscuous = true })
		answerWithRST(a)
		a.Input(t0, ipFrame(netip.MustParseAddr("224.0.0.1"), ProtoTCP, nil, synSegment()))
		if len(a.tcp) != 0 || len(a.take()) != 0 || a.st.IPv4.DropNotForUs != 1 {
			t.Fatalf("delivered %d; stats %+v", len(a.tcp), a.st.IPv4)
		}
	})
}

// TestUDPToBroadcastDelivered: UDP to a broadcast address still reaches
// the transport (DHCP needs it), and a closed port draws no ICMP error
// (RFC 1122 §3.2.2).
func TestUDPToBroadcastDelivered(t *testing.T) {
	for _, dst := range []netip.Addr{bcastA, limBcast} {
		a := newTestHost(t, prefixA, macA, nil)
		a.neigh.learn(addrB, macB, t0, true)
		a.noPort = true
		a.Input(t0, ipFrame(dst, ProtoUDP, nil, make([]byte, 8)))
		if len(a.udp) != 1 || len(a.take()) != 0 || a.st.ICMP.UnreachOut != 0 {
			t.Fatalf("to %v: delivered %d; stats %+v", dst, len(a.udp), a.st.ICMP)
		}
	}
}

// TestOutputRefusesBroadcastSource: the last line of defence (RFC 1122
// §3.2.1.3) — nothing leaves with a broadcast or multicast source, by
// Output or OutputGSO; 0.0.0.0 stays allowed (a DHCP client's source).
func TestOutputRefusesBroadcastSource(t *testing.T) {
	gsoCalls := 0
	a := newTestHost(t, prefixA, macA, func(c *Config) {
		c.GSO = func([]byte, int, int, int) error { gsoCalls++; return nil }
	})
	a.neigh.learn(addrB, macB, t0, true)
	bad := []netip.Addr{bcastA, limBcast, netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("239.255.255.250")}
	for i, src := range bad {
		if err := a.Output(t0, udpPacket(8), ProtoUDP, src, addrB, true); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("Output from %v: %v", src, err)
		}
		if err := a.OutputGSO(t0, make([]byte, Headroom+20+3000), src, addrB, 1460, 20, 0); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("OutputGSO from %v: %v", src, err)
		}
		if got := a.st.IPv4.DropSendBadSource; got != uint64(2*(i+1)) {
			t.Fatalf("counted %d", got)
		}
	}
	if out := a.take(); len(out) != 0 || gsoCalls != 0 || a.st.IPv4.Sent != 0 {
		t.Fatalf("sent %d frames, %d super-segments", len(out), gsoCalls)
	}
	if err := a.Output(t0, udpPacket(8), ProtoUDP, addrA, addrB, true); err != nil {
		t.Fatal(err)
	}
	if err := a.OutputGSO(t0, make([]byte, Headroom+20+3000), addrA, addrB, 1460, 20, 0); err != nil || gsoCalls != 1 {
		t.Fatal(err)
	}
	if err := a.Output(t0, udpPacket(8), ProtoUDP, netip.IPv4Unspecified(), limBcast, true); err != nil {
		t.Fatal(err)
	}
	out := a.take()
	if len(out) != 2 || IPv4Header(out[1][EthernetHeaderLen:]).Src() != netip.IPv4Unspecified() || EthernetHeader(out[1]).Dst() != BroadcastMAC {
		t.Fatalf("unicast and 0.0.0.0 sends: %d frames", len(out))
	}
}

// TestNoICMPErrorAboutBroadcast: RFC 1122 §3.2.2 — no ICMP error about a
// datagram to or from a broadcast or multicast address, even when a
// forwarder asks for one.
func TestNoICMPErrorAboutBroadcast(t *testing.T) {
	a := newTestHost(t, prefixA, macA, nil)
	a.neigh.learn(addrB, macB, t0, true)
	udp := []byte{0, 1, 0, 2, 0, 8, 0, 0}
	for _, c := range []struct{ src, dst netip.Addr }{
		{addrB, bcastA}, {addrB, limBcast}, {addrB, netip.MustParseAddr("224.0.0.251")},
		{addrB, netip.IPv4Unspecified()}, {bcastA, addrA}, {limBcast, addrA},
	} {
		a.SendUnreachableFor(t0, CodePortUnreach, ProtoUDP, c.src, c.dst, udp)
		if out := a.take(); len(out) != 0 {
			t.Fatalf("error about %v→%v sent from %v", c.src, c.dst, IPv4Header(out[0][EthernetHeaderLen:]).Src())
		}
		// Never built, not merely stopped by Output's source check.
		if a.st.ICMP.UnreachOut != 0 || a.st.IPv4.DropSendBadSource != 0 {
			t.Fatalf("error about %v→%v built; stats %+v", c.src, c.dst, a.st.ICMP)
		}
	}
	a.Input(t0, ipFrame(bcastA, 132, nil, make([]byte, 12))) // SCTP to broadcast
	if out := a.take(); len(out) != 0 || a.st.IPv4.DropUnknownProto != 1 {
		t.Fatalf("protocol unreachable about a broadcast: %d frames", len(out))
	}
	a.SendUnreachableFor(t0, CodePortUnreach, ProtoUDP, addrB, addrA, udp)
	if out := a.take(); len(out) != 1 || a.st.ICMP.UnreachOut != 1 {
		t.Fatalf("unicast case: %d frames", len(out))
	}
}
