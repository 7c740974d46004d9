package netstack

import (
	"io"
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
