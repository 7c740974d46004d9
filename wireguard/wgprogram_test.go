//go:build linux

package netstack_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"

	wgnetstack "github.com/gotcpip/netstack/wireguard"
)

// requireEnv is the core's netnstest.RequireEnv: set to 1 (as CI does), a
// privileged test that cannot run fails instead of skipping. (That package
// is internal to the core module, so its few lines are mirrored here.)
const requireEnv = "NETSTACK_REQUIRE_PRIVILEGED"

// skipOrFail skips t for reason, or fails it when requireEnv is 1.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", reason, requireEnv)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", reason, requireEnv)
}

// requirePrivileged checks what a namespace test needs: root, TUN and
// ip(8), then each of tools, returning their paths in order.
func requirePrivileged(t testing.TB, tools ...string) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "network namespace tests need root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		skipOrFail(t, fmt.Sprintf("no TUN support: %v", err))
	}
	var paths []string
	for _, tool := range append([]string{"ip"}, tools...) {
		p, err := exec.LookPath(tool)
		if err != nil {
			skipOrFail(t, fmt.Sprintf("%s not installed: %v", tool, err))
		}
		paths = append(paths, p)
	}
	return paths[1:]
}

// netns is a network namespace the test created; it is deleted, with every
// interface in it, when the test ends.
type netns struct {
	t    testing.TB
	name string
}

func newNetns(t testing.TB, name string) *netns {
	t.Helper()
	n := &netns{t: t, name: name}
	runCmd(t, 10*time.Second, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", name, err, out)
		}
	})
	n.ip("link", "set", "dev", "lo", "up")
	return n
}

// ip runs ip(8) in the namespace.
func (n *netns) ip(args ...string) {
	n.t.Helper()
	runCmd(n.t, 10*time.Second, "ip", append([]string{"-n", n.name}, args...)...)
}

// exec runs a program in the namespace (ip netns exec), killed after
// timeout, and returns its combined output and error.
func (n *netns) exec(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name}, args...)...).CombinedOutput()
	return string(out), err
}

// run calls fn on a thread that entered the namespace (setns(2)), so the
// sockets fn opens belong to it; they keep working from any goroutine. The
// thread stays locked when its goroutine ends, so the runtime terminates it
// rather than reuse it, still in the namespace. fn must not start
// goroutines that open sockets: those run elsewhere.
func (n *netns) run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // no Unlock, deliberately
		fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// runCmd runs a command, failing t with its output if it fails.
func runCmd(t testing.TB, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// wgProgram is a running wireguard-go program.
type wgProgram struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	log bytes.Buffer // everything it printed
}

func (p *wgProgram) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// startWireguardGo builds the wireguard-go program from this module's
// dependency and runs it in the namespace in the foreground, making the
// kernel TUN ifname there. It returns once the program says its UAPI
// socket (/var/run/wireguard/ifname.sock, outside the namespace: the name
// must be unique on the machine) listens; the test's end stops it by its
// pid and waits for it.
func startWireguardGo(t *testing.T, n *netns, ifname string) *wgProgram {
	t.Helper()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = requirePrivileged(t, "go")[0]
	}
	bin := filepath.Join(t.TempDir(), "wireguard-go")
	runCmd(t, 5*time.Minute, gobin, "build", "-o", bin, "golang.zx2c4.com/wireguard")

	p := &wgProgram{cmd: exec.Command("ip", "netns", "exec", n.name, bin, ifname)}
	// Foreground, without the daemon fork (and without the "your kernel has
	// WireGuard" banner); verbose, for the line that says it is ready.
	p.cmd.Env = append(os.Environ(), "WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=verbose")
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// ip netns exec execs the program, so this pid is wireguard-go's.
	pid := p.cmd.Process.Pid
	ready := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.Contains(sc.Text(), "UAPI listener started") {
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGTERM)
		<-ended // the pipe closes when it exits
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("wireguard-go (pid %d) after SIGTERM: %v\n%s", pid, err, p.output())
		}
	})
	select {
	case <-ready:
	case <-ended:
		t.Fatalf("wireguard-go exited before its UAPI listener started:\n%s", p.output())
	case <-time.After(30 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("wireguard-go: no UAPI listener after 30 s:\n%s", p.output())
	}
	return p
}

// nsBind opens its Bind's sockets in a namespace. The device opens them
// when it goes up, which it may do on a goroutine of its own (on the
// tun.Device's EventUp), so the namespace is entered in Open itself.
type nsBind struct {
	conn.Bind
	ns *netns
}

func (b nsBind) Open(port uint16) (fns []conn.ReceiveFunc, actual uint16, err error) {
	err = b.ns.run(func() (err error) {
		fns, actual, err = b.Bind.Open(port)
		return err
	})
	return fns, actual, err
}

// b64 turns a hex key (UAPI's form) into base64 (wg(8)'s).
func b64(t testing.TB, hexKey string) string {
	t.Helper()
	k, err := hex.DecodeString(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// TestWireguardGoProgram runs the real wireguard-go program with a kernel
// TUN in a namespace, configured by wg(8) through its UAPI socket, as the
// peer of a WireGuard device on our stack in this process. The UDP
// underlay is a veth pair between that namespace and a second one, where
// our device's sockets live:
//
//	ns k: wgNNN (kernel TUN, 198.18.50.1/24, fd00:50::1/64)   veth 198.18.51.1:51820
//	ns u:                                   veth 198.18.51.2:51821 ← our device, tunnel addresses 198.18.50.2, fd00:50::2
//
// curl and ping in ns k reach our stack through the tunnel over IPv4 and
// IPv6 (curl -6, ping -6), and our stack reaches an HTTP server and the
// kernel's ICMP and ICMPv6 echo in ns k over each.
func TestWireguardGoProgram(t *testing.T) {
	tools := requirePrivileged(t, "wg", "curl", "ping")
	wgPath, curlPath, pingPath := tools[0], tools[1], tools[2]
	wgnetstack.CheckGoroutines(t)

	var (
		kernelTun  = netip.MustParseAddr("198.18.50.1")
		oursTun    = netip.MustParseAddr("198.18.50.2")
		kernelTun6 = netip.MustParseAddr("fd00:50::1")
		oursTun6   = netip.MustParseAddr("fd00:50::2")
		kernelUDP  = netip.MustParseAddrPort("198.18.51.1:51820")
		oursUDP    = netip.MustParseAddrPort("198.18.51.2:51821")
	)
	pid := os.Getpid()
	k := newNetns(t, fmt.Sprintf("wgk-%d", pid))
	u := newNetns(t, fmt.Sprintf("wgu-%d", pid))
	k.ip("link", "add", "wgveth", "type", "veth", "peer", "name", "wgveth", "netns", u.name)
	k.ip("addr", "add", kernelUDP.Addr().String()+"/24", "dev", "wgveth")
	k.ip("link", "set", "wgveth", "up")
	u.ip("addr", "add", oursUDP.Addr().String()+"/24", "dev", "wgveth")
	u.ip("link", "set", "wgveth", "up")

	ifname := fmt.Sprintf("wgp%d", pid)
	prog := startWireguardGo(t, k, ifname)

	kPriv, kPub := newKey(t)
	oPriv, oPub := newKey(t)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(b64(t, kPriv)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := k.exec(10*time.Second, wgPath, "set", ifname,
		"private-key", keyFile, "listen-port", strconv.Itoa(int(kernelUDP.Port())),
		"peer", b64(t, oPub), "endpoint", oursUDP.String(), "allowed-ips", oursTun.String()+"/32,"+oursTun6.String()+"/128"); err != nil {
		t.Fatalf("wg set: %v\n%s", err, out)
	}
	k.ip("addr", "add", kernelTun.String()+"/24", "dev", ifname)
	// nodad: duplicate address detection's solicitations would go nowhere
	// (WireGuard routes no multicast), only delaying the address by 1 s.
	k.ip("addr", "add", kernelTun6.String()+"/64", "dev", ifname, "nodad")
	k.ip("link", "set", ifname, "up")

	// Our end, its UDP sockets in ns u.
	tdev, tnet, err := wgnetstack.CreateNetTUN([]netip.Addr{oursTun, oursTun6}, nil, tunMTU)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tdev, nsBind{conn.NewDefaultBind(), u}, device.NewLogger(device.LogLevelSilent, ""))
	t.Cleanup(dev.Close)
	cfg := fmt.Sprintf("private_key=%s\nlisten_port=%d\npublic_key=%s\nendpoint=%s\nallowed_ip=198.18.50.0/24\nallowed_ip=fd00:50::/64\n",
		oPriv, oursUDP.Port(), kPub, kernelUDP)
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	ours := &end{name: "ours", addr: oursTun, dev: dev, tdev: tdev, ours: tnet, dial: tnet,
		listen: func(port int) (net.Listener, error) { return tnet.ListenTCP(&net.TCPAddr{Port: port}) }}

	for _, f := range []struct {
		name         string
		flag         string // curl's and ping's
		kernel, ours netip.Addr
		network      string // the kernel's listener's
	}{
		{"", "-4", kernelTun, oursTun, "tcp4"},
		{"6", "-6", kernelTun6, oursTun6, "tcp6"},
	} {
		t.Run("CurlToOurs"+f.name, func(t *testing.T) {
			serveHTTP(t, ours)
			url := "http://" + net.JoinHostPort(f.ours.String(), "80") + "/"
			out, err := k.exec(60*time.Second, curlPath, f.flag, "-g", "-sS", "--max-time", "30", url)
			if err != nil {
				t.Fatalf("curl %s %s: %v\n%s\nwireguard-go:\n%s", f.flag, url, err, out, prog.output())
			}
			if want := "ours here; you are " + net.JoinHostPort(f.kernel.String(), ""); !strings.HasPrefix(out, want) {
				t.Fatalf("curl got %q; want it to start %q", out, want)
			}
		})

		t.Run("PingToOurs"+f.name, func(t *testing.T) {
			// -w: until 3 replies have come (or 30 s), so a request lost to the
			// handshake does not fail it.
			out, err := k.exec(60*time.Second, pingPath, f.flag, "-n", "-c", "3", "-i", "0.2", "-w", "30", "-s", "1000", f.ours.String())
			if err != nil {
				t.Fatalf("ping %s: %v\n%s", f.flag, err, out)
			}
			if m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out); m == nil || m[1] != "3" {
				t.Fatalf("ping %s: want 3 replies:\n%s", f.flag, out)
			}
			if want := "1008 bytes from " + f.ours.String() + ": icmp_seq="; !strings.Contains(out, want) {
				t.Fatalf("ping %s: no line %q:\n%s", f.flag, want, out)
			}
		})

		t.Run("OursToKernelHTTP"+f.name, func(t *testing.T) {
			var ln net.Listener
			if err := k.run(func() (err error) {
				ln, err = net.Listen(f.network, net.JoinHostPort(f.kernel.String(), "8080"))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "kernel here; you are %s; you sent %d bytes", r.RemoteAddr, len(body))
			})}
			done := make(chan struct{})
			go func() { defer close(done); srv.Serve(ln) }()
			defer func() { srv.Close(); <-done }()
			got := get(t, ours, "http://"+net.JoinHostPort(f.kernel.String(), "8080")+"/")
			if want := "kernel here; you are " + net.JoinHostPort(f.ours.String(), ""); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "; you sent 100000 bytes") {
				t.Fatalf("got %q; want %q..., you sent 100000 bytes", got, want)
			}
		})

		t.Run("OursPingToKernel"+f.name, func(t *testing.T) {
			c, err := tnet.DialPing(nil, wgnetstack.PingAddrFromAddr(f.kernel))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 2000)
			for i, size := range []int{0, 56, 1300} {
				data := bytes.Repeat([]byte{byte('k' + i)}, size)
				seq := uint16(7 + i)
				if _, err := c.Write(echoRequestTo(f.kernel, seq, data)); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(readDeadline))
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					t.Fatalf("echo %d: %v", i, err)
				}
				echoReplyOf(t, "kernel's reply", f.kernel.Is6(), buf[:n], seq, data)
				if pa, ok := from.(*wgnetstack.PingAddr); !ok || pa.Addr() != f.kernel {
					t.Errorf("reply from %T %v; want *PingAddr %v", from, from, f.kernel)
				}
			}
		})
	}

	// wg(8) sees the handshake and traffic both ways.
	out, err := k.exec(10*time.Second, wgPath, "show", ifname, "transfer")
	if err != nil {
		t.Fatalf("wg show: %v\n%s", err, out)
	}
	f := strings.Fields(out)
	if len(f) != 3 || f[0] != b64(t, oPub) {
		t.Fatalf("wg show %s transfer: %q; want our peer's public key and two counts", ifname, out)
	}
	rx, err1 := strconv.ParseUint(f[1], 10, 64)
	tx, err2 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil || rx < 200000 || tx == 0 {
		t.Errorf("wg show %s transfer: received %d, sent %d bytes (%v); want ≥ 200000 received (the POSTs over IPv4 and IPv6) and some sent", ifname, rx, tx, err)
	}
	t.Logf("wireguard-go's peer counters: %d bytes received, %d sent", rx, tx)
}
