package netnstest

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// Run calls fn on a goroutine whose OS thread has entered the namespace
// (setns(2) with CLONE_NEWNET) and returns fn's error. Sockets that fn
// creates with package net belong to the namespace and keep working from
// any goroutine after Run returns. fn must not start goroutines that create
// sockets: those run on other threads, in the test's namespace.
//
// fn should report failure by returning an error: t.FailNow inside fn
// ends its goroutine, and Run then returns an error saying so. A panic in
// fn is returned as an error too.
//
// The thread stays locked to the goroutine when it exits, so the runtime
// terminates the thread instead of returning it, still in the namespace, to
// the pool that runs every other goroutine.
func (ns *NS) Run(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread, deliberately: see above.
		fd, err := unix.Open("/run/netns/"+ns.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netnstest: open namespace %s: %w", ns.Name, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("netnstest: setns %s: %w", ns.Name, err)
			return
		}
		returned := false
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("netnstest: Run: panic: %v\n%s", r, debug.Stack())
			} else if !returned {
				// runtime.Goexit, typically t.FailNow called inside fn.
				errc <- errors.New("netnstest: Run: fn did not return (t.FailNow or runtime.Goexit inside Run?)")
			}
		}()
		err = fn()
		returned = true
		errc <- err
	}()
	return <-errc
}
