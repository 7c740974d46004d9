//go:build !linux

package netnstest

import "errors"

// Run returns an error: network namespaces exist only on Linux. (New has
// already skipped or failed the test.)
func (ns *NS) Run(fn func() error) error {
	return errors.New("netnstest: network namespaces exist only on Linux")
}
