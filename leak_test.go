package netstack

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/leaktest"
)

// checkGoroutines fails the test if goroutines started during it are
// still running when it ends; see leaktest.Check.
func checkGoroutines(t *testing.T) { leaktest.Check(t) }

// serveEcho accepts connections on ln until it closes and echoes each one
// back until its peer closes its write side or idle passes.
func serveEcho(ln net.Listener, idle time.Duration) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			c.SetDeadline(time.Now().Add(idle))
			io.Copy(c, c)
			c.Close()
		}()
	}
}
