package wiretest

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// echo returns a matcher for the DUT's echo reply to id and seq.
func echoReply(h *Harness, id, seq uint16) func(*Frame) bool {
	return func(f *Frame) bool {
		return h.FromDUT(f) && f.ICMP != nil && f.ICMP.Type == ICMPEchoReply && f.ICMP.ID == id && f.ICMP.Seq == seq
	}
}

// TestEcho: an echo request is answered by an echo reply with the same
// identifier, sequence number and data (RFC 792; RFC 1122 §3.2.2.6), from
// the DUT's address, with valid checksums.
func TestEcho(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		data := bytes.Repeat([]byte("echo"), 14)
		h.SendIP(t, &IPv4{Proto: ProtoICMP, Payload: BuildEcho(0x77, 1, data)})
		f := h.Expect(t, Timeout, "echo reply", echoReply(h, 0x77, 1))
		if !bytes.Equal(f.ICMP.Data, data) || !f.ICMP.ChecksumOK || !f.IP.ChecksumOK || f.ICMP.Code != 0 {
			t.Fatalf("echo reply data equal %v, checksums ICMP %v IP %v, code %d", bytes.Equal(f.ICMP.Data, data), f.ICMP.ChecksumOK, f.IP.ChecksumOK, f.ICMP.Code)
		}
	})
}

// TestUDPPortUnreachable: a datagram to a port with no socket draws ICMP
// port unreachable quoting the datagram's IP header and first 8 bytes
// (RFC 1122 §3.2.2.1 and §4.1.3.1; RFC 792).
func TestUDPPortUnreachable(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		src, dst := netipAddrPort(h.Addr, 5555), netipAddrPort(h.DUTAddr, 9)
		udp := BuildUDP(src, dst, []byte("anyone there?"))
		h.SendIP(t, &IPv4{Proto: ProtoUDP, ID: 4242, Payload: udp})
		f := h.Expect(t, Timeout, "ICMP port unreachable", func(f *Frame) bool {
			return h.FromDUT(f) && f.ICMP != nil && f.ICMP.Type == ICMPUnreachable
		})
		if f.ICMP.Code != 3 || !f.ICMP.ChecksumOK {
			t.Fatalf("ICMP type 3 code %d checksum ok %v, want code 3 (port unreachable)", f.ICMP.Code, f.ICMP.ChecksumOK)
		}
		if len(f.ICMP.Data) < 28 {
			t.Fatalf("quoted datagram %x: shorter than an IP header and 8 bytes", f.ICMP.Data)
		}
		if id := binary.BigEndian.Uint16(f.ICMP.Data[4:]); id != 4242 || !bytes.Equal(f.ICMP.Data[20:28], udp[:8]) {
			t.Fatalf("quote has IP ID %d and UDP header %x, want 4242 and %x", id, f.ICMP.Data[20:28], udp[:8])
		}
	})
}

// TestUDPEcho: a datagram to an open port is delivered, and the DUT's
// reply arrives with a valid checksum.
func TestUDPEcho(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		pc := h.DUT.ListenUDP(t, 7)
		h.SendIP(t, &IPv4{Proto: ProtoUDP, Payload: BuildUDP(netipAddrPort(h.Addr, 5555), netipAddrPort(h.DUTAddr, 7), []byte("hello"))})
		buf := make([]byte, 100)
		pc.SetReadDeadline(deadline())
		n, from, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("DUT read %q from %v: %v", buf[:n], from, err)
		}
		if _, err := pc.WriteTo([]byte("HELLO"), from); err != nil {
			t.Fatal(err)
		}
		f := h.Expect(t, Timeout, "UDP reply", func(f *Frame) bool { return h.FromDUT(f) && f.UDP != nil })
		if string(f.UDP.Payload) != "HELLO" || !f.UDP.ChecksumOK || f.UDP.SrcPort != 7 || f.UDP.DstPort != 5555 {
			t.Fatalf("reply %v %q checksum ok %v", f, f.UDP.Payload, f.UDP.ChecksumOK)
		}
	})
}

// TestFragmentedEcho: an echo request cut into three fragments, sent out
// of order, is reassembled and answered (RFC 791 §3.2, RFC 815).
func TestFragmentedEcho(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		data := make([]byte, 1200)
		for i := range data {
			data[i] = byte(i * 7)
		}
		icmp := BuildEcho(0x99, 3, data)
		cuts := []int{0, 400, 808, len(icmp)}
		for _, i := range []int{2, 0, 1} {
			h.SendIP(t, &IPv4{Proto: ProtoICMP, ID: 777, FragOff: cuts[i], MF: i < 2, Payload: icmp[cuts[i]:cuts[i+1]]})
		}
		f := h.Expect(t, Timeout, "echo reply to the fragmented request", echoReply(h, 0x99, 3))
		if !bytes.Equal(f.ICMP.Data, data) {
			t.Fatalf("echo reply data differs")
		}
	})
}

// TestIPOptionsAccepted: well-formed IP options the DUT does not act on
// (NOPs, Router Alert of RFC 2113) do not stop it answering: an echo
// request is answered and a SYN draws a SYN-ACK (RFC 1122 §3.2.1.8: a host
// ignores options it does not implement).
func TestIPOptionsAccepted(t *testing.T) {
	both(t, func(t testing.TB, h *Harness) {
		opts := []byte{OptNOP, 0x94, 4, 0, 0, OptNOP, OptNOP, OptEOL}
		h.SendIP(t, &IPv4{Proto: ProtoICMP, Options: opts, Payload: BuildEcho(0x55, 1, []byte("opts"))})
		h.Expect(t, Timeout, "echo reply", echoReply(h, 0x55, 1))
		h.DUT.Listen(t, 80)
		c := h.NewConn(80)
		c.Send(t, Seg{Flags: SYN, Options: c.SynOptions(), IPOptions: opts})
		c.Expect(t, "SYN-ACK", Flags(SYN|ACK))
	})
}
