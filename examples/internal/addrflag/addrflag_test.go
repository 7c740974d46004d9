package addrflag

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	got, err := Parse("198.18.0.2/24, fd00::2/64")
	want := []netip.Prefix{netip.MustParsePrefix("198.18.0.2/24"), netip.MustParsePrefix("fd00::2/64")}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Parse: %v %v", got, err)
	}
	if _, err := Parse("198.18.0.2/24,nonsense"); err == nil {
		t.Fatal("Parse accepted nonsense")
	}
}
