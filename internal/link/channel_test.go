package link

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestChannelInjectRead(t *testing.T) {
	c := NewChannel(ChannelConfig{Depth: 2})
	defer c.Close()
	pkt := []byte{0x45, 1, 2, 3}
	if err := c.Inject(pkt); err != nil {
		t.Fatal(err)
	}
	pkt[1] = 9 // the channel holds a copy
	c.Inject([]byte{2})
	if err := c.Inject([]byte{3}); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third inject into depth 2: %v", err)
	}
	buf := make([]byte, 100)
	n, _ := c.ReadFrame(buf)
	if !bytes.Equal(buf[:n], []byte{0x45, 1, 2, 3}) {
		t.Fatalf("read % x", buf[:n])
	}
	if st := c.Stats(); st.Injected != 2 || st.InjectDrops != 1 {
		t.Fatalf("stats %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	c.Inject([]byte{4})
	if err := c.InjectContext(ctx, []byte{5}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked inject: %v", err)
	}
}

func TestChannelOutbound(t *testing.T) {
	c := NewChannel(ChannelConfig{Depth: 1})
	defer c.Close()
	frame := []byte{1, 2, 3}
	c.WriteFrame(frame)
	frame[0] = 7
	c.WriteFrame(frame) // queue full: dropped
	got := <-c.Outbound()
	if !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("got % x", got)
	}
	if st := c.Stats(); st.Sent != 1 || st.SendDrops != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestChannelOutputCallbackAndClose(t *testing.T) {
	var got [][]byte
	c := NewChannel(ChannelConfig{Output: func(p []byte) { got = append(got, bytes.Clone(p)) }})
	c.WriteFrame([]byte{1})
	if len(got) != 1 || c.Outbound() != nil {
		t.Fatal("callback not used")
	}
	done := make(chan error)
	go func() { _, err := c.ReadFrame(make([]byte, 10)); done <- err }()
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := c.Inject([]byte{1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("inject after close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

func TestChannelZeroAllocs(t *testing.T) {
	c := NewChannel(ChannelConfig{})
	defer c.Close()
	pkt := make([]byte, 1400)
	buf := make([]byte, 1500)
	c.Inject(pkt)
	c.ReadFrame(buf)
	if n := testing.AllocsPerRun(100, func() {
		c.Inject(pkt)
		c.ReadFrame(buf)
	}); n != 0 {
		t.Fatalf("%v allocs per packet", n)
	}
}

// NextFrame lends the queued packet itself: bare IP after EthernetHeaderLen
// bytes of room, an Ethernet frame from its first byte. Released buffers
// are reused, so lending allocates nothing.
func TestChannelLend(t *testing.T) {
	for _, eth := range []bool{false, true} {
		c := NewChannel(ChannelConfig{Ethernet: eth})
		room := EthernetHeaderLen
		if eth {
			room = 0
		}
		pkt := []byte{0x45, 1, 2, 3, 4}
		c.Inject(pkt)
		c.Inject([]byte{0x45, 9})
		f, err := c.NextFrame()
		if err != nil || len(f) != room+len(pkt) || !bytes.Equal(f[room:], pkt) {
			t.Fatalf("ethernet %v: lent % x, %v", eth, f, err)
		}
		c.Release(f)
		if f, _ = c.NextFrame(); !bytes.Equal(f[room:], []byte{0x45, 9}) {
			t.Fatalf("ethernet %v: second frame % x", eth, f)
		}
		c.Release(f)
		if n := testing.AllocsPerRun(100, func() {
			c.Inject(pkt)
			f, _ := c.NextFrame()
			c.Release(f)
		}); n != 0 {
			t.Fatalf("ethernet %v: %v allocs per lent packet", eth, n)
		}
		c.Inject(pkt) // queued, but the Channel closes first
		c.Close()
		if _, err := c.NextFrame(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("NextFrame after Close: %v", err)
		}
		if err := c.InjectContext(context.Background(), pkt); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("InjectContext after Close: %v", err)
		}
	}
}

// TestChannelBatch: ReadFrames returns the packets queued, up to the
// buffers given, without waiting for more; WriteFrames hands a batch to
// OutputBatch in one call; Batch is reported only with OutputBatch.
func TestChannelBatch(t *testing.T) {
	var got [][][]byte
	c := NewChannel(ChannelConfig{OutputBatch: func(pkts [][]byte) {
		var b [][]byte
		for _, p := range pkts {
			b = append(b, append([]byte(nil), p...))
		}
		got = append(got, b)
	}})
	defer c.Close()
	if !c.Capabilities().Batch || NewChannel(ChannelConfig{}).Capabilities().Batch {
		t.Fatal("Batch should be reported with OutputBatch only")
	}
	for i := range 5 {
		if err := c.Inject([]byte{0x45, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	bufs, sizes := [][]byte{make([]byte, 64), make([]byte, 64), make([]byte, 64)}, make([]int, 3)
	for _, want := range []int{3, 2} {
		n, err := c.ReadFrames(bufs, sizes)
		if err != nil || n != want {
			t.Fatalf("ReadFrames = %d, %v; want %d", n, err, want)
		}
		for i := range n {
			if sizes[i] != 2 || bufs[i][0] != 0x45 {
				t.Fatalf("frame %d: % x", i, bufs[i][:sizes[i]])
			}
		}
	}
	if n, err := c.WriteFrames([][]byte{{1}, {2}, {3}}); n != 3 || err != nil || len(got) != 1 || len(got[0]) != 3 || got[0][2][0] != 3 {
		t.Fatalf("WriteFrames = %d, %v; batches %v", n, err, got)
	}
	if err := c.WriteFrame([]byte{4}); err != nil || len(got) != 2 || len(got[1]) != 1 {
		t.Fatalf("WriteFrame: %v; batches %v", err, got)
	}
	c.Close()
	if _, err := c.ReadFrames(bufs, sizes); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrames after Close: %v", err)
	}
	if _, err := c.WriteFrames([][]byte{{1}}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteFrames after Close: %v", err)
	}
}
