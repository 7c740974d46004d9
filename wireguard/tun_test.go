package netstack

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"
)

var (
	testAddr  = netip.MustParseAddr("198.18.0.1")
	peerAddr  = netip.MustParseAddr("198.18.0.2")
	testAddr6 = netip.MustParseAddr("fd00::1")
)

func newTestTUN(t *testing.T, addrs ...netip.Addr) (*Device, *Net) {
	t.Helper()
	CheckGoroutines(t)
	td, n, err := CreateNetTUN(addrs, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { td.Close() })
	return td.(*Device), n
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (d *Device) sendersWaiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waiting
}

func makeBufs(k, size int) ([][]byte, []int) {
	bufs := make([][]byte, k)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, k)
}

// TestReadBatchesWaitingSenders has 40 goroutines send a datagram each
// before anyone reads: one Read then returns all 40, each an IPv4 packet
// at the offset asked for; a Read with fewer buffers returns as many.
func TestReadBatchesWaitingSenders(t *testing.T) {
	d, n := newTestTUN(t, testAddr)
	const senders, offset = 40, 16
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			c, err := n.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 9))
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if _, err := c.Write(make([]byte, 100+i)); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "40 senders", func() bool { return d.sendersWaiting() == senders })

	bufs, sizes := makeBufs(8, 2000)
	k, err := d.Read(bufs, sizes, offset)
	if err != nil || k != 8 {
		t.Fatalf("Read with 8 buffers = %d, %v; want 8 (all full)", k, err)
	}
	seen := make(map[int]bool)
	check := func(bufs [][]byte, sizes []int, k int) {
		for i := range k {
			pkt := bufs[i][offset : offset+sizes[i]]
			if pkt[0]>>4 != 4 || netip.AddrFrom4([4]byte(pkt[16:20])) != peerAddr || pkt[9] != 17 {
				t.Fatalf("packet %d is not IPv4/UDP to %v: % x", i, peerAddr, pkt[:20])
			}
			if tot := int(binary.BigEndian.Uint16(pkt[2:])); tot != sizes[i] {
				t.Errorf("packet %d: size %d, IPv4 total length %d", i, sizes[i], tot)
			}
			seen[sizes[i]-28-100] = true
		}
	}
	check(bufs, sizes, k)
	waitFor(t, "32 senders", func() bool { return d.sendersWaiting() == senders-8 })
	bufs, sizes = makeBufs(BatchSize, 2000)
	k, err = d.Read(bufs, sizes, offset)
	if err != nil || k != senders-8 {
		t.Fatalf("Read with %d buffers = %d, %v; want %d (every waiting sender)", BatchSize, k, err, senders-8)
	}
	check(bufs, sizes, k)
	wg.Wait()
	if len(seen) != senders {
		t.Errorf("read %d distinct datagrams, want %d", len(seen), senders)
	}
	if st := d.Stats(); st.Read != senders || st.Reads != 2 || st.DropTooBig != 0 || st.DropClosed != 0 {
		t.Errorf("stats %+v; want Read %d in 2 Reads and no drops", st, senders)
	}
}

// TestReadDropsTooBig: a packet larger than the buffer after the offset is
// dropped and counted, and the next one is read.
func TestReadDropsTooBig(t *testing.T) {
	d, n := newTestTUN(t, testAddr)
	c, err := n.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		if _, err := c.Write(make([]byte, 500)); err != nil {
			done <- err
			return
		}
		_, err := c.Write(make([]byte, 10))
		done <- err
	}()
	bufs, sizes := makeBufs(1, 116)
	k, err := d.Read(bufs, sizes, 16)
	if err != nil || k != 1 || sizes[0] != 38 {
		t.Fatalf("Read = %d (size %d), %v; want the 38-byte packet", k, sizes[0], err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.DropTooBig != 1 {
		t.Errorf("DropTooBig = %d, want 1", st.DropTooBig)
	}
}

// TestCloseUnblocks: Close makes a blocked Read return os.ErrClosed, and a
// sender waiting for a Read return with its packet counted; afterwards Read
// and Write fail with os.ErrClosed, and Events, which held EventUp, is
// closed.
func TestCloseUnblocks(t *testing.T) {
	d, _ := newTestTUN(t, testAddr)
	if ev := <-d.Events(); ev != tun.EventUp {
		t.Errorf("first event %v, want EventUp", ev)
	}
	bufs, sizes := makeBufs(4, 2000)
	read := make(chan error, 1)
	go func() {
		_, err := d.Read(bufs, sizes, 0)
		read <- err
	}()
	waitFor(t, "Read to be posted", func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.bufs != nil })
	d.Close()
	select {
	case err := <-read:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("blocked Read returned %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked 10 s after Close")
	}
	if _, err := d.Read(bufs, sizes, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
	if _, err := d.Write([][]byte{{0x45, 0, 0, 20}}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
	if _, ok := <-d.Events(); ok {
		t.Error("Events not closed after Close")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// A sender blocked for want of a Read.
	d2, n2 := newTestTUN(t, testAddr)
	c, err := n2.DialUDPAddrPort(netip.AddrPort{}, netip.AddrPortFrom(peerAddr, 9))
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { _, err := c.Write([]byte("x")); sent <- err }()
	waitFor(t, "a waiting sender", func() bool { return d2.sendersWaiting() == 1 })
	d2.Close()
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("sender still blocked 10 s after Close")
	}
	if st := d2.Stats(); st.DropClosed != 1 {
		t.Errorf("DropClosed = %d, want 1", st.DropClosed)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("UDP Write after Close: %v, want net.ErrClosed", err)
	}
}

// TestWriteAndReadBetweenDevices joins two devices by copying Read's
// batches into Write at wireguard-go's offsets, and exchanges UDP over
// them; garbage written is dropped and counted, and an IPv6 packet goes to
// the stack, which counts it as not for it (it has no IPv6 address).
func TestWriteAndReadBetweenDevices(t *testing.T) {
	da, na := newTestTUN(t, testAddr)
	db, nb := newTestTUN(t, peerAddr)
	joinDevices(t, da, db)
	udpBetween(t, na, nb, testAddr, peerAddr)

	// RFC 8200 §3: an IPv6 header, 8 bytes of payload, next header 59
	// (none), from fd00::1 to fd00::2.
	v6 := make([]byte, 16+40+8)
	v6[16] = 0x60
	binary.BigEndian.PutUint16(v6[16+4:], 8)
	v6[16+6], v6[16+7] = 59, 64
	src, dst := netip.MustParseAddr("fd00::1").As16(), netip.MustParseAddr("fd00::2").As16()
	copy(v6[16+8:], src[:])
	copy(v6[16+24:], dst[:])
	junk := []byte{0: 0, 16: 0x10, 17: 1}
	if k, err := db.Write([][]byte{v6, junk, make([]byte, 16)}, 16); err != nil || k != 3 {
		t.Errorf("Write(IPv6, junk, empty) = %d, %v; want 3, nil", k, err)
	}
	if st := db.Stats(); st.DropUnknown != 1 || st.Written != 4 || st.Link.InjectDrops != 0 {
		t.Errorf("stats %+v; want DropUnknown 1, Written 4 (the fragments and the IPv6 packet), no inject drops", st)
	}
	waitFor(t, "the stack to drop the IPv6 packet", func() bool { return nb.Stack().Stats().IPv6.DropNotForUs == 1 })
}

// joinDevices joins two devices by copying Read's batches into Write at
// wireguard-go's offsets, until the test ends.
func joinDevices(t *testing.T, da, db *Device) {
	var wg sync.WaitGroup
	pump := func(from, to *Device) {
		bufs, sizes := makeBufs(BatchSize, 16+1420)
		for {
			k, err := from.Read(bufs, sizes, 16)
			if err != nil {
				return
			}
			out := make([][]byte, k)
			for i := range k {
				out[i] = bufs[i][:16+sizes[i]]
			}
			if _, err := to.Write(out, 16); err != nil {
				return
			}
		}
	}
	wg.Go(func() { pump(da, db) })
	wg.Go(func() { pump(db, da) })
	t.Cleanup(func() { da.Close(); db.Close(); wg.Wait() })
}

// udpBetween sends a datagram in three fragments from src on na to port 7
// of to on nb, which must receive it whole.
func udpBetween(t *testing.T, na, nb *Net, src, to netip.Addr) {
	t.Helper()
	srv, err := nb.ListenUDP(&net.UDPAddr{Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := na.DialUDP(nil, &net.UDPAddr{IP: to.AsSlice(), Port: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 4000) // three fragments
	for i := range msg {
		msg[i] = byte(i)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8000)
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, from, err := srv.ReadFromUDPAddrPort(buf)
	if err != nil || k != len(msg) || from.Addr().Unmap() != src {
		t.Fatalf("ReadFrom = %d from %v, %v; want %d from %v", k, from, err, len(msg), src)
	}
	for i := range k {
		if buf[i] != byte(i) {
			t.Fatalf("byte %d = %d, want %d", i, buf[i], byte(i))
		}
	}
}

// TestIPv6BetweenDevices: between devices with an IPv4 and an IPv6
// address each, Read returns IPv6 packets and Write hands them to the
// stack: a datagram in fragments arrives over each family, to one
// dual-stack socket.
func TestIPv6BetweenDevices(t *testing.T) {
	peerAddr6 := netip.MustParseAddr("fd00::2")
	da, na := newTestTUN(t, testAddr, testAddr6)
	db, nb := newTestTUN(t, peerAddr, peerAddr6)
	joinDevices(t, da, db)
	udpBetween(t, na, nb, testAddr6, peerAddr6)
	udpBetween(t, na, nb, testAddr, peerAddr)
	if st := nb.Stack().Stats().IPv6; st.FragmentsIn != 3 || st.Reassembled != 1 {
		t.Errorf("b's IPv6 stats %+v; want 3 fragments in, 1 datagram reassembled", st)
	}
	if st := db.Stats(); st.Written < 6 || st.DropUnknown != 0 {
		t.Errorf("b's device stats %+v; want at least 6 packets written (the fragments), none dropped", st)
	}
	// A local port without an address binds the port, in the peer's family.
	c, err := na.DialUDPAddrPort(netip.AddrPortFrom(netip.Addr{}, 4242), netip.AddrPortFrom(peerAddr6, 7))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if la := c.LocalAddr().(*net.UDPAddr).AddrPort(); la.Port() != 4242 || !la.Addr().Is6() {
		t.Errorf("DialUDPAddrPort(:4242, %v): LocalAddr %v; want an IPv6 address, port 4242", peerAddr6, la)
	}
}

// TestCreateNetTUNErrors: CreateNetTUN takes at least one valid address,
// each once, and a positive MTU, at least 1280 with an IPv6 address; it
// takes several of each family.
func TestCreateNetTUNErrors(t *testing.T) {
	CheckGoroutines(t)
	for _, tc := range []struct {
		name  string
		addrs []netip.Addr
		mtu   int
	}{
		{"none", nil, 1420},
		{"twice", []netip.Addr{testAddr, testAddr}, 1420},
		{"IPv6 twice", []netip.Addr{testAddr6, testAddr6}, 1420},
		{"zero", []netip.Addr{testAddr, {}}, 1420},
		{"unspecified", []netip.Addr{netip.IPv6Unspecified()}, 1420},
		{"IPv6 with MTU 1279", []netip.Addr{testAddr, testAddr6}, 1279},
		{"MTU 0", []netip.Addr{testAddr}, 0},
		{"MTU 60", []netip.Addr{testAddr}, 60},
	} {
		if d, _, err := CreateNetTUN(tc.addrs, nil, tc.mtu); err == nil {
			d.Close()
			t.Errorf("%s: CreateNetTUN succeeded", tc.name)
		}
	}
	d, _, err := CreateNetTUN([]netip.Addr{netip.MustParseAddr("::ffff:198.18.0.1")}, nil, 1280)
	if err != nil {
		t.Fatalf("IPv4-mapped address: %v", err)
	}
	if mtu, _ := d.MTU(); mtu != 1280 || d.BatchSize() != BatchSize {
		t.Errorf("MTU %d, BatchSize %d; want 1280, %d", mtu, d.BatchSize(), BatchSize)
	}
	d.Close()

	several := []netip.Addr{testAddr, testAddr6, peerAddr, netip.MustParseAddr("2001:db8::1")}
	d, n, err := CreateNetTUN(several, nil, 1280)
	if err != nil {
		t.Fatalf("%v: %v", several, err)
	}
	defer d.Close()
	want := []netip.Prefix{netip.MustParsePrefix("198.18.0.1/32"), netip.MustParsePrefix("198.18.0.2/32"),
		netip.MustParsePrefix("fd00::1/128"), netip.MustParsePrefix("2001:db8::1/128")} // the stack lists IPv4 first
	if got := n.Stack().Addrs(); !slices.Equal(got, want) {
		t.Errorf("stack addresses %v; want %v", got, want)
	}
	if !n.hasV4 || !n.hasV6 {
		t.Errorf("hasV4 %v, hasV6 %v; want both", n.hasV4, n.hasV6)
	}
}

// TestDialErrors: networks and addresses Dial refuses before sending.
func TestDialErrors(t *testing.T) {
	_, n := newTestTUN(t, testAddr)
	for _, tc := range []struct{ network, address, want string }{
		{"ping6", "198.18.0.2", errNoSuitableAddress.Error()},
		{"ping4", "fd00::1", errNoSuitableAddress.Error()},
		{"ip4:icmp", "198.18.0.2", "unknown network ip4:icmp"},
		{"tcp6", "198.18.0.2:80", errNoSuitableAddress.Error()},
		{"tcp", "198.18.0.2:http", errNumericPort.Error()},
		{"tcp", "198.18.0.2", "missing port in address"},
		{"udp", ":80", errNoSuchHost.Error()},
		{"tcp", "name.test:80", "no DNS servers"},
	} {
		_, err := n.Dial(tc.network, tc.address)
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" || !containsErr(err, tc.want) {
			t.Errorf("Dial(%q, %q) = %v; want a dial *net.OpError saying %q", tc.network, tc.address, err, tc.want)
		}
	}
	if _, err := n.DialTCP(nil); err == nil {
		t.Error("DialTCP(nil) succeeded")
	}
	if _, err := n.LookupHost("-bad-.test"); err == nil {
		t.Error("LookupHost(-bad-.test) succeeded")
	}
}

func containsErr(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

// TestIsDomainName checks the host name syntax LookupHost accepts.
func TestIsDomainName(t *testing.T) {
	for s, want := range map[string]bool{
		"name.test": true, "name.test.": true, "a": true, "_srv.x-y.test": true, "1a.test": true,
		"": false, ".": false, "a..b": false, "-a.test": false, "a-.test": false, "123": false,
		"1.2.3": false, "a b.test": false, string(make([]byte, 64)) + ".test": false,
	} {
		if got := isDomainName(s); got != want {
			t.Errorf("isDomainName(%q) = %v, want %v", s, got, want)
		}
	}
}
