//go:build !linux

package link

import (
	"errors"
	"runtime"
)

var errUnsupported = errors.New("link: TAP and TUN devices are supported only on Linux, not " + runtime.GOOS)

// OpenTAP returns an error: TAP devices are implemented only on Linux.
func OpenTAP(name string) (*Device, error) { return nil, errUnsupported }

// OpenTUN returns an error: TUN devices are implemented only on Linux.
func OpenTUN(name string) (*Device, error) { return nil, errUnsupported }
