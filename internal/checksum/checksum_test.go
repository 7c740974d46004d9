package checksum

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// slowSum is RFC 1071's reference loop, 16 bits at a time.
func slowSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = (s >> 16) + (s & 0xffff)
	}
	return ^uint16(s)
}

func TestChecksumMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := Checksum(b, 0), slowSum(b); got != want {
			t.Fatalf("len %d: got %#04x want %#04x", n, got, want)
		}
	}
	// All-0xff data stresses carries.
	b := make([]byte, 4001)
	for i := range b {
		b[i] = 0xff
	}
	if got, want := Checksum(b, 0), slowSum(b); got != want {
		t.Fatalf("0xff run: got %#04x want %#04x", got, want)
	}
}

func TestRFC1071Example(t *testing.T) {
	// RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != ^uint16(0xddf2) {
		t.Fatalf("got %#04x", got)
	}
}

func TestIPv4HeaderVerifies(t *testing.T) {
	// A real IPv4 header captured on the wire, checksum b861.
	h := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	if got := Checksum(h, 0); got != 0 {
		t.Fatalf("verify: got %#04x want 0", got)
	}
	h[10], h[11] = 0, 0
	if got := Checksum(h, 0); got != 0xb861 {
		t.Fatalf("compute: got %#04x want 0xb861", got)
	}
}

func TestPseudoMatchesBytes(t *testing.T) {
	src := netip.MustParseAddr("198.18.0.1")
	dst := netip.MustParseAddr("198.19.255.254")
	b := []byte{198, 18, 0, 1, 198, 19, 255, 254, 0, 6, 0x05, 0xdc}
	if got, want := Fold(Pseudo(src, dst, 6, 1500)), Checksum(b, 0); got != want {
		t.Fatalf("got %#04x want %#04x", got, want)
	}
}

func TestUpdate16(t *testing.T) {
	b := []byte{0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7}
	sum := Checksum(b, 0)
	b[8] = 0x3f // TTL 64 -> 63
	want := Checksum(b, 0)
	if got := Update16(sum, 0x4011, 0x3f11); got != want {
		t.Fatalf("got %#04x want %#04x", got, want)
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(1500)
	for b.Loop() {
		Checksum(buf, 0)
	}
}
