package pair

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	gvnetstack "golang.zx2c4.com/wireguard/tun/netstack"

	wgnetstack "github.com/gotcpip/netstack/wireguard"
)

// wgMTU is the tunnel's MTU, wireguard-go's default (1500 less the
// WireGuard, UDP and IPv6 headers).
const wgMTU = 1420

// wgEnd is one wireguard-go device and the Net on its netstack.
type wgEnd struct {
	dev    *device.Device
	pub    string
	listen func(addr netip.AddrPort) (net.Listener, error)
	dial   func(ctx context.Context, addr netip.AddrPort) (net.Conn, error)
}

func newWGEnd(ours bool, addr netip.Addr) (*wgEnd, error) {
	e := &wgEnd{}
	var tdev tun.Device
	if ours {
		d, n, err := wgnetstack.CreateNetTUN([]netip.Addr{addr}, nil, wgMTU)
		if err != nil {
			return nil, err
		}
		tdev = d
		e.listen = func(a netip.AddrPort) (net.Listener, error) { return n.ListenTCPAddrPort(a) }
		e.dial = func(ctx context.Context, a netip.AddrPort) (net.Conn, error) { return n.DialContextTCPAddrPort(ctx, a) }
	} else {
		d, n, err := gvnetstack.CreateNetTUN([]netip.Addr{addr}, nil, wgMTU)
		if err != nil {
			return nil, err
		}
		tdev = d
		e.listen = func(a netip.AddrPort) (net.Listener, error) { return n.ListenTCPAddrPort(a) }
		e.dial = func(ctx context.Context, a netip.AddrPort) (net.Conn, error) { return n.DialContextTCPAddrPort(ctx, a) }
	}
	e.dev = device.NewDevice(tdev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		e.dev.Close()
		return nil, err
	}
	e.pub = hex.EncodeToString(k.PublicKey().Bytes())
	if err := e.dev.IpcSet("private_key=" + hex.EncodeToString(k.Bytes()) + "\nlisten_port=0\n"); err != nil {
		e.dev.Close()
		return nil, err
	}
	if err := e.dev.Up(); err != nil {
		e.dev.Close()
		return nil, err
	}
	return e, nil
}

// port is the UDP port the device listens on (it picked one: listen_port=0).
func (e *wgEnd) port() (string, error) {
	cfg, err := e.dev.IpcGet()
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(cfg, "\n") {
		if p, ok := strings.CutPrefix(l, "listen_port="); ok && p != "0" {
			return p, nil
		}
	}
	return "", fmt.Errorf("wireguard: no listen_port in %q", cfg)
}

// peerWith makes e route addr/32 to o's device over 127.0.0.1.
func (e *wgEnd) peerWith(o *wgEnd, addr netip.Addr) error {
	p, err := o.port()
	if err != nil {
		return err
	}
	return e.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%s\nallowed_ip=%s/32\n", o.pub, p, addr))
}

// WireGuard is two wireguard-go devices in this process joined by UDP on
// 127.0.0.1, the tunnel from 198.18.0.1 (client) to 198.18.0.2 (server),
// MTU 1420, each device on netstack's drop-in (ours) or on wireguard-go's
// own tun/netstack, gVisor's netstack through gonet (!ours). The mtu
// argument is ignored.
func WireGuard(ours bool) Factory {
	return func(int) (*Pair, error) {
		ca, sa := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
		p := &Pair{}
		cli, err := newWGEnd(ours, ca)
		if err != nil {
			return nil, err
		}
		p.onClose(func() error { cli.dev.Close(); return nil })
		srv, err := newWGEnd(ours, sa)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.onClose(func() error { srv.dev.Close(); return nil })
		if err := cli.peerWith(srv, sa); err != nil {
			p.Close()
			return nil, err
		}
		if err := srv.peerWith(cli, ca); err != nil {
			p.Close()
			return nil, err
		}
		to := netip.AddrPortFrom(sa, 5001)
		p.Listener, err = srv.listen(to)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.Dial = func(ctx context.Context) (net.Conn, error) { return cli.dial(ctx, to) }
		p.URL = "http://198.18.0.2:5001/"
		return p, nil
	}
}
