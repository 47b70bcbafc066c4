package dnsbpf

import (
	"fmt"
	"net/netip"
	"sort"
	"sync"
)

// CacheEntry is one resolved address, as the `dns_cache` map will hold it: the IPv4 address an
// agent may now connect to, the destination (rule) it was resolved under and that destination's
// domain key, and the TTL of the answer that carried it.
type CacheEntry struct {
	// Addr is an IPv4 address (never IPv4-mapped IPv6: it is unmapped before it gets here).
	Addr netip.Addr
	// Destination is the rule destination as rules write it ("api.example.org", ".example.org").
	Destination string
	// Key is DomainKey(Destination).
	Key uint64
	// TTL is the record's TTL in seconds, lowered to the smallest TTL on the CNAME chain that led
	// to it. The writer turns it into an expiry (and adds its grace period); 0 is a valid TTL.
	TTL uint32
	// Name is the query name the answer was for (lower case, fully qualified), for logs.
	Name string
}

func (e CacheEntry) String() string {
	return fmt.Sprintf("%s -> %s (0x%016x) ttl %ds for %s", e.Addr, e.Destination, e.Key, e.TTL, e.Name)
}

// CacheWriter stores entries where the connect hooks find them. ServeDNS calls WriteEntries before
// the answer is written to the client, and answers SERVFAIL instead if it fails, so a client never
// holds an address the datapath does not know.
//
// The server's implementation is MapWriter (the pinned dns_cache BPF map); MemoryCache is for tests.
// An implementation must be safe for concurrent use, as ServeDNS runs concurrently. A writer that
// also implements io.Closer is closed on shutdown.
type CacheWriter interface {
	WriteEntries(entries []CacheEntry) error
}

// MemoryCache is an in-memory CacheWriter for tests: like the BPF hash map, one entry per address,
// the last write wins.
type MemoryCache struct {
	mu      sync.Mutex
	entries map[netip.Addr]CacheEntry
	writes  int
	// Err, when set, makes every WriteEntries fail with it (and store nothing).
	Err error
	// BeforeWrite, when set, is called at the start of every WriteEntries (tests use it to check
	// that nothing has reached the client yet).
	BeforeWrite func(entries []CacheEntry)
}

// NewMemoryCache returns an empty MemoryCache.
func NewMemoryCache() *MemoryCache { return &MemoryCache{entries: map[netip.Addr]CacheEntry{}} }

// WriteEntries implements CacheWriter.
func (m *MemoryCache) WriteEntries(entries []CacheEntry) error {
	if m.BeforeWrite != nil {
		m.BeforeWrite(entries)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.Err != nil {
		return m.Err
	}
	if m.entries == nil {
		m.entries = map[netip.Addr]CacheEntry{}
	}
	for _, e := range entries {
		m.entries[e.Addr] = e
	}
	return nil
}

// Entries returns the stored entries, ordered by address.
func (m *MemoryCache) Entries() []CacheEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]CacheEntry, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// Lookup returns the entry for addr, if any.
func (m *MemoryCache) Lookup(addr netip.Addr) (CacheEntry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[addr]
	return e, ok
}

// Writes counts the calls of WriteEntries (failed ones included).
func (m *MemoryCache) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

// OpenCacheWriter, when set, opens the writer of every dnsbpf instance instead of the pinned
// dns_cache map (OpenMapWriter at the block's map path): tests set it to return a MemoryCache. It
// is nil in the server. Either way the writer is opened at startup (OnStartup, once per server
// block and again on every reload), so that validating a Corefile never touches the map.
var OpenCacheWriter func() (CacheWriter, error)
