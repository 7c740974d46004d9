// Package addrflag parses the -addr flag of the examples: a stack's
// addresses with their prefixes, comma-separated, of either family
// ("198.18.0.2/24,fd00::2/64").
package addrflag

import (
	"net/netip"
	"strings"
)

// Parse returns the prefixes of s, or the first one's parse error.
func Parse(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
