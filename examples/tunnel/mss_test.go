//go:build linux

package main

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestTunnelMSSClamp: the far server sits behind a 1280-byte MTU (B's
// loopback), the client in A behind the TUN's 1500. The relay clamps the
// MSS the stack offers the client to its upstream connection's, so the
// client's kernel sends segments no larger than the upstream path takes
// (unclamped, TCP_MAXSEG would be 1448 on a 1500-byte link with
// timestamps), and data still crosses both ways intact.
func TestTunnelMSSClamp(t *testing.T) {
	checkGoroutines(t)
	a, b, _, _ := farTunnelWith(t, func(_ *Relay, far *netnstest.NS) {
		if _, err := runIn(t, far, 10*time.Second, "ip", "link", "set", "lo", "mtu", "1280"); err != nil {
			t.Fatal(err)
		}
	}, "198.19.4.4")
	ln := listenIn(t, b, "198.19.4.4:9000")
	upMSS := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			upMSS <- 0
			return
		}
		defer c.Close()
		upMSS <- upstreamMSS(c)
		io.Copy(c, c)
	}()
	c, err := dialFrom(a, "198.19.4.4:9000")
	if err != nil {
		t.Fatalf("dial through the tunnel: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(rand.Uint32())
	}
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo through the tunnel: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the echo differs from what was sent")
	}
	up, client := <-upMSS, upstreamMSS(c)
	t.Logf("upstream TCP_MAXSEG %d, client TCP_MAXSEG %d", up, client)
	if up == 0 || up > 1280-40 {
		t.Fatalf("upstream TCP_MAXSEG %d: B's 1280-byte loopback MTU did not take", up)
	}
	if client == 0 || client > up {
		t.Fatalf("client TCP_MAXSEG %d, want at most the upstream's %d", client, up)
	}
}
