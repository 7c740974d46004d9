// Package eyeballs races connection attempts to a name's addresses of
// two families, as RFC 8305 (Happy Eyeballs v2) and Go's net.Dialer do:
// the first family's addresses one after another, the other's alongside
// once a delay passes or the first have all failed. It knows nothing of
// what an attempt is: the caller's function makes it.
package eyeballs

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"
)

// DefaultFallbackDelay is net.Dialer's default FallbackDelay, RFC 8305
// §5's recommended Connection Attempt Delay being 250 ms.
const DefaultFallbackDelay = 300 * time.Millisecond

// Serial tries each address in turn and returns the first connection,
// or the first error.
func Serial(ctx context.Context, addrs []netip.AddrPort, dial func(context.Context, netip.AddrPort) (net.Conn, error)) (net.Conn, error) {
	var first error
	for _, raddr := range addrs {
		c, err := dial(ctx, raddr)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// Parallel races the primaries against the fallbacks, which start
// after delay or as soon as the primaries have all failed (RFC 8305 §5, as
// Go's dialParallel). The loser's attempt is cancelled; a connection it
// made anyway is closed. Both failing, it returns the primaries' error.
func Parallel(ctx context.Context, primaries, fallbacks []netip.AddrPort, delay time.Duration,
	dial func(context.Context, netip.AddrPort) (net.Conn, error)) (net.Conn, error) {
	type result struct {
		c       net.Conn
		err     error
		primary bool
	}
	results := make(chan result, 2) // each racer sends once
	start := func(ctx context.Context, addrs []netip.AddrPort, primary bool) {
		go func() {
			c, err := Serial(ctx, addrs, dial)
			results <- result{c, err, primary}
		}()
	}
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	start(pctx, primaries, true)
	timer := time.NewTimer(delay)
	defer timer.Stop()
	running, fallbackStarted := 1, false
	var primaryErr, fallbackErr error
	for {
		select {
		case <-timer.C:
			if !fallbackStarted {
				fallbackStarted = true
				running++
				start(fctx, fallbacks, false)
			}
			continue
		case r := <-results:
			running--
			if r.err == nil {
				// Cancel the other racer, and close what it made if it
				// finishes anyway.
				if running > 0 {
					pcancel()
					fcancel()
					go func(n int) {
						for range n {
							if o := <-results; o.c != nil {
								o.c.Close()
							}
						}
					}(running)
				}
				return r.c, nil
			}
			if r.primary {
				primaryErr = r.err
			} else {
				fallbackErr = r.err
			}
			if !fallbackStarted {
				fallbackStarted = true
				running++
				timer.Stop()
				start(fctx, fallbacks, false)
			}
			if running == 0 {
				if primaryErr != nil {
					return nil, primaryErr
				}
				return nil, fallbackErr
			}
		}
	}
}

// Partition splits addrs into those of the first one's family and the
// rest, as Go's partition does for Happy Eyeballs.
func Partition(addrs []netip.AddrPort) (primaries, fallbacks []netip.AddrPort) {
	if len(addrs) == 0 {
		return nil, nil
	}
	v4 := addrs[0].Addr().Is4()
	if !slices.ContainsFunc(addrs, func(a netip.AddrPort) bool { return a.Addr().Is4() != v4 }) {
		return addrs, nil // one family: nothing to copy
	}
	for _, a := range addrs {
		if a.Addr().Is4() == v4 {
			primaries = append(primaries, a)
		} else {
			fallbacks = append(fallbacks, a)
		}
	}
	return primaries, fallbacks
}
