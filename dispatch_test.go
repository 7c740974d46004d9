package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// newWorkersPair returns two stacks joined by a link of kind deep enough
// to drop nothing, each inputting through workers input workers and
// queueing 16 MiB per UDP socket: a with 198.18.0.1/24 and fd00::1/64, b
// with 198.18.0.2/24 and fd00::2/64, no DAD. The kinds: "pipe" (Ethernet,
// lent frames), "pipe-copy" (a Pipe read with ReadFrame), "packet" (bare
// IP, lent frames), "packet-batch" (bare IP read with ReadFrames).
func newWorkersPair(t *testing.T, workers int, kind string) (a, b *Stack) {
	t.Helper()
	var la, lb Link
	switch kind {
	case "pipe", "pipe-copy":
		pa, pb := NewPipe(PipeConfig{Depth: 1 << 16})
		la, lb = pa, pb
		if kind == "pipe-copy" {
			la, lb = plainLink{pa}, plainLink{pb}
		}
	case "packet", "packet-batch":
		var pa, pb *PacketLink
		wire := func(to **PacketLink) func([][]byte) {
			return func(pkts [][]byte) {
				for _, p := range pkts {
					(*to).Inject(p)
				}
			}
		}
		pa = NewPacketLink(PacketLinkConfig{Depth: 1 << 16, OutputBatch: wire(&pb)})
		pb = NewPacketLink(PacketLinkConfig{Depth: 1 << 16, OutputBatch: wire(&pa)})
		la, lb = pa, pb
		if kind == "packet-batch" {
			la, lb = batchPacketLink{pa}, batchPacketLink{pb}
		}
	default:
		t.Fatalf("no link kind %q", kind)
	}
	mk := func(l Link, v4, v6 string) *Stack {
		s, err := New(Config{
			Link:         l,
			Addrs:        []netip.Prefix{netip.MustParsePrefix(v4), netip.MustParsePrefix(v6)},
			DADTransmits: -1,
			InputWorkers: workers,
			Limits:       Limits{UDPReceiveBuffer: 16 << 20},
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a = mk(la, "198.18.0.1/24", "fd00::1/64")
	b = mk(lb, "198.18.0.2/24", "fd00::2/64")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// plainLink hides a link's capabilities: the stack copies each frame
// with ReadFrame.
type plainLink struct{ Link }

// batchPacketLink is a PacketLink that declares Batch only: the stack reads it
// with ReadFrames into buffers of its own.
type batchPacketLink struct{ *PacketLink }

func (batchPacketLink) Capabilities() Capabilities { return Capabilities{Batch: true} }

// flowByte is byte i of TCP flow f's stream: it changes with every byte
// and every 256-byte block, so bytes out of order or lost show.
func flowByte(f, i int) byte { return byte(i*7 + f*13 ^ i>>8) }

// TestInputWorkersManyFlows runs TCP and UDP flows of both families at
// once, some UDP ones fragmented, between two stacks whose input goes
// through four workers, after a first ping of each family (ARP and
// neighbor discovery through the workers on Ethernet) and with pings
// beside them, over links that drop nothing, lend frames or not, carry
// Ethernet or bare IP: every TCP stream arrives whole and in
// order, every UDP flow's datagrams all arrive, intact and in the order
// they were sent, and the receiver's input was spread over more than one
// worker.
func TestInputWorkersManyFlows(t *testing.T) {
	for _, kind := range []string{"pipe", "pipe-copy", "packet", "packet-batch"} {
		t.Run(kind, func(t *testing.T) { testInputWorkersManyFlows(t, kind) })
	}
}

func testInputWorkersManyFlows(t *testing.T, kind string) {
	checkGoroutines(t)
	a, b := newWorkersPair(t, 4, kind)
	tcpBytes, udpCount := 1<<20, 400
	if raceEnabled {
		tcpBytes, udpCount = 192<<10, 150
	}
	ln, err := b.Listen("tcp", ":7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	u, err := b.ListenUDP("udp", ":7001")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	dsts := []string{"198.18.0.2", "fd00::2"}
	for _, dst := range dsts {
		// Resolve the neighbors first: frames queued while a next hop
		// resolves may leave behind frames sent once it has resolved.
		if err := pingOnce(a, dst); err != nil {
			t.Fatal(err)
		}
	}
	const tcpFlows = 4              // per family
	const udpFlows = 4              // per family and size
	errs := make(chan error, 1<<14) // room for every error, so no sender blocks
	var serve sync.WaitGroup
	serve.Add(1)
	go func() {
		defer serve.Done()
		for range 2 * tcpFlows {
			c, err := ln.Accept()
			if err != nil {
				errs <- err
				return
			}
			serve.Add(1)
			go func() {
				defer serve.Done()
				defer c.Close()
				errs <- checkFlowStream(c, tcpBytes)
			}()
		}
	}()
	udpGot := make(chan map[netip.AddrPort]int, 1)
	go func() { udpGot <- receiveFlows(u, 2*2*udpFlows*udpCount, errs) }()

	var send sync.WaitGroup
	for fi, dst := range dsts {
		for k := range tcpFlows {
			f := fi*tcpFlows + k
			send.Add(1)
			go func() {
				defer send.Done()
				errs <- sendFlowStream(a, net.JoinHostPort(dst, "7000"), f, tcpBytes)
			}()
		}
		for k := range 2 * udpFlows {
			size := 200
			if k >= udpFlows {
				size = 3000 // two or three fragments at MTU 1500
			}
			f := fi*2*udpFlows + k
			send.Add(1)
			go func() {
				defer send.Done()
				errs <- sendFlowDatagrams(a, net.JoinHostPort(dst, "7001"), f, size, udpCount)
			}()
		}
		send.Add(1)
		go func() {
			defer send.Done()
			for range 5 {
				if err := pingOnce(a, dst); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	send.Wait()
	serve.Wait()
	got := <-udpGot
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if len(got) != 2*2*udpFlows {
		t.Errorf("datagrams arrived from %d UDP flows, want %d", len(got), 2*2*udpFlows)
	}
	for from, n := range got {
		if n != udpCount {
			t.Errorf("%d datagrams from %v, want %d", n, from, udpCount)
		}
	}
	used := 0
	for _, n := range b.InputFrames() {
		if n > 0 {
			used++
		}
	}
	if w := b.InputFrames(); len(w) != 4 || used < 2 {
		t.Errorf("InputFrames = %v: want 4 workers, more than one used", w)
	}
	if st := b.Stats(); st.IPv4.Reassembled == 0 || st.IPv6.Reassembled == 0 {
		t.Errorf("reassembled %d IPv4 and %d IPv6 datagrams; want fragments of both", st.IPv4.Reassembled, st.IPv6.Reassembled)
	}
}

// sendFlowStream dials addr and writes n bytes of flow f's stream.
func sendFlowStream(s *Stack, addr string, f, n int) error {
	c, err := s.Dial("tcp", addr)
	if err != nil {
		return err
	}
	return writeFlowStream(c, f, n)
}

// writeFlowStream writes flow f's number and n bytes of its stream to c,
// then closes c.
func writeFlowStream(c net.Conn, f, n int) error {
	defer c.Close()
	hdr := binary.BigEndian.AppendUint32(nil, uint32(f))
	if _, err := c.Write(hdr); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	for off := 0; off < n; {
		k := min(len(buf), n-off)
		for i := range k {
			buf[i] = flowByte(f, off+i)
		}
		if _, err := c.Write(buf[:k]); err != nil {
			return err
		}
		off += k
	}
	return c.Close()
}

// checkFlowStream reads a stream sendFlowStream wrote and checks every
// byte.
func checkFlowStream(c net.Conn, n int) error {
	c.SetDeadline(time.Now().Add(60 * time.Second))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	f := int(binary.BigEndian.Uint32(hdr[:]))
	buf := make([]byte, 32<<10)
	got := 0
	for {
		k, err := c.Read(buf)
		for i := range k {
			if buf[i] != flowByte(f, got+i) {
				return fmt.Errorf("TCP flow %d: byte %d is %#x, want %#x", f, got+i, buf[i], flowByte(f, got+i))
			}
		}
		got += k
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("TCP flow %d after %d bytes: %w", f, got, err)
		}
	}
	if got != n {
		return fmt.Errorf("TCP flow %d: %d bytes, want %d", f, got, n)
	}
	return nil
}

// sendFlowDatagrams sends count datagrams of size bytes from one socket to
// addr: flow f's sequence numbers and a pattern of both.
func sendFlowDatagrams(s *Stack, addr string, f, size, count int) error {
	c, err := s.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, size)
	for seq := range count {
		fillDatagram(buf, f, seq)
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// fillDatagram writes flow f's datagram seq into buf.
func fillDatagram(buf []byte, f, seq int) {
	binary.BigEndian.PutUint32(buf[0:], uint32(f))
	binary.BigEndian.PutUint32(buf[4:], uint32(seq))
	for i := 8; i < len(buf); i++ {
		buf[i] = byte(f*31 + seq*17 + i)
	}
}

// pingOnce pings dst from s, waiting as long as a loaded link may take.
func pingOnce(s *Stack, dst string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Ping(ctx, netip.MustParseAddr(dst)); err != nil {
		return fmt.Errorf("ping %s: %w", dst, err)
	}
	return nil
}

// receiveFlows reads n datagrams, checking each one's content and that
// each flow's sequence numbers run on without a gap or a step back. It
// returns how many came from each source.
func receiveFlows(u *UDPConn, n int, errs chan<- error) map[netip.AddrPort]int {
	got := make(map[netip.AddrPort]int)
	next := make(map[netip.AddrPort]int)
	buf := make([]byte, 4096)
	want := make([]byte, 4096)
	u.SetReadDeadline(time.Now().Add(60 * time.Second))
	for range n {
		k, from, err := u.ReadFromUDPAddrPort(buf)
		if err != nil {
			errs <- err
			return got
		}
		if k < 8 {
			errs <- fmt.Errorf("datagram of %d bytes from %v", k, from)
			continue
		}
		f, seq := int(binary.BigEndian.Uint32(buf)), int(binary.BigEndian.Uint32(buf[4:]))
		fillDatagram(want[:k], f, seq)
		if string(want[:k]) != string(buf[:k]) {
			errs <- fmt.Errorf("UDP flow %d datagram %d from %v: corrupt", f, seq, from)
		}
		if seq != next[from] {
			errs <- fmt.Errorf("UDP flow %d from %v: datagram %d, want %d", f, from, seq, next[from])
		}
		next[from] = seq + 1
		got[from]++
	}
	return got
}

// TestInputWorkersFullConeFlows: with input workers, the first datagrams
// of a full-cone flow, sent by one socket to eight destinations at once
// (eight 4-tuples, so several workers), make one flow and one request,
// which gets every datagram.
func TestInputWorkersFullConeFlows(t *testing.T) {
	checkGoroutines(t)
	const sources, dsts = 20, 8
	type report struct {
		src netip.AddrPort
		n   int
	}
	reports := make(chan report, 2*sources)
	fwd := &Forwarder{FullConeUDP: true, UDP: func(r *UDPRequest) {
		c, err := r.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, 100)
		n := 0
		for n < dsts {
			if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
				break
			}
			n++
		}
		reports <- report{r.Source(), n}
	}}
	var la, lb *PacketLink
	la = NewPacketLink(PacketLinkConfig{Output: func(p []byte) { lb.Inject(p) }})
	lb = NewPacketLink(PacketLinkConfig{Output: func(p []byte) { la.Inject(p) }})
	a, err := New(Config{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Link: lb, Addr: netip.MustParsePrefix("198.18.0.2/24"), Forwarder: fwd, InputWorkers: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range sources {
		pc, err := a.ListenUDP("udp4", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		for d := range dsts {
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 1, byte(d + 1)}), 5000)
			if _, err := pc.WriteToUDPAddrPort([]byte("hi"), dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := make(map[netip.AddrPort]int)
	for range sources {
		r := <-reports
		seen[r.src]++
		if r.n != dsts {
			t.Errorf("the flow of %v got %d datagrams, want %d", r.src, r.n, dsts)
		}
	}
	for src, n := range seen {
		if n != 1 {
			t.Errorf("%d requests for the flow of %v, want 1", n, src)
		}
	}
	if len(seen) != sources {
		t.Errorf("requests from %d sources, want %d", len(seen), sources)
	}
	if n := len(reports); n != 0 {
		t.Errorf("%d requests more than the %d flows", n, sources)
	}
	if w := b.InputFrames(); len(w) != 4 {
		t.Errorf("InputFrames = %v, want 4 workers", w)
	}
}
