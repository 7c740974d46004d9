package main

import (
	"net"
	"syscall"
)

// markControl returns a net.Dialer.Control that sets SO_MARK on each
// socket, so that policy routing can keep upstream traffic out of the
// tunnel.
func markControl(mark int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, mark)
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// upstreamMSS returns the MSS of an upstream TCP connection (TCP_MAXSEG),
// or 0 if c is not one.
func upstreamMSS(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	mss := 0
	rc.Control(func(fd uintptr) {
		if v, err := syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG); err == nil {
			mss = v
		}
	})
	return mss
}
