package ip

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/gotcpip/netstack/internal/checksum"
)

// TestECNField: OutputECN puts the ECN field into the IPv4 type of service
// (with a checksum that still verifies) and into the IPv6 traffic class
// (RFC 3168 §5), leaving the rest of those octets alone, and the receiving
// Host hands the field to its TCP handler.
func TestECNField(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var a, b *testHost
		src, dst := addrA, addrB
		if v6 {
			a, b = newHost6(t, prefixA, v6A, macA, nil), newHost6(t, prefixB, v6B, macB, nil)
			src, dst = v6A, v6B
		} else {
			a, b = newTestHost(t, prefixA, macA, nil), newTestHost(t, prefixB, macB, nil)
		}
		a.neigh.learn(dst, macB, t0, true)
		for _, ecn := range []uint8{0, 1, 2, 3} {
			pkt := udpPacket(20)
			if v6 {
				pkt = udpPacket6(20)
			}
			if err := a.OutputECN(t0, pkt, ProtoTCP, src, dst, true, ecn); err != nil {
				t.Fatal(err)
			}
			var sent [][]byte
			for _, f := range a.take() {
				if !v6 && EthernetHeader(f).Type() == EtherTypeIPv4 || v6 && isTCP6(f) {
					sent = append(sent, f)
					b.Input(t0, f)
				}
			}
			if len(sent) != 1 {
				t.Fatalf("v6=%v ecn=%d: %d TCP packets sent", v6, ecn, len(sent))
			}
			ip := sent[0][EthernetHeaderLen:]
			if v6 {
				if got := IPv6Header(ip).ECN(); got != ecn || binary.BigEndian.Uint32(ip)&^(3<<20)>>20 != 6<<8 {
					t.Fatalf("IPv6 ECN %d, first word %#x; want ECN %d, traffic class otherwise 0", got, binary.BigEndian.Uint32(ip), ecn)
				}
			} else {
				if got := IPv4Header(ip).ECN(); got != ecn || ip[1]&^3 != 0 {
					t.Fatalf("IPv4 TOS %#x, want ECN %d", ip[1], ecn)
				}
				if checksum.Checksum(ip[:IPv4MinHeaderLen], 0) != 0 {
					t.Fatalf("ecn=%d: IPv4 header checksum does not verify", ecn)
				}
			}
		}
		if !slices.Equal(b.tcpECN, []uint8{0, 1, 2, 3}) {
			t.Fatalf("v6=%v: TCP handler saw ECN %v, want [0 1 2 3]", v6, b.tcpECN)
		}
	}
}

func isTCP6(f []byte) bool {
	return EthernetHeader(f).Type() == EtherTypeIPv6 && IPv6Header(f[EthernetHeaderLen:]).NextHeader() == ProtoTCP
}

// TestECNFieldGSO: a super-segment carries the ECN field in its one IP
// header, which the link copies into every segment it cuts.
func TestECNFieldGSO(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var frame []byte
		gso := func(c *Config) {
			c.GSO = func(f []byte, _, _, _ int) error { frame = append([]byte(nil), f...); return nil }
		}
		var a *testHost
		src, dst, hr := addrA, addrB, Headroom
		if v6 {
			a, src, dst, hr = newHost6(t, prefixA, v6A, macA, gso), v6A, v6B, Headroom6
			a.neigh.learn(v6B, macB, t0, true)
		} else {
			a = newTestHost(t, prefixA, macA, gso)
			a.neigh.learn(addrB, macB, t0, true)
		}
		if err := a.OutputGSO(t0, make([]byte, hr+20+3000), src, dst, 1460, 20, ect0); err != nil {
			t.Fatal(err)
		}
		ip := frame[EthernetHeaderLen:]
		if v6 && IPv6Header(ip).ECN() != ect0 || !v6 && (IPv4Header(ip).ECN() != ect0 || checksum.Checksum(ip[:IPv4MinHeaderLen], 0) != 0) {
			t.Fatalf("v6=%v: header % x, want ECT(0)", v6, ip[:8])
		}
	}
}

const ect0 = 0b10 // ECT(0)
