//go:build !linux

package link

import (
	"errors"
	"runtime"
	"syscall"
)

var errUnsupported = errors.New("link: TAP and TUN devices are supported only on Linux, not " + runtime.GOOS)

// OpenTAP returns an error: TAP devices are implemented only on Linux.
func OpenTAP(name string) (*Device, error) { return nil, errUnsupported }

// OpenTUN returns an error: TUN devices are implemented only on Linux.
func OpenTUN(name string) (*Device, error) { return nil, errUnsupported }

// OpenTAPOffload returns an error: TAP devices are implemented only on Linux.
func OpenTAPOffload(name string) (*Device, error) { return nil, errUnsupported }

// OpenTUNOffload returns an error: TUN devices are implemented only on Linux.
func OpenTUNOffload(name string) (*Device, error) { return nil, errUnsupported }

func (d *Device) writeVnet(frame []byte, gsoSize, csumStart, hdrLen int) error {
	return errUnsupported
}

// MaxQueues is the most queues a TAP or TUN device has.
const MaxQueues = 256

// OpenTAPOffloadQueues returns an error: TAP devices are implemented only
// on Linux.
func OpenTAPOffloadQueues(name string, queues int) (*Device, error) { return nil, errUnsupported }

// OpenTUNOffloadQueues returns an error: TUN devices are implemented only
// on Linux.
func OpenTUNOffloadQueues(name string, queues int) (*Device, error) { return nil, errUnsupported }

func (d *Device) readVnet(rc syscall.RawConn, buf []byte) (int, error) { return 0, errUnsupported }
