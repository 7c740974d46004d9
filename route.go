package netstack

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/gotcpip/netstack/internal/ip"
)

// Route is one entry of a stack's routing table: packets to an address in
// Dst go to Gateway, or straight to the destination on the link when
// Gateway is the zero Addr, and leave from Src when it is one of the
// stack's addresses (else the address on the gateway's subnet, or for
// IPv6 the one RFC 6724 picks). Of the routes whose Dst holds a
// destination, the longest prefix wins, then the lowest Metric; among
// those, a route whose gateway stopped answering ARP or neighbour
// solicitations is passed over for the next, until the gateway is heard
// from again (it is asked once a minute).
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	Metric  int
	Src     netip.Addr
}

// String returns r in the form of ip-route(8): "default via 198.18.0.1
// metric 0".
func (r Route) String() string {
	s := r.Dst.String()
	if r.Dst.Bits() == 0 {
		s = "default"
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	return fmt.Sprintf("%s metric %d", s, r.Metric)
}

// Routes returns the stack's routing table, most specific first: the
// subnets of its addresses (which come and go with them: metric 0 for
// IPv4, 256 for IPv6), the static routes (Config.Gateways are default
// routes of metric 0; on a link without Ethernet headers the stack starts
// with a default route of each family on the link), and the IPv6 routes
// router advertisements teach (on-link prefixes, metric 256, and a
// default route by each router, metric 1024).
func (s *Stack) Routes() []Route {
	var out []Route
	for _, r := range s.e.Routes() {
		out = append(out, Route{Dst: r.Dst, Gateway: s.zoned(r.Gateway), Metric: r.Metric, Src: s.zoned(r.Src)})
	}
	return out
}

// SetRoutes replaces the stack's static routes with rs. Routes the stack
// makes itself (a subnet of its addresses, what router advertisements
// teach) stay whether rs lists them or not, so that what Routes returned
// may be changed and set back. It fails, changing nothing, with an error
// wrapping syscall.EINVAL for a route with an invalid or unmasked Dst, a
// negative Metric, or a Gateway or Src of another family or not unicast,
// and with ENETUNREACH for a gateway not on the link (neither link-local
// nor on a subnet an on-link route holds).
func (s *Stack) SetRoutes(rs []Route) error {
	in := make([]ip.Route, 0, len(rs))
	for _, r := range rs {
		r, err := s.ipRoute(r)
		if err != nil {
			return &net.OpError{Op: "setroutes", Net: "ip", Err: err}
		}
		in = append(in, r)
	}
	if err := s.e.SetRoutes(in); err != nil {
		return &net.OpError{Op: "setroutes", Net: "ip", Err: err}
	}
	return nil
}

// AddRoute adds a static route, failing as SetRoutes does, and with an
// error wrapping syscall.EEXIST if the table has a route with the same
// Dst, Gateway and Metric. Two routes may differ in their gateway alone:
// the first added is used while its gateway answers, then the other.
func (s *Stack) AddRoute(r Route) error {
	x, err := s.ipRoute(r)
	if err == nil {
		err = s.e.AddRoute(x)
	}
	if err != nil {
		return &net.OpError{Op: "addroute", Net: "ip", Err: fmt.Errorf("%v: %w", r, err)}
	}
	return nil
}

// RemoveRoute removes the static route with r's Dst, Gateway and Metric.
// It fails with an error wrapping syscall.ESRCH, as ip-route(8) does, if
// there is none; the routes the stack makes itself go only with what made
// them.
func (s *Stack) RemoveRoute(r Route) error {
	x, err := s.ipRoute(r)
	if err == nil {
		err = s.e.RemoveRoute(x)
	}
	if err != nil {
		return &net.OpError{Op: "removeroute", Net: "ip", Err: fmt.Errorf("%v: %w", r, err)}
	}
	return nil
}

// ipRoute checks the zones of r's addresses and returns it as the IP
// layer takes it.
func (s *Stack) ipRoute(r Route) (ip.Route, error) {
	gw, src := r.Gateway, r.Src
	var err error
	if gw.IsValid() {
		if gw, err = s.unzone(gw); err != nil {
			return ip.Route{}, err
		}
	}
	if src.IsValid() {
		if src, err = s.unzone(src); err != nil {
			return ip.Route{}, err
		}
	}
	return ip.Route{Dst: r.Dst, Gateway: gw, Metric: r.Metric, Src: src}, nil
}
