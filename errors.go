package netstack

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"

	"github.com/gotcpip/netstack/internal/tcp"
)

// The one place where errors from inside the stack become the errors
// package net users expect: an *net.OpError around an errno, net.ErrClosed
// or os.ErrDeadlineExceeded. io.EOF is never wrapped.

// errorFor maps an internal error to the value users test with errors.Is:
// the TCP core's sentinels to the errnos Linux gives, a context or dial
// deadline to errTimeout. Errnos, net.ErrClosed, os.ErrDeadlineExceeded and
// anything else pass through.
func errorFor(err error) error {
	switch err {
	case tcp.ErrRefused:
		return syscall.ECONNREFUSED
	case tcp.ErrReset:
		return syscall.ECONNRESET
	case tcp.ErrTimedOut:
		return syscall.ETIMEDOUT
	case tcp.ErrClosed:
		return net.ErrClosed
	case tcp.ErrAborted:
		return syscall.ECONNABORTED
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errTimeout
	}
	return err
}

// errTimeout is what a context deadline or a Dialer's Timeout or Deadline
// becomes. Like package net's, it reads "i/o timeout", its Timeout is
// true and errors.Is matches context.DeadlineExceeded, which code that
// retries checks for; it also matches os.ErrDeadlineExceeded, which the
// other deadlines of this package return.
var errTimeout error = timeoutError{}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func (timeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded || target == os.ErrDeadlineExceeded
}

// opError wraps err for operation op ("dial", "read", "ping", ...).
func opError(op, network string, src, dst net.Addr, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: network, Source: src, Addr: dst, Err: errorFor(err)}
}
