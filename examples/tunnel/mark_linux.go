package main

import "syscall"

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
