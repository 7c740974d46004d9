package ip

import (
	"bytes"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// Seeds shared by the fuzz targets: real frames of each kind.
func seedFrames() [][]byte {
	var arp [minFrame]byte
	EthernetHeader(arp[:]).Encode(BroadcastMAC, macB, EtherTypeARP)
	ARPPacket(arp[EthernetHeaderLen:]).Encode(ARPOpRequest, macB, addrB, MAC{}, addrA)
	echo := rawIPv4(ProtoICMP, 1, 0, false, []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0})
	frag0 := rawIPv4(ProtoUDP, 7, 0, true, make([]byte, 16))
	frag1 := rawIPv4(ProtoUDP, 7, 16, false, make([]byte, 8))
	unreach := rawIPv4(ProtoICMP, 2, 0, false, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, rawIPv4(ProtoUDP, 3, 0, false, make([]byte, 8))[EthernetHeaderLen:]...))
	b4 := addrB.As4()
	echoRR := ipFrame(addrA, ProtoICMP, append([]byte{optNOP, optRR, 39, 8, b4[0], b4[1], b4[2], b4[3]}, make([]byte, 32)...), echo[Headroom:])
	udpTS := ipFrame(addrA, ProtoUDP, []byte{optTS, 12, 5, tsAddr, 0, 0, 0, 0, 0, 0, 0, 0}, []byte("12345678"))
	badOpt := ipFrame(addrA, ProtoICMP, []byte{optNOP, 0x88, 9, 0}, echo[Headroom:])
	lsrr := ipFrame(addrA, ProtoUDP, []byte{optLSRR, 7, 4, b4[0], b4[1], b4[2], b4[3], optEOL}, []byte("12345678"))
	return [][]byte{arp[:], echo, frag0, frag1, unreach, rawIPv4(ProtoUDP, 1, 0, false, []byte("12345678data")), echoRR, udpTS, badOpt, lsrr}
}

// FuzzParseIPv4 checks the IPv4 parser: it never panics, and what it
// accepts has consistent lengths and a verifying checksum.
func FuzzParseIPv4(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s[EthernetHeaderLen:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, pkt, err := ParseIPv4(b)
		if err != nil {
			return
		}
		if h.HeaderLen() < IPv4MinHeaderLen || h.HeaderLen() > len(pkt) || len(pkt) != h.TotalLen() || len(pkt) > len(b) {
			t.Fatalf("accepted inconsistent header: ihl %d total %d buf %d", h.HeaderLen(), h.TotalLen(), len(b))
		}
		_ = h.Src()
		_ = h.Dst()
		_ = h.FragOffset()
		o, bad := parseIPv4Options(h)
		if bad != 0 {
			if bad < IPv4MinHeaderLen || bad >= h.HeaderLen() {
				t.Fatalf("bad option pointer %d outside the options of a %d-byte header", bad, h.HeaderLen())
			}
			return
		}
		// What an echo reply returns fits where the request's options
		// were, whole words of it.
		hop := optionHop{addr: addrA.As4(), stamp: ipv4Timestamp(t0)}
		var out [maxOptionsLen]byte
		if n, ok := echoIPv4Options(&out, h, o, &hop); ok && (n > h.HeaderLen()-IPv4MinHeaderLen || n%4 != 0) {
			t.Fatalf("%d bytes of echoed options from a %d-byte header", n, h.HeaderLen())
		}
	})
}

// FuzzARP checks the ARP view: Valid guards every accessor.
func FuzzARP(f *testing.F) {
	f.Add(seedFrames()[0][EthernetHeaderLen:])
	f.Fuzz(func(t *testing.T, b []byte) {
		p := ARPPacket(b)
		if !p.Valid() {
			return
		}
		_, _, _, _ = p.SenderMAC(), p.SenderIP(), p.TargetMAC(), p.TargetIP()
	})
}

// FuzzEthernet feeds arbitrary frames to a Host on an Ethernet link.
func FuzzEthernet(f *testing.F) {
	for _, s := range seedFrames() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzIngress(t, b, true) })
}

// FuzzICMP feeds arbitrary ICMP messages, wrapped in a valid IPv4 header.
func FuzzICMP(f *testing.F) {
	for _, s := range seedFrames() {
		if s[EthernetHeaderLen+9] == ProtoICMP {
			f.Add(s[Headroom:])
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 60000 {
			return
		}
		fuzzIngress(t, rawIPv4(ProtoICMP, 1, 0, false, msg), true)
	})
}

// FuzzIngress feeds a sequence of frames (split on a marker) to one Host,
// so reassembly and ARP state carry between them, on both link kinds.
func FuzzIngress(f *testing.F) {
	var all []byte
	for _, s := range seedFrames() {
		all = append(append(all, s...), "||"...)
	}
	f.Add(all, true)
	f.Add(all, false)
	f.Fuzz(func(t *testing.T, b []byte, eth bool) {
		a := newTestHost(t, prefixA, macA, func(c *Config) { c.Ethernet = eth; c.ReassemblyMemory = 32 << 10 })
		a.neigh.learn(addrB, macB, t0, true)
		feedSequence(t, a, b, eth, 32<<10)
		checkCounters(t, &a.st)
	})
}

// feedSequence feeds the frames of b, split on "||", to a a second
// apart, running its timers, and checks the reassembly memory cap.
func feedSequence(t *testing.T, a *testHost, b []byte, eth bool, memCap int) {
	now := t0
	for _, fr := range bytes.Split(b, []byte("||")) {
		if !eth {
			fr = append(make([]byte, EthernetHeaderLen), fr...)
		}
		a.Input(now, fr)
		now = now.Add(time.Second)
		a.Timer(now)
		if m, _ := a.ReassemblyMemory(); m > memCap {
			t.Fatalf("reassembly memory %d over its cap", m)
		}
	}
}

func fuzzIngress(t *testing.T, b []byte, eth bool) {
	a := newTestHost(t, prefixA, macA, func(c *Config) { c.Ethernet = eth })
	a.neigh.learn(addrB, macB, t0, true)
	a.Input(t0, bytes.Clone(b))
	checkCounters(t, &a.st)
	for _, out := range a.out {
		// Whatever we send must itself parse.
		if len(out) < EthernetHeaderLen {
			t.Fatalf("sent a runt frame % x", out)
		}
		if EthernetHeader(out).Type() == EtherTypeIPv4 {
			if _, _, err := ParseIPv4(out[EthernetHeaderLen:]); err != nil {
				t.Fatalf("sent a bad packet: %v", err)
			}
		}
	}
}

// checkCounters asserts that every frame was accounted for once: delivered
// or dropped for a reason.
func checkCounters(t *testing.T, s *stats.Stats) {
	t.Helper()
	if s.IPv4.Delivered > s.IPv4.Received+s.IPv4.Reassembled {
		t.Fatalf("delivered %d of %d received", s.IPv4.Delivered, s.IPv4.Received)
	}
}
