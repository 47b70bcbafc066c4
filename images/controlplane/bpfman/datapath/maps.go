package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Now is CLOCK_BOOTTIME in ns, the clock of every expiry in the maps (bpf_ktime_get_boot_ns).
func Now() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_BOOTTIME): %v", err))
	}
	return uint64(ts.Nano())
}

// OpenMap opens a pinned map of the datapath, naming it and what to do if it is not there.
func OpenMap(pinDir, name string) (*ebpf.Map, error) {
	path := filepath.Join(pinDir, name)
	m, err := ebpf.LoadPinnedMap(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("map %s is not pinned at %s: run `bpfman load --pin-dir %s` first", name, path, pinDir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening map %s at %s: %w", name, path, err)
	}
	return m, nil
}

func withMap(pinDir, name string, fn func(*ebpf.Map) error) error {
	m, err := OpenMap(pinDir, name)
	if err != nil {
		return err
	}
	defer m.Close()
	return fn(m)
}

// ---- container_map ------------------------------------------------------------------------

// ContainerSpec is the JSON form of a container's config (`enroll --config`).
type ContainerSpec struct {
	Envoy   string `json:"envoy"`   // Envoy's IPv4 address
	CoreDNS string `json:"coredns"` // CoreDNS's IPv4 address
	Gateway string `json:"gateway"` // the network's gateway
	Network string `json:"network"` // the firewall network, CIDR
	// Flags: "lockdown" (refuse all egress but loopback), "disabled" (unrestricted, audited as
	// bypassed: `firewall disable`; lockdown wins).
	Flags []string `json:"flags,omitempty"`
	// Events per second and burst of the per-cgroup event token bucket; default 100/s, burst 200.
	// A burst of 0 turns events off for the container.
	EventsPerSecond *uint32 `json:"eventsPerSecond,omitempty"`
	EventsBurst     *uint32 `json:"eventsBurst,omitempty"`
	// The host proxy: the one TCP address and port of the host agents may reach (`enroll
	// --host-proxy ADDRESS:PORT`); the address is the engine's host-gateway (IPv4), never the
	// network's gateway. Both or neither.
	HostProxyAddress string `json:"hostProxyAddress,omitempty"`
	HostProxyPort    uint16 `json:"hostProxyPort,omitempty"`
}

func ipv4(field, s string) ([4]byte, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return [4]byte{}, fmt.Errorf("%s: %q is not an IPv4 address", field, s)
	}
	return a.As4(), nil
}

// Config validates the spec and turns it into the map value.
func (s ContainerSpec) Config() (ContainerConfig, error) {
	var c ContainerConfig
	var err error
	if c.EnvoyIP4, err = ipv4("envoy", s.Envoy); err != nil {
		return c, err
	}
	if c.CoreDNSIP4, err = ipv4("coredns", s.CoreDNS); err != nil {
		return c, err
	}
	if c.GatewayIP4, err = ipv4("gateway", s.Gateway); err != nil {
		return c, err
	}
	p, err := netip.ParsePrefix(s.Network)
	if err != nil || !p.Addr().Is4() {
		return c, fmt.Errorf("network: %q is not an IPv4 CIDR", s.Network)
	}
	p = p.Masked()
	c.NetAddr4 = p.Addr().As4()
	binary.BigEndian.PutUint32(c.NetMask4[:], ^uint32(0)<<(32-p.Bits()))
	if p.Bits() == 0 {
		c.NetMask4 = [4]byte{}
	}
	for _, f := range s.Flags {
		switch f {
		case "lockdown":
			c.Flags |= FlagLockdown
		case "disabled":
			c.Flags |= FlagDisabled
		default:
			return c, fmt.Errorf("flags: unknown flag %q (known: lockdown, disabled)", f)
		}
	}
	c.EventsRate, c.EventsBurst = 100, 200
	if s.EventsPerSecond != nil {
		c.EventsRate = *s.EventsPerSecond
	}
	if s.EventsBurst != nil {
		c.EventsBurst = *s.EventsBurst
	}
	if (s.HostProxyAddress == "") != (s.HostProxyPort == 0) {
		return c, fmt.Errorf("hostProxyAddress %q and hostProxyPort %d: give both, or neither", s.HostProxyAddress, s.HostProxyPort)
	}
	if s.HostProxyAddress != "" {
		if c.HostProxyIP4, err = ipv4("hostProxyAddress", s.HostProxyAddress); err != nil {
			return c, err
		}
		if c.HostProxyIP4 == c.GatewayIP4 || c.HostProxyIP4 == [4]byte{} {
			return c, fmt.Errorf("hostProxyAddress %s: the network's gateway and 0.0.0.0 are not the host-gateway", s.HostProxyAddress)
		}
	}
	c.HostProxyPort = s.HostProxyPort
	return c, nil
}

// Enroll makes the cgroup managed: from now on the attached programs enforce for it.
func Enroll(pinDir string, cgroupID uint64, c ContainerConfig) error {
	if c.Flags&^flagsAll != 0 {
		return fmt.Errorf("container flags 0x%x: unknown bits", c.Flags)
	}
	if c.Pad != [2]uint8{} {
		return errors.New("container config: padding must be zero")
	}
	return withMap(pinDir, ContainerMap, func(m *ebpf.Map) error {
		if err := m.Put(cgroupID, c); err != nil {
			return fmt.Errorf("writing cgroup %d to container_map: %w", cgroupID, err)
		}
		return nil
	})
}

// Unenroll makes the cgroup unmanaged and forgets its bypass and rate-limit state.
func Unenroll(pinDir string, cgroupID uint64) error {
	for _, name := range []string{ContainerMap, BypassMap, RatelimitState, RatelimitDrops} {
		err := withMap(pinDir, name, func(m *ebpf.Map) error {
			if err := m.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("removing cgroup %d from %s: %w", cgroupID, name, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- dns_cache ------------------------------------------------------------------------------

// DNSCacheWriter writes dns_cache entries through one open handle of the pinned map: what CoreDNS's
// dnsbpf plugin needs (open once at startup, write before answering). Safe for concurrent use.
type DNSCacheWriter struct{ m *ebpf.Map }

// OpenDNSCacheWriter opens the pinned dns_cache under pinDir.
func OpenDNSCacheWriter(pinDir string) (*DNSCacheWriter, error) {
	m, err := OpenMap(pinDir, DNSCache)
	if err != nil {
		return nil, err
	}
	return &DNSCacheWriter{m: m}, nil
}

// Write stores addr -> key, routing for ttl from now (CLOCK_BOOTTIME). A TTL of 0 stores an entry
// that is already expired: it never routes.
func (w *DNSCacheWriter) Write(addr netip.Addr, key uint64, ttl time.Duration) error {
	return w.put(addr, DNSCacheValue{DomainKey: key, ExpiresAt: Now() + uint64(ttl.Nanoseconds())})
}

// WritePermanent stores addr -> key with no expiry (the static entries of IP-literal rules).
func (w *DNSCacheWriter) WritePermanent(addr netip.Addr, key uint64) error {
	return w.put(addr, DNSCacheValue{DomainKey: key, ExpiresAt: DNSPermanent})
}

func (w *DNSCacheWriter) put(addr netip.Addr, v DNSCacheValue) error {
	if !addr.Unmap().Is4() {
		return fmt.Errorf("dns_cache holds IPv4 addresses; %s is not one", addr)
	}
	if err := w.m.Put(addr.Unmap().As4(), v); err != nil {
		return fmt.Errorf("writing %s to dns_cache: %w", addr, err)
	}
	return nil
}

// Close releases the map handle.
func (w *DNSCacheWriter) Close() error { return w.m.Close() }

// SetDNS stores one entry (see DNSCacheWriter).
func SetDNS(pinDir string, addr netip.Addr, key uint64, ttl time.Duration, permanent bool) error {
	w, err := OpenDNSCacheWriter(pinDir)
	if err != nil {
		return err
	}
	defer w.Close()
	if permanent {
		return w.WritePermanent(addr, key)
	}
	return w.Write(addr, key, ttl)
}

// GCDNS deletes expired dns_cache entries; it returns how many.
func GCDNS(pinDir string) (int, error) {
	n := 0
	err := withMap(pinDir, DNSCache, func(m *ebpf.Map) error {
		now := Now()
		var (
			k [4]byte
			v DNSCacheValue
		)
		var stale [][4]byte
		it := m.Iterate()
		for it.Next(&k, &v) {
			if now >= v.ExpiresAt {
				stale = append(stale, k)
			}
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("reading dns_cache: %w", err)
		}
		for _, k := range stale {
			if err := m.Delete(k); err == nil {
				n++
			}
		}
		return nil
	})
	return n, err
}

// ---- bypass_map ---------------------------------------------------------------------------

// Bypass opens unrestricted egress for the cgroup for d (the programs close it by themselves when
// the time is up); d <= 0 closes it now.
func Bypass(pinDir string, cgroupID uint64, d time.Duration) error {
	return withMap(pinDir, BypassMap, func(m *ebpf.Map) error {
		if d <= 0 {
			if err := m.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("removing cgroup %d from bypass_map: %w", cgroupID, err)
			}
			return nil
		}
		if err := m.Put(cgroupID, Now()+uint64(d.Nanoseconds())); err != nil {
			return fmt.Errorf("writing cgroup %d to bypass_map: %w", cgroupID, err)
		}
		return nil
	})
}

// ---- flush --------------------------------------------------------------------------------

// FlushReport says what Flush removed.
type FlushReport struct {
	DNSCache int `json:"dnsCache"`
	Bypass   int `json:"bypass"`
	Routes   int `json:"routes"`
}

// Flush forgets what the stack learnt and granted: every dns_cache entry (static ones too), every
// bypass window, and the route table (swapped for an empty one, atomically). container_map is
// left alone: enrolments (and lockdowns) are the control plane's to change, one cgroup at a time.
// With no routes and no cache, an enrolled container can reach only the proxy's catch-all and
// CoreDNS, whatever is left of the stack.
func Flush(pinDir string) (*FlushReport, error) {
	r := &FlushReport{}
	before, err := ReadState(pinDir)
	if err != nil {
		return nil, err
	}
	r.Routes = len(before.Routes)
	if _, err := ReplaceRoutes(pinDir, &RouteTable{StaticDNS: map[[4]byte]uint64{}}); err != nil {
		return nil, err
	}
	clear := func(name string, counted *int) error {
		return withMap(pinDir, name, func(m *ebpf.Map) error {
			var keys [][]byte
			k := make([]byte, m.KeySize())
			val := make([]byte, m.ValueSize())
			it := m.Iterate()
			for it.Next(&k, &val) {
				keys = append(keys, append([]byte(nil), k...))
			}
			if err := it.Err(); err != nil {
				return fmt.Errorf("reading %s: %w", name, err)
			}
			for _, k := range keys {
				if err := m.Delete(k); err == nil {
					*counted++
				}
			}
			return nil
		})
	}
	if err := clear(DNSCache, &r.DNSCache); err != nil {
		return nil, err
	}
	if err := clear(BypassMap, &r.Bypass); err != nil {
		return nil, err
	}
	return r, nil
}
