// Package netns makes the network namespaces, TAP devices and veth pairs the
// TAP workloads need, runs code inside a namespace, and removes everything it
// made when Cleanup runs (deferred by the caller and on SIGINT/SIGTERM).
// Addresses are in 198.18.0.0/15 and fd00::/8, and nothing leaves the
// namespaces.
package netns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

var (
	mu      sync.Mutex
	undo    []func() // run in reverse by Cleanup
	sigOnce sync.Once
	seq     int
)

func push(f func()) {
	mu.Lock()
	undo = append(undo, f)
	mu.Unlock()
	sigOnce.Do(func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-c
			Cleanup()
			os.Exit(2)
		}()
	})
}

// Cleanup deletes every namespace and device made so far.
func Cleanup() {
	mu.Lock()
	u := undo
	undo = nil
	mu.Unlock()
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// IP runs ip(8) with args.
func IP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Name returns a fresh name with prefix, unique within this process and
// short enough for an interface (15 bytes).
func Name(prefix string) string {
	mu.Lock()
	seq++
	n := seq
	mu.Unlock()
	s := fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%100000, n)
	if len(s) > 15 {
		s = s[len(s)-15:]
	}
	return s
}

// NS is a network namespace.
type NS struct {
	Name string
	once sync.Once
	more []func() // devices to drop with it
}

// Close deletes the namespace (and what went with it); it is idempotent.
func (ns *NS) Close() error {
	ns.once.Do(func() {
		IP("netns", "del", ns.Name)
		for _, f := range ns.more {
			f()
		}
	})
	return nil
}

// New creates a namespace with lo up (at mtu if mtu > 0) and IPv6 off.
func New(mtu int) (*NS, error) { return newNS(mtu, false) }

// New6 is New with IPv6 on (::1 on lo) and duplicate address detection
// off for the devices that enter it, so that their addresses are usable at
// once.
func New6(mtu int) (*NS, error) { return newNS(mtu, true) }

func newNS(mtu int, v6 bool) (*NS, error) {
	ns := &NS{Name: Name("nsb")}
	if err := IP("netns", "add", ns.Name); err != nil {
		return nil, err
	}
	push(func() { ns.Close() })
	conf := map[string]string{"disable_ipv6": "1"}
	if v6 {
		conf = map[string]string{"disable_ipv6": "0", "accept_dad": "0", "dad_transmits": "0"}
	}
	_ = ns.Run(func() error {
		for _, p := range []string{"all", "default"} {
			for k, v := range conf {
				os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/"+k, []byte(v), 0)
			}
		}
		return nil
	})
	if mtu > 0 {
		if err := IP("-n", ns.Name, "link", "set", "lo", "mtu", fmt.Sprint(mtu)); err != nil {
			return nil, err
		}
	}
	if err := IP("-n", ns.Name, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return ns, nil
}

// Run calls fn on an OS thread inside the namespace. Sockets fn creates
// belong to the namespace and work from any goroutine afterwards. The
// thread is discarded when fn returns.
func (ns *NS) Run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.Name, err)
			return
		}
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("panic in namespace %s: %v", ns.Name, r)
			}
		}()
		errc <- fn()
	}()
	return <-errc
}

// Command returns cmd run inside the namespace by ip netns exec.
func (ns *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// TAP is a TAP device whose kernel side is in NS with KernelAddr/Bits; the
// stack uses FD (opened before the move, so it stays attached) and
// StackAddr.
type TAP struct {
	NS         *NS
	Dev        string
	KernelAddr string // 198.18.N.1 (NewTAP6: fd00:0:0:N::1)
	StackAddr  string // 198.18.N.2 (NewTAP6: fd00:0:0:N::2)
	Bits       int    // prefix length of both: 24 (NewTAP6: 64)
	Lossy      *Lossy // bridge and nftables counters (NewLossyTAP), else nil
}

var tapSeq int

// NewTAP makes a TAP device with open (which must create and attach it by
// name, e.g. netstack.OpenTAP or OpenTAPFD), then a namespace, and moves
// the device in. The closer open returns is closed with the namespace.
func NewTAP(open func(dev string) (io.Closer, error)) (*TAP, error) {
	return newTAP(open, -1, false)
}

// NewTAP6 is NewTAP over IPv6: the namespace has IPv6 on (New6), the
// kernel side fd00:0:0:N::1/64 (nodad), the stack fd00:0:0:N::2.
func NewTAP6(open func(dev string) (io.Closer, error)) (*TAP, error) {
	return newTAP(open, -1, true)
}

// NewTAPLoss is NewTAP for loss < 0, else NewLossyTAP(open, loss).
func NewTAPLoss(open func(dev string) (io.Closer, error), loss int) (*TAP, error) {
	if loss < 0 {
		return NewTAP(open)
	}
	return NewLossyTAP(open, loss)
}

// NewLossyTAP is NewTAP with the TAP device a port of a bridge that holds
// the kernel's address, and loss percent of the TCP frames dropped each way
// at the bridge (see Lossy). loss 0 still bridges and counts.
func NewLossyTAP(open func(dev string) (io.Closer, error), loss int) (*TAP, error) {
	return newTAP(open, loss, false)
}

func newTAP(open func(dev string) (io.Closer, error), loss int, v6 bool) (*TAP, error) {
	dev := Name("tb")
	c, err := open(dev)
	if err != nil {
		return nil, err
	}
	t := &TAP{Dev: dev}
	ns, err := newNS(0, v6)
	if err != nil {
		c.Close()
		IP("link", "del", dev)
		return nil, err
	}
	ns.more = append(ns.more, func() { c.Close(); IP("link", "del", dev) })
	t.NS = ns
	ok := false
	defer func() {
		if !ok {
			ns.Close()
		}
	}()
	t.KernelAddr, t.StackAddr, t.Bits = subnet(v6)
	if err := IP("link", "set", "dev", dev, "netns", ns.Name); err != nil {
		return nil, err
	}
	if loss >= 0 {
		l, err := newLossy(ns, dev, t.KernelAddr, loss)
		if err != nil {
			return nil, err
		}
		t.Lossy = l
		ok = true
		return t, nil
	}
	for _, a := range [][]string{
		addrAdd(ns, t.KernelAddr, t.Bits, dev),
		{"-n", ns.Name, "link", "set", "dev", dev, "up"},
	} {
		if err := IP(a...); err != nil {
			return nil, err
		}
	}
	ok = true
	return t, nil
}

// subnet returns a fresh test subnet's .1 and .2 addresses and its prefix
// length: 198.18.N.0/24, or fd00:0:0:N::/64 for v6.
func subnet(v6 bool) (one, two string, bits int) {
	mu.Lock()
	tapSeq++
	third := 100 + tapSeq%100
	mu.Unlock()
	if v6 {
		return fmt.Sprintf("fd00:0:0:%d::1", third), fmt.Sprintf("fd00:0:0:%d::2", third), 64
	}
	return fmt.Sprintf("198.18.%d.1", third), fmt.Sprintf("198.18.%d.2", third), 24
}

// addrAdd is the ip(8) command that puts addr/bits on dev in ns; an IPv6
// address skips duplicate address detection (nodad), so it is usable at once.
func addrAdd(ns *NS, addr string, bits int, dev string) []string {
	a := []string{"-n", ns.Name, "addr", "add", fmt.Sprintf("%s/%d", addr, bits), "dev", dev}
	if strings.Contains(addr, ":") {
		a = append(a, "nodad")
	}
	return a
}

// OpenTAPFD creates (or attaches to) TAP device name and returns its fd,
// IFF_TAP|IFF_NO_PI.
func OpenTAPFD(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var req [unix.IFNAMSIZ + 64]byte
	copy(req[:], name)
	*(*uint16)(unsafe.Pointer(&req[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&req[0]))); e != 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("TUNSETIFF %s: %w", name, e)
	}
	return fd, nil
}

// Veth is a veth pair between two namespaces: A has 198.18.N.1/24, B .2
// (NewVeth6: fd00:0:0:N::1/64 and ::2).
type Veth struct {
	A, B         *NS
	AddrA, AddrB string
	Lossy        *Lossy // NewLossyVeth only
}

// NewLossyVeth is the kernel's reference for NewLossyTAP: namespace A (the
// server, in the place of the stack under test) has 198.18.N.2/24 on its
// veth end; B's end is a port of a bridge that holds 198.18.N.1/24 (the
// kernel client's address) and drops loss percent of the TCP frames each
// way, as NewLossyTAP does. Offloads are off on both ends, as on the TAP.
func NewLossyVeth(loss int) (v *Veth, err error) {
	a, err := New(0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	b, err := New(0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	one, two, _ := subnet(false)
	v = &Veth{A: a, B: b, AddrA: two, AddrB: one}
	va, vb := Name("va"), Name("vb")
	for _, c := range [][]string{
		{"link", "add", va, "netns", a.Name, "type", "veth", "peer", "name", vb, "netns", b.Name},
		{"-n", a.Name, "addr", "add", v.AddrA + "/24", "dev", va},
	} {
		if err := IP(c...); err != nil {
			return nil, err
		}
	}
	if err := noOffloads(a, va); err != nil {
		return nil, err
	}
	if err := IP("-n", a.Name, "link", "set", va, "up"); err != nil {
		return nil, err
	}
	v.Lossy, err = newLossy(b, vb, v.AddrB, loss)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// NewVeth makes two namespaces joined by a veth pair, MTU 1500.
func NewVeth() (*Veth, error) { return newVeth(false) }

// NewVeth6 is NewVeth over IPv6: both namespaces have IPv6 on (New6), A
// fd00:0:0:N::1/64 and B fd00:0:0:N::2/64 (nodad).
func NewVeth6() (*Veth, error) { return newVeth(true) }

func newVeth(v6 bool) (*Veth, error) {
	a, err := newNS(0, v6)
	if err != nil {
		return nil, err
	}
	b, err := newNS(0, v6)
	if err != nil {
		return nil, err
	}
	one, two, bits := subnet(v6)
	v := &Veth{A: a, B: b, AddrA: one, AddrB: two}
	va, vb := Name("va"), Name("vb")
	for _, c := range [][]string{
		{"link", "add", va, "netns", a.Name, "type", "veth", "peer", "name", vb, "netns", b.Name},
		addrAdd(a, v.AddrA, bits, va),
		addrAdd(b, v.AddrB, bits, vb),
		{"-n", a.Name, "link", "set", va, "up"},
		{"-n", b.Name, "link", "set", vb, "up"},
	} {
		if err := IP(c...); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Available reports why namespaces cannot be used here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("ip(8) not found")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return err
	}
	return nil
}
