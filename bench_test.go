package netstack

import (
	"fmt"
	"io"
	"net"
	"testing"
)

// BenchmarkStreamPipe moves one TCP stream between two stacks over an
// in-memory Pipe (MTU 1500).
func BenchmarkStreamPipe(b *testing.B) {
	a, s := newPipePair(b)
	ln, err := s.Listen("tcp", ":9")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		done <- n
	}()
	c, err := a.Dial("tcp", "198.18.0.2:9")
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if n := <-done; n != int64(b.N*len(buf)) {
		b.Fatalf("received %d of %d", n, b.N*len(buf))
	}
}

// BenchmarkRequestResponse measures 1-byte round trips on one connection.
func BenchmarkRequestResponse(b *testing.B) {
	a, s := newPipePair(b)
	ln, _ := s.Listen("tcp", ":9")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				c.Close()
				return
			}
			c.Write(buf)
		}
	}()
	c, err := a.Dial("tcp", "198.18.0.2:9")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.Write(buf)
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDialClose measures connect+close: the client dials, the server
// accepts and closes, the client closes (TIME-WAIT lands on the client).
// The dials rotate over four server ports, so that the client's ephemeral
// ports last for 100,000 connections.
func BenchmarkDialClose(b *testing.B) {
	a, s := newPipePair(b)
	addrs := make([]string, 4)
	for i := range addrs {
		ln, err := s.Listen("tcp", fmt.Sprintf(":%d", 9+i))
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = fmt.Sprintf("198.18.0.2:%d", 9+i)
		go closeAccepted(ln)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c, err := a.Dial("tcp", addrs[i%len(addrs)])
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// closeAccepted accepts connections on ln and closes each at once, until
// ln is closed.
func closeAccepted(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
