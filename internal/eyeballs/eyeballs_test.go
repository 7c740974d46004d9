package eyeballs

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestHappyEyeballsRace drives Parallel in virtual time: a primary
// that never answers lets the fallback start after exactly the delay and
// win; a primary that fails at once starts the fallback at once; when
// both fail, the primary's error is returned; the loser is cancelled.
func TestHappyEyeballsRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v6, v4 := netip.MustParseAddrPort("[2001:db8::2]:80"), netip.MustParseAddrPort("198.18.0.2:80")
		errDead := errors.New("dead")
		var mu sync.Mutex // racers run on goroutines of their own
		var started []time.Duration
		var cancelled bool
		t0 := time.Now()
		dial := func(behave map[netip.AddrPort]string) func(context.Context, netip.AddrPort) (net.Conn, error) {
			return func(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
				mu.Lock()
				started = append(started, time.Since(t0))
				mu.Unlock()
				switch behave[a] {
				case "hang":
					<-ctx.Done()
					mu.Lock()
					cancelled = true
					mu.Unlock()
					return nil, ctx.Err()
				case "fail":
					return nil, errDead
				}
				c1, c2 := net.Pipe()
				c2.Close()
				return c1, nil
			}
		}
		ctx := context.Background()
		c, err := Parallel(ctx, []netip.AddrPort{v6}, []netip.AddrPort{v4}, 300*time.Millisecond,
			dial(map[netip.AddrPort]string{v6: "hang"}))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		synctest.Wait()
		mu.Lock()
		if len(started) != 2 || started[0] != 0 || started[1] != 300*time.Millisecond || !cancelled {
			t.Fatalf("hanging primary: attempts at %v, cancelled %v", started, cancelled)
		}

		started, t0 = nil, time.Now()
		mu.Unlock()
		c, err = Parallel(ctx, []netip.AddrPort{v6}, []netip.AddrPort{v4}, 300*time.Millisecond,
			dial(map[netip.AddrPort]string{v6: "fail"}))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		mu.Lock()
		if len(started) != 2 || started[1] != 0 {
			t.Fatalf("failing primary: attempts at %v", started)
		}
		mu.Unlock()

		_, err = Parallel(ctx, []netip.AddrPort{v6}, []netip.AddrPort{v4}, 300*time.Millisecond,
			dial(map[netip.AddrPort]string{v6: "fail", v4: "fail"}))
		if err != errDead {
			t.Fatalf("both failing: %v", err)
		}
	})
}

func TestPartition(t *testing.T) {
	in := []netip.AddrPort{
		netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("198.18.0.1:1"),
		netip.MustParseAddrPort("[2001:db8::2]:1"), netip.MustParseAddrPort("198.18.0.2:1"),
	}
	p, f := Partition(in)
	if len(p) != 2 || len(f) != 2 || !p[0].Addr().Is6() || !p[1].Addr().Is6() || !f[0].Addr().Is4() {
		t.Fatalf("Partition %v %v", p, f)
	}
}
