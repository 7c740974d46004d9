package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock returns t0, t0+1.5s, t0+3s, ... so that timestamps are exact.
func fakeClock(t0 time.Time) func() time.Time {
	var mu sync.Mutex
	next := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := next
		next = next.Add(1500 * time.Millisecond)
		return t
	}
}

type pcapRecord struct {
	sec, nsec, incl, orig uint32
	data                  []byte
}

// parsePcap parses a little-endian nanosecond capture field by field.
func parsePcap(t *testing.T, b []byte) (linktype uint32, recs []pcapRecord) {
	t.Helper()
	le := binary.LittleEndian
	if len(b) < 24 {
		t.Fatalf("capture is %d bytes, shorter than its header", len(b))
	}
	checks := []struct {
		field     string
		got, want uint32
	}{
		{"magic", le.Uint32(b[0:]), 0xa1b23c4d},
		{"version_major", uint32(le.Uint16(b[4:])), 2},
		{"version_minor", uint32(le.Uint16(b[6:])), 4},
		{"thiszone", le.Uint32(b[8:]), 0},
		{"sigfigs", le.Uint32(b[12:]), 0},
		{"snaplen", le.Uint32(b[16:]), 262144},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("header %s = %#x, want %#x", c.field, c.got, c.want)
		}
	}
	linktype = le.Uint32(b[20:])
	b = b[24:]
	for len(b) > 0 {
		if len(b) < 16 {
			t.Fatalf("trailing %d bytes, short of a record header", len(b))
		}
		r := pcapRecord{sec: le.Uint32(b[0:]), nsec: le.Uint32(b[4:]), incl: le.Uint32(b[8:]), orig: le.Uint32(b[12:])}
		b = b[16:]
		if int(r.incl) > len(b) {
			t.Fatalf("record claims %d bytes, %d left", r.incl, len(b))
		}
		r.data, b = b[:r.incl], b[r.incl:]
		recs = append(recs, r)
	}
	return linktype, recs
}

func TestPcapFormat(t *testing.T) {
	t0 := time.Unix(1700000000, 123456789)
	tests := []struct {
		name     string
		ethernet bool
		frames   [][]byte // written by the wrapped end, even indices; read, odd
		linktype uint32
	}{
		{"ethernet", true, [][]byte{testARPRequest(), testUDPFrame(1000, []byte("hi"))}, 1},
		{"raw", false, [][]byte{testUDPPacket(1000, []byte("a")), testUDPPacket(1001, nil), testUDPPacket(1002, []byte("bcd"))}, 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := Pipe(1500)
			defer a.Close()
			var l Link = a
			if !tt.ethernet {
				l = rawLink{a}
			}
			var out bytes.Buffer
			p, err := NewPcapWithConfig(l, &out, PcapConfig{Now: fakeClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2000)
			for i, f := range tt.frames {
				if i%2 == 0 {
					if err := p.WriteFrame(f); err != nil {
						t.Fatal(err)
					}
					b.ReadFrame(buf)
				} else {
					b.WriteFrame(f)
					if _, err := p.ReadFrame(buf); err != nil {
						t.Fatal(err)
					}
				}
			}
			lt, recs := parsePcap(t, out.Bytes())
			if lt != tt.linktype {
				t.Errorf("linktype = %d, want %d", lt, tt.linktype)
			}
			if len(recs) != len(tt.frames) {
				t.Fatalf("%d records, want %d", len(recs), len(tt.frames))
			}
			for i, r := range recs {
				want := t0.Add(time.Duration(i) * 1500 * time.Millisecond)
				if r.sec != uint32(want.Unix()) || r.nsec != uint32(want.Nanosecond()) {
					t.Errorf("record %d time = %d.%09d, want %d.%09d", i, r.sec, r.nsec, want.Unix(), want.Nanosecond())
				}
				if int(r.orig) != len(tt.frames[i]) || !bytes.Equal(r.data, tt.frames[i]) {
					t.Errorf("record %d = %d/%d bytes % x, want % x", i, r.incl, r.orig, r.data, tt.frames[i])
				}
			}
		})
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(b []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(b), nil
}

func TestPcapWriteError(t *testing.T) {
	a, b := Pipe(1500)
	defer a.Close()
	if _, err := NewPcap(a, &failWriter{0}); err == nil {
		t.Error("NewPcap with a failing writer succeeded")
	}
	p, err := NewPcap(a, &failWriter{1}) // header only
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFrame(testARPRequest()); err != nil {
		t.Errorf("WriteFrame failed because the capture did: %v", err)
	}
	if n, err := b.ReadFrame(make([]byte, 100)); err != nil || n != 42 {
		t.Errorf("frame not delivered: %d, %v", n, err)
	}
	if p.Err() == nil {
		t.Error("Err() = nil after the capture's writer failed")
	}
}

// TestPcapConcurrent records from a reader and several writers at once:
// under -race, and the capture must hold every frame whole.
func TestPcapConcurrent(t *testing.T) {
	const writers, per = 4, 100
	a, b := NewPipe(PipeConfig{Depth: 2 * writers * per})
	var out bytes.Buffer
	p, err := NewPcap(a, &out)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				p.WriteFrame(testUDPFrame(uint16(w*per+i), []byte("out")))
				b.WriteFrame(testUDPFrame(uint16(w*per+i), []byte("in")))
			}
		})
	}
	buf := make([]byte, 2000)
	for range writers * per {
		if _, err := p.ReadFrame(buf); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	p.Close()
	_, recs := parsePcap(t, out.Bytes())
	if len(recs) != 2*writers*per {
		t.Fatalf("%d records, want %d", len(recs), 2*writers*per)
	}
	for i, r := range recs {
		if len(r.data) != 14+28+3 && len(r.data) != 14+28+2 {
			t.Fatalf("record %d is %d bytes: interleaved", i, len(r.data))
		}
	}
}

// TestPcapTshark has Wireshark's own parser read our captures.
func TestPcapTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		if os.Getenv("NETSTACK_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("tshark not installed (NETSTACK_REQUIRE_PRIVILEGED=1 forbids skipping); apt-get install tshark")
		}
		t.Skip("tshark not installed; apt-get install tshark, or set NETSTACK_REQUIRE_PRIVILEGED=1 to fail instead")
	}
	t0 := time.Unix(1700000000, 5)
	tests := []struct {
		name   string
		raw    bool
		frames [][]byte
		want   []string // per packet: time_epoch|protocol|info substring
	}{
		{
			name:   "ethernet",
			frames: [][]byte{testARPRequest(), testUDPFrame(4000, []byte("ping"))},
			want: []string{
				"1700000000.000000005|ARP|Who has 198.18.0.2? Tell 198.18.0.1",
				"1700000001.500000005|ECHO|",
			},
		},
		{
			name:   "raw",
			raw:    true,
			frames: [][]byte{testUDPPacket(4001, []byte("x")), testUDPPacket(4002, []byte("yz"))},
			want: []string{
				"1700000000.000000005|ECHO|",
				"1700000001.500000005|ECHO|",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := Pipe(1500)
			defer a.Close()
			var l Link = a
			if tt.raw {
				l = rawLink{a}
			}
			path := filepath.Join(t.TempDir(), tt.name+".pcap")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			p, err := NewPcapWithConfig(l, f, PcapConfig{Now: fakeClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			for _, fr := range tt.frames {
				if err := p.WriteFrame(fr); err != nil {
					t.Fatal(err)
				}
				b.ReadFrame(make([]byte, 2000))
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(tshark, "-r", path, "-n", "-T", "fields", "-E", "separator=|",
				"-e", "frame.time_epoch", "-e", "_ws.col.Protocol", "-e", "_ws.col.Info",
				"-e", "ip.checksum.status", "-e", "udp.checksum.status", "-o", "ip.check_checksum:TRUE",
				"-o", "udp.check_checksum:TRUE")
			// A fresh profile: the user's Wireshark preferences could change
			// columns or name resolution.
			home := t.TempDir()
			cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home)
			out, err := cmd.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("tshark -r: %v\n%s", err, ee.Stderr)
				}
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("tshark lists %d packets, want %d:\n%s", len(lines), len(tt.want), out)
			}
			for i, l := range lines {
				if !strings.HasPrefix(l, tt.want[i]) {
					t.Errorf("packet %d: tshark says %q, want prefix %q", i+1, l, tt.want[i])
				}
				if strings.Contains(l, "ECHO") && !strings.HasSuffix(l, "|1|1") { // 1: good, 0: bad, 2: unverified
					t.Errorf("packet %d: tshark reports bad checksums: %q", i+1, l)
				}
			}
			t.Logf("tshark:\n%s", out)
		})
	}
}

func BenchmarkPcapWrite(b *testing.B) {
	x, y := Pipe(1500)
	defer x.Close()
	p, _ := NewPcap(x, discard{})
	frame := testUDPFrame(1, make([]byte, 1400))
	buf := make([]byte, 1514)
	b.ReportAllocs()
	for b.Loop() {
		p.WriteFrame(frame)
		y.ReadFrame(buf)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// TestPcapBatch: Pcap passes on the Batch capability of the link it wraps
// and records each frame of a batch each way; over a link without it,
// the batch methods fail.
func TestPcapBatch(t *testing.T) {
	var sent int
	ch := NewChannel(ChannelConfig{OutputBatch: func(pkts [][]byte) { sent += len(pkts) }})
	defer ch.Close()
	var out bytes.Buffer
	p, err := NewPcap(ch, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Capabilities().Batch {
		t.Fatal("Pcap over a batching Channel does not report Batch")
	}
	pkt := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2}
	if n, err := p.WriteFrames([][]byte{pkt, pkt}); n != 2 || err != nil || sent != 2 {
		t.Fatalf("WriteFrames = %d, %v; %d sent", n, err, sent)
	}
	ch.Inject(pkt)
	bufs, sizes := [][]byte{make([]byte, 1500)}, make([]int, 1)
	if n, err := p.ReadFrames(bufs, sizes); n != 1 || err != nil {
		t.Fatalf("ReadFrames = %d, %v", n, err)
	}
	if recs := (out.Len() - 24) / (16 + len(pkt)); recs != 3 {
		t.Fatalf("%d records, want 3", recs)
	}
	a, _ := Pipe(1500)
	defer a.Close()
	q, _ := NewPcap(a, discard{})
	if _, err := q.WriteFrames([][]byte{pkt}); err == nil {
		t.Fatal("WriteFrames over a Pipe, which has no Batch, succeeded")
	}
}
