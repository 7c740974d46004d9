package netstack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The addresses of TestReconfigureUnderLoad: each stack keeps one of each
// family for the whole test; the doomed ones carry a few connections and
// are removed while the others transfer.
var (
	keptA4, keptB4 = netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	keptA6, keptB6 = netip.MustParsePrefix("fd00:1::1/64"), netip.MustParsePrefix("fd00:1::2/64")
	doomA4, doomB4 = netip.MustParsePrefix("198.18.0.11/24"), netip.MustParsePrefix("198.18.0.3/24")
	doomA6, doomB6 = netip.MustParsePrefix("fd00:1::11/64"), netip.MustParsePrefix("fd00:1::3/64")
)

const (
	reconfigConns  = 100              // connections on the kept addresses
	reconfigRounds = 20000            // rounds of each reconfiguring goroutine, at most
	reconfigFor    = 10 * time.Second // and for no longer than this
	hangBound      = 60 * time.Second // a wait this long is a hang
)

// TestReconfigureUnderLoad: while 100 connections between two dual-stack
// stacks move data both ways over the addresses they keep, each stack is
// reconfigured from its own goroutine (addresses of both families added
// and removed, on the kept subnets and on others; static routes added,
// set back from Routes and removed) and read from another (Addrs, Routes,
// Stats). Meanwhile four connections lose an address, two on each stack:
// the stack whose address went fails their next call with ECONNABORTED,
// its peer, reset, with ECONNRESET. All 100 complete with the bytes sent;
// the tables end as they began; no goroutine is left.
func TestReconfigureUnderLoad(t *testing.T) {
	checkGoroutines(t)
	// A reset is sent once: should the link drop it, the peer never hears
	// of the address's removal. So the pipe is deep enough for every
	// window of the connections (104 × 64 KiB each way), and drops none.
	la, lb := NewPipe(PipeConfig{Depth: 1 << 14})
	tcpCfg := TCPConfig{ReceiveBuffer: 64 << 10, SendBuffer: 64 << 10}
	a, b := newLinkPair(t, Config{DADTransmits: -1, TCP: tcpCfg}, la, lb)
	for _, p := range []struct {
		s *Stack
		p netip.Prefix
	}{{a, keptA6}, {b, keptB6}} {
		if err := p.s.AddAddr(p.p); err != nil {
			t.Fatal(err)
		}
	}
	wantAddrsA, wantAddrsB := a.Addrs(), b.Addrs()
	wantRoutesA, wantRoutesB := a.Routes(), b.Routes()
	for _, p := range []struct {
		s *Stack
		p netip.Prefix
	}{{a, doomA4}, {a, doomA6}, {b, doomB4}, {b, doomB6}} {
		if err := p.s.AddAddr(p.p); err != nil {
			t.Fatal(err)
		}
	}
	size := int64(1 << 20)
	if raceEnabled {
		size = 128 << 10
	}

	ln, err := b.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, reconfigConns)
	go serveStreams(ln, size, served)
	pumpLn, err := b.Listen("tcp", ":81")
	if err != nil {
		t.Fatal(err)
	}
	defer pumpLn.Close()

	// The doomed connections, each pumping both ways until it fails.
	doomed := []struct {
		from, to netip.Prefix
		bGoes    bool // whether b's address goes, else a's
	}{
		{keptA4, doomB4, true}, {keptA6, doomB6, true},
		{doomA4, keptB4, false}, {doomA6, keptB6, false},
	}
	type pumped struct {
		read, write error
		removed     bool // on the stack whose address went
		name        string
	}
	pumps := make(chan pumped, 2*len(doomed))
	var flowing sync.WaitGroup
	for _, d := range doomed {
		acc := make(chan net.Conn, 1)
		go func() { c, _ := pumpLn.Accept(); acc <- c }()
		dl := Dialer{Stack: a, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(d.from.Addr(), 0)), Timeout: hangBound}
		ca, err := dl.Dial("tcp", netip.AddrPortFrom(d.to.Addr(), 81).String())
		if err != nil {
			t.Fatalf("dial %v → %v: %v", d.from.Addr(), d.to.Addr(), err)
		}
		cb := <-acc
		if cb == nil {
			t.Fatal("accepted nothing on port 81")
		}
		for _, end := range []struct {
			c       net.Conn
			removed bool
		}{{ca, !d.bGoes}, {cb, d.bGoes}} {
			flowing.Add(1)
			go func() {
				defer end.c.Close()
				end.c.SetDeadline(time.Now().Add(hangBound))
				werr := make(chan error, 1)
				go func() {
					buf := make([]byte, 16<<10)
					for {
						if _, err := end.c.Write(buf); err != nil {
							werr <- err
							return
						}
					}
				}()
				buf := make([]byte, 16<<10)
				var n int
				var rerr error
				for rerr == nil {
					var k int
					k, rerr = end.c.Read(buf)
					if n == 0 && k > 0 {
						flowing.Done()
					}
					n += k
				}
				if n == 0 {
					flowing.Done()
				}
				name := fmt.Sprintf("%v → %v, %v's end", d.from.Addr(), d.to.Addr(), end.c.LocalAddr())
				pumps <- pumped{rerr, <-werr, end.removed, name}
			}()
		}
	}
	waitGroup(t, "data on the doomed connections", &flowing)

	// The 100, half over IPv4 and half over IPv6, each from a's kept
	// address of the family, so that no address a adds becomes a source.
	dialed := make(chan struct{}, reconfigConns)
	done := make(chan error, reconfigConns)
	for i := range reconfigConns {
		src, dst := keptA4, keptB4
		if i%2 == 1 {
			src, dst = keptA6, keptB6
		}
		go func() { done <- streamTo(a, src.Addr(), dst.Addr(), byte(i), size, dialed) }()
	}
	for range reconfigConns {
		waitChan(t, "the 100 connections established", dialed)
	}

	// Reconfigure both stacks and read them while the 100 transfer.
	stop := make(chan struct{})
	var busy sync.WaitGroup
	defer busy.Wait()
	halt := sync.OnceFunc(func() { close(stop) })
	defer halt()
	rounds := make([]int, 2)
	for k, r := range []struct {
		s        *Stack
		kept     []netip.Prefix
		gw4, gw6 netip.Prefix
	}{{a, []netip.Prefix{keptA4, keptA6}, keptB4, keptB6}, {b, []netip.Prefix{keptB4, keptB6}, keptA4, keptA6}} {
		busy.Add(2)
		go func() { defer busy.Done(); rounds[k] = reconfigure(t, r.s, r.gw4.Addr(), r.gw6.Addr(), k, stop) }()
		go func() { defer busy.Done(); watchTables(t, r.s, r.kept, stop) }()
	}
	for _, p := range []struct {
		s *Stack
		p netip.Prefix
	}{{b, doomB4}, {b, doomB6}, {a, doomA4}, {a, doomA6}} {
		if err := p.s.RemoveAddr(p.p); err != nil {
			t.Errorf("RemoveAddr(%v): %v", p.p, err)
		}
	}
	for range 2 * len(doomed) {
		p := waitChan(t, "the doomed connections to fail", pumps)
		want := syscall.ECONNRESET
		if p.removed {
			want = syscall.ECONNABORTED
		}
		if !errors.Is(p.read, want) {
			t.Errorf("%s: Read: %v, want %v (resets sent by a %d, by b %d; frames dropped a→b %d, b→a %d)",
				p.name, p.read, want, a.Stats().TCP.ResetsOut, b.Stats().TCP.ResetsOut, la.Stats().TxDrops, lb.Stats().TxDrops)
		}
		if !errors.Is(p.write, want) {
			t.Errorf("%s: Write: %v, want %v", p.name, p.write, want)
		}
	}
	for range reconfigConns {
		if err := waitChan(t, "the 100 transfers", done); err != nil {
			t.Error(err)
		}
		if err := waitChan(t, "the 100 transfers' other ends", served); err != nil {
			t.Error(err)
		}
	}
	halt()
	waitGroup(t, "the reconfiguring goroutines", &busy)
	t.Logf("rounds of reconfiguration: %d on a, %d on b", rounds[0], rounds[1])

	for _, tc := range []struct {
		name   string
		s      *Stack
		addrs  []netip.Prefix
		routes []Route
	}{{"a", a, wantAddrsA, wantRoutesA}, {"b", b, wantAddrsB, wantRoutesB}} {
		if got := tc.s.Addrs(); !slices.Equal(got, tc.addrs) {
			t.Errorf("%s: Addrs() = %v, want %v", tc.name, got, tc.addrs)
		}
		if got := tc.s.Routes(); !slices.Equal(got, tc.routes) {
			t.Errorf("%s: Routes() = %v, want %v", tc.name, got, tc.routes)
		}
	}
}

// streamTo dials dst:80 from src on s, tells the server id, and then
// sends the stream of seed 2*id while it checks the server's, of seed
// 2*id+1, both size bytes; it signals dialed once connected.
func streamTo(s *Stack, src, dst netip.Addr, id byte, size int64, dialed chan<- struct{}) error {
	d := Dialer{Stack: s, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: hangBound}
	c, err := d.Dial("tcp", netip.AddrPortFrom(dst, 80).String())
	if err != nil {
		dialed <- struct{}{}
		return fmt.Errorf("connection %d: %v", id, err)
	}
	defer c.Close()
	dialed <- struct{}{}
	c.SetDeadline(time.Now().Add(hangBound))
	if _, err := c.Write([]byte{id}); err != nil {
		return fmt.Errorf("connection %d: %v", id, err)
	}
	return exchangeStreams(c, 2*id, 2*id+1, size)
}

// serveStreams accepts connections on ln until it closes and, on each,
// reads the client's id, then sends the stream of seed 2*id+1 while it
// checks the client's, of seed 2*id; the outcome goes to out.
func serveStreams(ln net.Listener, size int64, out chan<- error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(hangBound))
			var id [1]byte
			if _, err := io.ReadFull(c, id[:]); err != nil {
				out <- fmt.Errorf("server of %v: reading the id: %v", c.RemoteAddr(), err)
				return
			}
			out <- exchangeStreams(c, 2*id[0]+1, 2*id[0], size)
		}()
	}
}

// exchangeStreams sends size bytes of the stream of seed out on c, then
// closes its write side, while it checks that c brings size bytes of the
// stream of seed in, then EOF.
func exchangeStreams(c net.Conn, out, in byte, size int64) error {
	sent := make(chan error, 1)
	go func() {
		if _, err := io.Copy(c, newStream(out, size)); err != nil {
			sent <- err
			return
		}
		sent <- c.(*TCPConn).CloseWrite()
	}()
	rerr := checkStream(c, in, size)
	if err := <-sent; err != nil {
		return fmt.Errorf("%v → %v: send: %v", c.LocalAddr(), c.RemoteAddr(), err)
	}
	if rerr != nil {
		return fmt.Errorf("%v → %v: receive: %v", c.LocalAddr(), c.RemoteAddr(), rerr)
	}
	return nil
}

// checkStream reads r to EOF and checks that it brings the stream of seed,
// size bytes long.
func checkStream(r io.Reader, seed byte, size int64) error {
	want := newStream(seed, size)
	got, exp := make([]byte, 32<<10), make([]byte, 32<<10)
	var n int64
	for {
		k, err := r.Read(got)
		if k > 0 {
			if n+int64(k) > size {
				return fmt.Errorf("more than the %d bytes sent", size)
			}
			io.ReadFull(want, exp[:k])
			if !bytes.Equal(got[:k], exp[:k]) {
				return fmt.Errorf("bytes %d to %d differ from those sent", n, n+int64(k))
			}
			n += int64(k)
		}
		switch {
		case err == io.EOF && n == size:
			return nil
		case err == io.EOF:
			return fmt.Errorf("EOF after %d of %d bytes", n, size)
		case err != nil:
			return fmt.Errorf("after %d of %d bytes: %v", n, size, err)
		}
	}
}

// reconfigure changes s's tables until stop is closed, for at most
// reconfigRounds rounds and reconfigFor: in each round it adds an address
// of each family (alternately on the kept subnets and on subnets of their
// own) and removes those added three rounds before, adds a static route of
// each family through gw4 and gw6, sets back what Routes returns and
// removes the routes again, checking each step. When it ends, everything
// it added is gone. k tells the two stacks' addresses and routes apart.
// It returns how many rounds it completed.
func reconfigure(t *testing.T, s *Stack, gw4, gw6 netip.Addr, k int, stop <-chan struct{}) (rounds int) {
	var added []netip.Prefix
	defer func() {
		for _, p := range added {
			if err := s.RemoveAddr(p); err != nil {
				t.Errorf("RemoveAddr(%v): %v", p, err)
			}
		}
	}()
	end := time.Now().Add(reconfigFor)
	for ; rounds < reconfigRounds && time.Now().Before(end); rounds++ {
		select {
		case <-stop:
			return
		default:
		}
		i := rounds
		n := byte(100 + 50*k + i%50) // in 100-199, clear of the kept and doomed
		p4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, n}), 24)
		p6 := netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 3: 1, 14: 1, 15: n}), 64)
		if i%2 == 1 {
			p4 = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(k), n}), 24)
			p6 = netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 3: 2, 5: byte(k), 15: n}), 64)
		}
		for _, p := range []netip.Prefix{p4, p6} {
			if err := s.AddAddr(p); err != nil {
				t.Errorf("round %d: AddAddr(%v): %v", i, p, err)
				return
			}
			added = append(added, p)
		}
		if addrs := s.Addrs(); !slices.Contains(addrs, p4) || !slices.Contains(addrs, p6) {
			t.Errorf("round %d: Addrs() = %v, without %v and %v just added", i, addrs, p4, p6)
			return
		}
		for len(added) > 6 {
			if err := s.RemoveAddr(added[0]); err != nil {
				t.Errorf("round %d: RemoveAddr(%v): %v", i, added[0], err)
				return
			}
			if slices.Contains(s.Addrs(), added[0]) {
				t.Errorf("round %d: Addrs() has %v after its removal", i, added[0])
				return
			}
			added = added[1:]
		}

		r4 := Route{Dst: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(128 + k), n}), 32), Gateway: gw4, Metric: i % 3}
		r6 := Route{Dst: netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 3: 3, 5: byte(k), 7: n}), 64), Gateway: gw6, Metric: i % 3}
		for _, r := range []Route{r4, r6} {
			if err := s.AddRoute(r); err != nil {
				t.Errorf("round %d: AddRoute(%v): %v", i, r, err)
				return
			}
		}
		rs := s.Routes()
		if !slices.Contains(rs, r4) || !slices.Contains(rs, r6) {
			t.Errorf("round %d: Routes() = %v, without %v and %v just added", i, rs, r4, r6)
			return
		}
		if err := s.SetRoutes(rs); err != nil {
			t.Errorf("round %d: SetRoutes(Routes()): %v", i, err)
			return
		}
		if got := s.Routes(); !slices.Equal(got, rs) {
			t.Errorf("round %d: after SetRoutes(Routes()), Routes() = %v, was %v", i, got, rs)
			return
		}
		for _, r := range []Route{r4, r6} {
			if err := s.RemoveRoute(r); err != nil {
				t.Errorf("round %d: RemoveRoute(%v): %v", i, r, err)
				return
			}
		}
	}
	return
}

// watchTables reads s's addresses, routes and counters until stop is
// closed, for at most reconfigFor, checking that the addresses kept and
// their subnets' routes never leave the tables.
func watchTables(t *testing.T, s *Stack, kept []netip.Prefix, stop <-chan struct{}) {
	end := time.Now().Add(reconfigFor)
	for i := 0; i < 100*reconfigRounds && time.Now().Before(end); i++ {
		select {
		case <-stop:
			return
		default:
		}
		addrs, routes := s.Addrs(), s.Routes()
		for _, p := range kept {
			if !slices.Contains(addrs, p) {
				t.Errorf("Addrs() = %v, without %v", addrs, p)
				return
			}
			if !slices.ContainsFunc(routes, func(r Route) bool { return r.Dst == p.Masked() && !r.Gateway.IsValid() }) {
				t.Errorf("Routes() = %v, without %v on the link", routes, p.Masked())
				return
			}
		}
		if st := s.Stats(); st.TCP.ActiveOpens == 0 && st.TCP.PassiveOpens == 0 {
			t.Errorf("Stats() counts no connection: %+v", st.TCP)
			return
		}
	}
}

// waitChan receives from ch, failing the test after hangBound.
func waitChan[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(hangBound):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// waitGroup waits for wg, failing the test after hangBound.
func waitGroup(t *testing.T, what string, wg *sync.WaitGroup) {
	t.Helper()
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	waitChan(t, what, ch)
}
