package dnsbpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cilium/ebpf"
)

// The dns_cache map, as bpf/include/clawker_datapath.h declares it:
// BPF_MAP_TYPE_HASH, key __be32 (the IPv4 address, network byte order), value struct dns_cache_value.
const (
	// DefaultMapPath is where the firewall pins dns_cache (pin directory /sys/fs/bpf/clawker).
	DefaultMapPath = "/sys/fs/bpf/clawker/dns_cache"
	// MapPathEnv is the environment variable that overrides DefaultMapPath; the Corefile option
	// `map PATH` in a dnsbpf block overrides both.
	MapPathEnv = "CLAWKER_DNS_CACHE_MAP"

	mapType      = ebpf.Hash
	mapKeySize   = 4  // __be32
	mapValueSize = 16 // struct dns_cache_value { __u64 domain_key; __u64 expires_at; }

	// Permanent is DNS_CACHE_PERMANENT, the expires_at of the static entries the control plane
	// writes for IP-literal rules. dnsbpf never overwrites such an entry: the control plane owns it,
	// and an answer that happens to contain that address must not make it expire (or re-key it).
	Permanent = ^uint64(0)

	// ExpiryGrace is added to every entry's TTL. The entry's clock starts when it is written, the
	// client's when the answer reaches it (later, by the reply's transit and the scheduling of the
	// client), and the client may connect to the address until its own copy expires: without a
	// margin its last connections would find the entry gone. It also gives TTL-0 answers ("use
	// now, do not cache") a window for the connection the client makes right after the answer,
	// which would otherwise be expired already. Kept small because it is also how long an address
	// the upstream has stopped handing out (CDN rotation) keeps routing after its TTL.
	ExpiryGrace = 5 * time.Second

	// MaxTTL caps the TTL (seconds) an entry is written with, and the TTLs of the answer the client
	// gets (see ResponseWriter), so both expire together. A TTL is 32 bits (up to 2^31-1 s = 68
	// years by RFC 2181): uncapped, one answer from a misconfigured or hostile authoritative server
	// of an allowed zone would keep its address routing under that destination for as long as the
	// map lives, long after the name moved away and the address (a cloud or CDN address) went to
	// someone else. One hour is the CoreDNS `cache` plugin's default cap for positive answers; a
	// client that honours the capped TTL re-resolves, which refreshes the entry, so the cap costs
	// at most one extra query per name and hour.
	MaxTTL uint32 = 3600
)

// cacheValue is struct dns_cache_value (host byte order, as the kernel stores it).
type cacheValue struct {
	DomainKey uint64
	ExpiresAt uint64 // CLOCK_BOOTTIME ns; the entry routes only while now < ExpiresAt
}

// ExpiresAt returns the expires_at an entry with this TTL (seconds) gets when written at now
// (CLOCK_BOOTTIME ns): now + min(ttl, MaxTTL) s + ExpiryGrace.
func ExpiresAt(now uint64, ttl uint32) uint64 {
	return now + uint64(min(ttl, MaxTTL))*uint64(time.Second) + uint64(ExpiryGrace)
}

// MapWriter is the CacheWriter of the server: it writes the entries to the pinned dns_cache BPF
// map, where the cgroup connect hooks look them up. Safe for concurrent use.
type MapWriter struct {
	path string
	// now reads CLOCK_BOOTTIME in ns, the clock of expires_at (the BPF programs compare it with
	// bpf_ktime_get_boot_ns()).
	now func() (uint64, error)

	mu sync.RWMutex // WriteEntries holds it shared, Close exclusively
	m  *ebpf.Map    // nil once closed
}

// OpenMapWriter opens the dns_cache map pinned at path and checks that its layout is the one this
// build writes. It fails when the map is missing (the firewall's BPF state is not loaded yet) or
// is not that map: the server must then refuse to start, since a CoreDNS that cannot record its
// answers would hand out addresses the connect hooks deny.
func OpenMapWriter(path string) (*MapWriter, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no dns_cache map is pinned at %s: the firewall's BPF state (the maps pinned under %s) must be loaded before CoreDNS starts; "+
				"refusing to serve answers that could not be recorded", path, filepath.Dir(path))
		}
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("opening the pinned dns_cache map %s: %w (it must be a map pinned on bpffs, and opening it needs CAP_BPF and CAP_SYS_ADMIN)", path, err)
		}
		return nil, fmt.Errorf("opening the pinned dns_cache map %s: %w", path, err)
	}
	if err := checkLayout(m); err != nil {
		m.Close()
		return nil, fmt.Errorf("the map pinned at %s is not the dns_cache map this CoreDNS writes: %v; "+
			"it was pinned by a different clawker version or is another map: reload the firewall's BPF state", path, err)
	}
	return &MapWriter{path: path, now: boottimeNow, m: m}, nil
}

func checkLayout(m *ebpf.Map) error {
	var problems []error
	if m.Type() != mapType {
		problems = append(problems, fmt.Errorf("its type is %s, want %s", m.Type(), mapType))
	}
	if m.KeySize() != mapKeySize {
		problems = append(problems, fmt.Errorf("its keys are %d bytes, want %d (an IPv4 address)", m.KeySize(), mapKeySize))
	}
	if m.ValueSize() != mapValueSize {
		problems = append(problems, fmt.Errorf("its values are %d bytes, want %d (struct dns_cache_value: domain_key, expires_at)", m.ValueSize(), mapValueSize))
	}
	return errors.Join(problems...)
}

// Path is the pinned map's path.
func (w *MapWriter) Path() string { return w.path }

// WriteEntries implements CacheWriter: one element per entry, key the address (network byte
// order), value {entry key, ExpiresAt(now, TTL)}, each written before WriteEntries returns. It
// skips addresses that have a permanent (control-plane) entry, and never shortens an entry that
// already routes the address to the same destination for longer (another client may hold an
// answer with a longer TTL). An entry of another destination is replaced: one address, one
// destination, the latest answer wins. The first failure is returned (entries before it stay
// written; they only expire).
func (w *MapWriter) WriteEntries(entries []CacheEntry) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.m == nil {
		return fmt.Errorf("the dns_cache map %s is closed (server shutting down)", w.path)
	}
	now, err := w.now()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := w.write(e, now); err != nil {
			return fmt.Errorf("writing %s to the dns_cache map %s: %w", e.Addr, w.path, err)
		}
	}
	return nil
}

// maxRaces bounds the retries when the key appears between the lookup and the update.
const maxRaces = 3

func (w *MapWriter) write(e CacheEntry, now uint64) error {
	addr := e.Addr.Unmap()
	if !addr.Is4() {
		return fmt.Errorf("not an IPv4 address")
	}
	key := addr.As4() // [4]byte, written as is: network byte order
	value := cacheValue{DomainKey: e.Key, ExpiresAt: ExpiresAt(now, e.TTL)}
	for range maxRaces {
		var old cacheValue
		flags := ebpf.UpdateAny
		switch err := w.m.Lookup(key, &old); {
		case errors.Is(err, ebpf.ErrKeyNotExist):
			// Create only: if the control plane writes a permanent entry for the address
			// meanwhile, the update fails instead of overwriting it, and the loop looks again.
			flags = ebpf.UpdateNoExist
		case err != nil:
			return fmt.Errorf("reading the current entry: %w", err)
		case old.ExpiresAt == Permanent:
			log.Debugf("dns_cache: %s has a permanent entry (0x%016x), left as it is (answer: %s)", addr, old.DomainKey, e)
			return nil
		case old.DomainKey == value.DomainKey && old.ExpiresAt >= value.ExpiresAt:
			return nil // already routes there for at least as long
		}
		err := w.m.Update(key, value, flags)
		if errors.Is(err, ebpf.ErrKeyExist) {
			continue
		}
		if err != nil {
			return explainUpdateError(err)
		}
		return nil
	}
	return fmt.Errorf("the entry kept changing under the update (%d attempts)", maxRaces)
}

// Close implements io.Closer (called on shutdown and reload); writes after it fail.
func (w *MapWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		return nil
	}
	err := w.m.Close()
	w.m = nil
	return err
}

// mapPath returns the path of the dns_cache map: the Corefile option when given, else the
// environment variable MapPathEnv when set, else DefaultMapPath; and where it came from.
func mapPath(option string) (path, source string) {
	switch {
	case option != "":
		return option, "the Corefile option `map`"
	case os.Getenv(MapPathEnv) != "":
		return os.Getenv(MapPathEnv), "the environment variable " + MapPathEnv
	default:
		return DefaultMapPath, "the default"
	}
}
