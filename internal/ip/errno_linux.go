package ip

import "syscall"

// errNoNet is the errno of a host-isolated unreachable (ICMP code 8):
// Linux's ENONET.
const errNoNet = syscall.ENONET
