package dnsbpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// These tests need to create BPF maps and pin them on bpffs (root, or CAP_BPF + CAP_SYS_ADMIN,
// and /sys/fs/bpf mounted). Where that is impossible they are skipped, saying why.

// DNSCacheSpec is the dns_cache map as bpf/include/clawker_maps.h declares it.
func DNSCacheSpec(maxEntries uint32) *ebpf.MapSpec {
	return &ebpf.MapSpec{
		Name:       "dns_cache",
		Type:       ebpf.Hash,
		KeySize:    4,
		ValueSize:  16,
		MaxEntries: maxEntries,
		Flags:      unix.BPF_F_NO_PREALLOC,
	}
}

// PinTestMap creates a map from spec and pins it as dns_cache in a new directory
// /sys/fs/bpf/clawker-test-<random>/; both are removed when the test ends. It returns the map
// (for the test to read and seed) and the pin path.
// unavailable skips a test that needs BPF on a developer machine without it, but fails it under CI
// (CI set): there the test bed provides bpffs and root, so a skip would hide a missing component.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func PinTestMap(t testing.TB, spec *ebpf.MapSpec) (*ebpf.Map, string) {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &fs); err != nil || fs.Type != unix.BPF_FS_MAGIC {
		unavailable(t, "no bpffs at /sys/fs/bpf (statfs: %v): cannot pin a test map", err)
	}
	_ = rlimit.RemoveMemlock() // kernels before 5.11 charge maps to RLIMIT_MEMLOCK
	m, err := ebpf.NewMap(spec)
	if errors.Is(err, unix.EPERM) {
		unavailable(t, "creating a BPF map is not permitted here (needs root or CAP_BPF): %v", err)
	}
	if err != nil {
		t.Fatalf("creating the test map: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	dir, err := os.MkdirTemp("/sys/fs/bpf", "clawker-test-")
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		unavailable(t, "cannot create a directory on bpffs: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "dns_cache")
	if err := m.Pin(path); err != nil {
		t.Fatalf("pinning the test map: %v", err)
	}
	t.Cleanup(func() { _ = m.Unpin() })
	return m, path
}

// RawEntry reads the element of addr as the BPF programs see it: the key bytes as stored, the
// value decoded as struct dns_cache_value in host byte order. ok is false when there is none.
func RawEntry(t testing.TB, m *ebpf.Map, addr netip.Addr) (domainKey, expiresAt uint64, ok bool) {
	t.Helper()
	key := addr.As4() // the address in network byte order, as the programs' __be32 holds it
	raw, err := m.LookupBytes(key[:])
	if err != nil {
		t.Fatalf("looking up %s: %v", addr, err)
	}
	if raw == nil {
		return 0, 0, false
	}
	if len(raw) != 16 {
		t.Fatalf("value of %d bytes", len(raw))
	}
	return binary.NativeEndian.Uint64(raw[0:8]), binary.NativeEndian.Uint64(raw[8:16]), true
}

func boottime(t testing.TB) uint64 {
	t.Helper()
	now, err := boottimeNow()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

func put(t *testing.T, m *ebpf.Map, addr string, key, expiresAt uint64) {
	t.Helper()
	var v [16]byte
	binary.NativeEndian.PutUint64(v[0:8], key)
	binary.NativeEndian.PutUint64(v[8:16], expiresAt)
	a := netip.MustParseAddr(addr).As4()
	if err := m.Update(a[:], v[:], ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}
}

func openWriterOn(t *testing.T, path string) *MapWriter {
	t.Helper()
	w, err := OpenMapWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

const sec = uint64(time.Second)

func TestMapWriterWritesEntries(t *testing.T) {
	m, path := PinTestMap(t, DNSCacheSpec(1024))
	w := openWriterOn(t, path)
	if w.Path() != path {
		t.Fatal(w.Path())
	}
	entries := []CacheEntry{
		entry("192.0.2.1", "api.example.org", 300, "api.example.org."),
		entry("198.51.100.7", ".example.org", 0, "x.example.org."),            // TTL 0: the grace only
		entry("203.0.113.250", ".example.org", 86400*365, "big.example.org."), // capped at MaxTTL
	}
	before := boottime(t)
	if err := w.WriteEntries(entries); err != nil {
		t.Fatal(err)
	}
	after := boottime(t)

	// The key is the address in network byte order: 192.0.2.1 is the bytes c0 00 02 01.
	var keys []string
	it := m.Iterate()
	var k, v []byte
	for it.Next(&k, &v) {
		keys = append(keys, fmt.Sprintf("% x", k))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || !strings.Contains(strings.Join(keys, ","), "c0 00 02 01") || !strings.Contains(strings.Join(keys, ","), "c6 33 64 07") {
		t.Fatalf("keys %v", keys)
	}

	grace := uint64(ExpiryGrace)
	for _, e := range entries {
		key, expires, ok := RawEntry(t, m, e.Addr)
		if !ok {
			t.Fatalf("%s: no entry", e.Addr)
		}
		if key != DomainKey(e.Destination) {
			t.Errorf("%s: domain key 0x%016x, want 0x%016x (%s)", e.Addr, key, DomainKey(e.Destination), e.Destination)
		}
		ttl := uint64(min(e.TTL, MaxTTL)) * sec
		// Within [now+ttl, now+ttl+grace+slack] of CLOCK_BOOTTIME; more precisely, the time of the
		// write (between before and after) plus ttl plus the grace.
		if expires < before+ttl+grace || expires > after+ttl+grace {
			t.Errorf("%s ttl %d: expires_at %d is not in [%d, %d] (before %d + %d s + grace)", e.Addr, e.TTL, expires, before+ttl+grace, after+ttl+grace, before, ttl/sec)
		}
	}
	// The clock is CLOCK_BOOTTIME, not CLOCK_MONOTONIC or the wall clock: an entry written now
	// expires within the next hour and a bit on that clock.
	if _, expires, _ := RawEntry(t, m, netip.MustParseAddr("203.0.113.250")); expires-after > uint64(MaxTTL)*sec+grace {
		t.Errorf("capped entry expires %d s after now", (expires-after)/sec)
	}
}

func TestExpiresAt(t *testing.T) {
	if got := ExpiresAt(1000, 0); got != 1000+5*sec {
		t.Fatal(got)
	}
	if got := ExpiresAt(1000, 60); got != 1000+65*sec {
		t.Fatal(got)
	}
	if got := ExpiresAt(1000, ^uint32(0)); got != 1000+3605*sec {
		t.Fatal(got)
	}
}

// Permanent (control-plane, IP-literal) entries are never touched; the write still succeeds (the
// address routes by its static entry).
func TestMapWriterLeavesPermanentEntries(t *testing.T) {
	m, path := PinTestMap(t, DNSCacheSpec(64))
	static := DomainKey("192.0.2.1")
	put(t, m, "192.0.2.1", static, Permanent)
	w := openWriterOn(t, path)
	err := w.WriteEntries([]CacheEntry{
		entry("192.0.2.1", "api.example.org", 300, "api.example.org."),
		entry("192.0.2.2", "api.example.org", 300, "api.example.org."),
	})
	if err != nil {
		t.Fatal(err)
	}
	if key, expires, ok := RawEntry(t, m, netip.MustParseAddr("192.0.2.1")); !ok || key != static || expires != Permanent {
		t.Fatalf("the permanent entry became 0x%x / %d (present %v)", key, expires, ok)
	}
	if key, _, ok := RawEntry(t, m, netip.MustParseAddr("192.0.2.2")); !ok || key != DomainKey("api.example.org") {
		t.Fatal("the other entry of the answer was not written")
	}
}

func TestMapWriterReplacesAndRefreshes(t *testing.T) {
	m, path := PinTestMap(t, DNSCacheSpec(64))
	w := openWriterOn(t, path)
	now := boottime(t)
	api, other := DomainKey("api.example.org"), DomainKey(".example.net")
	put(t, m, "192.0.2.1", api, now+1000*sec) // same destination, longer: kept
	put(t, m, "192.0.2.2", api, now-sec)      // same destination, expired: refreshed
	put(t, m, "192.0.2.3", other, now+1000*sec)
	put(t, m, "192.0.2.4", api, now+10*sec) // same destination, shorter: extended
	err := w.WriteEntries([]CacheEntry{
		entry("192.0.2.1", "api.example.org", 60, "api.example.org."),
		entry("192.0.2.2", "api.example.org", 60, "api.example.org."),
		entry("192.0.2.3", "api.example.org", 60, "api.example.org."),
		entry("192.0.2.4", "api.example.org", 60, "api.example.org."),
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(addr string, wantKey uint64, lo, hi uint64) {
		t.Helper()
		key, expires, ok := RawEntry(t, m, netip.MustParseAddr(addr))
		if !ok || key != wantKey || expires < lo || expires > hi {
			t.Errorf("%s: 0x%x expires %d, want 0x%x in [%d, %d]", addr, key, expires, wantKey, lo, hi)
		}
	}
	fresh := now + 65*sec
	check("192.0.2.1", api, now+1000*sec, now+1000*sec)
	check("192.0.2.2", api, fresh, fresh+5*sec)
	check("192.0.2.3", api, fresh, fresh+5*sec) // another destination: the latest answer wins
	check("192.0.2.4", api, fresh, fresh+5*sec)
}

func TestOpenMapWriterMissingMap(t *testing.T) {
	_, path := PinTestMap(t, DNSCacheSpec(8))
	missing := filepath.Join(filepath.Dir(path), "nothing-here")
	for _, p := range []string{missing, "/sys/fs/bpf/clawker-test-does-not-exist/dns_cache"} {
		w, err := OpenMapWriter(p)
		if err == nil {
			w.Close()
			t.Fatalf("%s: opened", p)
		}
		t.Log(err)
		want := fmt.Sprintf("no dns_cache map is pinned at %s: the firewall's BPF state (the maps pinned under %s) must be loaded before CoreDNS starts", p, filepath.Dir(p))
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q\nwant it to contain %q", err, want)
		}
	}
	// Something that is not a pinned BPF object at all.
	if _, err := OpenMapWriter("/proc/self/status"); err == nil || !strings.Contains(err.Error(), "opening the pinned dns_cache map /proc/self/status") {
		t.Fatalf("a regular file: %v", err)
	}
}

func TestOpenMapWriterRefusesAnotherLayout(t *testing.T) {
	cases := []struct {
		spec *ebpf.MapSpec
		want string
	}{
		{&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8}, "its values are 8 bytes, want 16 (struct dns_cache_value: domain_key, expires_at)"},
		{&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: 16, MaxEntries: 8}, "its keys are 16 bytes, want 4 (an IPv4 address)"},
		{&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 16, MaxEntries: 8}, "its type is LRUHash, want Hash"},
		{&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 24, MaxEntries: 8}, "its type is Array, want Hash\nits values are 24 bytes, want 16"},
	}
	for _, tc := range cases {
		_, path := PinTestMap(t, tc.spec)
		w, err := OpenMapWriter(path)
		if err == nil {
			w.Close()
			t.Fatalf("%+v: opened", tc.spec)
		}
		t.Log(err)
		if !strings.Contains(err.Error(), "the map pinned at "+path+" is not the dns_cache map this CoreDNS writes: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q\nwant it to contain %q", err, tc.want)
		}
	}
}

// A full map fails the write (and ServeDNS answers SERVFAIL), naming the cause.
func TestMapWriterMapFull(t *testing.T) {
	_, path := PinTestMap(t, DNSCacheSpec(1))
	w := openWriterOn(t, path)
	err := w.WriteEntries([]CacheEntry{
		entry("192.0.2.1", "api.example.org", 60, "api.example.org."),
		entry("192.0.2.2", "api.example.org", 60, "api.example.org."),
	})
	if err == nil || !strings.Contains(err.Error(), "writing 192.0.2.2 to the dns_cache map "+path+": the map is full") {
		t.Fatalf("error %v", err)
	}
	// Through the plugin: the client gets SERVFAIL, not the address.
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.A("api.example.org. 60 IN A 192.0.2.3")}, false), w)
	if rec := serve(t, h, "api.example.org.", dns.TypeA); rec.Rcode != dns.RcodeServerFailure || len(rec.Msg.Answer) != 0 {
		t.Fatalf("with a full map the client got %v", rec.Msg)
	}
}

func TestMapWriterClosedAndNonIPv4(t *testing.T) {
	_, path := PinTestMap(t, DNSCacheSpec(8))
	w := openWriterOn(t, path)
	bad := entry("192.0.2.1", "api.example.org", 60, "api.example.org.")
	bad.Addr = netip.MustParseAddr("2001:db8::1")
	if err := w.WriteEntries([]CacheEntry{bad}); err == nil || !strings.Contains(err.Error(), "not an IPv4 address") {
		t.Fatalf("IPv6: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if err := w.WriteEntries([]CacheEntry{entry("192.0.2.1", "api.example.org", 60, "api.example.org.")}); err == nil || !strings.Contains(err.Error(), "is closed") {
		t.Fatalf("after close: %v", err)
	}
}

// Concurrent writers (ServeDNS runs concurrently) and a concurrent close (shutdown): run with -race.
func TestMapWriterConcurrent(t *testing.T) {
	m, path := PinTestMap(t, DNSCacheSpec(4096))
	w := openWriterOn(t, path)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				addr := fmt.Sprintf("10.%d.%d.%d", g, i/250, i%250)
				if err := w.WriteEntries([]CacheEntry{entry(addr, "api.example.org", uint32(i), "api.example.org.")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	it := m.Iterate()
	var k, v []byte
	for it.Next(&k, &v) {
		n++
	}
	if n != 1600 {
		t.Fatalf("%d entries", n)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			_ = w.WriteEntries([]CacheEntry{entry("10.99.0.1", "api.example.org", 1, "api.example.org.")})
		}
	}()
	w.Close()
	<-done
}
