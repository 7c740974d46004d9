package netnstest

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
)

// Empty creates a network namespace holding only lo, which is up, and
// registers Close with t.Cleanup. IPv6 is disabled in it (for interfaces
// moved in later too) unless the IPv6 option is given; the other options do
// not apply. Dev and DevName are empty: the caller moves or creates
// interfaces in it with ip(8), and Close deletes them with the namespace.
// KernelAddr and StackPrefix are the addresses New would have given it,
// 198.18.N.1 and 198.18.N.2/24, assigned to nothing, for a caller that
// wants a subnet of its own.
//
// It calls Require first, so a test that cannot run skips or fails with
// the reason.
func Empty(t testing.TB, opts ...Option) *NS {
	t.Helper()
	Require(t)
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	n := seq.Add(1) - 1
	ns := &NS{Name: fmt.Sprintf("nst-%d-%d", os.Getpid(), n), t: t}
	third := byte(n % 256)
	ns.KernelAddr = netip.AddrFrom4([4]byte{198, 18, third, 1})
	ns.StackPrefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, third, 2}), 24)
	t.Cleanup(func() { ns.Close() })
	ns.mustIP("netns", "add", ns.Name)
	if !o.ipv6 {
		ns.disableIPv6()
	}
	ns.mustIP("-n", ns.Name, "link", "set", "dev", "lo", "up")
	return ns
}

// disableIPv6 turns IPv6 off in the namespace, for the interfaces in it and
// those moved in later, so that the kernel's router solicitations, MLD
// reports and duplicate address detection stay off the wire.
func (ns *NS) disableIPv6() {
	ns.t.Helper()
	err := ns.Run(func() error {
		for _, p := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+p+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) { // no IPv6 in the kernel: nothing to disable
		ns.t.Fatalf("netnstest: disabling IPv6 in %s: %v", ns.Name, err)
	}
}
