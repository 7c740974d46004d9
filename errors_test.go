package netstack

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/gotcpip/netstack/internal/tcp"
)

// TestErrorFor: the one mapping from the layers' errors to what package
// net users check with errors.Is, each wrapped in an *net.OpError.
func TestErrorFor(t *testing.T) {
	for _, c := range []struct {
		in   error
		want []error
	}{
		{tcp.ErrRefused, []error{syscall.ECONNREFUSED}},
		{tcp.ErrReset, []error{syscall.ECONNRESET}},
		{tcp.ErrTimedOut, []error{syscall.ETIMEDOUT}},
		{tcp.ErrClosed, []error{net.ErrClosed}},
		{net.ErrClosed, []error{net.ErrClosed}},
		{os.ErrDeadlineExceeded, []error{os.ErrDeadlineExceeded}},
		{context.DeadlineExceeded, []error{context.DeadlineExceeded, os.ErrDeadlineExceeded}},
		{context.Canceled, []error{context.Canceled}},
		{syscall.EHOSTUNREACH, []error{syscall.EHOSTUNREACH}},
	} {
		err := opError("read", "tcp", nil, nil, c.in)
		var oe *net.OpError
		if !errors.As(err, &oe) {
			t.Errorf("%v: %T is not a *net.OpError", c.in, err)
		}
		for _, w := range c.want {
			if !errors.Is(err, w) {
				t.Errorf("%v: %v does not match %v", c.in, err, w)
			}
		}
	}
	if opError("read", "tcp", nil, nil, nil) != nil {
		t.Error("a nil error was wrapped")
	}
	var ne net.Error
	if err := opError("dial", "tcp", nil, nil, context.DeadlineExceeded); !errors.As(err, &ne) || !ne.Timeout() || err.Error() != "dial tcp: i/o timeout" {
		t.Errorf("dial timeout: %v", err)
	}
}
