package netstack

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/checksum"
	"github.com/gotcpip/netstack/internal/ip"
)

// rawPeer is a test peer that speaks raw Ethernet frames to a stack over a
// PacketLink: the test writes any bytes it likes and reads the replies.
type rawPeer struct {
	link *PacketLink
	s    *Stack
	mac  ip.MAC
}

func newRawPeer(t *testing.T) *rawPeer {
	t.Helper()
	l := NewPacketLink(PacketLinkConfig{Ethernet: true})
	s, err := New(Config{Link: l, Addr: netip.MustParsePrefix("198.18.0.2/24")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p := &rawPeer{link: l, s: s, mac: ip.MAC(s.HardwareAddr())}
	// Ask for the stack's MAC, so it learns ours (RFC 826) and replies
	// without resolving.
	f := make([]byte, 42)
	copy(f[0:6], ip.BroadcastMAC[:])
	copy(f[6:12], peerMAC[:])
	f[12], f[13] = 0x08, 0x06
	ip.ARPPacket(f[14:]).Encode(ip.ARPOpRequest, peerMAC, netip.MustParseAddr("198.18.0.1"), ip.MAC{}, s.Addr())
	l.Inject(f)
	return p
}

var peerMAC = ip.MAC{2, 0, 0, 0, 0, 1}

// ipv4Frame builds an Ethernet frame to the stack from 198.18.0.1 with a
// valid IPv4 header around payload.
func (p *rawPeer) ipv4Frame(proto uint8, id uint16, fragOff int, mf bool, payload []byte) []byte {
	f := make([]byte, 34+len(payload))
	copy(f[0:6], p.mac[:])
	copy(f[6:12], peerMAC[:])
	f[12], f[13] = 0x08, 0x00
	h := f[14:34]
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], id)
	ff := uint16(fragOff / 8)
	if mf {
		ff |= 0x2000
	}
	binary.BigEndian.PutUint16(h[6:], ff)
	h[8], h[9] = 64, proto
	copy(h[12:16], []byte{198, 18, 0, 1})
	copy(h[16:20], []byte{198, 18, 0, 2})
	binary.BigEndian.PutUint16(h[10:], checksum.Checksum(h, 0))
	copy(f[34:], payload)
	return f
}

// echo sends an echo request with seq and waits for the reply.
func (p *rawPeer) echo(t *testing.T, seq uint16) bool {
	t.Helper()
	m := make([]byte, 8+32)
	m[0] = 8
	binary.BigEndian.PutUint16(m[6:], seq)
	binary.BigEndian.PutUint16(m[2:], checksum.Checksum(m, 0))
	p.link.Inject(p.ipv4Frame(1, seq, 0, false, m))
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-p.link.Outbound():
			if len(f) >= 42 && f[12] == 0x08 && f[13] == 0 && f[23] == 1 && f[34] == 0 &&
				binary.BigEndian.Uint16(f[40:]) == seq {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// TestMalformedFramesThenPing throws malformed and hostile frames at a stack
// and checks that each kind is counted and the stack still answers ping.
func TestMalformedFramesThenPing(t *testing.T) {
	checkGoroutines(t)
	p := newRawPeer(t)
	if !p.echo(t, 1) {
		t.Fatal("no echo reply before the garbage")
	}
	good := p.ipv4Frame(17, 5, 0, false, make([]byte, 16))
	inject := func(f []byte) { p.link.InjectContext(context.Background(), f) }
	inject(good[:20]) // truncated IP
	bad := append([]byte(nil), good...)
	bad[24] ^= 0xff // header checksum
	inject(bad)
	bad = append([]byte(nil), good...)
	bad[14] = 0x43 // IHL 3
	inject(bad)
	// Overlapping fragments.
	inject(p.ipv4Frame(17, 77, 0, true, make([]byte, 32)))
	inject(p.ipv4Frame(17, 77, 16, false, make([]byte, 32)))
	// A fragment flood past the 4 MiB reassembly cap: first fragments of
	// 5,000 datagrams that never complete.
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		inject(p.ipv4Frame(17, uint16(1000+i), 0, true, make([]byte, 1200)))
	}
	// Random garbage.
	for range 2000 {
		g := make([]byte, r.IntN(200))
		for i := range g {
			g[i] = byte(r.Uint32())
		}
		inject(g)
	}
	if !p.echo(t, 2) {
		t.Fatal("no echo reply after the garbage")
	}
	st := p.s.Stats()
	if st.IPv4.DropTruncated == 0 || st.IPv4.DropBadChecksum == 0 || st.IPv4.DropBadIHL == 0 ||
		st.IPv4.FragDropOverlap != 1 || st.IPv4.FragDropMemory == 0 {
		t.Fatalf("drops not counted: %+v", st.IPv4)
	}
	if m, _ := p.s.e.ReassemblyMemory(); m > 4<<20 {
		t.Fatalf("reassembly holds %d bytes, over the cap", m)
	}
}

// TestMalformedDatagramsCounted: UDP datagrams with a bad checksum or a
// length field past the packet are dropped, counted, and never delivered.
func TestMalformedDatagramsCounted(t *testing.T) {
	p := newRawPeer(t)
	pc, err := p.s.ListenPacket("udp", ":53")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	dgram := func(length int, sum uint16) []byte {
		d := make([]byte, 8+4)
		binary.BigEndian.PutUint16(d[0:], 4000)
		binary.BigEndian.PutUint16(d[2:], 53)
		binary.BigEndian.PutUint16(d[4:], uint16(length))
		binary.BigEndian.PutUint16(d[6:], sum)
		copy(d[8:], "data")
		return d
	}
	p.link.Inject(p.ipv4Frame(17, 1, 0, false, dgram(12, 0x1234))) // bad checksum
	p.link.Inject(p.ipv4Frame(17, 2, 0, false, dgram(40, 0)))      // length past the packet
	p.link.Inject(p.ipv4Frame(17, 3, 0, false, dgram(12, 0)[:6]))  // truncated header
	p.link.Inject(p.ipv4Frame(17, 4, 0, false, dgram(12, 0)))      // valid, no checksum
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "data" {
		t.Fatalf("valid datagram: %q %v", buf[:n], err)
	}
	st := p.s.Stats().UDP
	if st.DropBadChecksum != 1 || st.DropMalformed != 2 || st.DatagramsIn != 1 {
		t.Fatalf("stats %+v", st)
	}
}
