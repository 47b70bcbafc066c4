package dnsbpf_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	_ "clawker.dev/coredns/clawkerdns" // this build's plugin set and directive order
	"clawker.dev/coredns/plugin/dnsbpf"
)

// A real CoreDNS (this build's plugin chain, in process) with dnsbpf writing to a real pinned BPF
// map, named by the Corefile option; a fake upstream behind `forward`.
const e2eCorefile = `
example.org:0 {
    bind 127.0.0.1
    template IN AAAA {
        rcode NOERROR
    }
    dnsbpf .example.org .example.org {
        map MAP
    }
    forward . UPSTREAM
}

.:0 {
    bind 127.0.0.1
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`

var e2eAnswers = map[string]string{
	"api.example.org.":    "api.example.org. 120 IN A 192.0.2.10",
	"big.example.org.":    "big.example.org. 604800 IN A 192.0.2.11",
	"static.example.org.": "static.example.org. 300 IN A 192.0.2.12",
	"zero.example.org.":   "zero.example.org. 0 IN A 192.0.2.13",
}

func e2eUpstream(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	if answer, ok := e2eAnswers[strings.ToLower(r.Question[0].Name)]; ok && r.Question[0].Qtype == dns.TypeA {
		rr, _ := dns.NewRR(answer)
		m.Answer = append(m.Answer, rr)
	} else {
		m.Rcode = dns.RcodeNameError
	}
	_ = w.WriteMsg(m)
}

func boottimeNs(t *testing.T) uint64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

func startCoreDNS(t *testing.T, corefile string) (*caddy.Instance, error) {
	t.Helper()
	dnsserver.Quiet = true
	caddy.Quiet = true
	inst, err := caddy.Start(caddy.CaddyfileInput{Filepath: "Corefile", Contents: []byte(corefile), ServerTypeName: "dns"})
	if err == nil {
		t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() })
	}
	return inst, err
}

func TestEndToEndWritesThePinnedMapBeforeTheReply(t *testing.T) {
	if dnsbpf.OpenCacheWriter != nil {
		t.Fatal("OpenCacheWriter is overridden; this test needs the real map writer")
	}
	m, path := dnsbpf.PinTestMap(t, dnsbpf.DNSCacheSpec(1024))
	// A static (IP-literal) entry the control plane owns.
	staticKey := dnsbpf.DomainKey("192.0.2.12")
	var v [16]byte
	binary.NativeEndian.PutUint64(v[0:8], staticKey)
	binary.NativeEndian.PutUint64(v[8:16], dnsbpf.Permanent)
	if err := m.Update([]byte{192, 0, 2, 12}, v[:], ebpf.UpdateAny); err != nil {
		t.Fatal(err)
	}

	upstream := dnstest.NewServer(e2eUpstream)
	defer upstream.Close()
	t.Setenv(dnsbpf.MapPathEnv, "/sys/fs/bpf/clawker-test-not-this-one/dns_cache") // the option wins
	corefile := strings.NewReplacer("MAP", path, "UPSTREAM", upstream.Addr).Replace(e2eCorefile)
	inst, err := startCoreDNS(t, corefile)
	if err != nil {
		t.Fatalf("CoreDNS did not start: %v", err)
	}
	server := inst.Servers()[0].LocalAddr().String()

	query := func(name string) (*dns.Msg, uint64, uint64) {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeA)
		before := boottimeNs(t)
		res, err := dns.Exchange(q, server)
		if err != nil {
			t.Fatalf("A %s: %v", name, err)
		}
		return res, before, boottimeNs(t)
	}
	sec := uint64(time.Second)
	grace := uint64(dnsbpf.ExpiryGrace)
	for _, tc := range []struct {
		name, addr string
		ttl        uint32 // the TTL the client gets and the entry is written with
	}{
		{"api.example.org.", "192.0.2.10", 120},
		{"big.example.org.", "192.0.2.11", dnsbpf.MaxTTL},
		{"zero.example.org.", "192.0.2.13", 0},
	} {
		res, before, received := query(tc.name)
		// The moment the reply is here, the entry must be in the map (it was written before the
		// reply was sent; nothing writes it afterwards).
		key, expires, ok := dnsbpf.RawEntry(t, m, netip.MustParseAddr(tc.addr))
		if !ok {
			t.Fatalf("A %s: the client has the reply %v but dns_cache has no entry for %s", tc.name, res, tc.addr)
		}
		if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 || res.Answer[0].(*dns.A).A.String() != tc.addr {
			t.Fatalf("A %s: %v", tc.name, res)
		}
		if got := res.Answer[0].Header().Ttl; got != tc.ttl {
			t.Errorf("A %s: the client got TTL %d, want %d", tc.name, got, tc.ttl)
		}
		if key != dnsbpf.DomainKey(".example.org") {
			t.Errorf("A %s: domain key 0x%016x, want that of .example.org", tc.name, key)
		}
		ttl := uint64(tc.ttl) * sec
		if expires < before+ttl+grace || expires > received+ttl+grace {
			t.Errorf("A %s: expires_at %d not in [%d, %d]", tc.name, expires, before+ttl+grace, received+ttl+grace)
		}
	}

	// The static entry is left alone; the client still gets its answer.
	res, _, _ := query("static.example.org.")
	if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
		t.Fatalf("A static.example.org.: %v", res)
	}
	if key, expires, ok := dnsbpf.RawEntry(t, m, netip.MustParseAddr("192.0.2.12")); !ok || key != staticKey || expires != dnsbpf.Permanent {
		t.Fatalf("the permanent entry became 0x%x / %d (present %v)", key, expires, ok)
	}
	// NXDOMAIN (refused names, upstream NXDOMAIN) writes nothing.
	if res, _, _ := query("nonexistent.example.org."); res.Rcode != dns.RcodeNameError {
		t.Fatalf("%v", res)
	}
	if res, _, _ := query("evil.com."); res.Rcode != dns.RcodeNameError {
		t.Fatalf("%v", res)
	}
	n := 0
	it := m.Iterate()
	var k, val []byte
	for it.Next(&k, &val) {
		n++
	}
	if n != 4 {
		t.Fatalf("dns_cache has %d entries, want 4 (three answers and the static one)", n)
	}
}

// The server refuses to start when the map is missing or is not dns_cache; the path comes from the
// option or, without it, from the environment. Validating the Corefile does not open the map.
func TestEndToEndRefusesToStartWithoutTheMap(t *testing.T) {
	_, path := dnsbpf.PinTestMap(t, dnsbpf.DNSCacheSpec(8))
	missing := filepath.Join(filepath.Dir(path), "missing", "dns_cache")
	corefile := strings.NewReplacer("MAP", missing, "UPSTREAM", "127.0.0.1:1").Replace(e2eCorefile)

	input := caddy.CaddyfileInput{Filepath: "Corefile", Contents: []byte(corefile), ServerTypeName: "dns"}
	if err := caddy.ValidateAndExecuteDirectives(input, nil, true); err != nil {
		t.Fatalf("validating needed the map: %v", err)
	}

	_, err := startCoreDNS(t, corefile)
	want := fmt.Sprintf("plugin/dnsbpf: opening the dns_cache writer: no dns_cache map is pinned at %s: the firewall's BPF state", missing)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("started without the map, or with another error: %v", err)
	}
	t.Log(err)

	// From the environment: a map with another value size.
	_, wrong := dnsbpf.PinTestMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	t.Setenv(dnsbpf.MapPathEnv, wrong)
	withoutOption := strings.Replace(corefile, " {\n        map "+missing+"\n    }", "", 1)
	if strings.Contains(withoutOption, "map ") {
		t.Fatal(withoutOption)
	}
	_, err = startCoreDNS(t, withoutOption)
	if err == nil || !strings.Contains(err.Error(), "the map pinned at "+wrong+" is not the dns_cache map this CoreDNS writes: its values are 8 bytes, want 16") {
		t.Fatalf("started with a wrong map, or with another error: %v", err)
	}
	t.Log(err)
}
