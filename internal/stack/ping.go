package stack

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/gotcpip/netstack/internal/ip"
)

// Ping sends one ICMP echo request to addr and waits for the reply, the
// context's end, or an error: EHOSTUNREACH when the next hop never answers
// ARP, an ICMP error from a router, or net.ErrClosed when the stack
// closes. It returns the round-trip time.
func (s *Stack) Ping(ctx context.Context, addr netip.Addr) (time.Duration, error) {
	if s.isDone() {
		return 0, net.ErrClosed
	}
	ch := make(chan error, 1)
	s.pingMu.Lock()
	s.pingSeq++
	seq := s.pingSeq
	key := uint32(s.pingID)<<16 | uint32(seq)
	s.pings[key] = ch
	s.pingMu.Unlock()
	defer func() {
		s.pingMu.Lock()
		delete(s.pings, key)
		s.pingMu.Unlock()
	}()

	// 56 bytes of data as ping(8) sends, starting with the send time.
	var data [56]byte
	start := time.Now()
	binary.BigEndian.PutUint64(data[:], uint64(start.UnixNano()))
	if err := s.host.SendEcho(start, addr.Unmap(), s.pingID, seq, data[:]); err != nil {
		return 0, err
	}
	select {
	case err := <-ch:
		if err != nil {
			return 0, err
		}
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (s *Stack) echoReply(now time.Time, src netip.Addr, id, seq uint16, data []byte) {
	s.finishPing(id, seq, nil)
}

func (s *Stack) finishPing(id, seq uint16, err error) {
	s.pingMu.Lock()
	ch := s.pings[uint32(id)<<16|uint32(seq)]
	delete(s.pings, uint32(id)<<16|uint32(seq))
	s.pingMu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// icmpError routes errors about packets we sent to their endpoint.
func (s *Stack) icmpError(now time.Time, e *ip.ErrorInfo) {
	switch e.Proto {
	case ip.ProtoUDP:
		s.udpError(e)
	case ip.ProtoTCP:
		s.tcpError(now, e)
	case ip.ProtoICMP:
		m := ip.ICMPHeader(e.Transport)
		if len(m) >= ip.ICMPHeaderLen && m.Type() == ip.ICMPEchoRequest {
			s.finishPing(m.ID(), m.Seq(), e.Errno)
		}
	case ip.ProtoICMPv6:
		// RFC 4443 §4.1: an echo request has the same layout as ICMP's.
		m := ip.ICMPHeader(e.Transport)
		if len(m) >= ip.ICMPHeaderLen && m.Type() == ip.ICMPv6EchoRequest {
			s.finishPing(m.ID(), m.Seq(), e.Errno)
		}
	}
}
