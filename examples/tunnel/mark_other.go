//go:build !linux

package main

import (
	"errors"
	"net"
	"syscall"
)

// markControl fails every dial: SO_MARK exists only on Linux.
func markControl(mark int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		return errors.New("-mark needs Linux")
	}
}

// upstreamMSS returns 0: TCP_MAXSEG is read only on Linux.
func upstreamMSS(c net.Conn) int { return 0 }
