package netstack_test

import (
	"io"
	"testing"

	wgnetstack "github.com/gotcpip/netstack/wireguard"
)

// BenchmarkTunnelTCP measures one TCP stream through a WireGuard tunnel on
// loopback UDP, with both ends on our stack and both on wireguard-go's
// gVisor netstack, in the same run: compare the two MB/s figures.
//
//	cd wireguard && go test -run '^$' -bench TunnelTCP -benchtime 2s -count 5 .
func BenchmarkTunnelTCP(b *testing.B) {
	b.Run("netstack", func(b *testing.B) { benchTunnelTCP(b, true) })
	b.Run("gvisor", func(b *testing.B) { benchTunnelTCP(b, false) })
}

func benchTunnelTCP(b *testing.B, ours bool) {
	a, z := pair(b, ours, ours, nil)
	ln, err := z.listen(5002)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
		got <- n
	}()
	c, err := a.dial.Dial("tcp", "198.18.0.2:5002")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	var sent int64
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		sent += chunk
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	if n := <-got; n != sent {
		b.Fatalf("received %d bytes, sent %d", n, sent)
	}
	if ours {
		// The mean batch wireguard-go's Read got from each end.
		for _, e := range []*end{a, z} {
			st := e.tdev.(*wgnetstack.Device).Stats()
			b.ReportMetric(float64(st.Read)/float64(max(st.Reads, 1)), "pkts/read-"+e.name)
		}
	}
}
