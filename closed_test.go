package netstack

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// wantClosed checks that err is package net's error for a use after Close:
// an *net.OpError for op that matches net.ErrClosed and is no timeout.
func wantClosed(t *testing.T, what, op string, err error) {
	t.Helper()
	var oe *net.OpError
	var ne net.Error
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != op {
		t.Errorf("%s: got %v, want an %q *net.OpError matching net.ErrClosed", what, err, op)
	}
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: %v is a timeout; closing wins over the deadline", what, err)
	}
}

// TestClosedWinsOverDeadline: after Close, every call of a conn or
// listener whose deadline has passed fails with net.ErrClosed, as package
// net's do, and the deadline setters fail too. Before Close the same calls
// time out.
func TestClosedWinsOverDeadline(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	past := time.Now().Add(-time.Second)
	buf := make([]byte, 8)

	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := a.Dial("tcp", "198.18.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	if _, err := peer.Write([]byte("data")); err != nil { // readable data must not matter either
		t.Fatal(err)
	}

	c.SetDeadline(past)
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("TCP read before close: %v, want a timeout", err)
	}
	c.Close()
	_, err = c.Read(buf)
	wantClosed(t, "TCP read", "read", err)
	_, err = c.Write(buf)
	wantClosed(t, "TCP write", "write", err)
	wantClosed(t, "TCP SetDeadline", "set", c.SetDeadline(time.Time{}))
	wantClosed(t, "TCP SetReadDeadline", "set", c.SetReadDeadline(time.Time{}))
	wantClosed(t, "TCP SetWriteDeadline", "set", c.SetWriteDeadline(time.Time{}))

	tl := ln.(*TCPListener)
	tl.SetDeadline(past)
	if _, err := tl.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("accept before close: %v, want a timeout", err)
	}
	ln.Close()
	_, err = tl.Accept()
	wantClosed(t, "accept", "accept", err)
	wantClosed(t, "listener SetDeadline", "set", tl.SetDeadline(time.Time{}))

	pc, err := a.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	pc.SetDeadline(past)
	if _, _, err := pc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("UDP read before close: %v, want a timeout", err)
	}
	to := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 2), Port: 9}
	if _, err := pc.WriteTo(buf, to); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("UDP write before close: %v, want a timeout", err)
	}
	pc.Close()
	_, _, err = pc.ReadFrom(buf)
	wantClosed(t, "UDP read", "read", err)
	_, err = pc.WriteTo(buf, to)
	wantClosed(t, "UDP write", "write", err)
	wantClosed(t, "UDP SetDeadline", "set", pc.SetDeadline(time.Time{}))
	wantClosed(t, "UDP SetReadDeadline", "set", pc.SetReadDeadline(time.Time{}))
	wantClosed(t, "UDP SetWriteDeadline", "set", pc.SetWriteDeadline(time.Time{}))
}

// TestCloseWakesBlockedCallsWithErrClosed: a Read, Write or Accept blocked
// with a deadline still ahead returns net.ErrClosed when Close is called,
// and a Read whose deadline then passes still reports the Close.
func TestCloseWakesBlockedCallsWithErrClosed(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Read(make([]byte, 1)) // until the dialer goes
	}()
	c, err := a.Dial("tcp", "198.18.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Hour))
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 8)); errc <- err }()
	waitBlocked(t, "TCPConn).Read")
	c.Close()
	wantClosed(t, "blocked TCP read", "read", <-errc)

	l2, err := b.Listen("tcp", ":81")
	if err != nil {
		t.Fatal(err)
	}
	l2.(*TCPListener).SetDeadline(time.Now().Add(time.Hour))
	go func() { _, err := l2.Accept(); errc <- err }()
	waitBlocked(t, "TCPListener).AcceptTCP")
	l2.Close()
	wantClosed(t, "blocked accept", "accept", <-errc)
}

// waitBlocked waits until some goroutine is parked inside fn, so that a
// test closes under a blocked call rather than racing one that has not
// started.
func waitBlocked(t *testing.T, fn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if stacksContain(fn) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no goroutine blocked in %s", fn)
}

// stacksContain reports whether any goroutine's stack mentions fn.
func stacksContain(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}
