package netstack_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	gvnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	wgnetstack "github.com/gotcpip/netstack/wireguard"
)

// The tunnel's addresses: IPv4 in RFC 2544's benchmarking range, IPv6
// unique local (RFC 4193). The WireGuard UDP traffic itself goes over
// 127.0.0.1.
var (
	addrA  = netip.MustParseAddr("198.18.0.1")
	addrB  = netip.MustParseAddr("198.18.0.2")
	addrA6 = netip.MustParseAddr("fd00::1")
	addrB6 = netip.MustParseAddr("fd00::2")
)

const tunMTU = 1420

// dialer is what both netstacks' Net offer, for tests that run over either.
type dialer interface {
	Dial(network, address string) (net.Conn, error)
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// end is one side of a tunnel: a WireGuard device on a netstack.
type end struct {
	name  string
	addr  netip.Addr   // the first of addrs
	addrs []netip.Addr // its tunnel addresses
	dev   *device.Device
	tdev  tun.Device
	pub   string // hex public key

	ours   *wgnetstack.Net // set when the end runs on our stack
	theirs *gvnetstack.Net // set when it runs on wireguard-go's gVisor netstack

	dial   dialer
	listen func(port int) (net.Listener, error)
}

// newKey returns a WireGuard key pair in hex (X25519, RFC 7748).
func newKey(t testing.TB) (priv, pub string) {
	t.Helper()
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k.Bytes()), hex.EncodeToString(k.PublicKey().Bytes())
}

// newEnd starts a WireGuard device on our stack (ours) or wireguard-go's,
// with tunnel addresses addrs, listening on an ephemeral UDP port.
func newEnd(t testing.TB, name string, ours bool, addrs []netip.Addr, dns []netip.Addr) *end {
	t.Helper()
	e := &end{name: name, addr: addrs[0], addrs: addrs}
	var err error
	if ours {
		e.tdev, e.ours, err = wgnetstack.CreateNetTUN(addrs, dns, tunMTU)
		if err == nil {
			e.dial = e.ours
			e.listen = func(port int) (net.Listener, error) {
				return e.ours.ListenTCP(&net.TCPAddr{Port: port})
			}
		}
	} else {
		e.tdev, e.theirs, err = gvnetstack.CreateNetTUN(addrs, dns, tunMTU)
		if err == nil {
			e.tdev = &syncClose{Device: e.tdev}
			e.dial = e.theirs
			e.listen = func(port int) (net.Listener, error) {
				return e.theirs.ListenTCP(&net.TCPAddr{Port: port})
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	e.dev = device.NewDevice(e.tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	var priv string
	priv, e.pub = newKey(t)
	if err := e.dev.IpcSet("private_key=" + priv + "\nlisten_port=0\n"); err != nil {
		t.Fatal(err)
	}
	if err := e.dev.Up(); err != nil {
		t.Fatal(err)
	}
	return e
}

// port returns the UDP port the device listens on.
func (e *end) port(t testing.TB) int {
	t.Helper()
	p, err := strconv.Atoi(listenPort(e.dev))
	if err != nil || p == 0 {
		t.Fatalf("%s: listen_port %d, %v", e.name, p, err)
	}
	return p
}

// peer makes e and o peers of each other over 127.0.0.1, each routing the
// other's tunnel addresses to it.
func peer(t testing.TB, e, o *end) {
	t.Helper()
	set := func(x, y *end) {
		cfg := fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\n", y.pub, y.port(t))
		for _, a := range y.addrs {
			cfg += fmt.Sprintf("allowed_ip=%s\n", netip.PrefixFrom(a, a.BitLen()))
		}
		if err := x.dev.IpcSet(cfg); err != nil {
			t.Fatal(err)
		}
	}
	set(e, o)
	set(o, e)
}

// pair returns two peered ends: a at addrA, b at addrB, each on our stack
// or wireguard-go's as told. Their devices close when the test ends, and
// the test then fails if goroutines stay behind.
func pair(t testing.TB, aOurs, bOurs bool, dnsForA []netip.Addr) (a, b *end) {
	t.Helper()
	return pairAt(t, aOurs, bOurs, []netip.Addr{addrA}, []netip.Addr{addrB}, dnsForA)
}

// pairAt is pair with the ends' tunnel addresses given.
func pairAt(t testing.TB, aOurs, bOurs bool, aAddrs, bAddrs, dnsForA []netip.Addr) (a, b *end) {
	t.Helper()
	wgnetstack.CheckGoroutines(t)
	a = newEnd(t, "a", aOurs, aAddrs, dnsForA)
	t.Cleanup(a.dev.Close)
	b = newEnd(t, "b", bOurs, bAddrs, nil)
	t.Cleanup(b.dev.Close)
	peer(t, a, b)
	return a, b
}

// syncClose orders the Close of wireguard-go's netstack device after every
// Read that returned, for the race detector. That device's Close closes
// the channel its Read receives packets on, with nothing ordering it after
// the sends of gVisor's goroutines (WriteNotify), which the race detector
// reports (it failed TestPingToGVisor within 10 runs under -race, where gVisor
// sends echo replies from wireguard-go's receiving goroutine). A send whose
// packet Read took happens before Read returns, and so, through mu, before
// Close. A send still blocked when Close runs is a real race in
// wireguard-go's netstack, which this does not hide.
type syncClose struct {
	tun.Device
	mu sync.Mutex
}

func (d *syncClose) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.Device.Read(bufs, sizes, offset)
	d.mu.Lock()
	d.mu.Unlock()
	return n, err
}

func (d *syncClose) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.Device.Close()
}
