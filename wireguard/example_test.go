package netstack_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	// Was: "golang.zx2c4.com/wireguard/tun/netstack". Nothing else changes.
	"github.com/gotcpip/netstack/wireguard"
)

// Two userspace WireGuard peers in one process, joined over UDP on
// 127.0.0.1: one serves HTTP on its tunnel address, the other fetches it
// through the tunnel. The code is wireguard-go's netstack usage, with the
// import path switched.
func Example() {
	key := func() (priv, pub string) {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			log.Fatal(err)
		}
		return hex.EncodeToString(k.Bytes()), hex.EncodeToString(k.PublicKey().Bytes())
	}
	serverPriv, serverPub := key()
	clientPriv, clientPub := key()

	// The server: 198.18.0.1 inside the tunnel, a UDP port outside.
	tun, tnet, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("198.18.0.1")}, nil, 1420)
	if err != nil {
		log.Fatal(err)
	}
	server := device.NewDevice(tun, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	defer server.Close()
	server.IpcSet("private_key=" + serverPriv + "\nlisten_port=0\n" +
		"public_key=" + clientPub + "\nallowed_ip=198.18.0.2/32\n")
	server.Up()
	port := listenPort(server)
	ln, err := tnet.ListenTCP(&net.TCPAddr{Port: 80})
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s over WireGuard", r.Host)
	}))

	// The client: 198.18.0.2, with the server as its peer.
	tun2, tnet2, err := netstack.CreateNetTUN([]netip.Addr{netip.MustParseAddr("198.18.0.2")}, nil, 1420)
	if err != nil {
		log.Fatal(err)
	}
	client := device.NewDevice(tun2, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	defer client.Close()
	client.IpcSet("private_key=" + clientPriv + "\n" +
		"public_key=" + serverPub + "\nendpoint=127.0.0.1:" + port + "\nallowed_ip=0.0.0.0/0\n")
	client.Up()

	hc := &http.Client{Transport: &http.Transport{DialContext: tnet2.DialContext}}
	resp, err := hc.Get("http://198.18.0.1/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output: hello from 198.18.0.1 over WireGuard
}

// listenPort returns the UDP port a WireGuard device listens on.
func listenPort(d *device.Device) string {
	cfg, err := d.IpcGet()
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.SplitSeq(cfg, "\n") {
		if p, ok := strings.CutPrefix(line, "listen_port="); ok {
			return p
		}
	}
	log.Fatal("no listen_port")
	return ""
}
