package netns

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// Lossy is the impairment of the lossy TAP workloads, applied on the
// kernel's side so that every stack sees the same: in namespace NS a bridge
// (br0, holding the kernel's address) whose one port is Port (the TAP, or
// the veth end towards the kernel reference's server), and an nftables
// table in the bridge family that counts every IPv4 TCP frame crossing the
// port in each direction and, when Loss > 0, drops Loss % of them at
// random (numgen random mod 100 < Loss), independently each way.
//
// The kernel's address is on the bridge itself, so frames between the port
// and the kernel are not forwarded: they cross the bridge's input hook
// (port → kernel, iifname Port) and its output hook (kernel → port,
// oifname Port), which is where the rules sit (a forward-hook rule would
// see nothing in this topology).
//
// TSO, GSO and GRO are off and gso_max_segs is 1 on the bridge and the
// port, so the kernel's own TCP hands the bridge one MTU-sized segment per
// frame and one drop is one segment. A stack that writes TCP super-segments
// into a TAP through the virtio-net header would still put them through the
// input hook whole; the counters catch that (Big: frames with more than
// 1500 bytes of IP packet).
type Lossy struct {
	NS   *NS
	Port string
	Loss int
}

// Count is one nftables counter.
type Count struct{ Packets, Bytes uint64 }

// Counters are the frames (IPv4 TCP) seen and dropped at the bridge, per
// direction, and those of them longer than 1500 bytes of IP packet
// (super-segments).
type Counters struct {
	ToStack, ToStackDrop, ToStackBig       Count
	FromStack, FromStackDrop, FromStackBig Count
}

// Rate is dropped/seen in percent.
func Rate(drop, all Count) float64 {
	if all.Packets == 0 {
		return 0
	}
	return 100 * float64(drop.Packets) / float64(all.Packets)
}

const lossTable = "nsbloss"

func (l *Lossy) ruleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table bridge %s {\n", lossTable)
	for _, c := range []string{"to_stack", "to_stack_drop", "to_stack_big", "from_stack", "from_stack_drop", "from_stack_big"} {
		fmt.Fprintf(&b, "\tcounter %s { }\n", c)
	}
	for _, d := range []struct{ chain, hook, match, ctr string }{
		{"in", "input", "iifname", "from_stack"},
		{"out", "output", "oifname", "to_stack"},
	} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority 0; policy accept;\n", d.chain, d.hook)
		m := fmt.Sprintf("%s %q ip protocol tcp", d.match, l.Port)
		fmt.Fprintf(&b, "\t\t%s counter name %q\n", m, d.ctr)
		fmt.Fprintf(&b, "\t\t%s meta length > 1500 counter name %q\n", m, d.ctr+"_big")
		if l.Loss > 0 {
			fmt.Fprintf(&b, "\t\t%s numgen random mod 100 < %d counter name %q drop\n", m, l.Loss, d.ctr+"_drop")
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// noOffloads turns TSO, GSO and GRO off on dev in ns (ethtool, if
// installed) and sets its gso_max_segs to 1 (either is enough for the
// kernel's own TCP; both are asked for).
func noOffloads(ns *NS, dev string) error {
	if err := IP("-n", ns.Name, "link", "set", dev, "gso_max_segs", "1"); err != nil {
		return err
	}
	if _, err := exec.LookPath("ethtool"); err == nil {
		// Some devices have some of these fixed; what can change changes.
		ns.Command("ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off").Run()
	}
	return nil
}

// newLossy makes the bridge in ns with port as its port and addr/24 on it,
// and loads the nftables table.
func newLossy(ns *NS, port, addr string, loss int) (*Lossy, error) {
	if loss < 0 || loss > 100 {
		return nil, fmt.Errorf("loss %d%% out of range", loss)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, fmt.Errorf("nft not installed (apt-get install -y nftables): %w", err)
	}
	l := &Lossy{NS: ns, Port: port, Loss: loss}
	const br = "br0" // inside the namespace; goes with it
	if err := IP("-n", ns.Name, "link", "add", br, "type", "bridge", "stp_state", "0", "forward_delay", "0"); err != nil {
		return nil, err
	}
	if err := IP("-n", ns.Name, "link", "set", port, "master", br); err != nil {
		return nil, err
	}
	for _, d := range []string{br, port} {
		if err := noOffloads(ns, d); err != nil {
			return nil, err
		}
	}
	for _, a := range [][]string{
		{"-n", ns.Name, "addr", "add", addr + "/24", "dev", br},
		{"-n", ns.Name, "link", "set", port, "up"},
		{"-n", ns.Name, "link", "set", br, "up"},
	} {
		if err := IP(a...); err != nil {
			return nil, err
		}
	}
	cmd := ns.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(l.ruleset())
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nft -f: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return l, nil
}

// Counters reads the table's counters.
func (l *Lossy) Counters() (Counters, error) {
	out, err := l.NS.Command("nft", "-j", "list", "counters", "table", "bridge", lossTable).Output()
	if err != nil {
		return Counters{}, fmt.Errorf("nft list counters: %w", err)
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name           string
				Packets, Bytes uint64
			}
		}
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return Counters{}, fmt.Errorf("nft -j output: %w", err)
	}
	var c Counters
	m := map[string]*Count{
		"to_stack": &c.ToStack, "to_stack_drop": &c.ToStackDrop, "to_stack_big": &c.ToStackBig,
		"from_stack": &c.FromStack, "from_stack_drop": &c.FromStackDrop, "from_stack_big": &c.FromStackBig,
	}
	n := 0
	for _, o := range doc.Nftables {
		if o.Counter == nil {
			continue
		}
		if p, ok := m[o.Counter.Name]; ok {
			*p = Count{o.Counter.Packets, o.Counter.Bytes}
			n++
		}
	}
	if n != len(m) {
		return c, fmt.Errorf("nft: found %d of %d counters", n, len(m))
	}
	return c, nil
}

// String summarizes c for a log line.
func (c Counters) String() string {
	f := func(all, drop, big Count) string {
		mean := 0.0
		if all.Packets > 0 {
			mean = float64(all.Bytes) / float64(all.Packets)
		}
		return fmt.Sprintf("%d frames, %d dropped (%.3f%%), mean %.0f B, %d over 1500 B", all.Packets, drop.Packets, Rate(drop, all), mean, big.Packets)
	}
	return "kernel→stack " + f(c.ToStack, c.ToStackDrop, c.ToStackBig) + "; stack→kernel " + f(c.FromStack, c.FromStackDrop, c.FromStackBig)
}
