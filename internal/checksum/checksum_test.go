package checksum

import (
	"bytes"
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

// The vector path must give exactly the scalar sum: a valid checksum folds
// to 0xffff, never to 0, whichever path computed it.
func TestSIMDMatchesScalar(t *testing.T) {
	if !haveSIMD {
		t.Skip("no vector path on this CPU")
	}
	r := rand.New(rand.NewPCG(3, 4))
	check := func(b []byte, initial uint32) {
		t.Helper()
		if got, want := sumSIMD(b, initial), sumScalar(b, initial); Fold(got) != Fold(want) {
			t.Fatalf("len %d initial %#x: vector %#x, scalar %#x", len(b), initial, got, want)
		}
	}
	big := make([]byte, 3<<20) // beyond one sumAVX2 call
	for n := 0; n < 2000; n++ {
		size := r.IntN(70000)
		if n%2 == 0 {
			size = r.IntN(600)
		}
		off := r.IntN(64) // unaligned starts
		b := big[off : off+size]
		for i := range b {
			b[i] = byte(r.Uint32())
			if r.IntN(4) == 0 {
				b[i] = 0xff
			}
		}
		check(b, r.Uint32()>>12)
	}
	for _, fill := range []byte{0, 0xff} {
		for i := range big {
			big[i] = fill
		}
		check(big, 0)
		check(big[:1000], 0)
		check(big[1:1001], 0xffff)
		check(big[:256], 0xffffffff) // initial near the top of uint32
	}
	// A buffer whose checksum field is set verifies to 0 on both paths.
	for i := range 65000 {
		big[i] = byte(r.Uint32())
	}
	big[16], big[17] = 0, 0
	c := Checksum(big[:65000], 0)
	big[16], big[17] = byte(c>>8), byte(c)
	if Checksum(big[:65000], 0) != 0 || Fold(sumScalar(big[:65000], 0)) != 0 {
		t.Fatal("a checksummed buffer does not verify")
	}
}

func FuzzSum(f *testing.F) {
	f.Add(make([]byte, 300), uint32(0))
	f.Add(bytes.Repeat([]byte{0xff}, 256), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, b []byte, initial uint32) {
		if got, want := Fold(Sum(b, initial)), Fold(sumScalar(b, initial)); got != want {
			t.Fatalf("len %d: Sum %#04x, scalar %#04x", len(b), got, want)
		}
		if len(b) < 100 {
			if got, want := Checksum(b, 0), slowSum(b); got != want {
				t.Fatalf("len %d: %#04x, reference %#04x", len(b), got, want)
			}
		}
	})
}

func BenchmarkChecksum64K(b *testing.B) {
	buf := make([]byte, 65000)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Checksum(buf, 0)
	}
}
