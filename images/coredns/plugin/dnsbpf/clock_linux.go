package dnsbpf

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// boottimeNow reads CLOCK_BOOTTIME in ns: the clock of dns_cache expiries, which the BPF programs
// read with bpf_ktime_get_boot_ns() (it keeps counting while the machine sleeps, unlike
// CLOCK_MONOTONIC, so an entry cannot outlive its TTL across a suspend).
func boottimeNow() (uint64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
	}
	return uint64(ts.Nano()), nil
}

// explainUpdateError names the usual cause of a failed update.
func explainUpdateError(err error) error {
	if errors.Is(err, unix.E2BIG) {
		return fmt.Errorf("the map is full (expired entries are removed by the control plane's dns-gc): %w", err)
	}
	return err
}
