package link

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gotcpip/netstack/internal/checksum"
)

// superSegment builds a TCP super-segment as the stack hands one to
// WriteGSO: IPv4 or IPv6 behind ipOff bytes of link header, a 32-byte TCP
// header (with a timestamp option) with the given flags, and payload.
func superSegment(v6 bool, ipOff int, flags byte, payload []byte) (frame []byte, csumStart, hdrLen int) {
	ipLen := 20
	if v6 {
		ipLen = 40
	}
	csumStart, hdrLen = ipOff+ipLen, ipOff+ipLen+32
	frame = make([]byte, hdrLen+len(payload))
	for i := range ipOff {
		frame[i] = byte(0xe0 + i) // a link header to be copied as it is
	}
	ip := frame[ipOff:csumStart]
	if v6 {
		ip[0], ip[6], ip[7] = 0x60, 6, 64
		copy(ip[8:24], netip.MustParseAddr("2001:db8::1").AsSlice())
		copy(ip[24:40], netip.MustParseAddr("2001:db8::2").AsSlice())
	} else {
		ip[0], ip[8], ip[9] = 0x45, 64, 6
		binary.BigEndian.PutUint16(ip[4:], 0xfffe) // identification wraps within the cut
		ip[6] = 0x40
		copy(ip[12:16], []byte{198, 18, 0, 1})
		copy(ip[16:20], []byte{198, 18, 0, 2})
	}
	tcp := frame[csumStart:hdrLen]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], 0xffffff00) // the sequence number wraps too
	binary.BigEndian.PutUint32(tcp[8:], 12345)
	tcp[12], tcp[13] = 8<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 512)
	copy(tcp[20:], []byte{1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9})
	copy(frame[hdrLen:], payload)
	return frame, csumStart, hdrLen
}

func TestSegment(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name  string
		v6    bool
		ipOff int
		size  int
		gso   int
	}{
		{"ipv4 ethernet", false, EthernetHeaderLen, 10000, 1448},
		{"ipv6 bare", true, 0, 10000, 1428},
		{"exact multiple", false, 0, 3 * 1000, 1000},
		{"one segment", true, EthernetHeaderLen, 500, 1428},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := make([]byte, tc.size)
			for i := range payload {
				payload[i] = byte(r.Uint32())
			}
			const flags = 0x10 | tcpPSH | tcpCWR // ACK, PSH, CWR
			frame, csumStart, hdrLen := superSegment(tc.v6, tc.ipOff, flags, payload)
			orig := bytes.Clone(frame)
			var segs [][]byte
			n, err := Segment(frame, tc.ipOff, tc.gso, csumStart, hdrLen, func(i, n int) []byte {
				if i != len(segs) {
					t.Fatalf("next(%d) after %d segments", i, len(segs))
				}
				segs = append(segs, make([]byte, n+7)) // room to spare: Segment slices
				return segs[i]
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := (tc.size + tc.gso - 1) / tc.gso; n != want || len(segs) != want {
				t.Fatalf("%d segments (%d buffers), want %d", n, len(segs), want)
			}
			if !bytes.Equal(frame, orig) {
				t.Fatal("Segment changed the super-segment")
			}
			var got []byte
			for i, b := range segs {
				data := min(tc.gso, tc.size-i*tc.gso)
				seg := b[:hdrLen+data]
				if !bytes.Equal(seg[:tc.ipOff], orig[:tc.ipOff]) {
					t.Fatalf("segment %d: link header %x", i, seg[:tc.ipOff])
				}
				ip, tcp := seg[tc.ipOff:csumStart], seg[csumStart:]
				var src, dst netip.Addr
				if tc.v6 {
					if l := binary.BigEndian.Uint16(ip[4:]); int(l) != len(tcp) {
						t.Fatalf("segment %d: payload length %d, want %d", i, l, len(tcp))
					}
					src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
				} else {
					if l := binary.BigEndian.Uint16(ip[2:]); int(l) != len(ip)+len(tcp) {
						t.Fatalf("segment %d: total length %d", i, l)
					}
					if id := binary.BigEndian.Uint16(ip[4:]); id != uint16(0xfffe+i) {
						t.Fatalf("segment %d: identification %#x", i, id)
					}
					if checksum.Checksum(ip, 0) != 0 {
						t.Fatalf("segment %d: bad IPv4 header checksum", i)
					}
					src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
				}
				if checksum.Checksum(tcp, checksum.Pseudo(src, dst, 6, len(tcp))) != 0 {
					t.Fatalf("segment %d: bad TCP checksum", i)
				}
				if seq := binary.BigEndian.Uint32(tcp[4:]); seq != 0xffffff00+uint32(i*tc.gso) {
					t.Fatalf("segment %d: seq %#x", i, seq)
				}
				want := byte(0x10)
				if i == 0 {
					want |= tcpCWR
				}
				if i == n-1 {
					want |= tcpPSH
				}
				if tcp[13] != want {
					t.Fatalf("segment %d: flags %#x, want %#x", i, tcp[13], want)
				}
				// Ports, ack, data offset, window, urgent pointer and
				// options are the super-segment's.
				o := orig[csumStart:hdrLen]
				if !bytes.Equal(tcp[0:4], o[0:4]) || !bytes.Equal(tcp[8:13], o[8:13]) || !bytes.Equal(tcp[14:16], o[14:16]) ||
					!bytes.Equal(tcp[18:hdrLen-csumStart], o[18:]) {
					t.Fatalf("segment %d: header % x, want the fields of % x", i, tcp[:hdrLen-csumStart], o)
				}
				got = append(got, tcp[hdrLen-csumStart:]...)
			}
			if !bytes.Equal(got, payload) {
				t.Fatal("the segments' payloads do not make up the super-segment's")
			}
		})
	}
}

// TestSegmentRejects: frames that are no TCP super-segment fail and write
// nothing; random input never panics.
func TestSegmentRejects(t *testing.T) {
	never := func(i, n int) []byte { t.Fatalf("next called for a bad frame"); return nil }
	good, cs, hl := superSegment(false, 0, 0x10, make([]byte, 3000))
	udp := bytes.Clone(good)
	udp[9] = 17
	for name, c := range map[string]struct {
		frame             []byte
		ipOff, cs, hl, gs int
	}{
		"udp":             {udp, 0, cs, hl, 1000},
		"short":           {good[:30], 0, cs, hl, 1000},
		"header past end": {good, 0, cs, len(good) + 1, 1000},
		"gso zero":        {good, 0, cs, hl, 0},
		"ihl mismatch":    {good, 0, cs + 4, hl, 1000},
		"version 5":       {append([]byte{0x55}, good[1:]...), 0, cs, hl, 1000},
		"negative offset": {good, -1, cs, hl, 1000},
	} {
		if _, err := Segment(c.frame, c.ipOff, c.gs, c.cs, c.hl, never); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 70000)
	for range 2000 {
		f := make([]byte, r.IntN(200))
		for i := range f {
			f[i] = byte(r.Uint32())
		}
		Segment(f, r.IntN(20), 1+r.IntN(100), r.IntN(80), r.IntN(120), func(i, n int) []byte { return buf })
	}
}
