package netnstest

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gotcpip/netstack/internal/link"
)

// NS is a network namespace joined to the test process by a TAP or TUN
// device. The kernel side of the device lives in the namespace with
// KernelAddr on it; the stack under test uses Dev and StackPrefix.
type NS struct {
	// Name is the namespace's name for ip-netns(8), "nst-<pid>-<n>".
	Name string
	// DevName is the interface's name, the same inside the namespace and
	// out: "nst<pid>-<n>".
	DevName string
	// Dev is the device's file descriptor, for the stack under test. It
	// was opened before the interface moved into the namespace and keeps
	// working. Close closes it; closing it earlier is harmless.
	Dev *link.Device
	// KernelAddr is the kernel's address on the device, 198.18.N.1.
	KernelAddr netip.Addr
	// StackPrefix is the address and subnet for the stack, 198.18.N.2/24.
	StackPrefix netip.Prefix
	// MTU is the interface's MTU.
	MTU int

	t       testing.TB
	mu      sync.Mutex
	cmds    []*exec.Cmd
	cleanup sync.Once
}

// Option configures New.
type Option func(*options)

type options struct {
	tun    bool
	mtu    int
	ipv6   bool
	plain  bool
	queues int
}

// Plain opens the device without the virtio-net header (link.OpenTAP),
// so every frame is at most one MTU. By default New opens it with offloads
// (link.OpenTAPOffload), as netstack.OpenTAP does.
func Plain() Option { return func(o *options) { o.plain = true } }

// Queues opens the device with offloads and n queues
// (link.OpenTAPOffloadQueues), as netstack.OpenTAPQueues does.
func Queues(n int) Option { return func(o *options) { o.queues = n } }

// TUN makes New create a TUN device (bare IP packets) instead of a TAP
// device (Ethernet frames).
func TUN() Option { return func(o *options) { o.tun = true } }

// MTU sets the interface's MTU; the default is the kernel's, 1500.
func MTU(mtu int) Option { return func(o *options) { o.mtu = mtu } }

// IPv6 leaves IPv6 enabled in the namespace. By default it is disabled so
// that the kernel's router solicitations, MLD reports and duplicate address
// detection do not show up among the frames the stack reads.
func IPv6() Option { return func(o *options) { o.ipv6 = true } }

var seq atomic.Uint32

// ifNameSize is IFNAMSIZ from <linux/if.h>: names hold 15 bytes and a NUL.
const ifNameSize = 16

// New creates a network namespace and a TAP device (or TUN, with the TUN
// option) joining it to the test, configures the kernel's side and
// registers Close with t.Cleanup. It calls Require first, so a test that
// cannot run skips or fails with the reason.
//
// Inside the namespace the interface is up with address 198.18.N.1/24, and
// lo is up. N differs between the namespaces of one process; namespaces of
// different processes may share it, which is harmless because every
// namespace has its own addresses and routes.
func New(t testing.TB, opts ...Option) *NS {
	t.Helper()
	Require(t)
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	n := seq.Add(1) - 1
	pid := os.Getpid()
	ns := &NS{
		Name:    fmt.Sprintf("nst-%d-%d", pid, n),
		DevName: fmt.Sprintf("nst%d-%d", pid, n),
		t:       t,
	}
	if len(ns.DevName) >= ifNameSize {
		// Long pids: keep the name unique within the pid's low digits.
		ns.DevName = fmt.Sprintf("nst%d-%d", pid%1000000, n)
	}
	third := byte(n % 256)
	ns.KernelAddr = netip.AddrFrom4([4]byte{198, 18, third, 1})
	ns.StackPrefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, third, 2}), 24)
	t.Cleanup(func() { ns.Close() })

	var err error
	// Open the device here, in the test's namespace: the descriptor stays
	// bound to the interface wherever the interface moves.
	switch {
	case o.queues > 0 && o.tun:
		ns.Dev, err = link.OpenTUNOffloadQueues(ns.DevName, o.queues)
	case o.queues > 0:
		ns.Dev, err = link.OpenTAPOffloadQueues(ns.DevName, o.queues)
	case o.tun && o.plain:
		ns.Dev, err = link.OpenTUN(ns.DevName)
	case o.tun:
		ns.Dev, err = link.OpenTUNOffload(ns.DevName)
	case o.plain:
		ns.Dev, err = link.OpenTAP(ns.DevName)
	default:
		ns.Dev, err = link.OpenTAPOffload(ns.DevName)
	}
	if err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	if o.mtu > 0 {
		ns.mustIP("link", "set", "dev", ns.DevName, "mtu", strconv.Itoa(o.mtu))
	}
	// Read the MTU while the interface is still visible from here; after the
	// move the Device keeps this value.
	ns.MTU = ns.Dev.MTU()
	ns.mustIP("netns", "add", ns.Name)
	if !o.ipv6 {
		// An interface moving in takes its IPv6 settings from "default", so
		// set it before the move (Documentation/networking/ip-sysctl.rst).
		ns.disableIPv6()
	}
	ns.mustIP("link", "set", "dev", ns.DevName, "netns", ns.Name)
	ns.mustIP("-n", ns.Name, "addr", "add", netip.PrefixFrom(ns.KernelAddr, 24).String(), "dev", ns.DevName)
	ns.mustIP("-n", ns.Name, "link", "set", "dev", ns.DevName, "up")
	ns.mustIP("-n", ns.Name, "link", "set", "dev", "lo", "up")
	return ns
}

// mustIP runs ip(8) with args and fails the test if it fails.
func (ns *NS) mustIP(args ...string) {
	ns.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		ns.t.Fatalf("netnstest: ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Command returns a command that runs name with args inside the namespace,
// through "ip netns exec" (which execs name, so cmd.Process is name's
// process). It is killed when ctx is done and, if still running, by Close,
// which also kills whatever it started in the namespace.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
	ns.mu.Lock()
	ns.cmds = append(ns.cmds, cmd)
	ns.mu.Unlock()
	return cmd
}

// Close kills the processes started by Command and any other process left
// in the namespace, closes Dev, deletes the interface and the namespace.
// New registers it with t.Cleanup, so it runs even when the test fails;
// calling it earlier is allowed and later calls do nothing. It reports
// problems with t.Errorf and returns the first.
func (ns *NS) Close() error {
	var first error
	ns.cleanup.Do(func() {
		report := func(err error) {
			if err != nil {
				ns.t.Errorf("netnstest: cleanup of %s: %v", ns.Name, err)
				if first == nil {
					first = err
				}
			}
		}
		ns.mu.Lock()
		cmds := ns.cmds
		ns.mu.Unlock()
		for _, c := range cmds {
			if c.Process != nil {
				// os.Process signals through a pidfd, so this cannot hit
				// a recycled pid; it fails harmlessly if c has exited.
				c.Process.Kill()
			}
		}
		_, err := os.Stat("/run/netns/" + ns.Name)
		nsExists := err == nil
		if nsExists {
			// Anything else still in the namespace: children of commands,
			// or processes a test started some other way.
			out, _ := exec.Command("ip", "netns", "pids", ns.Name).Output()
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					if p, err := os.FindProcess(pid); err == nil {
						p.Kill()
					}
				}
			}
		}
		if ns.Dev != nil {
			ns.Dev.Close() // net.ErrClosed if the stack closed it first
		}
		// Closing the last descriptor removes a non-persistent interface;
		// delete it explicitly in case something else holds it open.
		// It is in the namespace, or still here if New failed before the move.
		if nsExists && linkExists(ns.Name, ns.DevName) {
			report(ipErr("-n", ns.Name, "link", "del", "dev", ns.DevName))
		}
		if linkExists("", ns.DevName) {
			report(ipErr("link", "del", "dev", ns.DevName))
		}
		if nsExists {
			report(ipErr("netns", "del", ns.Name))
		}
	})
	return first
}

func linkExists(netns, dev string) bool {
	args := []string{"link", "show", "dev", dev}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	return exec.Command("ip", args...).Run() == nil
}

func ipErr(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
