package ip

import "sync"

// A FramePool lends the frame buffers of one stack, shared by its layers:
// frames of one link MTU behind an Ethernet header (replies, fragments,
// segments and datagrams), and frames of the largest IPv4 packet (TCP
// super-segments for a link that cuts them). Its methods are safe for
// concurrent use.
type FramePool struct {
	size       int
	small, big sync.Pool
}

// BigFrameLen holds the largest IPv4 packet behind an Ethernet header.
const BigFrameLen = EthernetHeaderLen + IPv4MaxLen

// NewFramePool returns a pool of frames for a link of mtu.
func NewFramePool(mtu int) *FramePool {
	p := &FramePool{size: EthernetHeaderLen + mtu}
	p.small.New = func() any { b := make([]byte, p.size); return &b }
	p.big.New = func() any { b := make([]byte, BigFrameLen); return &b }
	return p
}

// Get returns a buffer of at least n bytes: a pooled frame when n fits
// one, else a new buffer. Give it back with Put.
func (p *FramePool) Get(n int) *[]byte {
	if n <= p.size {
		return p.small.Get().(*[]byte)
	}
	b := make([]byte, n)
	return &b
}

// GetBig returns a buffer of BigFrameLen bytes.
func (p *FramePool) GetBig() *[]byte { return p.big.Get().(*[]byte) }

// Put gives back a buffer from Get or GetBig; others are left to the
// garbage collector.
func (p *FramePool) Put(b *[]byte) {
	switch len(*b) {
	case p.size:
		p.small.Put(b)
	case BigFrameLen:
		p.big.Put(b)
	}
}
