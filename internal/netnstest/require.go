// Package netnstest gives tests a private Linux network namespace joined to
// the test process by a TAP or TUN device, so that netstack can talk to the
// kernel's own TCP/IP stack without touching the host's network.
//
// The stack side is a *link.Device opened in the test's namespace; the
// kernel side is the same interface moved into a fresh namespace and
// addressed there. Kernel-side Go code runs through (*NS).Run, command line
// tools through (*NS).Command. Addresses come from 198.18.0.0/15 (RFC 2544,
// benchmarking), and nothing is routed out of the namespace.
//
// Creating namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN),
// /dev/net/tun and ip(8) from iproute2. Without them tests skip, unless the
// environment sets NETSTACK_REQUIRE_PRIVILEGED=1, when they fail instead, so
// that CI running as root cannot silently skip them.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// RequireEnv is the environment variable that turns skips into failures
// when set to "1".
const RequireEnv = "NETSTACK_REQUIRE_PRIVILEGED"

// Require skips t unless the process can create network namespaces and
// TAP devices: it must run as root, /dev/net/tun must exist and ip(8) must
// be on PATH. With NETSTACK_REQUIRE_PRIVILEGED=1 it fails t instead.
func Require(t testing.TB) {
	t.Helper()
	if reason := missing(); reason != "" {
		skipOrFail(t, reason)
	}
}

// LookPath returns the path of tool, as exec.LookPath does. If tool is not
// installed it skips t, or fails it with NETSTACK_REQUIRE_PRIVILEGED=1.
func LookPath(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("%s not installed: %v", tool, err))
	}
	return p
}

func missing() string {
	if runtime.GOOS != "linux" {
		return "network namespaces exist only on Linux, not " + runtime.GOOS
	}
	if os.Geteuid() != 0 {
		return "network namespace tests need root"
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Sprintf("no TUN/TAP support: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "ip(8) from iproute2 not installed"
	}
	return ""
}

func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 forbids skipping)", reason, RequireEnv)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", reason, RequireEnv)
}
