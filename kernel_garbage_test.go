package netstack

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/netnstest"
	"github.com/miekg/dns"
)

// htons is for the AF_PACKET protocol argument, in network order.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestKernelGarbageThenServices sends 10,000 random frames and 10,000
// malformed IPv4/TCP/UDP packets from the kernel side onto the TAP, then
// checks that the stack counted them, and still answers ping, HTTP and DNS.
func TestKernelGarbageThenServices(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	for _, tool := range []string{"ping", "curl", "dig"} {
		netnstest.LookPath(t, tool)
	}
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "still here") })}
	go srv.Serve(ln)
	defer srv.Close()
	pc, err := s.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	dnsSrv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 198.18.0.53")
		m.Answer = append(m.Answer, rr)
		w.WriteMsg(m)
	})}
	go dnsSrv.ActivateAndServe()
	defer dnsSrv.Shutdown()

	// A packet socket on the kernel's end of the TAP.
	fs := newFrameSender(t, ns, s)
	mac := s.HardwareAddr()
	r := rand.New(rand.NewPCG(21, 22))
	before := s.Stats()
	for i := range 10000 {
		f := make([]byte, 14+r.IntN(1500))
		for j := range f {
			f[j] = byte(r.Uint32())
		}
		if i%2 == 0 {
			copy(f, mac) // past the MAC filter, into the parsers
		}
		fs.send(t, f)
	}
	for i := range 10000 {
		proto := []uint8{6, 17, 1}[i%3]
		payload := make([]byte, 8+r.IntN(100))
		for j := range payload {
			payload[j] = byte(r.Uint32())
		}
		f := make([]byte, 34+len(payload))
		copy(f[0:6], mac)
		copy(f[6:12], []byte{2, 0, 0, 0, 0, 9})
		f[12], f[13] = 0x08, 0x00
		h := f[14:34]
		h[0] = 0x45
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
		h[8], h[9] = 64, proto
		k := ns.KernelAddr.As4()
		copy(h[12:16], k[:])
		a := s.Addr().As4()
		copy(h[16:20], a[:])
		binary.BigEndian.PutUint16(h[10:], checksum.Checksum(h, 0))
		copy(f[34:], payload)
		switch i % 5 { // one malformation each
		case 0:
			h[10] ^= 0x5a // IP header checksum
		case 1:
			binary.BigEndian.PutUint16(h[2:], uint16(60+len(payload))) // total length past the frame
		case 2:
			h[0] = 0x4f // IHL past the packet
			binary.BigEndian.PutUint16(h[10:], 0)
			binary.BigEndian.PutUint16(h[10:], checksum.Checksum(h, 0))
		case 3: // valid IP, random transport bytes: bad TCP/UDP/ICMP checksum
		case 4:
			h[6] = 0x20 // a first fragment that never completes
			binary.BigEndian.PutUint16(h[4:], uint16(i))
			binary.BigEndian.PutUint16(h[10:], 0)
			binary.BigEndian.PutUint16(h[10:], checksum.Checksum(h, 0))
		}
		fs.send(t, f)
	}
	// Let the stack drain the TAP.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Link.FramesIn-before.Link.FramesIn < 19000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	after := s.Stats()
	in := after.Link.FramesIn - before.Link.FramesIn
	dropped := func(st Stats) uint64 {
		e, i4, tc, u, ic := st.Ethernet, st.IPv4, st.TCP, st.UDP, st.ICMP
		return e.DropTruncated + e.DropNotForUs + e.DropMulticast + e.DropIPv6 + e.DropUnknownType +
			st.ARP.DropMalformed + i4.DropTruncated + i4.DropBadVersion + i4.DropBadIHL + i4.DropBadLength +
			i4.DropBadChecksum + i4.DropNotForUs + i4.DropBadSource + i4.DropUnknownProto + i4.FragmentsIn +
			tc.DropMalformed + tc.DropBadChecksum + u.DropMalformed + u.DropBadChecksum + ic.DropMalformed +
			ic.DropBadChecksum + ic.DropUnhandled
	}
	d := dropped(after) - dropped(before)
	t.Logf("frames in %d, counted as dropped %d", in, d)
	if in < 19000 || d < 19000 {
		t.Fatalf("the stack saw %d frames and counted %d drops; want ~20,000 of each", in, d)
	}

	// Still serving.
	if n := pingReplies(t, ns, "-c", "2", "-i", "0.2", "-W", "2", s.Addr().String()); n != 2 {
		t.Fatalf("ping after the garbage: %d replies", n)
	}
	out, err := runIn(t, ns, 20*time.Second, "curl", "-sS", "--max-time", "10", "http://"+s.Addr().String()+"/")
	if err != nil || out != "still here" {
		t.Fatalf("curl after the garbage: %v %q", err, out)
	}
	out, err = runIn(t, ns, 20*time.Second, "dig", "+short", "+time=2", "+tries=2", "@"+s.Addr().String(), "name.test", "A")
	if err != nil || strings.TrimSpace(out) != "198.18.0.53" {
		t.Fatalf("dig after the garbage: %v %q", err, out)
	}
}
