package netstack

import (
	"fmt"
	"sync"
	"testing"

	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestKernelMultiQueueStreams: over a TAP, and a TUN, opened with four
// queues, eight streams from the kernel to the stack at once each arrive
// whole and in order, and the stack's input was read from more than one
// queue.
func TestKernelMultiQueueStreams(t *testing.T) {
	t.Run("tap", func(t *testing.T) { testKernelMultiQueueStreams(t, netnstest.Queues(4)) })
	t.Run("tun", func(t *testing.T) { testKernelMultiQueueStreams(t, netnstest.Queues(4), netnstest.TUN()) })
}

func testKernelMultiQueueStreams(t *testing.T, opts ...netnstest.Option) {
	checkGoroutines(t)
	ns, s := newKernelPeer(t, opts...)
	if q := ns.Dev.Queues(); q != 4 {
		t.Fatalf("the device has %d queues, want 4", q)
	}
	n := 8 << 20
	if raceEnabled {
		n = 1 << 20
	}
	ln, err := s.Listen("tcp", ":7100")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const streams = 8
	errs := make(chan error, 2*streams)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range streams {
			c, err := ln.Accept()
			if err != nil {
				errs <- err
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				errs <- checkFlowStream(c, n)
			}()
		}
	}()
	addr := fmt.Sprintf("%v:7100", s.Addr())
	for f := range streams {
		c := kernelDial(t, ns, addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writeFlowStream(c, f, n)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	in := s.InputFrames()
	t.Logf("frames per queue: %v", in)
	used := 0
	for _, k := range in {
		if k > 0 {
			used++
		}
	}
	if len(in) != 4 || used < 2 {
		t.Errorf("InputFrames = %v: want 4 queues, more than one used", in)
	}
}
