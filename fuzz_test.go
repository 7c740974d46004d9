package netstack

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// FuzzStackIngress feeds arbitrary frames (split on "||") to a live stack
// that has an open TCP connection carrying data and a bound UDP socket. It
// checks that nothing panics, that the connection delivers exactly the
// bytes its peer wrote, in order, once, and that the counters stay
// consistent.
func FuzzStackIngress(f *testing.F) {
	f.Add([]byte("garbage||\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x01\x08\x06\x00\x01"))
	f.Add(append(bytes.Repeat([]byte{0x45}, 60), "||"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var la, lb *PacketLink
		la = NewPacketLink(PacketLinkConfig{Ethernet: true, Output: func(p []byte) { lb.Inject(p) }})
		lb = NewPacketLink(PacketLinkConfig{Ethernet: true, Output: func(p []byte) { la.Inject(p) }})
		a, err := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		s, err := New(Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ln, _ := s.Listen("tcp", ":80")
		defer ln.Close()
		pc, _ := s.ListenPacket("udp", ":53")
		defer pc.Close()
		acc := make(chan net.Conn, 1)
		go func() { c, _ := ln.Accept(); acc <- c }()
		c, err := a.Dial("tcp", "198.18.0.2:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var srv net.Conn
		select {
		case srv = <-acc:
		case <-time.After(5 * time.Second):
			t.Fatal("no accept")
		}
		if srv == nil {
			t.Fatal("accept failed")
		}
		defer srv.Close()
		want := make([]byte, 64<<10)
		for i := range want {
			want[i] = byte(i * 7)
		}
		go func() {
			c.Write(want)
			c.(*TCPConn).CloseWrite()
		}()
		for _, fr := range bytes.Split(b, []byte("||")) {
			lb.Inject(fr)
		}
		srv.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(srv)
		// Forged segments may legitimately reset the connection (an exact
		// RST guess); what arrived must still be a prefix of what was sent.
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("delivered %d bytes that are not a prefix of the stream (err %v)", len(got), err)
		}
		if err == nil && len(got) != len(want) {
			t.Fatalf("clean EOF after %d of %d bytes", len(got), len(want))
		}
		st := s.Stats()
		if st.IPv4.Delivered > st.IPv4.Received+st.IPv4.Reassembled || st.TCP.SegmentsIn > st.IPv4.Delivered {
			t.Fatalf("inconsistent counters: %+v %+v", st.IPv4, st.TCP)
		}
	})
}
