// Command demo runs two netstack stacks in one process, joined by an
// in-memory cable (netstack.Pipe), pings one from the other and prints the
// round-trip times and each stack's counters. It needs no privileges.
package main

import (
	"context"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/gotcpip/netstack"
)

func main() {
	la, lb := netstack.Pipe()
	a, err := netstack.New(netstack.Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := netstack.New(netstack.Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	fmt.Printf("stack A %v (%v) pings stack B %v (%v) over an in-memory pipe\n",
		a.Addr(), a.HardwareAddr(), b.Addr(), b.HardwareAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 1; i <= 5; i++ {
		rtt, err := a.Ping(ctx, b.Addr())
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("reply from %v: seq=%d time=%v\n", b.Addr(), i, rtt)
	}
	sa, sb := a.Stats(), b.Stats()
	fmt.Printf("A: frames in/out %d/%d, ARP requests out %d, echo replies in %d\n",
		sa.Link.FramesIn, sa.Link.FramesOut, sa.ARP.RequestsOut, sa.ICMP.EchoRepliesIn)
	fmt.Printf("B: frames in/out %d/%d, ARP replies out %d, echo requests in %d\n",
		sb.Link.FramesIn, sb.Link.FramesOut, sb.ARP.RepliesOut, sb.ICMP.EchoRequestsIn)
}
