package tcp

import (
	"sync/atomic"
	"testing"
	"time"
)

// RFC 1191 with RFC 5927 §5.2's check, as Linux's tcp_v4_err and
// tcp_simple_retransmit: a frag-needed quoting a sequence number in
// SND.UNA..SND.NXT lowers the MSS to MTU-40 and resends at once, cut to
// the new size, the segments in flight that were larger; cwnd stays.
func TestPathMTUErrorLowersMSS(t *testing.T) {
	tt := established(t, nil)
	tt.write(20, 3000)
	tt.want(20, "ACK seq=1001 ack=5001 len=1460")
	tt.want(20, "ACK seq=2461 ack=5001 len=1460")
	tt.want(20, "ACK|PSH seq=3921 ack=5001 len=80")
	cwnd := tt.c.Info().Cwnd
	if !tt.pathMTUError(25, 1000, 2461) {
		t.Fatal("frag-needed for SND.UNA..SND.NXT rejected")
	}
	// The two 1460-octet segments again, as 960+500 each; the 80 fitted.
	tt.want(25, "ACK seq=1001 ack=5001 len=960")
	tt.want(25, "ACK seq=1961 ack=5001 len=500")
	tt.want(25, "ACK seq=2461 ack=5001 len=960")
	tt.want(25, "ACK seq=3421 ack=5001 len=500")
	tt.wantNothing(26)
	i := tt.c.Info()
	if i.SndMSS != 960 || i.PMTU != 1000 || i.Cwnd != cwnd || tt.c.backoff != 0 {
		t.Fatalf("after frag-needed: MSS %d PMTU %d cwnd %d (was %d) backoff %d; want 960, 1000, unchanged, 0",
			i.SndMSS, i.PMTU, i.Cwnd, cwnd, tt.c.backoff)
	}
	if st := tt.c.Stats(); st.PMTUAccepted != 1 || st.PMTURejected != 0 {
		t.Fatalf("accepted %d rejected %d, want 1, 0", st.PMTUAccepted, st.PMTURejected)
	}
	// Acknowledged, the next data goes at the new size.
	tt.in(40, "ACK seq=5001 ack=4001")
	tt.write(50, 2000)
	tt.want(50, "ACK seq=4001 ack=5001 len=960")
	tt.want(50, "ACK seq=4961 ack=5001 len=960")
	tt.want(50, "ACK|PSH seq=5921 ack=5001 len=80")
	if i := tt.c.Info(); i.Cwnd < cwnd {
		t.Fatalf("cwnd %d after the MTU drop, below %d", i.Cwnd, cwnd)
	}
}

// With timestamps the options come out of the new MSS as well: 1000-40-12.
func TestPathMTUErrorTimestamps(t *testing.T) {
	tt := establishedWith(t, nil, " ts=100/0")
	tt.write(20, 1448)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=1448")
	tt.pathMTUError(21, 1000, 1001)
	tt.want(21, "ACK seq=1001 ack=5001 len=948")
	tt.want(21, "ACK|PSH seq=1949 ack=5001 len=500")
	if i := tt.c.Info(); i.SndMSS != 948 || i.PMTU != 1000 {
		t.Fatalf("MSS %d PMTU %d, want 948, 1000", i.SndMSS, i.PMTU)
	}
}

// RFC 5927 §4.1: a sequence number outside SND.UNA ≤ seq < SND.NXT is a
// spoof (or stale): rejected and counted, nothing changes. An MTU not
// below the path's is accepted and changes nothing either.
func TestPathMTUErrorRejected(t *testing.T) {
	tt := established(t, nil)
	tt.write(20, 1460)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=1460")
	before := tt.c.Info()
	for _, seq := range []Seq{1000, 2461, 900000} { // below SND.UNA, SND.NXT itself, far out
		tt.do(21, func(now time.Time) {
			if tt.c.PathMTUError(now, 1000, seq) {
				t.Errorf("frag-needed quoting seq %d accepted (SND.UNA 1001, SND.NXT 2461)", seq)
			}
		})
	}
	tt.do(21, func(now time.Time) {
		if !tt.c.PathMTUError(now, 1500, 1001) {
			t.Error("frag-needed for the path MTU itself rejected")
		}
	})
	tt.wantNothing(22)
	if after := tt.c.Info(); after != before {
		t.Fatalf("state changed:\n%+v\nwas\n%+v", after, before)
	}
	if st := tt.c.Stats(); st.PMTURejected != 3 || st.PMTUAccepted != 1 {
		t.Fatalf("rejected %d accepted %d, want 3, 1", st.PMTURejected, st.PMTUAccepted)
	}
	// Idle, nothing in flight: nothing can be quoted.
	tt.in(30, "ACK seq=5001 ack=2461")
	tt.do(31, func(now time.Time) {
		if tt.c.PathMTUError(now, 1000, 2461) {
			t.Error("frag-needed with nothing in flight accepted")
		}
	})
}

// Linux's min_pmtu: an MTU of 68 counts as 552, MSS 512.
func TestPathMTUErrorFloor(t *testing.T) {
	tt := established(t, nil)
	tt.write(20, 1000)
	tt.want(20, "ACK|PSH seq=1001 ack=5001 len=1000")
	tt.pathMTUError(21, 68, 1001)
	tt.want(21, "ACK seq=1001 ack=5001 len=512")
	tt.want(21, "ACK|PSH seq=1513 ack=5001 len=488")
	if i := tt.c.Info(); i.SndMSS != 512 || i.PMTU != 552 {
		t.Fatalf("MSS %d PMTU %d, want 512, 552", i.SndMSS, i.PMTU)
	}
	// IPv6's floor is 1280 (RFC 8201 §4).
	tt6 := established(t, &Config{MSS: 1440, IPHeaderLen: 40})
	tt6.write(20, 1440)
	tt6.want(20, "ACK|PSH seq=1001 ack=5001 len=1440")
	tt6.pathMTUError(21, 1000, 1001)
	tt6.want(21, "ACK seq=1001 ack=5001 len=1220")
	if i := tt6.c.Info(); i.SndMSS != 1220 || i.PMTU != 1280 {
		t.Fatalf("IPv6: MSS %d PMTU %d, want 1220, 1280", i.SndMSS, i.PMTU)
	}
}

// SetPathMTU applies a cached path MTU before the handshake: the SYN still
// offers our MSS, what we send fits the path from the first segment; set
// higher later (the cache entry expired), the MSS grows back to the
// link's.
func TestSetPathMTU(t *testing.T) {
	tt := newTranscript(t, nil)
	tt.do(0, func(now time.Time) { tt.c.SetPathMTU(now, 1000) })
	if got := tt.c.PathMTU(); got != 1000 {
		t.Fatalf("PathMTU %d, want 1000", got)
	}
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000 mss=1460")
	tt.in(10, "SYN|ACK seq=5000 ack=1001 mss=1460")
	tt.want(10, "ACK seq=1001 ack=5001")
	tt.write(20, 1460)
	tt.want(20, "ACK seq=1001 ack=5001 len=960")
	tt.want(20, "ACK|PSH seq=1961 ack=5001 len=500")
	tt.in(30, "ACK seq=5001 ack=2461")
	tt.do(40, func(now time.Time) { tt.c.SetPathMTU(now, 9000) })
	if i := tt.c.Info(); i.SndMSS != 1460 || i.PMTU != 1500 {
		t.Fatalf("raised: MSS %d PMTU %d, want 1460, 1500", i.SndMSS, i.PMTU)
	}
	// A peer MSS below the path's still caps it.
	tt2 := newTranscript(t, nil)
	tt2.do(0, func(now time.Time) { tt2.c.SetPathMTU(now, 1000) })
	tt2.do(0, tt2.c.Connect)
	tt2.want(0, "SYN seq=1000")
	tt2.in(10, "SYN|ACK seq=5000 ack=1001 mss=700")
	tt2.want(10, "ACK seq=1001 ack=5001")
	if got := tt2.c.Info().SndMSS; got != 700 {
		t.Fatalf("MSS %d with the peer's 700, want 700", got)
	}
}

// pathMTUError passes a frag-needed for mtu quoting seq at ms.
func (tt *transcript) pathMTUError(ms float64, mtu int, seq Seq) (ok bool) {
	tt.t.Helper()
	tt.do(ms, func(now time.Time) { ok = tt.c.PathMTUError(now, mtu, seq) })
	return ok
}

// RFC 4821 through the simulator: a hop that silently drops every frame
// above hole octets (ICMP filtered: a black hole), both ways. Without
// PLPMTUD nothing full-sized arrives and the transfer stalls; with it
// (the default) the timeouts make each end fall back, probes search
// upwards, and the transfer completes, each end's MSS ending within the
// search threshold (tcp_probe_threshold, 8 octets of MTU) of the largest
// that fits. On the same link without the hole nothing falls back.
func TestSimBlackHole(t *testing.T) {
	const hole = 1000 // the largest IP datagram the hop carries
	imp := simImpair{Delay: 5 * time.Millisecond, Rate: 12.5e6}
	run := func(t *testing.T, cfg *Config, withHole bool, size int64, limit time.Duration) (*sim, error) {
		s := newSim(t, simSeed(1600), imp, cfg, 0xFFFFF000, 7)
		if withHole {
			s.drop = func(_ int, seg *Segment) bool { return 20+seg.HeaderLen()+len(seg.Payload) > hole }
		}
		s.ends[0].total, s.ends[1].total = size, size
		err := s.run(limit)
		return s, err
	}
	t.Run("hole", func(t *testing.T) {
		const size = 4 << 20
		s, err := run(t, nil, true, size, 10*time.Minute)
		if err != nil || s.ends[0].recvd != size || s.ends[1].recvd != size {
			t.Fatalf("through the black hole: %v (received %d, %d of %d)", err, s.ends[0].recvd, s.ends[1].recvd, size)
		}
		for i, e := range s.ends {
			c := e.conn
			st := c.Stats()
			fit := c.mtuToMSS(hole) // 948 with timestamps
			if c.mss > fit || c.mss < c.mtuToMSS(hole-probeThreshold) || st.PLPMTUDFallbacks == 0 || st.PLPMTUDProbesAcked == 0 {
				t.Errorf("end %d: MSS %d (fits %d), fallbacks %d, probes %d (acked %d, lost %d)",
					i, c.mss, fit, st.PLPMTUDFallbacks, st.PLPMTUDProbes, st.PLPMTUDProbesAcked, st.PLPMTUDProbesLost)
			}
			t.Logf("end %d: MSS %d (fits %d), PMTU %d, fallbacks %d, probes %d (acked %d, lost %d), timeouts %d",
				i, c.mss, fit, c.PathMTU(), st.PLPMTUDFallbacks, st.PLPMTUDProbes, st.PLPMTUDProbesAcked, st.PLPMTUDProbesLost, st.Timeouts)
		}
		t.Logf("virtual %v, last data at %v", s.now.Sub(s.start), s.lastData.Sub(s.start))
	})
	t.Run("hole/NoMTUProbing", func(t *testing.T) {
		s, err := run(t, &Config{NoMTUProbing: true}, true, 256<<10, 2*time.Minute)
		if err == nil || s.ends[0].recvd != 0 || s.ends[1].recvd != 0 {
			t.Fatalf("without PLPMTUD: %v, received %d, %d; want a stall with nothing received", err, s.ends[0].recvd, s.ends[1].recvd)
		}
	})
	t.Run("no hole", func(t *testing.T) {
		const size = 4 << 20
		s, err := run(t, nil, false, size, 10*time.Minute)
		if err != nil || s.ends[0].recvd != size || s.ends[1].recvd != size {
			t.Fatalf("%v (received %d, %d of %d)", err, s.ends[0].recvd, s.ends[1].recvd, size)
		}
		for i, e := range s.ends {
			if st := e.conn.Stats(); st.PLPMTUDFallbacks != 0 || st.PLPMTUDProbes != 0 || e.conn.mss != 1448 || e.conn.probing {
				t.Errorf("end %d: MSS %d, fallbacks %d, probes %d; want 1448 and none", i, e.conn.mss, st.PLPMTUDFallbacks, st.PLPMTUDProbes)
			}
		}
	})
}

// A link MTU below the one MSS gives (Config.LinkMTU: a DHCP lease's)
// lowers the MSS that SYNs and SYN-ACKs, cookies too, advertise; raised
// again, the next connection advertises the full MSS.
func TestLinkMTUAdvertisedMSS(t *testing.T) {
	var mtu atomic.Int32
	mtu.Store(1400)
	cfg := Prepare(&Config{LinkMTU: &mtu})
	tt := newTranscript(t, cfg)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000 mss=1360")
	l := newListening(t, cfg, 4)
	l.in(0, "SYN seq=5000 mss=1460")
	l.want(0, "SYN|ACK seq=1000 ack=5001 mss=1360")
	ck := cookieListening(t, cfg)
	ck.in(5, "SYN seq=5000 mss=1460")
	ck.want(5, "SYN|ACK ack=5001 mss=1360")
	mtu.Store(1500)
	tt = newTranscript(t, cfg)
	tt.do(0, tt.c.Connect)
	tt.want(0, "SYN seq=1000 mss=1460")
}
