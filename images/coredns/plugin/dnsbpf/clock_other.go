//go:build !linux

package dnsbpf

import "errors"

// boottimeNow fails: dns_cache expiries are CLOCK_BOOTTIME times, and BPF maps exist only on Linux.
// (Only the package's portable parts, and its tests that need no map, run elsewhere.)
func boottimeNow() (uint64, error) {
	return 0, errors.New("CLOCK_BOOTTIME is Linux only")
}

func explainUpdateError(err error) error { return err }
