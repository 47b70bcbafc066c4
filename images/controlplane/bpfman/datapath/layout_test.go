package datapath

import (
	"encoding/binary"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// The Go mirrors must match the object's BTF member by member: same names (ignoring case and
// underscores), offsets and sizes. A layout change on one side only fails here, not in a kernel.
func checkStruct(t *testing.T, what string, typ btf.Type, goValue any) {
	t.Helper()
	st, ok := btf.UnderlyingType(typ).(*btf.Struct)
	if !ok {
		t.Fatalf("%s: BTF type %v is not a struct", what, typ)
	}
	rt := reflect.TypeOf(goValue)
	if int(st.Size) != int(rt.Size()) || binary.Size(goValue) != int(st.Size) {
		t.Errorf("%s: C size %d, Go size %d (binary %d)", what, st.Size, rt.Size(), binary.Size(goValue))
	}
	if len(st.Members) != rt.NumField() {
		t.Fatalf("%s: C has %d members, Go %d fields", what, len(st.Members), rt.NumField())
	}
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	for i, m := range st.Members {
		f := rt.Field(i)
		if norm(m.Name) != norm(f.Name) {
			t.Errorf("%s: member %d is %q in C, %q in Go", what, i, m.Name, f.Name)
		}
		if int(m.Offset.Bytes()) != int(f.Offset) {
			t.Errorf("%s.%s: offset %d in C, %d in Go", what, m.Name, m.Offset.Bytes(), f.Offset)
		}
		size, err := btf.Sizeof(m.Type)
		if err != nil {
			t.Fatal(err)
		}
		if size != int(f.Type.Size()) {
			t.Errorf("%s.%s: size %d in C, %d in Go", what, m.Name, size, f.Type.Size())
		}
	}
}

func TestLayoutsMatchObject(t *testing.T) {
	spec, err := LoadSpec("")
	if err != nil {
		t.Fatal(err)
	}
	m := spec.Maps
	checkStruct(t, "container_map value", m[ContainerMap].Value, ContainerConfig{})
	checkStruct(t, "route key", m[RouteMap].InnerMap.Key, RouteKey{})
	checkStruct(t, "route value", m[RouteMap].InnerMap.Value, RouteValue{})
	checkStruct(t, "dns_cache value", m[DNSCache].Value, DNSCacheValue{})
	checkStruct(t, "ratelimit_state value", m[RatelimitState].Value, RatelimitStateValue{})
	checkStruct(t, "sock_orig_dst value", m[SockOrigDst].Value, SockOrigDstValue{})

	sizes := []struct {
		name       string
		key, value uint32
		typ        ebpf.MapType
	}{
		{ContainerMap, 8, ContainerConfigSize, ebpf.Hash},
		{RouteMap, 4, 4, ebpf.ArrayOfMaps},
		{DNSCache, 4, 16, ebpf.Hash},
		{BypassMap, 8, 8, ebpf.Hash},
		{MetricsMap, 4, 8, ebpf.PerCPUArray},
		{EventsDrops, 4, 8, ebpf.PerCPUArray},
		{RatelimitState, 8, 16, ebpf.LRUHash},
		{RatelimitDrops, 8, 8, ebpf.LRUHash},
	}
	for _, s := range sizes {
		ms := m[s.name]
		if ms.Type != s.typ || ms.KeySize != s.key || ms.ValueSize != s.value {
			t.Errorf("%s: %s %d/%d, Go expects %s %d/%d", s.name, ms.Type, ms.KeySize, ms.ValueSize, s.typ, s.key, s.value)
		}
	}
	if inner := m[RouteMap].InnerMap; inner.Type != ebpf.Hash || inner.KeySize != 16 || inner.ValueSize != 2 {
		t.Errorf("route table: %s %d/%d", inner.Type, inner.KeySize, inner.ValueSize)
	}
	if m[EventsRingbuf].Type != ebpf.RingBuf {
		t.Errorf("events_ringbuf is a %s", m[EventsRingbuf].Type)
	}
	if binary.Size(ContainerConfig{}) != ContainerConfigSize || ContainerConfigSize%8 != 0 {
		t.Errorf("ContainerConfig is %d bytes, struct container_config %d (a multiple of 8)", binary.Size(ContainerConfig{}), ContainerConfigSize)
	}
	if binary.Size(Event{}) != EventSize || reflect.TypeOf(Event{}).Size() != EventSize {
		t.Errorf("Event is %d bytes, struct event %d", binary.Size(Event{}), EventSize)
	}
	if len(VerdictNames) != int(verdictMax) || m[MetricsMap].MaxEntries != uint32(verdictMax) {
		t.Errorf("metrics_map has %d verdicts, Go knows %d", m[MetricsMap].MaxEntries, len(VerdictNames))
	}
}

// The enums carry no BTF (only integers of them reach the maps), so the names Go prints are held
// to the header itself: REASON_CATCH_ALL = 4 is "catch-all" at index 4, and so on for every value.
func TestEnumNamesMatchHeader(t *testing.T) {
	header, err := os.ReadFile("../../../../bpf/include/clawker_datapath.h")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		prefix, sep string // hooks are named as their programs: sock_create
		names       []string
	}{
		{"REASON", "-", ReasonNames[:]},
		{"HOOK", "_", HookNames[:]},
		{"VERDICT", "-", VerdictNames[:]},
	} {
		re := regexp.MustCompile(`(?m)^\s*` + e.prefix + `_([A-Z0-9_]+)\s*=\s*(\d+),`)
		found := re.FindAllSubmatch(header, -1)
		if len(found) == 0 {
			t.Fatalf("no %s_* values in the header", e.prefix)
		}
		seen := map[int]bool{}
		for _, m := range found {
			value, _ := strconv.Atoi(string(m[2]))
			want := strings.ReplaceAll(strings.ToLower(string(m[1])), "_", e.sep)
			if e.prefix == "REASON" && want == "none" {
				want = ""
			}
			seen[value] = true
			if value >= len(e.names) || e.names[value] != want {
				t.Errorf("%s_%s = %d: Go names %d %q, want %q", e.prefix, m[1], value, value, at(e.names, value), want)
			}
		}
		for i, n := range e.names {
			if !seen[i] && n != "" {
				t.Errorf("%s: Go names %d %q, the header has no such value", e.prefix, i, n)
			}
		}
	}
}

func at(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return "(none)"
}

func TestParseEntries(t *testing.T) {
	good := `{"routes":[{"destination":"example.com","domainKey":"0x00000000000000aa","l4":"tcp","port":443,"listenerPort":10000},
	 {"destination":"example.com","domainKey":"0xaa","l4":"udp","port":443,"listenerPort":10003}],
	 "staticDnsCache":[{"address":"10.0.0.5","destination":"10.0.0.5","domainKey":"0xffffffffffffffff"}]}`
	tbl, err := ParseEntries([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(tbl.Keys) != 2 || tbl.Keys[0] != (RouteKey{DomainKey: 0xaa, Port: 443, L4: L4TCP}) || tbl.Values[1].ListenerPort != 10003 {
		t.Errorf("parsed %+v %+v", tbl.Keys, tbl.Values)
	}
	if tbl.StaticDNS[[4]byte{10, 0, 0, 5}] != ^uint64(0) {
		t.Errorf("static dns %+v", tbl.StaticDNS)
	}
	for _, bad := range []struct{ json, want string }{
		{`{"routes":[{"domainKey":"aa","l4":"tcp","port":1,"listenerPort":10000}]}`, "routes[0]: domain key"},
		{`{"routes":[{"domainKey":"0x1","l4":"sctp","port":1,"listenerPort":10000}]}`, "l4"},
		{`{"routes":[{"domainKey":"0x1","l4":"tcp","port":0,"listenerPort":10000}]}`, "port 0"},
		{`{"routes":[{"domainKey":"0x1","l4":"tcp","port":1,"listenerPort":9902}]}`, "listenerPort 9902"},
		{`{"routes":[{"domainKey":"0x1","l4":"tcp","port":1,"listenerPort":10000},{"domainKey":"0x01","l4":"tcp","port":1,"listenerPort":10001}]}`, "routes[1]: same"},
		{`{"staticDnsCache":[{"address":"::1","domainKey":"0x1"}]}`, "not IPv4"},
	} {
		if _, err := ParseEntries([]byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want %q", bad.json, err, bad.want)
		}
	}
}

func TestContainerSpec(t *testing.T) {
	c, err := ContainerSpec{Envoy: "10.1.2.200", CoreDNS: "10.1.2.201", Gateway: "10.1.2.1", Network: "10.1.2.7/24", Flags: []string{"lockdown"}}.Config()
	if err != nil {
		t.Fatal(err)
	}
	want := ContainerConfig{
		EnvoyIP4: [4]byte{10, 1, 2, 200}, CoreDNSIP4: [4]byte{10, 1, 2, 201}, GatewayIP4: [4]byte{10, 1, 2, 1},
		NetAddr4: [4]byte{10, 1, 2, 0}, NetMask4: [4]byte{255, 255, 255, 0}, Flags: FlagLockdown, EventsRate: 100, EventsBurst: 200,
	}
	if c != want {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	c, err = ContainerSpec{Envoy: "10.1.2.200", CoreDNS: "10.1.2.201", Gateway: "10.1.2.1", Network: "10.1.2.0/24", HostProxyAddress: "172.17.0.1", HostProxyPort: 18374}.Config()
	if err != nil || c.HostProxyPort != 18374 || c.HostProxyIP4 != [4]byte{172, 17, 0, 1} || c.Flags != 0 {
		t.Errorf("host proxy: %+v, %v", c, err)
	}
	for _, bad := range []ContainerSpec{
		{HostProxyPort: 18374},                               // a port with no address
		{HostProxyAddress: "172.17.0.1"},                     // an address with no port
		{HostProxyAddress: "10.1.2.1", HostProxyPort: 18374}, // the network's gateway
		{HostProxyAddress: "0.0.0.0", HostProxyPort: 18374},
		{HostProxyAddress: "fd00::1", HostProxyPort: 18374},
	} {
		bad.Envoy, bad.CoreDNS, bad.Gateway, bad.Network = "10.1.2.200", "10.1.2.201", "10.1.2.1", "10.1.2.0/24"
		if _, err := bad.Config(); err == nil || !strings.Contains(err.Error(), "hostProxyAddress") {
			t.Errorf("host proxy %q:%d accepted: %v", bad.HostProxyAddress, bad.HostProxyPort, err)
		}
	}
	if _, err := (ContainerSpec{Envoy: "x", CoreDNS: "10.1.2.201", Gateway: "10.1.2.1", Network: "10.1.2.0/24"}).Config(); err == nil || !strings.Contains(err.Error(), "envoy") {
		t.Errorf("bad envoy address: %v", err)
	}
	if _, err := (ContainerSpec{Envoy: "10.1.2.200", CoreDNS: "10.1.2.201", Gateway: "10.1.2.1", Network: "10.1.2.0/24", Flags: []string{"open"}}).Config(); err == nil {
		t.Error("unknown flag accepted")
	}
}
