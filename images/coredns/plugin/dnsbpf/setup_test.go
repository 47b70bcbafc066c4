package dnsbpf

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// controller returns a test controller for input in a server block with the given keys, as
// dnsserver leaves them (transport and port included).
func controller(input string, keys ...string) *caddy.Controller {
	c := caddy.NewTestController("dns", input)
	if len(keys) == 0 {
		keys = []string{"dns://api.example.org.:53"}
	}
	c.ServerBlockKeys = keys
	return c
}

func TestParseValid(t *testing.T) {
	cases := []struct {
		input     string
		keys      []string
		apex, sub string
	}{
		{"dnsbpf api.example.org -", nil, "api.example.org", "-"},
		{"dnsbpf api.example.org .example.org", nil, "api.example.org", ".example.org"},
		{"dnsbpf - .example.org", []string{"dns://bad.example.org.:53"}, "-", ".example.org"},
		{"dnsbpf .claude.ai .claude.ai", []string{"dns://claude.ai.:53"}, ".claude.ai", ".claude.ai"},
		{"dnsbpf .example.org .example.org", nil, ".example.org", ".example.org"},
		{"dnsbpf xn--bcher-kva.example -", []string{"dns://xn--bcher-kva.example.:53"}, "xn--bcher-kva.example", "-"},
		{"dnsbpf a-b_c.example-1.org -", []string{"a-b_c.example-1.org:53"}, "a-b_c.example-1.org", "-"},
		// Keys in another case are still the zone (CoreDNS normalises them).
		{"dnsbpf github.com -", []string{"dns://GitHub.com.:53"}, "github.com", "-"},
	}
	t.Setenv(MapPathEnv, "")
	for _, tc := range cases {
		d, err := parse(controller(tc.input, tc.keys...))
		if err != nil {
			t.Errorf("%q in %v: %v", tc.input, tc.keys, err)
			continue
		}
		if d.MapPath != DefaultMapPath {
			t.Errorf("%q: map path %q, want the default", tc.input, d.MapPath)
		}
		if d.Apex.String() != tc.apex || d.Sub.String() != tc.sub {
			t.Errorf("%q: got APEX %s SUB %s, want %s %s", tc.input, d.Apex, d.Sub, tc.apex, tc.sub)
		}
		if !d.Apex.None() && d.Apex.Key != DomainKey(tc.apex) {
			t.Errorf("%q: APEX key 0x%x", tc.input, d.Apex.Key)
		}
		if !d.Sub.None() && d.Sub.Key != DomainKey(tc.sub) {
			t.Errorf("%q: SUB key 0x%x", tc.input, d.Sub.Key)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		input string
		keys  []string
		want  string
	}{
		{"dnsbpf", nil, "dnsbpf takes exactly 2 arguments, APEX and SUB (each a rule destination or '-'), got 0"},
		{"dnsbpf api.example.org", nil, "takes exactly 2 arguments, APEX and SUB (each a rule destination or '-'), got 1: [\"api.example.org\"]"},
		{"dnsbpf api.example.org - -", nil, "got 3"},
		{"dnsbpf api.example.org - {\n  maps /sys/fs/bpf/x\n}", nil, "dnsbpf: unknown option 'maps' (the only one is `map PATH`)"},
		{"dnsbpf api.example.org - {\n  map\n}", nil, "`map` takes one argument, the path of the pinned dns_cache map, got 0"},
		{"dnsbpf api.example.org - {\n  map /a /b\n}", nil, "got 2"},
		{"dnsbpf api.example.org - {\n  map sys/fs/bpf/x\n}", nil, "`map sys/fs/bpf/x`: the path of the pinned dns_cache map must be absolute"},
		{"dnsbpf api.example.org - {\n  map /a\n  map /b\n}", nil, "`map` is given twice"},
		{"dnsbpf api.example.org -\ndnsbpf api.example.org -", nil, "dnsbpf appears more than once"},
		{"dnsbpf - -", nil, "dnsbpf - -: nothing would be recorded"},
		{"dnsbpf API.example.org -", nil, "APEX: 'API.example.org' is not lower case"},
		{"dnsbpf api.example.org. -", nil, "APEX: 'api.example.org.' ends with a dot"},
		{"dnsbpf api..example.org -", nil, "APEX: 'api..example.org' has an empty label"},
		{"dnsbpf . -", nil, "APEX: '.' is not a destination"},
		{"dnsbpf api.exa*mple.org -", nil, "APEX: 'api.exa*mple.org' contains '*'"},
		{"dnsbpf bücher.example -", []string{"dns://xn--bcher-kva.example.:53"}, "is not ASCII"},
		{"dnsbpf " + strings.Repeat("a", 64) + ".org -", nil, "has a label longer than 63 characters"},
		{"dnsbpf api.example.org .exa_mple.org", nil, "SUB '.exa_mple.org' does not cover the names below 'api.example.org'"},
		{"dnsbpf api.example.org api.example.org", nil, "SUB 'api.example.org' is an exact destination"},
		{"dnsbpf example.org -", nil, "APEX 'example.org' does not cover the zone apex 'api.example.org'"},
		{"dnsbpf .api.example.org.evil -", nil, "does not cover the zone apex"},
		// A wildcard's apex is the zone itself or a parent, never a sibling that merely ends alike.
		{"dnsbpf .i.example.org -", []string{"dns://api.example.org.:53"}, "APEX '.i.example.org' does not cover"},
		{"dnsbpf .example.org -", []string{"dns://.:53"}, "cannot be used in the root zone"},
		// Every zone of a block with several keys must be covered.
		{"dnsbpf .example.org -", []string{"dns://a.example.org.:53", "dns://b.example.net.:53"}, "does not cover the zone apex 'b.example.net'"},
	}
	for _, tc := range cases {
		_, err := parse(controller(tc.input, tc.keys...))
		if err == nil {
			t.Errorf("%q: no error, want one containing %q", tc.input, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %q does not contain %q", tc.input, err, tc.want)
		}
		if !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %q does not name the file and line", tc.input, err)
		}
	}
}

// The map path: the option, else the environment variable, else the default.
func TestParseMapPath(t *testing.T) {
	t.Setenv(MapPathEnv, "")
	parsePath := func(input string) string {
		t.Helper()
		d, err := parse(controller(input))
		if err != nil {
			t.Fatalf("%q: %v", input, err)
		}
		return d.MapPath
	}
	if got := parsePath("dnsbpf api.example.org -"); got != "/sys/fs/bpf/clawker/dns_cache" {
		t.Fatalf("default %q", got)
	}
	if got := parsePath("dnsbpf api.example.org - {\n  map /sys/fs/bpf/test//dns_cache\n}"); got != "/sys/fs/bpf/test/dns_cache" {
		t.Fatalf("option %q", got)
	}
	if got := parsePath("dnsbpf api.example.org - {\n}"); got != DefaultMapPath {
		t.Fatalf("empty block %q", got)
	}
	t.Setenv(MapPathEnv, "/sys/fs/bpf/env/dns_cache")
	if got := parsePath("dnsbpf api.example.org -"); got != "/sys/fs/bpf/env/dns_cache" {
		t.Fatalf("environment %q", got)
	}
	if got := parsePath("dnsbpf api.example.org - {\n  map /sys/fs/bpf/opt/dns_cache\n}"); got != "/sys/fs/bpf/opt/dns_cache" {
		t.Fatalf("the option does not win over the environment: %q", got)
	}
	t.Setenv(MapPathEnv, "relative/dns_cache")
	if _, err := parse(controller("dnsbpf api.example.org -")); err == nil || !strings.Contains(err.Error(), "the environment variable CLAWKER_DNS_CACHE_MAP gives 'relative/dns_cache'") {
		t.Fatalf("a relative path from the environment: %v", err)
	}
}

// The setup function wires the handler into the block's chain and opens the writer only at
// startup.
func TestSetup(t *testing.T) {
	old := OpenCacheWriter
	defer func() { OpenCacheWriter = old }()
	cache := NewMemoryCache()
	opened := 0
	OpenCacheWriter = func() (CacheWriter, error) { opened++; return cache, nil }

	c := controller("dnsbpf api.example.org .example.org {\n  map /nonexistent/dns_cache\n}")
	if err := setup(c); err != nil {
		t.Fatal(err)
	}
	if opened != 0 {
		t.Fatal("the writer was opened during setup; it must wait for startup")
	}
	plugins := dnsserver.GetConfig(c).Plugin
	if len(plugins) != 1 {
		t.Fatalf("%d plugins added", len(plugins))
	}
	h, ok := plugins[0](nil).(*DNSBPF)
	if !ok || h.Apex.Name != "api.example.org" || h.Sub.Name != ".example.org" || len(h.Zones) != 1 || h.Zones[0] != "api.example.org." || h.MapPath != "/nonexistent/dns_cache" {
		t.Fatalf("handler %+v", h)
	}
	if h.Cache != nil {
		t.Fatal("the handler has a writer before startup")
	}
	if err := setup(controller("dnsbpf api.example.org")); err == nil || !strings.HasPrefix(err.Error(), "plugin/dnsbpf: ") {
		t.Fatalf("setup error %v does not name the plugin", err)
	}
}
