//go:build !linux

package main

import (
	"errors"
	"net"
)

// listenPing fails: ping sockets are Linux's.
func listenPing(v6 bool, mark int) (net.PacketConn, error) {
	return nil, errors.New("relaying pings needs Linux")
}
