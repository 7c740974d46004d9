package netstack

import (
	"context"
	"errors"
	"net"
	"os"
)

// The one place where errors from inside the stack become the errors
// package net users expect (STYLE.md §9): an *net.OpError around an errno,
// net.ErrClosed or os.ErrDeadlineExceeded. io.EOF is never wrapped.

// errorFor maps an internal error to the value users test with errors.Is.
func errorFor(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return os.ErrDeadlineExceeded
	}
	return err
}

// opError wraps err for operation op ("dial", "read", "ping", ...).
func opError(op, network string, src, dst net.Addr, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: network, Source: src, Addr: dst, Err: errorFor(err)}
}
