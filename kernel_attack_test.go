package netstack

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/netnstest"
	"github.com/gotcpip/netstack/internal/tcp"
)

// rawSender sends hand-made IPv4 packets from inside a namespace through a
// raw socket (IP_HDRINCL), as an attacker on the path would.
type rawSender struct{ fd int }

func newRawSender(t *testing.T, ns *netnstest.NS) *rawSender {
	t.Helper()
	var fd int
	if err := ns.Run(func() (err error) {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	return &rawSender{fd: fd}
}

// sendTCP sends seg from src to dst.
func (r *rawSender) sendTCP(src, dst netip.AddrPort, seg *tcp.Segment) error {
	seg.SrcPort, seg.DstPort = src.Port(), dst.Port()
	n := seg.HeaderLen() + len(seg.Payload)
	pkt := make([]byte, 20+n)
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, 6
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(pkt[12:16], s4[:])
	copy(pkt[16:20], d4[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum.Checksum(pkt[:20], 0))
	seg.Encode(pkt[20:], checksum.Pseudo(src.Addr(), dst.Addr(), 6, n))
	return syscall.Sendto(r.fd, pkt, 0, &syscall.SockaddrInet4{Addr: d4})
}

// sendFragNeeded sends, as the router at dst's end would, an ICMP
// fragmentation-needed with next-hop MTU mtu about a TCP segment from
// local (the stack) to remote with sequence number seq.
func (r *rawSender) sendFragNeeded(local, remote netip.AddrPort, seq tcp.Seq, mtu int) error {
	// The quoted packet: an IPv4 header and the first 8 bytes of TCP.
	q := make([]byte, 28)
	q[0] = 0x45
	binary.BigEndian.PutUint16(q[2:], 1500)
	q[6] = 0x40 // DF
	q[8], q[9] = 64, 6
	l4, r4 := local.Addr().As4(), remote.Addr().As4()
	copy(q[12:16], l4[:])
	copy(q[16:20], r4[:])
	binary.BigEndian.PutUint16(q[10:], checksum.Checksum(q[:20], 0))
	binary.BigEndian.PutUint16(q[20:], local.Port())
	binary.BigEndian.PutUint16(q[22:], remote.Port())
	binary.BigEndian.PutUint32(q[24:], uint32(seq))
	msg := make([]byte, 8+len(q))
	msg[0], msg[1] = 3, 4 // destination unreachable, fragmentation needed
	binary.BigEndian.PutUint16(msg[6:], uint16(mtu))
	copy(msg[8:], q)
	binary.BigEndian.PutUint16(msg[2:], checksum.Checksum(msg, 0))
	pkt := make([]byte, 20+len(msg))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, 1
	copy(pkt[12:16], r4[:])
	copy(pkt[16:20], l4[:])
	binary.BigEndian.PutUint16(pkt[10:], checksum.Checksum(pkt[:20], 0))
	copy(pkt[20:], msg)
	return syscall.Sendto(r.fd, pkt, 0, &syscall.SockaddrInet4{Addr: l4})
}

// TestKernelBlindAttacksDoNotBreakTransfer: while the kernel sends a stream
// to the stack, an off-path attacker sprays RSTs, SYNs and data with
// unacceptable ACKs across the whole sequence space, spoofing the kernel's
// end. RFC 5961: in-window RSTs and SYNs draw challenge ACKs instead of a
// reset, and bad-ACK data is dropped; the stream arrives intact.
func TestKernelBlindAttacksDoNotBreakTransfer(t *testing.T) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t)
	c, k := kernelPair(t, ns, s, 9100)
	raw := newRawSender(t, ns)
	src := netip.AddrPortFrom(ns.KernelAddr, 9100)
	dst := c.LocalAddr().(*net.TCPAddr).AddrPort()

	// First, deterministically: on the idle connection, a RST and a SYN
	// inside the window but not at RCV.NXT each draw a challenge ACK and
	// reset nothing (RFC 5961 §3.2, §4.2).
	_, _, rcvNxt, ok := s.e.ConnSeqs(dst, src)
	if !ok {
		t.Fatal("no connection")
	}
	for _, seg := range []tcp.Segment{
		{Seq: rcvNxt.Add(1), Flags: tcp.FlagRST, Wnd: 1000},
		{Seq: rcvNxt.Add(1), Flags: tcp.FlagSYN, Wnd: 1000},
	} {
		if err := raw.sendTCP(src, dst, &seg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two challenge ACKs", func() bool { return s.Stats().TCP.ChallengeAcks >= 2 })

	attack := make(chan error, 1)
	sprayed := make(chan struct{}) // closed when the stack has taken in the spray
	base0 := s.Stats().TCP.ResetsIn
	go func() {
		defer close(sprayed)
		r := rand.New(rand.NewPCG(5, 9))
		base := r.Uint32()
		// Step by 65537 over the 32-bit space: every window of 64 KiB or
		// more gets several in-window guesses, and an exact hit of RCV.NXT
		// (which RFC 5961 lets reset) is about a 1-in-65536 chance.
		for i := range uint32(1 << 16) {
			seq := tcp.Seq(base + i*65537)
			for _, seg := range []tcp.Segment{
				{Seq: seq, Flags: tcp.FlagRST, Wnd: 1000},
				{Seq: seq, Flags: tcp.FlagSYN, Wnd: 1000},
				{Seq: seq, Ack: tcp.Seq(r.Uint32()), Flags: tcp.FlagACK | tcp.FlagPSH, Wnd: 1000, Payload: []byte("INJECTED")},
			} {
				if err := raw.sendTCP(src, dst, &seg); err != nil {
					attack <- err
					return
				}
			}
			if i%64 == 63 {
				// Pace the spray by what the stack has taken in, so the
				// TAP's queue (1000 frames) does not overflow when the
				// machine is busy.
				limit := time.Now().Add(2 * time.Second)
				for s.Stats().TCP.ResetsIn+256 < base0+uint64(i+1) && time.Now().Before(limit) {
					time.Sleep(200 * time.Microsecond)
				}
			}
		}
		// Wait for the tail of the spray to arrive, then let the transfer
		// end: the connection is established through all of it.
		limit := time.Now().Add(10 * time.Second)
		for s.Stats().TCP.ResetsIn < base0+60000 && time.Now().Before(limit) {
			time.Sleep(time.Millisecond)
		}
		attack <- nil
	}()
	// The transfer runs until the spray is over, however long that takes,
	// so that the whole spray meets an established connection.
	exchangeUntil(t, c, k, math.MaxInt64, sprayed)
	if err := <-attack; err != nil {
		t.Fatalf("raw send: %v", err)
	}
	// Nearly all of the spray must have reached the stack.
	st := s.Stats().TCP
	if st.ResetsIn < 60000 {
		t.Fatalf("only %d of %d RSTs arrived: %+v", st.ResetsIn, 1<<16, st)
	}
	// The stack's counters show the defence: most of the spray fell
	// outside the window and was dropped; the in-window RST and SYN sent
	// first drew challenge ACKs (how many of the spray's land in the
	// window depends on its size at that moment, so only those two are
	// certain).
	t.Logf("challenge ACKs %d, unacceptable segments dropped %d", st.ChallengeAcks, st.DropUnaccept)
	if st.ChallengeAcks < 2 || st.DropUnaccept < 60000 {
		t.Fatalf("challenge ACKs %d, unacceptable drops %d: the RFC 5961 defences did not count", st.ChallengeAcks, st.DropUnaccept)
	}
}
