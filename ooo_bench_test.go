package netstack

import (
	"fmt"
	"io"
	"net/netip"
	"testing"
)

// BenchmarkDroppingPacketLinks moves 256 MiB a run over a TCP connection
// between two stacks on PacketLinks joined Output to Inject, as a
// tun2socks or WireGuard-style transport joins them: a full queue drops
// the packet (the stack cannot see the peer's queue), so TCP loses single
// frames in bursts and the receiver holds many out-of-order ranges. It
// reports both stacks' retransmissions, the segments the receiver held out
// of order and those it dropped for a full out-of-order list, and the
// packets the links dropped, each a run.
func BenchmarkDroppingPacketLinks(b *testing.B) {
	for _, depth := range []int{16, 64, 1024} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) { benchDroppingLinks(b, depth) })
	}
}

func benchDroppingLinks(b *testing.B, depth int) {
	const size = 256 << 20
	var la, lb *PacketLink
	la = NewPacketLink(PacketLinkConfig{Ethernet: true, Depth: depth, Output: func(p []byte) { lb.Inject(p) }})
	lb = NewPacketLink(PacketLinkConfig{Ethernet: true, Depth: depth, Output: func(p []byte) { la.Inject(p) }})
	cli, srv := newLinkPair(b, Config{}, la, lb)
	ln, err := srv.Listen("tcp", ":9")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	statsBefore := func() func() [4]uint64 {
		c, s := cli.Stats().TCP, srv.Stats().TCP
		drops := la.Stats().InjectDrops + lb.Stats().InjectDrops
		return func() [4]uint64 {
			c2, s2 := cli.Stats().TCP, srv.Stats().TCP
			return [4]uint64{
				c2.Retransmits + s2.Retransmits - c.Retransmits - s.Retransmits,
				s2.OutOfOrder - s.OutOfOrder,
				s2.DropOOOFull - s.DropOOOFull,
				la.Stats().InjectDrops + lb.Stats().InjectDrops - drops,
			}
		}
	}
	// The server reads each run's size bytes and reports, on one
	// connection for all the runs.
	got := make(chan error, 1) // room for the EOF after the last run
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		for err == nil {
			_, err = io.CopyN(io.Discard, c, size)
			got <- err
		}
	}()
	c, err := cli.Dial("tcp", netip.AddrPortFrom(srv.Addr(), 9).String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var sum [4]uint64
	buf := make([]byte, 64<<10)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		since := statsBefore()
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-got; err != nil {
			b.Fatal(err)
		}
		for i, v := range since() {
			sum[i] += v
		}
	}
	b.StopTimer()
	for i, unit := range []string{"retransmits/op", "ooo-segs/op", "ooo-full-drops/op", "link-drops/op"} {
		b.ReportMetric(float64(sum[i])/float64(b.N), unit)
	}
}
