package datapath

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// EntriesFile is bpf/entries.json as the TypeScript renderer writes it
// (src/core/render/renderAll.ts, bpfEntriesJson). Unknown fields (destination) are ignored.
type EntriesFile struct {
	Routes []struct {
		DomainKey    string `json:"domainKey"`
		L4           string `json:"l4"`
		Port         int    `json:"port"`
		ListenerPort int    `json:"listenerPort"`
	} `json:"routes"`
	StaticDNSCache []struct {
		Address   string `json:"address"`
		DomainKey string `json:"domainKey"`
	} `json:"staticDnsCache"`
}

// RouteTable is a validated route table and the static dns_cache entries that go with it.
type RouteTable struct {
	Keys      []RouteKey
	Values    []RouteValue
	StaticDNS map[[4]byte]uint64
}

// ParseDomainKey reads "0x" followed by up to 16 hex digits.
func ParseDomainKey(s string) (uint64, error) {
	if !strings.HasPrefix(s, "0x") || len(s) < 3 || len(s) > 18 {
		return 0, fmt.Errorf("domain key %q: want 0x and up to 16 hex digits", s)
	}
	k, err := strconv.ParseUint(s[2:], 16, 64)
	if err != nil {
		return 0, fmt.Errorf("domain key %q: %w", s, err)
	}
	return k, nil
}

// ParseEntries validates an entries file: every field in range, no route key twice.
func ParseEntries(data []byte) (*RouteTable, error) {
	var f EntriesFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("entries file: %w", err)
	}
	t := &RouteTable{StaticDNS: map[[4]byte]uint64{}}
	seen := map[RouteKey]int{}
	for i, r := range f.Routes {
		at := fmt.Sprintf("routes[%d]", i)
		key, err := ParseDomainKey(r.DomainKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		var l4 uint8
		switch r.L4 {
		case "tcp":
			l4 = L4TCP
		case "udp":
			l4 = L4UDP
		default:
			return nil, fmt.Errorf("%s: l4 %q: want tcp or udp", at, r.L4)
		}
		if r.Port < 1 || r.Port > 65535 {
			return nil, fmt.Errorf("%s: port %d out of range 1-65535", at, r.Port)
		}
		if r.ListenerPort < 10000 || r.ListenerPort > 19999 {
			return nil, fmt.Errorf("%s: listenerPort %d: Envoy listeners are 10000-19999 (the only Envoy ports agents may reach)", at, r.ListenerPort)
		}
		k := RouteKey{DomainKey: key, Port: uint16(r.Port), L4: l4}
		if j, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s: same domainKey, l4 and port as routes[%d]", at, j)
		}
		seen[k] = i
		t.Keys = append(t.Keys, k)
		t.Values = append(t.Values, RouteValue{ListenerPort: uint16(r.ListenerPort)})
	}
	for i, e := range f.StaticDNSCache {
		at := fmt.Sprintf("staticDnsCache[%d]", i)
		a, err := netip.ParseAddr(e.Address)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s: address %q is not IPv4", at, e.Address)
		}
		key, err := ParseDomainKey(e.DomainKey)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		t.StaticDNS[a.As4()] = key
	}
	return t, nil
}

// RoutesReport says what `routes` did.
type RoutesReport struct {
	Routes         int     `json:"routes"`
	StaticDNS      int     `json:"staticDnsCache"`
	StaticRemoved  int     `json:"staticDnsRemoved"`
	FillMillis     float64 `json:"fillMs"`
	SwapMicros     float64 `json:"swapUs"`
	MaxRoutes      uint32  `json:"maxRoutes"`
	BatchSupported bool    `json:"batch"`
}

// ReplaceRoutes replaces the whole route table atomically: a fresh table (same layout as the
// current one) is filled completely, then swapped into route_map's single slot with one map
// update, which the kernel performs as a pointer exchange. A connect sees the old table or the
// new one, never a partial or empty one. Static dns_cache entries of the new table are written
// before the swap; permanent entries that are no longer listed are removed after it.
func ReplaceRoutes(pinDir string, t *RouteTable) (*RoutesReport, error) {
	outer, err := OpenMap(pinDir, RouteMap)
	if err != nil {
		return nil, err
	}
	defer outer.Close()
	dns, err := OpenMap(pinDir, DNSCache)
	if err != nil {
		return nil, err
	}
	defer dns.Close()

	// The new table copies the current table's layout, which `load` created from the object the
	// programs were verified against.
	var current *ebpf.Map
	if err := outer.Lookup(uint32(0), &current); err != nil {
		return nil, fmt.Errorf("route_map has no table in slot 0 (%v): run `bpfman load --pin-dir %s`", err, pinDir)
	}
	info, err := current.Info()
	current.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the current route table's layout: %w", err)
	}
	if info.KeySize != 16 || info.ValueSize != 2 {
		return nil, fmt.Errorf("the route table has key/value sizes %d/%d, this bpfman writes 16/2: run `bpfman load` from the same build as this bpfman", info.KeySize, info.ValueSize)
	}
	if uint32(len(t.Keys)) > info.MaxEntries {
		return nil, fmt.Errorf("%d routes: a route table holds at most %d", len(t.Keys), info.MaxEntries)
	}
	report := &RoutesReport{Routes: len(t.Keys), StaticDNS: len(t.StaticDNS), MaxRoutes: info.MaxEntries}

	start := time.Now()
	table, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "route_table", Type: info.Type, KeySize: info.KeySize, ValueSize: info.ValueSize,
		MaxEntries: info.MaxEntries, Flags: info.Flags,
	})
	if err != nil {
		return nil, fmt.Errorf("creating a route table: %w", err)
	}
	defer table.Close()
	if len(t.Keys) > 0 {
		n, err := table.BatchUpdate(t.Keys, t.Values, nil)
		switch {
		case err == nil && n == len(t.Keys):
			report.BatchSupported = true
		case errors.Is(err, ebpf.ErrNotSupported):
			for i := range t.Keys {
				if err := table.Put(t.Keys[i], t.Values[i]); err != nil {
					return nil, fmt.Errorf("filling the new route table: %w", err)
				}
			}
		default:
			return nil, fmt.Errorf("filling the new route table (%d of %d written): %w", n, len(t.Keys), err)
		}
	}
	for addr, key := range t.StaticDNS {
		if err := dns.Put(addr, DNSCacheValue{DomainKey: key, ExpiresAt: DNSPermanent}); err != nil {
			return nil, fmt.Errorf("writing static dns_cache entry %s: %w", netip.AddrFrom4(addr), err)
		}
	}
	report.FillMillis = float64(time.Since(start).Microseconds()) / 1000

	swap := time.Now()
	if err := outer.Put(uint32(0), table); err != nil {
		return nil, fmt.Errorf("swapping the new table into route_map (the old table stays in force): %w", err)
	}
	report.SwapMicros = float64(time.Since(swap).Nanoseconds()) / 1000

	var (
		k     [4]byte
		v     DNSCacheValue
		stale [][4]byte
	)
	it := dns.Iterate()
	for it.Next(&k, &v) {
		if _, listed := t.StaticDNS[k]; v.ExpiresAt == DNSPermanent && !listed {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return report, fmt.Errorf("routes replaced, but reading dns_cache for stale static entries failed: %w", err)
	}
	for _, k := range stale {
		if err := dns.Delete(k); err == nil {
			report.StaticRemoved++
		}
	}
	return report, nil
}
