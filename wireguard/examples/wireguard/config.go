package main

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// config is one userspace WireGuard peer: our interface and one peer.
type config struct {
	PrivateKey string       // base64, as wg(8) prints it
	Addresses  []netip.Addr // of either family; a prefix's length is dropped
	DNS        []netip.Addr
	MTU        int
	ListenPort int

	PeerPublicKey string // base64
	Endpoint      string // host:port, optional on a server
	AllowedIPs    []netip.Prefix
	Keepalive     int // seconds; 0: off
}

// parseConfig reads a wg-quick style file: an [Interface] section with
// PrivateKey, Address, DNS, MTU and ListenPort, and one [Peer] section with
// PublicKey, Endpoint, AllowedIPs and PersistentKeepalive. Other keys
// (PostUp, Table, ...) are for wg-quick's kernel setup and are ignored.
func parseConfig(r io.Reader) (*config, error) {
	c := &config{MTU: 1420}
	section := ""
	peers := 0
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "[") && strings.HasSuffix(text, "]") {
			section = strings.ToLower(strings.TrimSpace(text[1 : len(text)-1]))
			if section == "peer" {
				if peers++; peers > 1 {
					return nil, fmt.Errorf("line %d: only one [Peer] is supported", line)
				}
			} else if section != "interface" {
				return nil, fmt.Errorf("line %d: unknown section [%s]", line, section)
			}
			continue
		}
		key, val, ok := strings.Cut(text, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want key = value", line)
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		if err := c.set(section, key, val); err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", line, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// set applies one key of a section.
func (c *config) set(section, key, val string) error {
	if section == "" {
		return fmt.Errorf("outside a section")
	}
	if val == "" {
		return nil // as wg-quick, an empty value sets nothing
	}
	var err error
	switch section + "." + key {
	case "interface.privatekey":
		c.PrivateKey = val
	case "interface.address":
		for s := range strings.SplitSeq(val, ",") {
			p, err := parseAddrOrPrefix(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			c.Addresses = append(c.Addresses, p.Addr())
		}
	case "interface.dns":
		for s := range strings.SplitSeq(val, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			c.DNS = append(c.DNS, a)
		}
	case "interface.mtu":
		c.MTU, err = strconv.Atoi(val)
	case "interface.listenport":
		c.ListenPort, err = strconv.Atoi(val)
	case "peer.publickey":
		c.PeerPublicKey = val
	case "peer.endpoint":
		c.Endpoint = val
	case "peer.allowedips":
		for s := range strings.SplitSeq(val, ",") {
			p, err := parseAddrOrPrefix(strings.TrimSpace(s))
			if err != nil {
				return err
			}
			c.AllowedIPs = append(c.AllowedIPs, p)
		}
	case "peer.persistentkeepalive":
		c.Keepalive, err = strconv.Atoi(val)
	}
	return err
}

// parseAddrOrPrefix parses "198.18.0.1/24", "fd00::1/64" or a bare
// address (a /32 or /128).
func parseAddrOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// uapi returns the configuration in wireguard-go's IpcSet form, keys in
// hex.
func (c *config) uapi() (string, error) {
	priv, err := hexKey(c.PrivateKey)
	if err != nil {
		return "", fmt.Errorf("private key: %w", err)
	}
	pub, err := hexKey(c.PeerPublicKey)
	if err != nil {
		return "", fmt.Errorf("peer public key: %w", err)
	}
	if len(c.AllowedIPs) == 0 {
		return "", fmt.Errorf("no allowed IPs for the peer")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "private_key=%s\nlisten_port=%d\npublic_key=%s\n", priv, c.ListenPort, pub)
	if c.Endpoint != "" {
		fmt.Fprintf(&b, "endpoint=%s\n", c.Endpoint)
	}
	if c.Keepalive > 0 {
		fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", c.Keepalive)
	}
	for _, p := range c.AllowedIPs {
		fmt.Fprintf(&b, "allowed_ip=%s\n", p)
	}
	return b.String(), nil
}

// hexKey turns a base64 WireGuard key into hex.
func hexKey(b64 string) (string, error) {
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", err
	}
	if len(k) != 32 {
		return "", fmt.Errorf("%d bytes, want 32", len(k))
	}
	return hex.EncodeToString(k), nil
}
