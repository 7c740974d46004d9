// Command wireguard is a userspace WireGuard peer: wireguard-go's device on
// github.com/gotcpip/netstack/wireguard, with no TUN device, no root and no
// kernel module. It serves HTTP on its tunnel addresses (IPv4 and IPv6,
// as many as given), or with -get fetches a URL through the tunnel and
// prints it.
//
// The peer comes from a wg-quick style file (-config) or from flags:
//
//	go run . -genkey    # prints a private key and its public key, base64
//
//	# the server, 198.18.0.1 in the tunnel, UDP port 51820 outside
//	go run . -key SERVER_PRIVATE -addr 198.18.0.1 -listen-port 51820 \
//		-peer CLIENT_PUBLIC -allowed-ips 198.18.0.2/32
//
//	# the client fetches from it through the tunnel
//	go run . -key CLIENT_PRIVATE -addr 198.18.0.2 \
//		-peer SERVER_PUBLIC -endpoint 127.0.0.1:51820 -allowed-ips 198.18.0.0/15 \
//		-get http://198.18.0.1/
//
// With -addr 198.18.0.1,fd00::1 on the server, -addr 198.18.0.2,fd00::2 and
// -allowed-ips 198.18.0.0/15,fd00::/64 on the client, -get http://[fd00::1]/
// goes over IPv6.
//
// Either end can be a kernel WireGuard interface (wg-quick up) or any other
// implementation instead.
package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	"github.com/gotcpip/netstack/wireguard"
)

func main() {
	var (
		file       = flag.String("config", "", "wg-quick style configuration `file` (instead of the flags below)")
		key        = flag.String("key", "", "our private key, base64")
		addr       = flag.String("addr", "", "our comma-separated IPv4 and IPv6 addresses inside the tunnel")
		dns        = flag.String("dns", "", "comma-separated DNS servers inside the tunnel")
		mtu        = flag.Int("mtu", 1420, "tunnel MTU")
		listenPort = flag.Int("listen-port", 0, "UDP port to listen on (0: any)")
		peer       = flag.String("peer", "", "the peer's public key, base64")
		endpoint   = flag.String("endpoint", "", "the peer's UDP `host:port` (optional for a server)")
		allowed    = flag.String("allowed-ips", "", "comma-separated prefixes routed to the peer")
		keepalive  = flag.Int("keepalive", 0, "persistent keepalive in seconds (0: off)")
		serve      = flag.Int("port", 80, "TCP port to serve HTTP on, inside the tunnel")
		get        = flag.String("get", "", "fetch this `URL` through the tunnel, print it and exit, instead of serving")
		genkey     = flag.Bool("genkey", false, "print a new private key and its public key, and exit")
		verbose    = flag.Bool("v", false, "log wireguard-go's messages")
	)
	flag.Parse()
	if *genkey {
		priv, pub, err := newKey()
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(priv, pub)
		return
	}
	var cfg *config
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			log.Fatal(err)
		}
		cfg, err = parseConfig(f)
		f.Close()
		if err != nil {
			log.Fatalf("%s: %v", *file, err)
		}
	} else {
		text := fmt.Sprintf("[Interface]\nPrivateKey=%s\nAddress=%s\nMTU=%d\nListenPort=%d\n", *key, *addr, *mtu, *listenPort)
		if *dns != "" {
			text += "DNS=" + *dns + "\n"
		}
		text += fmt.Sprintf("[Peer]\nPublicKey=%s\nEndpoint=%s\nAllowedIPs=%s\nPersistentKeepalive=%d\n", *peer, *endpoint, *allowed, *keepalive)
		var err error
		if cfg, err = parseConfig(strings.NewReader(text)); err != nil {
			log.Fatal(err)
		}
	}
	level := device.LogLevelError
	if *verbose {
		level = device.LogLevelVerbose
	}
	p, err := start(cfg, device.NewLogger(level, "wireguard: "))
	if err != nil {
		log.Fatal(err)
	}
	defer p.close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *get != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := p.fetch(ctx, *get, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	ln, err := p.tnet.ListenTCP(&net.TCPAddr{Port: *serve})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving HTTP on %v inside the tunnel; ^C to stop", ln.Addr())
	srv := &http.Server{Handler: handler()}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// peerDev is a running WireGuard device on our stack.
type peerDev struct {
	dev  *device.Device
	tnet *netstack.Net
}

// start brings up a WireGuard device for cfg on a new stack.
func start(cfg *config, logger *device.Logger) (*peerDev, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("no address for the tunnel (-addr or Address)")
	}
	if cfg.Endpoint != "" {
		if _, err := netip.ParseAddrPort(cfg.Endpoint); err != nil {
			ua, err := net.ResolveUDPAddr("udp", cfg.Endpoint)
			if err != nil {
				return nil, fmt.Errorf("endpoint: %w", err)
			}
			cfg.Endpoint = ua.AddrPort().String()
		}
	}
	uapi, err := cfg.uapi()
	if err != nil {
		return nil, err
	}
	tun, tnet, err := netstack.CreateNetTUN(cfg.Addresses, cfg.DNS, cfg.MTU)
	if err != nil {
		return nil, err
	}
	dev := device.NewDevice(tun, conn.NewDefaultBind(), logger)
	if err := dev.IpcSet(uapi); err != nil {
		dev.Close()
		return nil, err
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, err
	}
	return &peerDev{dev: dev, tnet: tnet}, nil
}

func (p *peerDev) close() { p.dev.Close() }

// fetch GETs url through the tunnel and copies the body to w.
func (p *peerDev) fetch(ctx context.Context, url string, w io.Writer) error {
	tr := &http.Transport{DialContext: p.tnet.DialContext}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// handler answers every request with who asked, through which tunnel.
func handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s, over userspace WireGuard on netstack\n", r.RemoteAddr)
	})
}

// newKey returns a new WireGuard key pair (X25519, RFC 7748), base64.
func newKey() (priv, pub string, err error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	enc := base64.StdEncoding.EncodeToString
	return enc(k.Bytes()), enc(k.PublicKey().Bytes()), nil
}
