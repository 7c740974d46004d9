package dhcp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestAppendGolden(t *testing.T) {
	m := &Message{Op: OpRequest, XID: 0x01020304, Secs: 5, Flags: FlagBroadcast,
		CIAddr: netip.MustParseAddr("198.18.0.9"), CHAddr: mac, Type: Discover,
		Options: Options{OptHostName: []byte("ab")}}
	m.Options.SetUint32(OptLeaseTime, 60)
	b := m.Append([]byte{0xee})
	if len(b) != 1+minMsgLen || b[0] != 0xee {
		t.Fatalf("length %d", len(b))
	}
	b = b[1:]
	head := "010106000102030400058000" + "c6120009" + "000000000000000000000000" + "020000000001"
	if got := hex.EncodeToString(b[:34]); got != head {
		t.Errorf("header\n got %s\nwant %s", got, head)
	}
	opts := "63825363" + "350101" + "0c026162" + "33040000003c" + "ff"
	if got := hex.EncodeToString(b[fixedLen : fixedLen+len(opts)/2]); got != opts {
		t.Errorf("options\n got %s\nwant %s", got, opts)
	}
	if !bytes.Equal(b[fixedLen+len(opts)/2:], make([]byte, minMsgLen-fixedLen-len(opts)/2)) {
		t.Error("padding not zero")
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, m)
	}
}

func TestLongOption(t *testing.T) {
	m := &Message{Op: OpReply, Options: Options{OptDomainName: []byte(strings.Repeat("x", 600))}}
	b := m.Append(nil)
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Options.DomainName() != strings.Repeat("x", 600) {
		t.Errorf("joined %d bytes", len(got.Options.DomainName()))
	}
	if !bytes.Contains(b, []byte{OptDomainName, 255}) || !bytes.Contains(b, []byte{OptDomainName, 90}) {
		t.Error("not split into 255, 255, 90")
	}
}

// raw returns a reply with the given options bytes after the cookie.
func raw(opts ...byte) []byte {
	b := (&Message{Op: OpReply}).Append(nil)[:fixedLen+cookieLen]
	return append(b, opts...)
}

func TestOverload(t *testing.T) {
	b := raw(OptOverload, 1, 3, OptDNS, 4, 1, 1, 1, 1, optEnd)
	copy(b[fileOff:], []byte{OptMessageType, 1, byte(Offer), OptDNS, 4, 2, 2, 2, 2, optEnd})
	copy(b[snameOff:], []byte{optPad, OptDomainName, 1, 'a', OptOverload, 1, 1, optEnd})
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	dns := m.Options.DNS()
	if m.Type != Offer || len(dns) != 2 || dns[1] != netip.MustParseAddr("2.2.2.2") || m.Options.DomainName() != "a" {
		t.Fatalf("%+v", m)
	}
	if _, ok := m.Options[OptOverload]; ok {
		t.Error("option 52 kept")
	}
	b = raw(OptOverload, 1, 2)
	copy(b[snameOff:], []byte{OptDNS, 200}) // runs past the sname field
	if _, err := Parse(b); err != ErrOption {
		t.Errorf("bad sname: %v", err)
	}
	b = raw(OptOverload, 1, 1)
	copy(b[fileOff:], []byte{OptDNS, 200})
	if _, err := Parse(b); err != ErrOption {
		t.Errorf("bad file: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	ok := raw(optEnd)
	cookie := bytes.Clone(ok)
	cookie[fixedLen] = 0
	hw := bytes.Clone(ok)
	hw[1] = 6
	for name, tc := range map[string]struct {
		b   []byte
		err error
	}{
		"short":          {ok[:239], ErrTruncated},
		"cookie":         {cookie, ErrCookie},
		"hardware":       {hw, ErrHardware},
		"no length":      {raw(OptDNS), ErrOption},
		"past end":       {raw(OptDNS, 5, 1, 2, 3, 4), ErrOption},
		"type length":    {raw(OptMessageType, 2, 1, 1), ErrOption},
		"overload value": {raw(OptOverload, 1, 4), ErrOption},
		"overload len":   {raw(OptOverload, 0), ErrOption},
	} {
		if _, err := Parse(tc.b); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", name, err, tc.err)
		}
	}
	// No End option, and an empty option: accepted.
	m, err := Parse(raw(optPad, OptHostName, 0))
	if err != nil || m.Options[OptHostName] == nil {
		t.Errorf("%v %+v", err, m)
	}
}

func TestOptionGetters(t *testing.T) {
	o := Options{}
	a := netip.MustParseAddr("198.18.0.1")
	for _, c := range []uint8{OptSubnetMask, OptBroadcast, OptRequestedIP, OptServerID} {
		o.SetAddrs(c, a)
	}
	o.SetAddrs(OptRouters, a, a)
	o.SetUint16(OptMaxMessageSize, 1500)
	o.SetUint32(OptRenewalTime, 7)
	o.SetUint32(OptRebindingTime, 8)
	o[OptMessage] = []byte("no")
	o[OptParamRequest] = []byte{1}
	m, _ := o.SubnetMask()
	b, _ := o.Broadcast()
	n, _ := o.MaxMessageSize()
	t1, _ := o.RenewalTime()
	t2, _ := o.RebindingTime()
	if m != a || b != a || n != 1500 || t1 != 7 || t2 != 8 || o.Message() != "no" || len(o.Routers()) != 2 {
		t.Error("getters")
	}
	o[OptDNS] = []byte{1, 2, 3}
	o[OptInterfaceMTU] = []byte{1}
	if o.DNS() != nil {
		t.Error("DNS of 3 bytes")
	}
	if _, ok := o.MTU(); ok {
		t.Error("MTU of 1 byte")
	}
	if _, ok := o.LeaseTime(); ok {
		t.Error("absent lease time")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(raw(optEnd))
	f.Add(raw(OptOverload, 1, 3, OptDNS, 4, 1, 1, 1, 1))
	s := newServer()
	f.Add(s.reply(&Message{XID: 1, CHAddr: mac}, Ack, offered))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(m.Append(nil))
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip\n got %+v\nwant %+v", again, m)
		}
	})
}
