package netstack

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gotcpip/netstack/internal/netnstest"
	"golang.org/x/sys/unix"
)

// ECN (RFC 3168) against the Linux kernel: the kernel in a namespace with
// net.ipv4.tcp_ecn=1 (it asks for ECN and accepts it, over IPv4 and IPv6
// alike), the stack on a plain TAP (one frame, one segment) that is the
// port of a bridge holding the kernel's addresses, and an nftables table in
// the bridge family that marks CE on a share of the ECN-capable TCP frames
// crossing the port, each way: as a router's queue would instead of
// dropping them.

// tcpiOptECN is TCPI_OPT_ECN of <linux/tcp.h>: ECN was negotiated.
const tcpiOptECN = 8

const ecnTable = "nstecn"

// ecnCounters are the nftables counters of the bridge: TCP frames to and
// from the stack, and those of them marked CE.
type ecnCounters struct {
	toStack, toStackCE, fromStack, fromStackCE uint64
}

// newECNPeer makes the namespace, the bridge and the marking rules (pct
// percent of ECN-capable frames each way; 0 counts only) and a dual-stack
// stack with TCPConfig.ECN on the TAP.
func newECNPeer(t *testing.T, pct int) *kernelPeer6 {
	t.Helper()
	netnstest.Require(t)
	netnstest.LookPath(t, "nft")
	return newKernelPeer6On(t, Config{TCP: TCPConfig{ECN: true}}, func(p *kernelPeer6, cfg *Config) {
		ns, dev := p.ns, p.ns.DevName
		for _, args := range [][]string{
			{"sysctl", "-qw", "net.ipv4.tcp_ecn=1"},
			{"ip", "addr", "flush", "dev", dev},
			{"ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
			{"ip", "link", "set", dev, "master", "br0"},
			// One segment per frame from the kernel's TCP, so that one
			// mark is one segment: no segmentation offload above the
			// bridge (the plain TAP takes no super-segments anyway).
			{"ip", "link", "set", "br0", "gso_max_segs", "1"},
			{"ip", "link", "set", dev, "gso_max_segs", "1"},
			// Lossless: the TAP queues more frames towards the stack than
			// the stack's largest window (6 MiB) and the ACKs of its own
			// data can fill, so that no frame is dropped there.
			{"ip", "link", "set", dev, "txqueuelen", "20000"},
			{"ip", "addr", "add", netip.PrefixFrom(ns.KernelAddr, 24).String(), "dev", "br0"},
			{"ip", "-6", "addr", "add", netip.PrefixFrom(p.kernel, 64).String(), "dev", "br0", "nodad"},
			{"ip", "link", "set", "br0", "up"},
		} {
			if out, err := runIn(t, ns, 10*time.Second, args[0], args[1:]...); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		if _, err := exec.LookPath("ethtool"); err == nil {
			runIn(t, ns, 10*time.Second, "ethtool", "-K", "br0", "tso", "off", "gso", "off", "gro", "off")
		}
		cmd := ns.Command(t.Context(), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(ecnRuleset(dev, pct))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft -f: %v\n%s", err, out)
		}
	}, netnstest.Plain())
}

// ecnRuleset marks CE on pct % of the ECN-capable TCP frames each way at
// random, and counts. The kernel's addresses are on the bridge itself, so
// frames between the port and the kernel pass its input hook (from the
// stack) and its output hook (to the stack), not forward.
func ecnRuleset(port string, pct int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table bridge %s {\n", ecnTable)
	for _, c := range []string{"to_stack", "to_stack_ce", "from_stack", "from_stack_ce"} {
		fmt.Fprintf(&b, "\tcounter %s { }\n", c)
	}
	for _, d := range []struct{ chain, hook, match, ctr string }{
		{"in", "input", "iifname", "from_stack"},
		{"out", "output", "oifname", "to_stack"},
	} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority 0; policy accept;\n", d.chain, d.hook)
		for _, fam := range []struct{ tcp, ecn string }{{"ip protocol tcp", "ip ecn"}, {"ip6 nexthdr tcp", "ip6 ecn"}} {
			m := fmt.Sprintf("%s %q %s", d.match, port, fam.tcp)
			fmt.Fprintf(&b, "\t\t%s counter name %q\n", m, d.ctr)
			if pct > 0 {
				fmt.Fprintf(&b, "\t\t%s %s { ect0, ect1 } numgen random mod 100 < %d %s set ce counter name %q\n",
					m, fam.ecn, pct, fam.ecn, d.ctr+"_ce")
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func readECNCounters(t *testing.T, ns *netnstest.NS) ecnCounters {
	t.Helper()
	out, err := ns.Command(t.Context(), "nft", "-j", "list", "counters", "table", "bridge", ecnTable).Output()
	if err != nil {
		t.Fatalf("nft list counters: %v", err)
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string
				Packets uint64
			}
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("nft -j: %v\n%s", err, out)
	}
	var c ecnCounters
	m := map[string]*uint64{"to_stack": &c.toStack, "to_stack_ce": &c.toStackCE, "from_stack": &c.fromStack, "from_stack_ce": &c.fromStackCE}
	for _, o := range doc.Nftables {
		if o.Counter != nil && m[o.Counter.Name] != nil {
			*m[o.Counter.Name] = o.Counter.Packets
		}
	}
	return c
}

// kernelTCPInfo reads TCP_INFO of the kernel's end of a connection.
func kernelTCPInfo(t *testing.T, c net.Conn) *unix.TCPInfo {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var ierr error
	if err := rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || ierr != nil {
		t.Fatalf("TCP_INFO: %v %v", err, ierr)
	}
	return info
}

// TestKernelECN moves 64 MiB each way at once between the kernel and the
// stack, over IPv4 (the stack dials: our ECN-setup SYN) and IPv6 (the
// kernel dials: our ECN-setup SYN-ACK), first with the bridge only
// counting, then marking 1 % of the ECN-capable frames CE each way. Both
// ends negotiate ECN; the stack counts the marks the kernel's data got and
// echoes them (the kernel counts the data it delivered with ECE on its
// ACKs); it hears the kernel's echo of the marks on its own data and
// reduces its window, with no loss recovery (nothing is lost, and no mark
// is taken for a loss; timer-driven resends, which a loaded machine's
// stalls cause on both ends, are logged); every byte arrives intact. How the goodput of the two runs compares is
// logged: a measurement, not an assertion.
func TestKernelECN(t *testing.T) {
	checkGoroutines(t)
	size := int64(64 << 20)
	for _, fam := range []string{"tcp4", "tcp6"} {
		t.Run(fam, func(t *testing.T) {
			var took [2]time.Duration
			for i, pct := range []int{0, 1} {
				p := newECNPeer(t, pct)
				var c, k net.Conn
				port := uint16(9400 + i)
				if fam == "tcp4" {
					c, k = kernelPair(t, p.ns, p.s, int(port))
				} else {
					ln, err := p.s.Listen("tcp6", fmt.Sprintf("[%v]:%d", p.self, port))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { ln.Close() })
					acc := make(chan net.Conn, 1)
					go func() { c, _ := ln.Accept(); acc <- c }()
					k = kernelDial6(t, p.ns, netip.AddrPortFrom(p.self, port).String())
					if c = <-acc; c == nil {
						t.Fatal("the stack accepted nothing")
					}
					t.Cleanup(func() { c.Close() })
				}
				if !c.(*TCPConn).Info().ECN {
					t.Fatal("the stack did not negotiate ECN")
				}
				if ki := kernelTCPInfo(t, k); ki.Options&tcpiOptECN == 0 {
					out, _ := runIn(t, p.ns, 10*time.Second, "ss", "-tie")
					t.Fatalf("the kernel did not negotiate ECN: options %#x\n%s", ki.Options, out)
				}
				start := time.Now()
				exchange(t, c, k, size)
				took[i] = time.Since(start)
				ki := kernelTCPInfo(t, k)
				st := p.s.Stats().TCP
				nc := readECNCounters(t, p.ns)
				t.Logf("%d %% CE: %d MiB each way in %v (%.0f Mbit/s each way)", pct, size>>20, took[i].Round(time.Millisecond),
					float64(size*8)/took[i].Seconds()/1e6)
				t.Logf("bridge: %d frames to the stack, %d marked CE; %d from it, %d marked", nc.toStack, nc.toStackCE, nc.fromStack, nc.fromStackCE)
				t.Logf("stack: CE received %d, ECE received %d, reductions %d, retransmissions %d (timeouts %d, recoveries %d, TLPs %d); kernel: delivered with ECE %d of %d, retransmissions %d",
					st.CEReceived, st.ECEReceived, st.ECNReductions, st.Retransmits, st.Timeouts, st.FastRetransmits, st.TLPs, ki.Delivered_ce, ki.Delivered, ki.Total_retrans)
				out, err := runIn(t, p.ns, 10*time.Second, "cat", "/sys/class/net/"+p.ns.DevName+"/statistics/tx_dropped",
					"/sys/class/net/"+p.ns.DevName+"/statistics/rx_dropped")
				var txDrop, rxDrop uint64
				if _, serr := fmt.Sscan(out, &txDrop, &rxDrop); err != nil || serr != nil {
					t.Fatalf("TAP counters: %v %v %q", err, serr, out)
				}
				t.Logf("TAP: %d frames to the stack dropped, %d from it", txDrop, rxDrop)
				if nc.toStack == 0 || nc.fromStack == 0 {
					t.Fatal("the bridge counted no TCP frames: the rules do not match")
				}
				// Nothing was lost, and no mark was taken for a loss: no
				// loss recovery. Timer-driven resends (tail loss probes,
				// RFC 8985 §7, and the odd retransmission timeout) are not
				// counted against the marks: they go when a busy machine
				// delays the ACKs queued at the TAP past the timers, marks
				// or not, and the kernel's own resends on this lossless
				// bridge show the same stalls.
				if txDrop != 0 || rxDrop != 0 {
					t.Fatalf("the TAP dropped %d+%d frames: the bridge was not lossless", txDrop, rxDrop)
				}
				if st.FastRetransmits != 0 {
					t.Errorf("the stack entered loss recovery %d times on a lossless bridge (retransmissions %d, timeouts %d, TLPs %d)",
						st.FastRetransmits, st.Retransmits, st.Timeouts, st.TLPs)
				}
				if pct == 0 {
					if nc.toStackCE != 0 || st.CEReceived != 0 || st.ECNReductions != 0 {
						t.Errorf("marks without marking: %+v", st)
					}
					continue
				}
				if nc.toStackCE == 0 || nc.fromStackCE == 0 {
					t.Fatalf("the bridge marked nothing: %+v", nc)
				}
				if st.CEReceived == 0 || st.CEReceived > nc.toStackCE {
					t.Errorf("stack counted %d CE segments of the %d marked", st.CEReceived, nc.toStackCE)
				}
				if ki.Delivered_ce == 0 {
					t.Error("the kernel heard no ECE: the stack did not echo its marks")
				}
				if st.ECEReceived == 0 || st.ECNReductions == 0 {
					t.Errorf("the stack did not answer the kernel's echo: ECE %d, reductions %d", st.ECEReceived, st.ECNReductions)
				}
			}
			t.Logf("1 %% CE took %.2f× the unmarked run", took[1].Seconds()/took[0].Seconds())
		})
	}
}

// kernelDial6 connects from inside the namespace over IPv6.
func kernelDial6(t *testing.T, ns *netnstest.NS, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := ns.Run(func() (err error) {
		c, err = net.DialTimeout("tcp6", addr, 10*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
