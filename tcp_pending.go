package netstack

import (
	"context"
	"net"
	"net/netip"
	"syscall"
)

// TEMPORARY until the TCP shell lands in this session.
func (s *Stack) dialTCP(ctx context.Context, d *Dialer, network string, laddr, raddr netip.AddrPort) (net.Conn, error) {
	return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.EPROTONOSUPPORT}
}
