package main

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/device"
)

func TestParseConfig(t *testing.T) {
	c, err := parseConfig(strings.NewReader(`
# a wg-quick file
[Interface]
PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
Address = 198.18.0.2/24, fd00::2/64
DNS = 198.18.0.53
MTU = 1380
PostUp = iptables ...   # ignored

[Peer]
PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
Endpoint = 127.0.0.1:51820
AllowedIPs = 198.18.0.0/15, 198.19.1.1
PersistentKeepalive = 25
`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Addresses, []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd00::2")}) || c.MTU != 1380 || len(c.DNS) != 1 ||
		c.Endpoint != "127.0.0.1:51820" || c.Keepalive != 25 || len(c.AllowedIPs) != 2 ||
		c.AllowedIPs[1] != netip.MustParsePrefix("198.19.1.1/32") {
		t.Errorf("parsed %+v", c)
	}
	u, err := c.uapi()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"private_key=c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669\n",
		"endpoint=127.0.0.1:51820\n", "persistent_keepalive_interval=25\n",
		"allowed_ip=198.18.0.0/15\n", "allowed_ip=198.19.1.1/32\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("uapi lacks %q:\n%s", want, u)
		}
	}
	for _, bad := range []string{"[Peer]\n[Peer]\n", "[Nope]\n", "Address = 1.2.3.4\n", "[Interface]\nMTU = x\n", "[Interface]\njunk\n"} {
		if _, err := parseConfig(strings.NewReader(bad)); err == nil {
			t.Errorf("parseConfig(%q) succeeded", bad)
		}
	}
}

// TestServeAndFetch runs two peers of this command in one process over
// 127.0.0.1, each with an IPv4 and an IPv6 tunnel address, and fetches the
// server's page through the tunnel over each family.
func TestServeAndFetch(t *testing.T) {
	sPriv, sPub, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	cPriv, cPub, _ := newKey()
	logger := device.NewLogger(device.LogLevelSilent, "")
	server, err := start(&config{PrivateKey: sPriv, Addresses: []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("fd00::1")}, MTU: 1420,
		PeerPublicKey: cPub, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("fd00::2/128")}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer server.close()
	ln, err := server.tnet.ListenTCP(&net.TCPAddr{Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler()}
	go srv.Serve(ln)
	defer srv.Close()

	cfg, err := server.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(cfg, "listen_port=")
	port, _, _ = strings.Cut(port, "\n")
	if p, err := strconv.Atoi(port); err != nil || p == 0 {
		t.Fatalf("server listen_port %q", port)
	}
	client, err := start(&config{PrivateKey: cPriv, Addresses: []netip.Addr{netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("fd00::2")}, MTU: 1420,
		PeerPublicKey: sPub, Endpoint: "127.0.0.1:" + port,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("fd00::/64")}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer client.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for url, want := range map[string]string{"http://198.18.0.1/": "hello 198.18.0.2:", "http://[fd00::1]/": "hello [fd00::2]:"} {
		var out strings.Builder
		if err := client.fetch(ctx, url, &out); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); !strings.HasPrefix(got, want) {
			t.Errorf("fetched %s: %q, want %s...", url, got, want)
		}
	}
}
