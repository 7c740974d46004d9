//go:build !linux

package ip

import "syscall"

// errNoNet is the errno of a host-isolated unreachable (ICMP code 8).
// Systems without Linux's ENONET report EHOSTUNREACH, as the BSDs do.
const errNoNet = syscall.EHOSTUNREACH
