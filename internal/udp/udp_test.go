package udp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/gotcpip/netstack/internal/checksum"
)

var (
	src = netip.MustParseAddr("198.18.0.1")
	dst = netip.MustParseAddr("198.18.0.2")
)

func pseudo(n int) uint32 { return checksum.Pseudo(src, dst, 17, n) }

// golden is a small datagram from 198.18.0.1:53000 to 198.18.0.2:53;
// TestRoundTrip verifies its checksum independently of Parse.
func golden() []byte {
	b := []byte{0xcf, 0x08, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 'a', 'b', 'c', 'd'}
	Encode(b, 53000, 53, pseudo(len(b)))
	return b
}

func TestRoundTrip(t *testing.T) {
	b := golden()
	h, p, err := Parse(b, pseudo)
	if err != nil {
		t.Fatal(err)
	}
	if h.SrcPort() != 53000 || h.DstPort() != 53 || h.Length() != 12 || !bytes.Equal(p, []byte("abcd")) {
		t.Fatalf("got %d→%d len %d %q", h.SrcPort(), h.DstPort(), h.Length(), p)
	}
	// Independent check: the sum over pseudo-header bytes and datagram.
	ph := []byte{198, 18, 0, 1, 198, 18, 0, 2, 0, 17, 0, 12}
	if checksum.Checksum(append(ph, b...), 0) != 0 {
		t.Fatal("checksum does not verify over the explicit pseudo-header")
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct {
		name string
		b    func() []byte
		want error
	}{
		{"short", func() []byte { return golden()[:7] }, ErrTruncated},
		{"length below header", func() []byte { b := golden(); b[5] = 4; return b }, ErrBadLength},
		{"length past buffer", func() []byte { b := golden(); b[5] = 40; return b }, ErrBadLength},
		{"bad checksum", func() []byte { b := golden(); b[9] ^= 1; return b }, ErrBadChecksum},
	}
	for _, c := range cases {
		if _, _, err := Parse(c.b(), pseudo); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v want %v", c.name, err, c.want)
		}
	}
}

func TestZeroChecksumAccepted(t *testing.T) {
	b := golden()
	b[6], b[7] = 0, 0
	b[9] ^= 1 // corrupt: undetectable without a checksum, as RFC 768 allows
	if _, _, err := Parse(b, pseudo); err != nil {
		t.Fatal(err)
	}
}

func TestPaddingCut(t *testing.T) {
	b := append(golden(), 0, 0, 0, 0)
	if _, p, err := Parse(b, pseudo); err != nil || len(p) != 4 {
		t.Fatalf("%v %q", err, p)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(golden())
	f.Add([]byte{0, 0, 0, 0, 0, 8, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := Parse(b, pseudo)
		if err != nil {
			return
		}
		if h.Length() != HeaderLen+len(p) || h.Length() > len(b) {
			t.Fatalf("inconsistent: len %d payload %d buf %d", h.Length(), len(p), len(b))
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	buf := make([]byte, 1472)
	b.ReportAllocs()
	for b.Loop() {
		Encode(buf, 1, 2, pseudo(len(buf)))
	}
}
