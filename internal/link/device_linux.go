package link

import (
	"fmt"
	"os"

	"github.com/songgao/water"
	"golang.org/x/sys/unix"
)

// OpenTAP creates a TAP device named name (empty: the kernel picks tapN)
// and opens it. The interface is down; bring it up and address it with
// ip-link(8) and ip-address(8). It needs CAP_NET_ADMIN.
func OpenTAP(name string) (*Device, error) {
	return open(name, water.TAP)
}

// OpenTAPOffload is OpenTAP with the virtio-net header and TCP offloads
// (see Device.Offload). If the kernel refuses them it opens the plain
// device, as OpenTAP does.
func OpenTAPOffload(name string) (*Device, error) {
	if d, err := openOffload(name, true, 1); err == nil {
		return d, nil
	}
	return open(name, water.TAP)
}

// OpenTUNOffload is OpenTUN with the virtio-net header and TCP offloads,
// falling back to the plain device.
func OpenTUNOffload(name string) (*Device, error) {
	if d, err := openOffload(name, false, 1); err == nil {
		return d, nil
	}
	return open(name, water.TUN)
}

// MaxQueues is the most queues a TAP or TUN device has (the kernel's
// MAX_TAP_QUEUES).
const MaxQueues = 256

// OpenTAPOffloadQueues is OpenTAPOffload with queues queues, 1 to
// MaxQueues (IFF_MULTI_QUEUE; see Device.ReadQueue). If the kernel refuses
// them, it opens the device as OpenTAPOffload does; Queues reports what
// it got.
func OpenTAPOffloadQueues(name string, queues int) (*Device, error) {
	return openQueues(name, true, queues)
}

// OpenTUNOffloadQueues is OpenTUNOffload with queues queues, as
// OpenTAPOffloadQueues.
func OpenTUNOffloadQueues(name string, queues int) (*Device, error) {
	return openQueues(name, false, queues)
}

func openQueues(name string, tap bool, queues int) (*Device, error) {
	if queues < 1 || queues > MaxQueues {
		return nil, fmt.Errorf("link: %d queues; want 1 to %d", queues, MaxQueues)
	}
	if queues > 1 {
		if d, err := openOffload(name, tap, queues); err == nil {
			return d, nil
		}
	}
	if tap {
		return OpenTAPOffload(name)
	}
	return OpenTUNOffload(name)
}

// OpenTUN creates a TUN device named name (empty: the kernel picks tunN)
// and opens it without packet information, so frames are bare IPv4 or IPv6
// packets. It needs CAP_NET_ADMIN.
func OpenTUN(name string) (*Device, error) {
	return open(name, water.TUN)
}

func open(name string, typ water.DeviceType) (*Device, error) {
	if len(name) >= unix.IFNAMSIZ {
		return nil, fmt.Errorf("link: interface name %q longer than %d bytes", name, unix.IFNAMSIZ-1)
	}
	cfg := water.Config{DeviceType: typ}
	cfg.Name = name
	ifce, err := water.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("link: open %s: %w", kind(typ), err)
	}
	// water opens /dev/net/tun with O_NONBLOCK and wraps it in os.NewFile,
	// which registers a non-blocking descriptor with the runtime poller;
	// that is what lets Close unblock a pending Read. Check rather than
	// trust it: a blocking descriptor would make Close hang the reader.
	f, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return nil, fmt.Errorf("link: water returned %T, want *os.File", ifce.ReadWriteCloser)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("link: open %s: %w", kind(typ), err)
	}
	var nonblock bool
	rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nonblock = err == nil && fl&unix.O_NONBLOCK != 0
	})
	if !nonblock {
		f.Close()
		return nil, fmt.Errorf("link: open %s: descriptor is blocking; Close could not interrupt ReadFrame", kind(typ))
	}
	d := &Device{f: f, name: ifce.Name(), tap: typ == water.TAP}
	d.mtu.Store(1500)
	d.MTU()
	return d, nil
}

func kind(typ water.DeviceType) string {
	if typ == water.TAP {
		return "tap"
	}
	return "tun"
}
