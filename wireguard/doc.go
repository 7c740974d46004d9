// Package netstack is a drop-in replacement for wireguard-go's
// golang.zx2c4.com/wireguard/tun/netstack, on the userspace TCP/IP stack of
// github.com/gotcpip/netstack instead of gVisor's. Programs switch by
// changing one import path:
//
//	import "golang.zx2c4.com/wireguard/tun/netstack"
//
// becomes
//
//	import "github.com/gotcpip/netstack/wireguard" // package netstack
//
// CreateNetTUN returns a tun.Device to give to wireguard-go's
// device.NewDevice and a *Net whose methods have the names and parameters
// of wireguard-go's: Dial, DialContext, DialTCP, DialTCPAddrPort,
// DialContextTCP, DialContextTCPAddrPort, ListenTCP, ListenTCPAddrPort,
// DialUDP, DialUDPAddrPort, ListenUDP, ListenUDPAddrPort, DialPing,
// DialPingAddr, ListenPing, ListenPingAddr, LookupHost and
// LookupContextHost. They return *netstack.TCPConn, *netstack.TCPListener
// and *netstack.UDPConn of package github.com/gotcpip/netstack where
// wireguard-go returns gVisor's gonet types; these implement net.Conn,
// net.Listener and net.PacketConn with package net's semantics, so code that
// uses them through those interfaces (http.Transport.DialContext,
// http.Serve, ...) compiles unchanged. The ping sockets are this package's
// PingConn, with wireguard-go's behaviour (see PingConn) but package net's
// errors and deadlines.
//
// Both families work, as with wireguard-go's: CreateNetTUN takes any
// number of IPv4 and IPv6 addresses (each a /32 or /128) and DNS servers of
// either family, and the device passes IPv4 and IPv6 packets both ways.
// Dial and DialContext take "tcp", "udp" and "ping" with an optional "4" or
// "6"; LookupHost asks for A records when the Net has an IPv4 address and
// AAAA when it has an IPv6 one, IPv6 first, so a dial by name tries a
// family the Net has; ping sockets speak ICMP or ICMPv6 by their
// addresses' family. A listener on no address takes every family the Net
// has.
//
// The Device batches: Read returns up to BatchSize (128) packets, each
// copied once, from the stack straight into wireguard-go's buffers; neither
// direction drops packets except those DeviceStats counts.
package netstack
