package pair

import (
	"context"
	"net"
	"syscall"

	"github.com/gotcpip/netstack/bench/internal/netns"
)

// Kernel is the kernel's loopback in a fresh namespace whose lo has the
// given MTU; both sockets are made inside it. With mtu 0 (workloads whose
// result does not depend on the MTU) it is the root namespace's loopback,
// which spares every dial the hop to a thread inside a namespace.
func Kernel(mtu int) (*Pair, error) { return kernel(mtu, false) }

// Kernel6 is Kernel over IPv6 loopback, ::1 (the namespace made with
// netns.New6).
func Kernel6(mtu int) (*Pair, error) { return kernel(mtu, true) }

func kernel(mtu int, v6 bool) (*Pair, error) {
	network, host, newNS := "tcp4", "127.0.0.1", netns.New
	if v6 {
		network, host, newNS = "tcp6", "::1", netns.New6
	}
	if mtu == 0 {
		l, err := net.Listen(network, net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		addr := l.Addr().String()
		return &Pair{Listener: l, MaxConns: fdConns(), URL: "http://" + addr + "/", Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}, nil
	}
	ns, err := newNS(mtu)
	if err != nil {
		return nil, err
	}
	p := &Pair{ClientNS: ns}
	p.onClose(ns.Close)
	w, err := newWorker(ns)
	if err != nil {
		return nil, err
	}
	p.onClose(w.stop)
	addr := net.JoinHostPort(host, "5001")
	w.do(func() { p.Listener, err = net.Listen(network, addr) })
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Dial = kernelDialer(w, addr)
	p.URL = "http://" + addr + "/"
	return p, nil
}

// Veth is two namespaces joined by a veth pair (MTU 1500): the server
// listens in A, the client dials from B.
func Veth(int) (*Pair, error) {
	v, err := netns.NewVeth()
	if err != nil {
		return nil, err
	}
	return vethPair(v)
}

// Veth6 is Veth over IPv6 (netns.NewVeth6).
func Veth6(int) (*Pair, error) {
	v, err := netns.NewVeth6()
	if err != nil {
		return nil, err
	}
	return vethPair(v)
}

// LossyVeth is the kernel's reference for the lossy TAP pairs
// (netns.NewLossyVeth): the server listens in A (the stack's place), the
// client dials from B, whose address is on the lossy bridge.
func LossyVeth(loss int) Factory {
	return func(int) (*Pair, error) {
		v, err := netns.NewLossyVeth(loss)
		if err != nil {
			return nil, err
		}
		return vethPair(v)
	}
}

func vethPair(v *netns.Veth) (*Pair, error) {
	p := &Pair{ClientNS: v.B, Lossy: v.Lossy}
	p.onClose(v.A.Close)
	p.onClose(v.B.Close)
	wa, err := newWorker(v.A)
	if err != nil {
		return nil, err
	}
	p.onClose(wa.stop)
	wb, err := newWorker(v.B)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.onClose(wb.stop)
	addr := net.JoinHostPort(v.AddrA, "5001")
	wa.do(func() { p.Listener, err = net.Listen("tcp", addr) })
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Dial = kernelDialer(wb, addr)
	p.URL = "http://" + addr + "/"
	return p, nil
}

// fdConns is how many connections with both ends in this process fit under
// RLIMIT_NOFILE, keeping 256 descriptors spare.
func fdConns() int {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	return max(1, (int(r.Cur)-256)/2)
}
