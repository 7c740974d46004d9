package checksum

import "golang.org/x/sys/cpu"

// haveSIMD selects sumAVX2 for long inputs on CPUs with AVX2.
var haveSIMD = cpu.X86.HasAVX2

// sumAVX2 is in checksum_amd64.s.
//
//go:noescape
func sumAVX2(b []byte) uint64
