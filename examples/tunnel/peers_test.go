package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/gotcpip/netstack"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// The tests in this file run real tools and real protocol stacks at both
// ends of the tunnel: clients in the client namespace A, whose traffic to
// tunnelPrefix goes into the TUN device, and servers in the far namespace
// B, on addresses of tunnelPrefix that B holds on its loopback. The Relay
// dials each flow's original destination inside B, so every address and
// port a client asks for reaches the server that B has there.

// tunnelPrefix6 is tunnelPrefix's IPv6 counterpart.
const tunnelPrefix6 = "fd00:19::/64"

// farTunnel makes the far namespace B holding addrs (of tunnelPrefix or
// tunnelPrefix6) on its loopback, and the client namespace A whose
// traffic to those prefixes is relayed to B's kernel sockets, original
// destinations kept; pings are relayed from ping sockets in B. If an
// address is IPv6, both namespaces have IPv6:
// A's kernel has fd00:18:N::1/64 on the device and the stack fd00:18:N::2.
func farTunnel(t *testing.T, addrs ...string) (a, b *netnstest.NS, r *Relay, s *netstack.Stack) {
	t.Helper()
	return farTunnelWith(t, nil, addrs...)
}

// farTunnelWith is farTunnel with setup called on the Relay (and B) before its
// Forwarder is made.
func farTunnelWith(t *testing.T, setup func(r *Relay, far *netnstest.NS), addrs ...string) (a, b *netnstest.NS, r *Relay, s *netstack.Stack) {
	t.Helper()
	v6 := slices.ContainsFunc(addrs, func(a string) bool { return strings.Contains(a, ":") })
	var opts []netnstest.Option
	if v6 {
		opts = append(opts, netnstest.IPv6())
	}
	b = netnstest.Empty(t, opts...)
	for _, addr := range addrs {
		args := []string{"addr", "add", addr + "/32", "dev", "lo"}
		if strings.Contains(addr, ":") {
			args = []string{"-6", "addr", "add", addr + "/128", "dev", "lo", "nodad"}
		}
		if _, err := runIn(t, b, 10*time.Second, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	// Ping sockets for root's group (both families follow the IPv4 sysctl).
	if _, err := runIn(t, b, 10*time.Second, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647"); err != nil {
		t.Fatal(err)
	}
	r = &Relay{Dial: dialIn(b), UDPIdleTimeout: time.Second, ListenPing: func(v6 bool) (pc net.PacketConn, err error) {
		err = b.Run(func() (err error) {
			pc, err = listenPing(v6, 0)
			return err
		})
		return pc, err
	}}
	if setup != nil {
		setup(r, b)
	}
	a = netnstest.New(t, append(opts, netnstest.TUN())...)
	cfg := netstack.Config{Link: a.Dev, Addrs: []netip.Prefix{a.StackPrefix}, Forwarder: r.Forwarder()}
	routes := [][]string{{"route", "add", tunnelPrefix, "dev", a.DevName}}
	if v6 {
		n := a.KernelAddr.As4()[2]
		cfg.Addrs = append(cfg.Addrs, netip.MustParsePrefix(fmt.Sprintf("fd00:18:%x::2/64", n)))
		routes = append(routes,
			[]string{"-6", "addr", "add", fmt.Sprintf("fd00:18:%x::1/64", n), "dev", a.DevName, "nodad"},
			[]string{"-6", "route", "add", tunnelPrefix6, "dev", a.DevName})
	}
	s, err := netstack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, args := range routes {
		if _, err := runIn(t, a, 10*time.Second, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	return a, b, r, s
}

// listenIn opens a TCP listener on addr inside ns, closed by Cleanup.
func listenIn(t *testing.T, ns *netnstest.NS, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.Run(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// listenPacketIn opens a UDP socket on addr inside ns, closed by Cleanup.
func listenPacketIn(t *testing.T, ns *netnstest.NS, addr string) net.PacketConn {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Run(func() (err error) {
		pc, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// selfSigned returns a TLS certificate for the IP addresses ips, its own
// issuer, and writes it in PEM to a file for curl's --cacert.
func selfSigned(t *testing.T, ips ...string) (tls.Certificate, *x509.CertPool, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netstack tunnel test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, file
}

// The sizes of the bodies the HTTP servers send (/big) and curl and the
// HTTP/3 client upload.
const (
	downloadSize = 8 << 20
	uploadSize   = 4 << 20
	downSeed     = 7 // the stream seed of /big
	upSeed       = 8 // the stream seed of uploads
)

// webHandler serves the tests' HTTP requests: /big sends downloadSize
// bytes of stream downSeed, /upload answers the size and hex SHA-256 of
// the request's body, and anything else a line naming the request and the
// address it came to.
func webHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(downloadSize))
		io.Copy(w, newStream(downSeed, downloadSize))
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x\n", n, h.Sum(nil))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		local := r.Context().Value(http.LocalAddrContextKey)
		fmt.Fprintf(w, "%s %s %s at %v\n", r.Proto, r.Method, r.URL.RequestURI(), local)
	})
	return mux
}

// serveHTTP runs an HTTP server with webHandler on ln, over TLS with cert
// if cert is not nil. Cleanup closes it and waits for it to stop.
func serveHTTP(t *testing.T, ln net.Listener, cert *tls.Certificate) {
	t.Helper()
	srv := &http.Server{Handler: webHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if cert == nil {
			srv.Serve(ln)
			return
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		srv.ServeTLS(ln, "", "") // offers h2 and http/1.1
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// upload writes uploadSize bytes of stream upSeed to a file and returns
// its name and what /upload answers for it.
func upload(t *testing.T) (file, want string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "upload")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, newStream(upSeed, uploadSize)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sum := digest(upSeed, uploadSize)
	return file, fmt.Sprintf("%d %x", uploadSize, sum)
}

// fileDigest returns the size and SHA-256 of a file.
func fileDigest(t *testing.T, name string) (int64, [32]byte) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return n, [32]byte(h.Sum(nil))
}

// TestTunnelCurl runs curl in A through the tunnel to three web servers
// of B's, on different addresses and ports, one of them over TLS, and
// checks each body: small answers naming the address they came to, a
// download and an upload of several MiB checked by SHA-256. A port B
// has no listener on is refused, as it would be without the tunnel.
func TestTunnelCurl(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "curl")
	a, b, r, _ := farTunnel(t, "198.19.1.1", "198.19.2.2", "198.19.3.3")
	cert, _, caFile := selfSigned(t, "198.19.3.3")
	serveHTTP(t, listenIn(t, b, "198.19.1.1:80"), nil)
	serveHTTP(t, listenIn(t, b, "198.19.2.2:8080"), nil)
	serveHTTP(t, listenIn(t, b, "198.19.3.3:8443"), &cert)
	curl := func(args ...string) (string, error) {
		return runIn(t, a, 40*time.Second, "curl", append([]string{"-sS", "--fail", "--max-time", "30", "--cacert", caFile}, args...)...)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"http://198.19.1.1/"}, "HTTP/1.1 GET / at 198.19.1.1:80"},
		{[]string{"http://198.19.2.2:8080/two?x=1"}, "HTTP/1.1 GET /two?x=1 at 198.19.2.2:8080"},
		{[]string{"https://198.19.3.3:8443/three"}, "HTTP/2.0 GET /three at 198.19.3.3:8443"},
		{[]string{"--http1.1", "https://198.19.3.3:8443/four"}, "HTTP/1.1 GET /four at 198.19.3.3:8443"},
	} {
		start := time.Now()
		out, err := curl(tc.args...)
		if err != nil {
			t.Errorf("curl %s: %v", tc.args, err)
			continue
		}
		if out != tc.want {
			t.Errorf("curl %s: got %q, want %q", tc.args, out, tc.want)
		}
		t.Logf("curl %s: %v", tc.args, time.Since(start).Round(time.Millisecond))
	}

	// A download and an upload each way of the tunnel, over plain HTTP
	// and over TLS.
	up, wantUp := upload(t)
	for _, base := range []string{"http://198.19.2.2:8080", "https://198.19.3.3:8443"} {
		file := filepath.Join(t.TempDir(), "big")
		start := time.Now()
		if _, err := curl("-o", file, base+"/big"); err != nil {
			t.Errorf("download: %v", err)
		} else if n, sum := fileDigest(t, file); n != downloadSize || sum != digest(downSeed, downloadSize) {
			t.Errorf("curl %s/big: got %d bytes, want %d, or corrupted", base, n, downloadSize)
		} else {
			t.Logf("curl %s/big: %d MiB in %v", base, downloadSize>>20, time.Since(start).Round(time.Millisecond))
		}
		start = time.Now()
		out, err := curl("--data-binary", "@"+up, "-H", "Content-Type: application/octet-stream", base+"/upload")
		if err != nil {
			t.Errorf("upload: %v", err)
		} else if out != wantUp {
			t.Errorf("curl %s/upload: server got %q, want %q", base, out, wantUp)
		} else {
			t.Logf("curl %s/upload: %d MiB in %v", base, uploadSize>>20, time.Since(start).Round(time.Millisecond))
		}
	}

	// Nothing listens on port 81: B's kernel refuses the relay's dial, and
	// curl, refused in turn, exits with 7 (could not connect; a timeout
	// would be 28).
	_, err := curl("--connect-timeout", "10", "http://198.19.1.1:81/")
	var exit *exec.ExitError
	if err == nil || !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Errorf("curl to a closed port: %v, want exit status 7", err)
	}
	waitIdle(t, r)
}

// dnsServer answers the tests' queries in B, over UDP and TCP, counting
// each transport's queries: host.test A is 198.18.100.1, many.test has
// manyA A records (too many for 512 bytes), proto.test TXT names the
// transport the query came over; anything else is NXDOMAIN.
type dnsServer struct {
	udp, tcp atomic.Int64
}

const manyA = 100

func (d *dnsServer) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	network := w.RemoteAddr().Network()
	if network == "udp" {
		d.udp.Add(1)
	} else {
		d.tcp.Add(1)
	}
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	qn := q.Question[0]
	hdr := dns.RR_Header{Name: qn.Name, Rrtype: qn.Qtype, Class: dns.ClassINET, Ttl: 60}
	switch {
	case qn.Name == "host.test." && qn.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(198, 18, 100, 1)})
	case qn.Name == "many.test." && qn.Qtype == dns.TypeA:
		for i := range manyA {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(198, 18, 101, byte(i))})
		}
	case qn.Name == "proto.test." && qn.Qtype == dns.TypeTXT:
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{network}})
	default:
		m.Rcode = dns.RcodeNameError
	}
	size := dns.MinMsgSize
	if opt := q.IsEdns0(); opt != nil {
		size = int(opt.UDPSize())
		m.SetEdns0(opt.UDPSize(), false)
	}
	if network == "udp" {
		m.Truncate(size) // sets TC when the answers do not fit
	}
	w.WriteMsg(m)
}

// serveDNS runs d on UDP and TCP port 53 of addr inside ns until Cleanup.
func serveDNS(t *testing.T, ns *netnstest.NS, addr string, d *dnsServer) {
	t.Helper()
	servers := []*dns.Server{
		{PacketConn: listenPacketIn(t, ns, net.JoinHostPort(addr, "53")), Handler: d},
		{Listener: listenIn(t, ns, net.JoinHostPort(addr, "53")), Handler: d},
	}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		select {
		case <-started:
		case <-done:
			t.Fatal("DNS server in B did not start")
		}
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
}

// TestTunnelDig runs dig in A through the tunnel to a DNS server in B,
// over UDP and over TCP (+tcp), and checks the answers and the transport
// the server saw. A large answer comes whole over UDP with EDNS (in IP
// fragments both ways of the relay), and truncated without it, when dig
// retries over TCP.
func TestTunnelDig(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "dig")
	a, b, r, _ := farTunnel(t, "198.19.53.53")
	d := new(dnsServer)
	serveDNS(t, b, "198.19.53.53", d)
	dig := func(args ...string) string {
		t.Helper()
		start := time.Now()
		out, err := runIn(t, a, 30*time.Second, "dig", append([]string{"@198.19.53.53", "+time=3", "+tries=2"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dig %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return out
	}
	many := func(out string) int {
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "198.18.101.") || strings.Contains(l, "\tA\t198.18.101.") {
				n++
			}
		}
		return n
	}

	// Each query must reach the server over its transport only (dig may
	// retry over it if an answer is slow).
	for _, tc := range []struct {
		args []string
		want string
		tcp  bool
	}{
		{[]string{"+short", "host.test", "A"}, "198.18.100.1", false},
		{[]string{"+short", "+tcp", "host.test", "A"}, "198.18.100.1", true},
		{[]string{"+short", "proto.test", "TXT"}, `"udp"`, false},
		{[]string{"+short", "+tcp", "proto.test", "TXT"}, `"tcp"`, true},
	} {
		u0, t0 := d.udp.Load(), d.tcp.Load()
		if out := dig(tc.args...); out != tc.want {
			t.Errorf("dig %s: got %q, want %q", tc.args, out, tc.want)
		}
		du, dt := d.udp.Load()-u0, d.tcp.Load()-t0
		if tc.tcp && (du != 0 || dt == 0) || !tc.tcp && (du == 0 || dt != 0) {
			t.Errorf("dig %s: server saw %d UDP and %d TCP queries", tc.args, du, dt)
		}
	}
	if out := dig("+short", "nothing.test", "A"); out != "" {
		t.Errorf("dig nothing.test: got %q, want no answer", out)
	}
	if out := dig("nothing.test", "A"); !strings.Contains(out, "status: NXDOMAIN") {
		t.Errorf("dig nothing.test: no NXDOMAIN in\n%s", out)
	}

	// manyA records: about 1.6 kB, more than one 1500-byte packet.
	u0, t0 := d.udp.Load(), d.tcp.Load()
	if n := many(dig("+short", "+bufsize=4096", "many.test", "A")); n != manyA {
		t.Errorf("dig +bufsize=4096 many.test over UDP: %d answers, want %d", n, manyA)
	}
	if n := many(dig("+short", "+tcp", "many.test", "A")); n != manyA {
		t.Errorf("dig +tcp many.test: %d answers, want %d", n, manyA)
	}
	out := dig("+noedns", "many.test", "A")
	if n := many(out); n != manyA || !strings.Contains(out, "Truncated, retrying in TCP mode") {
		t.Errorf("dig +noedns many.test: %d answers (want %d), and no TCP retry in\n%s", n, manyA, out)
	}
	if du, dt := d.udp.Load()-u0, d.tcp.Load()-t0; du < 2 || dt < 2 {
		t.Errorf("many.test: server saw %d UDP and %d TCP queries, want 2 of each at least", du, dt)
	}
	waitIdle(t, r)
}

// iperfResult is what the tests read of iperf3's --json report. TCP tests
// report end.sum_sent and end.sum_received, UDP tests end.sum.
type iperfResult struct {
	Start struct {
		Connected []struct {
			RemoteHost string `json:"remote_host"`
			RemotePort int    `json:"remote_port"`
		} `json:"connected"`
	} `json:"start"`
	End struct {
		SumSent     *iperfSum `json:"sum_sent"`
		SumReceived *iperfSum `json:"sum_received"`
		Sum         *iperfSum `json:"sum"`
	} `json:"end"`
	Error string `json:"error"`
}

type iperfSum struct {
	Bytes         int64    `json:"bytes"`
	BitsPerSecond float64  `json:"bits_per_second"`
	Packets       int64    `json:"packets"`
	LostPackets   int64    `json:"lost_packets"`
	LostPercent   *float64 `json:"lost_percent"`
}

// iperfServer starts iperf3 -s on addr:port inside ns and waits until it
// listens. Cleanup kills it.
func iperfServer(t *testing.T, ns *netnstest.NS, addr string, port int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.Command(ctx, "iperf3", "-s", "-B", addr, "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := runIn(t, ns, 10*time.Second, "ss", "-Hltn", "sport = :"+strconv.Itoa(port))
		if err != nil {
			t.Fatal(err)
		}
		if out != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("iperf3 -s does not listen after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// iperf runs an iperf3 client in ns against server (port 5201) for 3 s
// with args added, and checks that data arrived and, for UDP (-u), that
// the loss is reported and under half. It logs the figures.
func iperf(t *testing.T, ns *netnstest.NS, server string, args ...string) {
	t.Helper()
	name := strings.Join(append([]string{"iperf3"}, args...), " ")
	args = append([]string{"-c", server, "-p", "5201", "-t", "3", "--json", "--connect-timeout", "10000"}, args...)
	start := time.Now()
	out, err := runIn(t, ns, 40*time.Second, "iperf3", args...)
	elapsed := time.Since(start).Round(time.Millisecond)
	var res iperfResult
	if jerr := json.Unmarshal([]byte(out), &res); jerr != nil {
		t.Fatalf("%s: %v; output not JSON: %v\n%s", name, err, jerr, out)
	}
	if err != nil || res.Error != "" {
		t.Fatalf("%s: %v: %s", name, err, res.Error)
	}
	if len(res.Start.Connected) == 0 || res.Start.Connected[0].RemoteHost != server {
		t.Errorf("%s: connected to %+v, want %s", name, res.Start.Connected, server)
	}
	if !slices.Contains(args, "-u") {
		sent, recv := res.End.SumSent, res.End.SumReceived
		if sent == nil || recv == nil || recv.Bytes <= 0 {
			t.Errorf("%s: no bytes received: %s", name, out)
			return
		}
		t.Logf("%s: sent %d MiB, received %d MiB, %.2f Gbit/s (%v in all)", name,
			sent.Bytes>>20, recv.Bytes>>20, recv.BitsPerSecond/1e9, elapsed)
		return
	}
	sum := res.End.Sum
	if sum == nil || sum.Bytes <= 0 || sum.Packets <= 0 || sum.LostPercent == nil {
		t.Errorf("%s: no datagrams or no loss reported: %s", name, out)
		return
	}
	t.Logf("%s: %d datagrams, %d lost (%.2f %%), %.1f Mbit/s (%v in all)", name,
		sum.Packets, sum.LostPackets, *sum.LostPercent, sum.BitsPerSecond/1e6, elapsed)
	if *sum.LostPercent >= 50 {
		t.Errorf("%s: %.1f %% of the datagrams lost", name, *sum.LostPercent)
	}
}

// TestTunnelIperf3 runs iperf3 clients in A through the tunnel against an
// iperf3 server in B: TCP each way (-R: the server sends), then UDP at
// 50 Mbit/s each way, 3 s each. The figures are logged; the assertions
// are only that data arrived and, for UDP, that the loss is reported and
// under half.
func TestTunnelIperf3(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "iperf3")
	netnstest.LookPath(t, "ss")
	a, b, r, s := farTunnel(t, "198.19.9.9")
	iperfServer(t, b, "198.19.9.9", 5201)
	iperf(t, a, "198.19.9.9")
	iperf(t, a, "198.19.9.9", "-R")
	iperf(t, a, "198.19.9.9", "-u", "-b", "50M")
	iperf(t, a, "198.19.9.9", "-u", "-b", "50M", "-R")
	t.Logf("stack: %+v", s.Stats().UDP)
	waitIdle(t, r)
}

// TestTunnelIPv6 runs the tools again over IPv6 through the tunnel: curl
// (a small answer and a download), dig over UDP and TCP, iperf3 TCP and
// UDP, and ping -6, relayed through a ping socket of B's.
func TestTunnelIPv6(t *testing.T) {
	checkGoroutines(t)
	for _, tool := range []string{"curl", "dig", "iperf3", "ss", "ping"} {
		netnstest.LookPath(t, tool)
	}
	a, b, r, s := farTunnel(t, "fd00:19::80", "fd00:19::53", "fd00:19::5201")
	serveHTTP(t, listenIn(t, b, "[fd00:19::80]:80"), nil)
	d := new(dnsServer)
	serveDNS(t, b, "fd00:19::53", d)
	iperfServer(t, b, "fd00:19::5201", 5201)

	out, err := runIn(t, a, 40*time.Second, "curl", "-sS", "--fail", "--max-time", "30", "http://[fd00:19::80]/six")
	if want := "HTTP/1.1 GET /six at [fd00:19::80]:80"; err != nil || out != want {
		t.Errorf("curl over IPv6: %q, %v; want %q", out, err, want)
	}
	file := filepath.Join(t.TempDir(), "big")
	if _, err := runIn(t, a, 40*time.Second, "curl", "-sS", "--fail", "--max-time", "30", "-o", file, "http://[fd00:19::80]/big"); err != nil {
		t.Errorf("download over IPv6: %v", err)
	} else if n, sum := fileDigest(t, file); n != downloadSize || sum != digest(downSeed, downloadSize) {
		t.Errorf("download over IPv6: got %d bytes, want %d, or corrupted", n, downloadSize)
	}
	for _, tc := range []struct{ flag, want string }{{"+notcp", `"udp"`}, {"+tcp", `"tcp"`}} {
		out, err := runIn(t, a, 30*time.Second, "dig", "@fd00:19::53", "+time=3", "+tries=2", "+short", tc.flag, "proto.test", "TXT")
		if err != nil || out != tc.want {
			t.Errorf("dig %s over IPv6: %q, %v; want %q", tc.flag, out, err, tc.want)
		}
		// Over UDP, an answer of about 1.6 kB, fragmented.
		out, err = runIn(t, a, 30*time.Second, "dig", "@fd00:19::53", "+time=3", "+tries=2", "+short", "+bufsize=4096", tc.flag, "many.test", "A")
		if n := strings.Count(out+"\n", "\n"); err != nil || n != manyA {
			t.Errorf("dig %s many.test over IPv6: %d answers, %v; want %d", tc.flag, n, err, manyA)
		}
	}
	iperf(t, a, "fd00:19::5201")
	iperf(t, a, "fd00:19::5201", "-u", "-b", "50M", "-R")
	out, err = runIn(t, a, 30*time.Second, "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "5", "fd00:19::80")
	if err != nil || !strings.Contains(out, "3 packets transmitted, 3 received") {
		t.Errorf("ping -6 through the tunnel: %v\n%s", err, out)
	}
	if st := s.Stats().ICMPv6; st.EchoForwarded != 3 || st.EchoRepliesOut != 3 {
		t.Errorf("forwarded %d ICMPv6 echo requests and replied to %d, want 3 and 3", st.EchoForwarded, st.EchoRepliesOut)
	}
	waitIdle(t, r)
}

// TestTunnelHTTP3 makes HTTP/3 requests with quic-go's client in A through
// the tunnel to quic-go's server on a kernel UDP socket in B: QUIC's
// handshake, streams and loss recovery all ride one relayed UDP flow. It
// checks a small answer, a download and an upload of several MiB. The
// client's socket is opened by a thread that entered A (NS.Run), so it
// lives in A and its datagrams go into the TUN device.
func TestTunnelHTTP3(t *testing.T) {
	checkGoroutines(t)
	a, b, r, _ := farTunnel(t, "198.19.4.4")
	cert, pool, _ := selfSigned(t, "198.19.4.4")
	srv := &http3.Server{
		Handler:   webHandler(),
		TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
	}
	pc := listenPacketIn(t, b, "198.19.4.4:443")
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(pc)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})

	var conn *net.UDPConn
	if err := a.Run(func() (err error) {
		conn, err = net.ListenUDP("udp4", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	qt := &quic.Transport{Conn: conn}
	h3 := &http3.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		Dial: func(ctx context.Context, addr string, tlsConf *tls.Config, cfg *quic.Config) (*quic.Conn, error) {
			ua, err := net.ResolveUDPAddr("udp4", addr)
			if err != nil {
				return nil, err
			}
			return qt.DialEarly(ctx, ua, tlsConf, cfg)
		},
	}
	closeClient := sync.OnceFunc(func() {
		h3.Close()
		qt.Close()
		conn.Close()
	})
	defer closeClient()
	client := &http.Client{Transport: h3, Timeout: 30 * time.Second}
	do := func(method, url string, body io.Reader) ([]byte, error) {
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s", resp.Status)
		}
		return b, err
	}

	start := time.Now()
	got, err := do("GET", "https://198.19.4.4/hello", nil)
	if err != nil {
		t.Fatalf("GET /hello: %v", err)
	}
	if want := "HTTP/3.0 GET /hello at 198.19.4.4:443\n"; string(got) != want {
		t.Errorf("GET /hello: %q, want %q", got, want)
	}
	t.Logf("GET /hello (with the handshake): %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	got, err = do("GET", "https://198.19.4.4/big", nil)
	if err != nil {
		t.Fatalf("GET /big: %v", err)
	}
	if len(got) != downloadSize || sha256.Sum256(got) != digest(downSeed, downloadSize) {
		t.Errorf("GET /big: %d bytes, want %d, or corrupted", len(got), downloadSize)
	}
	t.Logf("GET /big: %d MiB in %v", downloadSize>>20, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	got, err = do("POST", "https://198.19.4.4/upload", newStream(upSeed, uploadSize))
	sum := digest(upSeed, uploadSize)
	if want := fmt.Sprintf("%d %x\n", uploadSize, sum); err != nil || string(got) != want {
		t.Errorf("POST /upload: %q, %v; want %q", got, err, want)
	}
	t.Logf("POST /upload: %d MiB in %v", uploadSize>>20, time.Since(start).Round(time.Millisecond))

	closeClient()
	waitIdle(t, r) // the flow ends a second after the last datagram
}
