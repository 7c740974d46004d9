package ip

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/stats"
)

// BenchmarkTCPOutput measures the IPv4 path of an established flow's
// segment out: route, header, neighbour, frame to the link.
func BenchmarkTCPOutput(b *testing.B) {
	var st stats.Stats
	h := New(Config{Addr: prefixA, MAC: macA, MTU: 1500, Ethernet: true, Seed: 1},
		func([]byte) error { return nil }, &st, Handlers{}, nil)
	h.neigh.learn(addrB, macB, t0, true)
	pkt := make([]byte, Headroom+20)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Output(t0, pkt, ProtoTCP, addrA, addrB, true); err != nil {
			b.Fatal(err)
		}
	}
	if st.Link.FramesOut == 0 {
		b.Fatal("nothing sent")
	}
}

// BenchmarkTCPInput measures the IPv4 path of an established flow's
// segment in, from the frame to the TCP handler.
func BenchmarkTCPInput(b *testing.B) {
	var st stats.Stats
	n := 0
	h := New(Config{Addr: prefixA, MAC: macA, MTU: 1500, Ethernet: true, Seed: 1},
		func([]byte) error { return nil }, &st, Handlers{TCP: func(time.Time, netip.Addr, netip.Addr, uint8, []byte) { n++ }}, nil)
	frame := make([]byte, Headroom+20)
	EthernetHeader(frame).Encode(macA, macB, EtherTypeIPv4)
	encodeIPv4(frame[EthernetHeaderLen:], len(frame)-EthernetHeaderLen, 1, true, 0, false, 64, ProtoTCP, addrB, addrA)
	b.ReportAllocs()
	for b.Loop() {
		h.Input(t0, frame)
	}
	if n == 0 {
		b.Fatal("nothing delivered")
	}
}
