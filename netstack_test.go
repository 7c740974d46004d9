package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// newPipePair returns two stacks, 198.18.0.1 and 198.18.0.2, joined by Pipe.
func newPipePair(t testing.TB) (a, b *Stack) {
	t.Helper()
	return newPipePairConfig(t, Config{})
}

// newPipePairConfig is newPipePair with the other settings of cfg.
func newPipePairConfig(t testing.TB, cfg Config) (a, b *Stack) {
	t.Helper()
	la, lb := Pipe()
	return newLinkPair(t, cfg, la, lb)
}

// newLinkPair makes two stacks with the settings of cfg, a on la with
// 198.18.0.1/24 and b on lb with 198.18.0.2/24, closed when the test ends.
func newLinkPair(t testing.TB, cfg Config, la, lb Link) (a, b *Stack) {
	t.Helper()
	ca, cb := cfg, cfg
	ca.Link, cb.Link = la, lb
	ca.Addr, cb.Addr = netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	var err error
	a, err = New(ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err = New(cb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestPingOverPipe(t *testing.T) {
	checkGoroutines(t)
	a, b := newPipePair(t)
	// Each announces itself at start (gratuitous ARP). Should b's arrive
	// while a resolves b, it completes the resolution and a's first echo
	// overtakes its request, so that b must ask for a in turn: wait for
	// the announcements, so that the exchange below is the one it checks.
	waitFor(t, "the gratuitous ARPs", func() bool {
		return a.Stats().ARP.Received >= 1 && b.Stats().ARP.Received >= 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		rtt, err := a.Ping(ctx, b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if rtt <= 0 {
			t.Fatalf("rtt %v", rtt)
		}
	}
	// b counts a reply once it has sent it, which may be after a has read
	// it: wait for the count rather than race it.
	waitFor(t, "b's five replies counted", func() bool { return b.Stats().ICMP.EchoRepliesOut == 5 })
	sa, sb := a.Stats(), b.Stats()
	if sa.ICMP.EchoRepliesIn != 5 || sb.ICMP.EchoRepliesOut != 5 || sb.ICMP.EchoRequestsIn != 5 {
		t.Fatalf("stats a %+v b %+v", sa.ICMP, sb.ICMP)
	}
	// Each learned the other: one request (a's) and one reply (b's); b's
	// cache was filled by a's request. Plus one gratuitous ARP each.
	if sa.ARP.RequestsOut != 1 || sb.ARP.RequestsOut != 0 || sa.ARP.Gratuitous != 1 {
		t.Fatalf("arp a %+v b %+v", sa.ARP, sb.ARP)
	}
}

func TestPingUnresolvable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := newPipePair(t)
		start := time.Now()
		_, err := a.Ping(context.Background(), netip.MustParseAddr("198.18.0.77"))
		if !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Fatalf("got %v, want EHOSTUNREACH", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "ping" {
			t.Fatalf("not a *net.OpError: %#v", err)
		}
		if d := time.Since(start); d < 2*time.Second || d > 5*time.Second {
			t.Fatalf("failed after %v, want about 3 s", d)
		}
	})
}

func TestPingNoRoute(t *testing.T) {
	a, _ := newPipePair(t)
	_, err := a.Ping(context.Background(), netip.MustParseAddr("198.19.0.1"))
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("got %v, want ENETUNREACH", err)
	}
}

func TestPingContextDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, _ := newPipePair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := a.Ping(ctx, netip.MustParseAddr("198.18.0.77"))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("got %v, want a timeout", err)
		}
	})
}

func TestPingAfterClose(t *testing.T) {
	a, b := newPipePair(t)
	a.Close()
	if _, err := a.Ping(context.Background(), b.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("got %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	la, _ := Pipe()
	defer la.Close()
	// A bare-IP link has no link-local address nor router discovery, so
	// a stack on it needs a configured address. (On Ethernet, no address
	// is a SLAAC-only stack: TestNewSLAACOnly.)
	tun := NewPacketLink(PacketLinkConfig{})
	defer tun.Close()
	for _, cfg := range []Config{
		{},
		{Link: tun},
		{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), Gateway: netip.MustParseAddr("198.19.0.1")},
		{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), MAC: net.HardwareAddr{1, 2}},
		{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), MTU: 40},
		{Link: la, Addr: netip.MustParsePrefix("198.18.0.1/24"), MTU: 1501}, // above the link's
	} {
		if s, err := New(cfg); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// TestNewPipeJumbo: a pipe made with a 9000-byte MTU carries 9000-byte
// packets: TCP segments are that large and a 8000-byte datagram goes
// unfragmented.
func TestNewPipeJumbo(t *testing.T) {
	checkGoroutines(t)
	la, lb := NewPipe(PipeConfig{MTU: 9000, Depth: 64})
	if la.MTU() != 9000 || lb.MTU() != 9000 {
		t.Fatalf("MTUs %d, %d", la.MTU(), lb.MTU())
	}
	a, b := newLinkPair(t, Config{}, la, lb)
	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln, 10*time.Second)
	c, err := a.Dial("tcp", "198.18.0.2:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if mss := c.(*TCPConn).Info().SndMSS; mss != 9000-40-12 { // 12: timestamps
		t.Fatalf("MSS %d over a 9000-byte pipe, want 8948", mss)
	}
	pc, err := b.ListenPacket("udp4", ":53")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	u, err := a.Dial("udp", "198.18.0.2:53")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if _, err := u.Write(make([]byte, 8000)); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := pc.ReadFrom(make([]byte, 9000)); err != nil || n != 8000 {
		t.Fatalf("read %d, %v", n, err)
	}
	if f := a.Stats().IPv4.FragmentedPackets; f != 0 {
		t.Fatalf("%d packets fragmented at MTU 9000", f)
	}
	if st := la.Stats(); st.TxFrames == 0 || st.TxDrops != 0 || st.RxFrames == 0 {
		t.Fatalf("pipe end counted %+v", st)
	}
}
