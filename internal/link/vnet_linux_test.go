package link

import "testing"

// TestGSOTypeOf: a super-segment is announced as GSO_TCPV6 when its IP
// header is version 6 (behind the Ethernet header on a TAP), else as
// GSO_TCPV4, the virtio-net types the kernel checks against the packet.
func TestGSOTypeOf(t *testing.T) {
	v4, v6 := make([]byte, 60), make([]byte, 80)
	v4[0], v6[0] = 0x45, 0x60
	tap4, tap6 := append(make([]byte, 14), v4...), append(make([]byte, 14), v6...)
	for _, tc := range []struct {
		frame []byte
		tap   bool
		want  uint8
	}{
		{v4, false, vnetGSOTCPv4}, {v6, false, vnetGSOTCPv6},
		{tap4, true, vnetGSOTCPv4}, {tap6, true, vnetGSOTCPv6},
		{nil, true, vnetGSOTCPv4},
	} {
		if got := gsoTypeOf(tc.frame, tc.tap); got != tc.want {
			t.Errorf("gsoTypeOf(% x…, tap %v) = %d, want %d", tc.frame[:min(len(tc.frame), 16)], tc.tap, got, tc.want)
		}
	}
}
