package netstack

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestKernelGatewayFailover: two routers on the stack's link, the kernel
// of the TAP's namespace (198.18.N.1) and a second namespace on a macvlan
// of the TAP (198.18.N.3), both holding the same far address, each
// serving its own name on it over HTTP. The stack has both as default
// gateways: it uses the first; when the first stops answering (nftables
// drops all it gets from the link, ARP included) in the middle of a
// transfer through it, the stack's neighbour unreachability detection
// fails the entry, and new connections go through the second.
func TestKernelGatewayFailover(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "nft")
	ns := netnstest.New(t)
	r2 := netnstest.Empty(t)
	gw1 := ns.KernelAddr
	gw2 := ns.StackPrefix.Addr().Next() // 198.18.N.3
	far := netip.AddrFrom4([4]byte{198, 19, 250, 1})
	mv := "mv" + ns.DevName[3:]
	for _, args := range [][]string{
		{"-n", ns.Name, "link", "add", mv, "link", ns.DevName, "type", "macvlan", "mode", "bridge"},
		{"-n", ns.Name, "link", "set", mv, "netns", r2.Name},
		{"-n", r2.Name, "addr", "add", netip.PrefixFrom(gw2, 24).String(), "dev", mv},
		{"-n", r2.Name, "link", "set", mv, "up"},
		{"-n", r2.Name, "addr", "add", far.String() + "/32", "dev", "lo"},
		{"-n", ns.Name, "addr", "add", far.String() + "/32", "dev", "lo"},
	} {
		if out, err := runIn(t, ns, 10*time.Second, "ip", args...); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	serve := func(on *netnstest.NS, name string) {
		var ln net.Listener
		if err := on.Run(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(far, 80).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		body := strings.Repeat("x", 64<<20)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/big" {
				io.WriteString(w, body)
				return
			}
			io.WriteString(w, name)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	serve(ns, "r1")
	serve(r2, "r2")

	s, err := New(Config{Link: ns.Dev, Addr: ns.StackPrefix, Gateways: []netip.Addr{gw1, gw2}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr := &http.Transport{DialContext: s.DialContext, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	get := func(path string, timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+far.String()+path, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get("/", 20*time.Second); err != nil || got != "r1" {
		t.Fatalf("before: %q %v, want r1", got, err)
	}

	// A transfer through r1, which then goes dark.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+far.String()+"/big", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatalf("transfer through r1: %v", err)
	}
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, resp.Body); resp.Body.Close(); close(done) }()
	for _, args := range [][]string{
		{"add", "table", "netdev", "nstdark"},
		{"add", "chain", "netdev", "nstdark", "in", "{ type filter hook ingress device " + ns.DevName + " priority 0 ; }"},
		{"add", "rule", "netdev", "nstdark", "in", "ether", "daddr", macOf(t, ns), "counter", "drop"},
		{"add", "rule", "netdev", "nstdark", "in", "arp", "daddr", "ip", gw1.String(), "counter", "drop"},
	} {
		if out, err := runIn(t, ns, 10*time.Second, "nft", args...); err != nil {
			t.Fatalf("nft %v: %v %s", args, err, out)
		}
	}
	// New connections go through r2 once the stack has found r1 dead:
	// its entry is stale within 30 s of use, probed 5 s later, and fails
	// 3 s after that. The bound is generous.
	var got string
	for deadline := time.Now().Add(120 * time.Second); got != "r2"; {
		if time.Now().After(deadline) {
			t.Fatalf("no connection through r2 (last %q); stats %+v", got, s.Stats().ARP)
		}
		got, _ = get("/", 3*time.Second)
	}
	if st := s.Stats().ARP; st.GatewayDead < 1 {
		t.Fatalf("served by r2 but no gateway counted dead: %+v", st)
	}
	out, _ := runIn(t, ns, 10*time.Second, "nft", "list", "table", "netdev", "nstdark")
	t.Logf("r1's drops: %s", strings.Join(strings.Fields(out), " "))
	cancel()
	<-done
}

// macOf returns the MAC address of the kernel's side of ns's device.
func macOf(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	out, err := runIn(t, ns, 10*time.Second, "cat", "/sys/class/net/"+ns.DevName+"/address")
	if err != nil {
		t.Fatalf("reading the MAC of %s: %v %s", ns.DevName, err, out)
	}
	return strings.TrimSpace(out)
}
