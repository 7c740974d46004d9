package wiretest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gotcpip/netstack/internal/leaktest"
)

// both runs body against each DUT, as subtests "linux" and "netstack" in
// parallel with each other, each with a harness of its own. A netstack
// subtest listed in knownNetstackFailures that fails is skipped with the
// listed reason instead.
func both(t *testing.T, body func(t testing.TB, h *Harness)) {
	leaktest.Check(t)
	name := t.Name()
	for _, dut := range []string{"linux", "netstack"} {
		t.Run(dut, func(t *testing.T) {
			t.Parallel()
			var h *Harness
			if dut == "linux" {
				h = NewLinux(t)
			} else {
				h = NewNetstack(t)
			}
			reason, known := knownNetstackFailures[name]
			if dut != "netstack" || !known {
				body(t, h)
				return
			}
			k := &knownT{T: t, reason: reason}
			body(k, h)
			if len(k.errs) > 0 {
				t.Skipf("known failure (%s): %s", reason, strings.Join(k.errs, "; "))
			}
			t.Logf("listed in knownNetstackFailures (%s) but passed: remove it from the list", reason)
		})
	}
}

// knownT is a *testing.T whose failures are collected instead of failing
// the test: Error records and goes on, Fatal records and skips.
type knownT struct {
	*testing.T
	reason string
	errs   []string
}

func (k *knownT) Error(args ...any) { k.T.Helper(); k.record(fmt.Sprint(args...)) }
func (k *knownT) Errorf(format string, args ...any) {
	k.T.Helper()
	k.record(fmt.Sprintf(format, args...))
}
func (k *knownT) Fatal(args ...any) { k.T.Helper(); k.record(fmt.Sprint(args...)); k.skip() }
func (k *knownT) Fatalf(format string, args ...any) {
	k.T.Helper()
	k.record(fmt.Sprintf(format, args...))
	k.skip()
}
func (k *knownT) Fail()        { k.record("Fail called") }
func (k *knownT) FailNow()     { k.record("FailNow called"); k.skip() }
func (k *knownT) Failed() bool { return len(k.errs) > 0 || k.T.Failed() }

func (k *knownT) record(msg string) {
	k.T.Helper()
	k.T.Log("known-failure check failed: " + msg)
	k.errs = append(k.errs, msg)
}

func (k *knownT) skip() {
	k.T.Helper()
	k.T.Skipf("known failure (%s): %s", k.reason, strings.Join(k.errs, "; "))
}
