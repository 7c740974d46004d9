package netstack_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"time"

	"github.com/gotcpip/netstack"
)

// Feed a stack from your own transport, as a VPN does: a PacketLink takes
// received IP packets through Inject and hands the stack's packets to
// Output. Here two stacks are joined by wiring each Output to the other's
// Inject.
func ExampleNewPacketLink() {
	var la, lb *netstack.PacketLink
	la = netstack.NewPacketLink(netstack.PacketLinkConfig{MTU: 1420, Output: func(pkt []byte) { lb.Inject(pkt) }})
	lb = netstack.NewPacketLink(netstack.PacketLinkConfig{MTU: 1420, Output: func(pkt []byte) { la.Inject(pkt) }})
	server, err := netstack.New(netstack.Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	client, err := netstack.New(netstack.Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	ln, err := server.Listen("tcp", ":7")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := client.Dial("tcp", "198.18.0.1:7")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "over bare IP packets")
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: over bare IP packets
}

// Accept connections to any address, as the far end of a tunnel: the
// client routes 198.19.0.0/16 through the stack with the Forwarder, whose
// handler sees where each connection was going.
func ExampleForwarder() {
	la, lb := netstack.Pipe()
	tunnel, err := netstack.New(netstack.Config{
		Link: la,
		Addr: netip.MustParsePrefix("198.18.0.1/24"),
		Forwarder: &netstack.Forwarder{
			TCP: func(r *netstack.TCPRequest) {
				c, err := r.Accept(context.Background())
				if err != nil {
					return
				}
				defer c.Close()
				// A real tunnel would dial r.Destination() and relay.
				fmt.Fprintf(c, "you asked for %v", r.Destination())
			},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tunnel.Close()
	client, err := netstack.New(netstack.Config{
		Link:    lb,
		Addr:    netip.MustParsePrefix("198.18.0.2/24"),
		Gateway: netip.MustParseAddr("198.18.0.1"), // off-subnet traffic goes to the tunnel
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	c, err := client.Dial("tcp", "198.19.7.7:443")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	msg, _ := io.ReadAll(c)
	fmt.Println(string(msg))
	// Output: you asked for 198.19.7.7:443
}

// Dial with the options of package net's Dialer: a timeout, and keep-alive.
func ExampleDialer() {
	server, client := twoStacks()
	defer server.Close()
	defer client.Close()
	ln, err := server.Listen("tcp", ":80")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	d := &netstack.Dialer{Stack: client, Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(context.Background(), "tcp", "198.18.0.1:80")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println("connected to", c.RemoteAddr())

	// Nobody has 198.18.0.77: the dial gives up when its timeout passes.
	d.Timeout = 100 * time.Millisecond
	_, err = d.Dial("tcp", "198.18.0.77:80")
	var ne net.Error
	fmt.Println("timeout:", errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded))
	// Output:
	// connected to 198.18.0.1:80
	// timeout: true true
}

// Capture a stack's traffic for Wireshark or tshark: PcapLink writes every
// frame its link reads or writes in libpcap format.
func ExamplePcapLink() {
	la, lb := netstack.Pipe()
	var capture bytes.Buffer
	pl, err := netstack.PcapLink(la, &capture)
	if err != nil {
		log.Fatal(err)
	}
	a, err := netstack.New(netstack.Config{Link: pl, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		log.Fatal(err)
	}
	b, err := netstack.New(netstack.Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := a.Ping(context.Background(), b.Addr()); err != nil {
		log.Fatal(err)
	}
	a.Close()
	b.Close()

	// A libpcap file (nanosecond timestamps): a 24-byte header, then a
	// record per frame.
	data := capture.Bytes()
	fmt.Printf("magic %#x, link type %d (Ethernet)\n", binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[20:]))
	echoes := 0
	for rec := data[24:]; len(rec) >= 16; {
		n := int(binary.LittleEndian.Uint32(rec[8:]))
		frame := rec[16 : 16+n]
		if len(frame) >= 35 && binary.BigEndian.Uint16(frame[12:]) == 0x0800 && frame[23] == 1 { // IPv4, ICMP
			echoes++ // request or reply
		}
		rec = rec[16+n:]
	}
	fmt.Println("ICMP echo frames:", echoes)
	// Output:
	// magic 0xa1b23c4d, link type 1 (Ethernet)
	// ICMP echo frames: 2
}

// Join two stacks in memory without loss: NewPacketLinkPair's links see
// each other's queue, so a full one holds the sending stack's TCP back
// instead of dropping, and a bulk transfer needs no retransmission.
func ExampleNewPacketLinkPair() {
	la, lb := netstack.NewPacketLinkPair(netstack.PacketLinkConfig{Ethernet: true})
	server, err := netstack.New(netstack.Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		log.Fatal(err)
	}
	defer server.Close()
	client, err := netstack.New(netstack.Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ln, err := server.Listen("tcp", ":9")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	c, err := client.Dial("tcp", "198.18.0.1:9")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(c, io.LimitReader(zeros{}, 64<<20)); err != nil {
		log.Fatal(err)
	}
	c.Close()
	fmt.Println("received", <-got, "bytes; retransmitted", client.Stats().TCP.Retransmits)
	// Output: received 67108864 bytes; retransmitted 0
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
