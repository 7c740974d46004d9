package tcp

import (
	"fmt"
	"testing"
	"time"
)

// benchConn returns an established connection (RTT 10 ms, MSS 1460, peer
// window 64 KiB, no options) whose output goes to count.
func benchConn(b *testing.B, count *int) *Conn {
	c := NewConn(nil, ttLocal, ttRemote, 1000, EmitFunc(func(s *Segment) { *count++ }))
	c.Connect(ttT0)
	s := Segment{SrcPort: 80, DstPort: 40000, Seq: 5000, Ack: 1001, Flags: FlagSYN | FlagACK, Wnd: 65535, Opts: Options{MSS: 1460}}
	c.Input(ttT0.Add(10*time.Millisecond), &s)
	if c.State() != Established {
		b.Fatal("not established")
	}
	return c
}

// Established-state input: a data segment in, the ACK decision out (an
// immediate ACK for every second segment, a delayed one otherwise), and the
// application reading what arrived. Must be 0 allocs/op.
func BenchmarkEstablishedInput(b *testing.B) {
	var sent int
	c := benchConn(b, &sent)
	payload := make([]byte, 1460)
	buf := make([]byte, 64<<10)
	seg := Segment{SrcPort: 80, DstPort: 40000, Ack: 1001, Flags: FlagACK, Wnd: 65535, Payload: payload}
	now := ttT0.Add(time.Second)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seg.Seq = c.rcvNxt
		c.Input(now, &seg)
		if c.rcv.n >= 32<<10 {
			c.Read(now, buf)
		}
		c.TakeEvents()
	}
	b.StopTimer()
	if sent < b.N/2 {
		b.Fatalf("%d ACKs for %d segments", sent, b.N)
	}
}

// Established-state output: the application writes, segments go out, the
// peer's ACK frees the buffer. Must be 0 allocs/op.
func BenchmarkEstablishedOutput(b *testing.B) {
	var sent int
	c := benchConn(b, &sent)
	data := make([]byte, 2*1460)
	ack := Segment{SrcPort: 80, DstPort: 40000, Seq: 5001, Flags: FlagACK, Wnd: 65535}
	now := ttT0.Add(time.Second)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(now, data)
		ack.Ack = c.sndNxt
		c.Input(now, &ack)
		c.TakeEvents()
	}
}

func BenchmarkParse(b *testing.B) {
	s := Segment{SrcPort: 1, DstPort: 2, Flags: FlagACK, Opts: Options{HasTS: true}, Payload: make([]byte, 1448)}
	buf := make([]byte, s.HeaderLen()+len(s.Payload))
	p := pseudoFor(len(buf))
	s.Encode(buf, p)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Parse(buf, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	s := Segment{SrcPort: 1, DstPort: 2, Flags: FlagACK, Opts: Options{HasTS: true}, Payload: make([]byte, 1448)}
	buf := make([]byte, s.HeaderLen()+len(s.Payload))
	p := pseudoFor(len(buf))
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Encode(buf, p)
	}
}

// BenchmarkSim measures the simulator end to end: two machines, every
// segment encoded with its checksum, impaired, parsed, and both streams
// checked byte for byte. It reports simulated payload bytes (both
// directions) per CPU-second; the simulation is single-threaded.
func BenchmarkSim(b *testing.B) {
	for _, loss := range []float64{0, 0.01} {
		b.Run(fmt.Sprintf("loss=%g%%", loss*100), func(b *testing.B) {
			const size = 32 << 20
			imp := simImpair{Delay: 5 * time.Millisecond, Rate: 125e6, Loss: loss, Dup: 0.01, Reorder: 0.02, Jitter: 3 * time.Millisecond}
			b.SetBytes(2 * size)
			b.ReportAllocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				simTransfer(b, uint64(i+1), imp, nil, size, Seq(0xFFFFFFFF-1000), Seq(0xFFFFFF00))
			}
			sec := time.Since(start).Seconds()
			b.ReportMetric(float64(2*size)*float64(b.N)/sec/(1<<30), "GiB/cpu-s")
		})
	}
}
