package netstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/netnstest"
	"golang.org/x/sys/unix"
)

// dnsmasqServer is dnsmasq(8) serving DHCP in a test's namespace.
type dnsmasqServer struct {
	t      *testing.T
	ns     *netnstest.NS
	bin    string
	dir    string
	leases string // its lease file
	log    *safeBuffer
	cmd    *exec.Cmd
	cancel context.CancelFunc
}

// newDnsmasq prepares a dnsmasq on ns's device; start runs it.
func newDnsmasq(t *testing.T, ns *netnstest.NS) *dnsmasqServer {
	d := &dnsmasqServer{t: t, ns: ns, bin: netnstest.LookPath(t, "dnsmasq"), dir: t.TempDir(), log: new(safeBuffer)}
	d.leases = filepath.Join(d.dir, "leases")
	t.Cleanup(d.stop)
	return d
}

// start runs dnsmasq handing out first..last of the namespace's /24 for
// two minutes (its shortest lease), with T1 at 10 s and T2 at 20 s, the
// kernel's address as router and DNS server, and an MTU of 1400. It is
// authoritative, so it refuses (NAKs) a request for an address outside
// its range. extra are more of its options.
func (d *dnsmasqServer) start(first, last byte, extra ...string) {
	d.t.Helper()
	d.stop()
	k := d.ns.KernelAddr.As4()
	at := func(b byte) string { return netip.AddrFrom4([4]byte{k[0], k[1], k[2], b}).String() }
	ctx, cancel := context.WithCancel(context.Background())
	d.cmd = d.ns.Command(ctx, d.bin, append([]string{"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--port=0", "--user=root", "--interface=" + d.ns.DevName, "--bind-interfaces", "--dhcp-authoritative",
		"--log-dhcp", "--log-facility=-", "--pid-file=" + filepath.Join(d.dir, "pid"), "--dhcp-leasefile=" + d.leases,
		fmt.Sprintf("--dhcp-range=%s,%s,255.255.255.0,2m", at(first), at(last)),
		"--dhcp-option=option:router," + d.ns.KernelAddr.String(),
		"--dhcp-option=option:dns-server," + d.ns.KernelAddr.String(),
		"--dhcp-option=option:mtu,1400",
		"--dhcp-option=option:T1,10", "--dhcp-option=option:T2,20"}, extra...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		cancel()
		d.t.Fatalf("dnsmasq: %v", err)
	}
	d.cancel = cancel
}

// stop stops dnsmasq if it runs; its lease file stays.
func (d *dnsmasqServer) stop() {
	if d.cmd != nil {
		d.cancel()
		d.cmd.Wait()
		d.cmd = nil
	}
}

// waitLog waits for dnsmasq's log to hold s.
func (d *dnsmasqServer) waitLog(s string, bound time.Duration) {
	d.t.Helper()
	for deadline := time.Now().Add(bound); !strings.Contains(d.log.String(), s); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.t.Fatalf("dnsmasq never logged %q in %v; log:\n%s", s, bound, d.log.String())
		}
	}
}

// addrWatch collects what Config.AddrsChanged reports.
type addrWatch chan []netip.Prefix

// wait returns the first report holding an IPv4 address in [lo, hi] of the
// namespace's /24 other than not.
func (w addrWatch) wait(t *testing.T, s *Stack, lo, hi byte, not netip.Addr, bound time.Duration) netip.Prefix {
	t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case addrs := <-w:
			for _, p := range addrs {
				if !p.Addr().Is4() || p.Addr() == not {
					continue
				}
				if b := p.Addr().As4(); b[3] >= lo && b[3] <= hi {
					return p
				}
			}
		case <-timeout:
			t.Fatalf("no leased address in .%d-.%d within %v: Addrs %v, DHCP stats %+v", lo, hi, bound, s.Addrs(), s.Stats().DHCP)
		}
	}
}

// waitStat waits for the DHCP counter cond to hold.
func waitStat(t *testing.T, s *Stack, what string, bound time.Duration, cond func(Stats) bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(s.Stats()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; DHCP stats %+v", what, bound, s.Stats().DHCP)
		}
	}
}

// TestKernelDHCP runs the stack's DHCP client against dnsmasq on the
// kernel's side of a TAP: a lease, HTTP to curl on it, renewals during a
// transfer, a rebind after the server was down past T2, a NAK and a new
// address when the server's pool changes, and a RELEASE at Close.
func TestKernelDHCP(t *testing.T) {
	checkGoroutines(t)
	netnstest.LookPath(t, "curl")
	ns := netnstest.New(t)
	srv := newDnsmasq(t, ns)
	srv.start(100, 149)

	w := make(addrWatch, 16)
	s, err := New(Config{Link: keptDevice{ns.Dev}, DHCP: true, HostName: "netstack-test",
		AddrsChanged: func(a []netip.Prefix) { w <- a }})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	// DISCOVER, OFFER (after dnsmasq's ping check of the address),
	// REQUEST, ACK, then three ARP probes and the wait after them: a
	// handful of seconds. The bound is generous.
	lease := w.wait(t, s, 100, 149, netip.Addr{}, 60*time.Second)
	t.Logf("leased %v", lease)
	if lease.Bits() != 24 {
		t.Errorf("lease %v: want the server's /24 mask", lease)
	}
	if s.Addr() != lease.Addr() {
		t.Errorf("Addr %v, want the leased %v", s.Addr(), lease.Addr())
	}
	if rs := s.Routes(); !slices.ContainsFunc(rs, func(r Route) bool { return r.Dst.Bits() == 0 && r.Gateway == ns.KernelAddr }) {
		t.Errorf("routes %v: no default route by the lease's router %v", rs, ns.KernelAddr)
	}
	if dns := s.e.DNSServers(); !slices.Contains(dns, ns.KernelAddr) {
		t.Errorf("DNS servers %v: want the lease's %v", dns, ns.KernelAddr)
	}
	if st := s.Stats(); st.ARP.Probes != 3 || st.DHCP.Leases != 1 {
		t.Errorf("ARP probes %d, leases %d: want 3 probes before 1 lease", st.ARP.Probes, st.DHCP.Leases)
	}

	// curl reaches an HTTP server on the leased address.
	ln, err := s.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "leased") })}
	go hs.Serve(ln)
	defer hs.Close()
	url := "http://" + netip.AddrPortFrom(lease.Addr(), 8080).String() + "/"
	if out, err := runIn(t, ns, 30*time.Second, "curl", "-sS", "-m", "20", url); err != nil || out != "leased" {
		t.Fatalf("curl %s: %q %v", url, out, err)
	}

	// The lease file names our client id (1 and the MAC) and host name.
	lf, err := os.ReadFile(srv.leases)
	if err != nil {
		t.Fatal(err)
	}
	mac := s.HardwareAddr().String()
	if want := fmt.Sprintf("%s %s netstack-test 01:%s", mac, lease.Addr(), mac); !strings.Contains(string(lf), want) {
		t.Errorf("lease file %q: want %q", lf, want)
	}

	// A transfer from the leased address runs across renewals at T1.
	t.Run("renew", func(t *testing.T) {
		kc, sc := kernelConn(t, s, ns, netip.AddrPortFrom(lease.Addr(), 9000))
		// The stack advertised the MSS of the lease's MTU of 1400: the
		// kernel sends it at most 1360 bytes a segment.
		if mss := maxSeg(t, kc); mss > 1360 {
			t.Errorf("the kernel's MSS to the stack is %d: want at most 1400-40", mss)
		}
		renewals := s.Stats().DHCP.Renewals
		got := make(chan error, 1)
		kc.SetReadDeadline(time.Now().Add(120 * time.Second)) // a bound against a hang
		go func() {
			got <- readPattern(kc)
		}()
		buf := make([]byte, 64<<10)
		var sent int64
		deadline := time.Now().Add(60 * time.Second)
		for s.Stats().DHCP.Renewals < renewals+2 {
			if time.Now().After(deadline) {
				t.Fatalf("no two renewals in 60 s: %+v", s.Stats().DHCP)
			}
			fillPattern(buf, sent)
			sc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := sc.Write(buf); err != nil {
				t.Fatalf("write after %d bytes: %v", sent, err)
			}
			sent += int64(len(buf))
			time.Sleep(5 * time.Millisecond) // a steady stream, not a flood: about 12 MB/s
		}
		sc.Close()
		if err := <-got; err != nil {
			t.Fatalf("transfer of %d bytes across the renewals: %v", sent, err)
		}
		t.Logf("%d MiB moved across 2 renewals", sent>>20)
		if a := s.Addrs(); !slices.Contains(a, lease) {
			t.Fatalf("after renewals, Addrs %v: lost %v", a, lease)
		}
	})

	// The server stops, so the renewal at T1 gets no answer and the client
	// broadcasts at T2 (rebinding); the server comes back and answers the
	// next broadcast (RFC 2131 §4.4.5: at least 60 s later).
	t.Run("rebind", func(t *testing.T) {
		acked := s.Stats().DHCP.Acks
		srv.stop()
		sent := s.Stats().DHCP.Sent
		// One unanswered renewal, then one broadcast: the client is past T2.
		waitStat(t, s, "a renewal and a rebinding request", 60*time.Second, func(st Stats) bool { return st.DHCP.Sent >= sent+2 })
		srv.start(100, 149)
		waitStat(t, s, "rebinding ACKed", 150*time.Second, func(st Stats) bool { return st.DHCP.Acks > acked })
		if a := s.Addrs(); !slices.Contains(a, lease) {
			t.Fatalf("after rebinding, Addrs %v: lost %v", a, lease)
		}
		srv.waitLog("DHCPACK("+ns.DevName+") "+lease.Addr().String(), 10*time.Second)
	})

	// The server's pool moves: the next renewal is refused, the address
	// goes, with the connections from it, and a new one is leased.
	t.Run("nak", func(t *testing.T) {
		kc, sc := kernelConn(t, s, ns, netip.AddrPortFrom(lease.Addr(), 9001))
		naks := s.Stats().DHCP.Naks
		srv.start(150, 199)
		next := w.wait(t, s, 150, 199, lease.Addr(), 90*time.Second)
		t.Logf("after the NAK: %v", next)
		if st := s.Stats().DHCP; st.Naks <= naks {
			t.Errorf("new address without a NAK counted: %+v", st)
		}
		if slices.ContainsFunc(s.Addrs(), func(p netip.Prefix) bool { return p.Addr() == lease.Addr() }) {
			t.Errorf("Addrs %v still hold the refused %v", s.Addrs(), lease)
		}
		sc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := sc.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNABORTED) {
			t.Errorf("read on the lost address: %v, want ECONNABORTED", err)
		}
		kc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := kc.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the kernel's read from the lost address: %v, want ECONNRESET", err)
		}
		lease = next
		url := "http://" + netip.AddrPortFrom(lease.Addr(), 8080).String() + "/"
		if out, err := runIn(t, ns, 30*time.Second, "curl", "-sS", "-m", "20", url); err != nil || out != "leased" {
			t.Fatalf("curl %s: %q %v", url, out, err)
		}
	})

	// Close releases the lease.
	closed = true
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	srv.waitLog("DHCPRELEASE("+ns.DevName+") "+lease.Addr().String(), 10*time.Second)
}

// TestKernelDHCPDecline has the server offer an address the kernel holds:
// the stack's ARP probe finds it in use (the kernel answers probes, RFC
// 5227 §2.1.1), so the stack declines it, waits the 10 s RFC 2131
// §3.1.5 asks, and leases another.
func TestKernelDHCPDecline(t *testing.T) {
	checkGoroutines(t)
	ns := netnstest.New(t)
	k := ns.KernelAddr.As4()
	taken := netip.AddrFrom4([4]byte{k[0], k[1], k[2], 100})
	if out, err := runIn(t, ns, 10*time.Second, "ip", "addr", "add", taken.String()+"/32", "dev", ns.DevName); err != nil {
		t.Fatalf("ip addr add: %v %s", err, out)
	}
	mac := net.HardwareAddr{0x02, 0x18, 0, 0, k[2], 0x64}
	srv := newDnsmasq(t, ns)
	// The server reserves the taken address for our MAC and, not pinging
	// before it offers, offers it; once declined it offers from its range.
	srv.start(101, 149, "--no-ping", "--dhcp-host="+mac.String()+","+taken.String())
	w := make(addrWatch, 16)
	s, err := New(Config{Link: ns.Dev, MAC: mac, DHCP: true, HostName: "netstack-test",
		AddrsChanged: func(a []netip.Prefix) { w <- a }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lease := w.wait(t, s, 101, 149, netip.Addr{}, 90*time.Second)
	st := s.Stats()
	if st.DHCP.Declines != 1 || st.ARP.Conflicts < 1 || st.DHCP.Leases != 1 {
		t.Errorf("leased %v with declines %d, conflicts %d, leases %d: want 1 decline before 1 lease", lease, st.DHCP.Declines, st.ARP.Conflicts, st.DHCP.Leases)
	}
	srv.waitLog("DHCPDECLINE("+ns.DevName+") "+taken.String(), 10*time.Second)
	if slices.ContainsFunc(s.Addrs(), func(p netip.Prefix) bool { return p.Addr() == taken }) {
		t.Errorf("Addrs %v hold the declined %v", s.Addrs(), taken)
	}
}

// kernelConn returns both ends of a connection from the kernel to the
// stack's address at; the test's end closes them.
func kernelConn(t *testing.T, s *Stack, ns *netnstest.NS, at netip.AddrPort) (kernel, stack net.Conn) {
	t.Helper()
	ln, err := s.Listen("tcp", at.String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := ns.Run(func() (err error) {
		kernel, err = net.DialTimeout("tcp", at.String(), 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Close() })
	if stack, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stack.Close() })
	return kernel, stack
}

// maxSeg returns the kernel's TCP_MAXSEG of c: the most it sends in a
// segment.
func maxSeg(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mss int
	var serr error
	if err := rc.Control(func(fd uintptr) { mss, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG) }); err != nil || serr != nil {
		t.Fatalf("TCP_MAXSEG: %v %v", err, serr)
	}
	return mss
}

// keptDevice is a test's TAP device whose Close ends the stack's reads
// but keeps the device, and so the kernel's interface, until the test
// ends: closing the device would take the interface away before the
// server had handled the RELEASE the stack sent as it closed.
type keptDevice struct{ *link.Device }

func (d keptDevice) Close() error { return d.SetReadDeadline(time.Now()) }

// fillPattern fills b with the pattern's bytes from offset off.
func fillPattern(b []byte, off int64) {
	for i := range b {
		b[i] = byte((off + int64(i)) % 251)
	}
}

// readPattern reads r to EOF and checks every byte is fillPattern's.
func readPattern(r io.Reader) error {
	buf := make([]byte, 64<<10)
	var off int64
	for {
		n, err := r.Read(buf)
		for i := range n {
			if buf[i] != byte((off+int64(i))%251) {
				return fmt.Errorf("byte %d is %d, want %d", off+int64(i), buf[i], (off+int64(i))%251)
			}
		}
		off += int64(n)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("after %d bytes: %w", off, err)
		}
	}
}
