package netstack

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/link"
	"github.com/gotcpip/netstack/internal/netnstest"
)

// TestPcapLinkKeepsGSO: a stack on PcapLink over a TAP opened with
// offloads still hands the kernel TCP super-segments, and the capture
// records them whole (frames from the stack longer than the MTU), as
// tcpdump does on a NIC with TSO. The transfer arrives intact.
func TestPcapLinkKeepsGSO(t *testing.T) {
	checkGoroutines(t)
	netnstest.Require(t)
	ns := netnstest.New(t)
	if !ns.Dev.Offload() {
		t.Fatal("the TAP has no offloads")
	}
	var capture bytes.Buffer
	pl, err := PcapLink(ns.Dev, &capture) // Pcap writes each record under its lock
	if err != nil {
		t.Fatal(err)
	}
	if !pl.(CapableLink).Capabilities().GSO {
		t.Fatal("PcapLink over an offloading TAP does not report GSO")
	}
	s, err := New(Config{Link: pl, Addr: ns.StackPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, k := kernelPair(t, ns, s, 9030)
	exchange(t, c, k, 8<<20)
	s.Close()
	big := 0
	for rec := capture.Bytes()[24:]; len(rec) >= 16; {
		incl := int(binary.LittleEndian.Uint32(rec[8:]))
		orig := int(binary.LittleEndian.Uint32(rec[12:]))
		frame := rec[16 : 16+incl]
		fromStack := len(frame) >= 30 && netip.AddrFrom4([4]byte(frame[26:30])) == ns.StackPrefix.Addr()
		if fromStack && orig > 14+ns.Dev.MTU() { // the kernel's GRO frames do not count
			big++
		}
		rec = rec[16+incl:]
	}
	if big == 0 {
		t.Fatal("no frame in the capture is longer than the MTU: GSO was lost behind PcapLink")
	}
	t.Logf("%d super-segments captured", big)
}

// lendingLink is a user's own Link that declares the Lend capability and
// counts the frames the stack took through it.
type lendingLink struct {
	*link.PipeEnd
	lent atomic.Int64
}

func (l *lendingLink) Capabilities() Capabilities { return Capabilities{Lend: true} }

func (l *lendingLink) NextFrame() ([]byte, error) {
	f, err := l.PipeEnd.NextFrame()
	if err == nil {
		l.lent.Add(1)
	}
	return f, err
}

// noWriteGSO declares GSO without the method it needs.
type noWriteGSO struct{ Link }

func (noWriteGSO) Capabilities() Capabilities { return Capabilities{GSO: true} }

// TestUserLinkDeclaresCapability: a Link written outside the package opts
// in to lending its frames, and the stack reads through NextFrame; a link
// that declares a capability without its methods is refused by New.
func TestUserLinkDeclaresCapability(t *testing.T) {
	checkGoroutines(t)
	pa, pb := link.Pipe(1500)
	ua := &lendingLink{PipeEnd: pa}
	a, err := New(Config{Link: ua, Addr: netip.MustParsePrefix("198.18.0.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{Link: pb, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ln, err := a.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveEcho(ln, 10*time.Second)
	c, err := b.Dial("tcp", "198.18.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := strings.Repeat("lent ", 1000)
	go c.Write([]byte(msg))
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		t.Fatalf("echo: %v", err)
	}
	if ua.lent.Load() == 0 {
		t.Fatal("the stack never called the link's NextFrame")
	}

	la, _ := Pipe()
	defer la.Close()
	if s, err := New(Config{Link: noWriteGSO{la}, Addr: netip.MustParsePrefix("198.18.0.1/24")}); err == nil {
		s.Close()
		t.Fatal("New took a link that reports GSO without WriteGSO")
	}
}
