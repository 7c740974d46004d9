package main

import (
	"net"
	"os"
	"syscall"
)

// listenPing opens an unprivileged ICMP socket (a "ping socket":
// SOCK_DGRAM with IPPROTO_ICMP or IPPROTO_ICMPV6, allowed to the groups in
// net.ipv4.ping_group_range), marked with SO_MARK when mark is not 0. The
// kernel sets the echo identifier of what it sends to the socket's port
// and hands it only the replies to that identifier.
func listenPing(v6 bool, mark int) (net.PacketConn, error) {
	family, proto := syscall.AF_INET, syscall.IPPROTO_ICMP
	if v6 {
		family, proto = syscall.AF_INET6, syscall.IPPROTO_ICMPV6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if mark != 0 {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_MARK, mark); err != nil {
			syscall.Close(fd)
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	f := os.NewFile(uintptr(fd), "ping")
	defer f.Close()
	return net.FilePacketConn(f)
}
