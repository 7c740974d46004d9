// Package pair builds the client/server pairs the workloads run on: a
// listener on the server side and a dialer on the client side that reaches
// it, over netstack, gVisor's netstack or the kernel.
package pair

import (
	"context"
	"net"
	"sync"

	"github.com/gotcpip/netstack/bench/internal/netns"
)

// Pair is a server listener and a client dialer that reaches it.
type Pair struct {
	// Listener accepts on the server side.
	Listener net.Listener
	// Dial connects from the client side to Listener.
	Dial func(ctx context.Context) (net.Conn, error)
	// URL is http://host:port of Listener, for wrk.
	URL string
	// ClientNS is the namespace wrk runs in (TAP and veth pairs).
	ClientNS *netns.NS
	// MaxConns, if not 0, caps how many connections a workload holds open
	// at once (kernel pairs: two descriptors each, under RLIMIT_NOFILE).
	MaxConns int
	// Lossy is the bridge and its nftables counters (lossy TAP and veth
	// pairs), else nil.
	Lossy *netns.Lossy
	// Note is what a workload wants logged and reported beside its numbers
	// (set by the workload).
	Note string
	// Counters, if set, returns what the stacks counted that a run should
	// report beside its numbers (netstack: TCP retransmissions).
	Counters func() string
	closers  []func() error
	once     sync.Once
}

// Close closes the listener and tears down the stacks or devices.
func (p *Pair) Close() error {
	p.once.Do(func() {
		if p.Listener != nil {
			p.Listener.Close()
		}
		for i := len(p.closers) - 1; i >= 0; i-- {
			p.closers[i]()
		}
	})
	return nil
}

func (p *Pair) onClose(f func() error) { p.closers = append(p.closers, f) }

// Factory makes a fresh pair whose link carries IP packets of up to mtu
// bytes (in-memory pairs; TAP and veth pairs are 1500 whatever mtu says).
type Factory func(mtu int) (*Pair, error)

// worker runs functions on one OS thread inside a namespace, so that
// sockets package net creates there belong to the namespace.
type worker struct{ c chan func() }

func newWorker(ns *netns.NS) (*worker, error) {
	w := &worker{c: make(chan func())}
	started := make(chan error, 1)
	go func() {
		ns.Run(func() error {
			started <- nil
			for f := range w.c {
				f()
			}
			return nil
		})
	}()
	return w, <-started
}

func (w *worker) do(f func()) {
	done := make(chan struct{})
	w.c <- func() { f(); close(done) }
	<-done
}

func (w *worker) stop() error { close(w.c); return nil }

// kernelDialer dials addr (host:port, either family) from inside a
// namespace.
func kernelDialer(w *worker, addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (c net.Conn, err error) {
		w.do(func() {
			var d net.Dialer
			c, err = d.DialContext(ctx, "tcp", addr)
		})
		return c, err
	}
}
