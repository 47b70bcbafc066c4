package clawkerdns

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/miekg/dns"

	"clawker.dev/coredns/plugin/dnsbpf"
)

func TestDnsbpfSitsAfterTemplateAndRightBeforeForward(t *testing.T) {
	d := dnsserver.Directives
	at := slices.Index(d, "dnsbpf")
	t.Logf("template at %d, dnsbpf at %d, forward at %d (of %d directives)", slices.Index(d, "template"), at, slices.Index(d, "forward"), len(d))
	if at < 0 || slices.Index(d, "template") >= at || slices.Index(d, "forward") != at+1 {
		t.Fatalf("directives: %v", d)
	}
	if n := len(slices.DeleteFunc(slices.Clone(d), func(s string) bool { return s != "dnsbpf" })); n != 1 {
		t.Fatalf("dnsbpf appears %d times", n)
	}
	if _, err := caddy.DirectiveAction("dns", "dnsbpf"); err != nil {
		t.Fatalf("dnsbpf has no setup action for the dns server type: %v", err)
	}
}

func TestWithDnsbpfRefusesAnUnexpectedOrder(t *testing.T) {
	for _, directives := range [][]string{
		{"forward", "template"},
		{"template"},
		{"forward"},
		{"template", "dnsbpf", "forward"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v: no panic", directives)
				}
			}()
			withDnsbpf(directives)
		}()
	}
	in := []string{"a", "template", "b", "forward", "c"}
	if got := withDnsbpf(in); !slices.Equal(got, []string{"a", "template", "b", "dnsbpf", "forward", "c"}) || !slices.Equal(in, []string{"a", "template", "b", "forward", "c"}) {
		t.Fatalf("got %v (input now %v)", got, in)
	}
}

// The shape src/core/render/corednsConfig.ts renders, for `github.com` (exact), `.example.org`
// (wildcard), `api.example.org` (exact, inside the wildcard) and a deny rule `bad.example.org`;
// the upstream and the listen address are the test's.
const corefile = `
github.com:0 {
    bind 127.0.0.1
    template ANY ANY {
        match "^.+\.github\.com\.$"
        rcode NXDOMAIN
        fallthrough
    }
    template IN AAAA {
        rcode NOERROR
    }
    dnsbpf github.com -
    forward . UPSTREAM
}

example.org:0 {
    bind 127.0.0.1
    template IN AAAA {
        rcode NOERROR
    }
    dnsbpf .example.org .example.org
    forward . UPSTREAM
}

api.example.org:0 {
    bind 127.0.0.1
    template IN AAAA {
        rcode NOERROR
    }
    dnsbpf api.example.org .example.org
    forward . UPSTREAM
}

bad.example.org:0 {
    bind 127.0.0.1
    template ANY ANY {
        match "^bad\.example\.org\.$"
        rcode NXDOMAIN
        fallthrough
    }
    template IN AAAA {
        rcode NOERROR
    }
    dnsbpf - .example.org
    forward . UPSTREAM
}

.:0 {
    bind 127.0.0.1
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`

// fakeUpstream answers every A query with an address derived from the name (and NXDOMAIN for
// names starting with "nonexistent"), every other type with one record of that type where it
// can, and counts the questions it was asked.
type fakeUpstream struct {
	mu    sync.Mutex
	asked map[string]int
	addrs map[string]string
}

func (f *fakeUpstream) serve(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	f.mu.Lock()
	f.asked[dns.TypeToString[q.Qtype]+" "+name]++
	addr, ok := f.addrs[name]
	if !ok {
		addr = fmt.Sprintf("192.0.2.%d", len(f.addrs)+1)
		f.addrs[name] = addr
	}
	f.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	switch {
	case strings.HasPrefix(name, "nonexistent"):
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA:
		rr, _ := dns.NewRR(fmt.Sprintf("%s 120 IN A %s", q.Name, addr))
		m.Answer = append(m.Answer, rr)
	case q.Qtype == dns.TypeAAAA:
		rr, _ := dns.NewRR(q.Name + " 120 IN AAAA 2001:db8::1")
		m.Answer = append(m.Answer, rr)
	case q.Qtype == dns.TypeMX:
		rr, _ := dns.NewRR(q.Name + " 120 IN MX 10 mail." + q.Name)
		m.Answer = append(m.Answer, rr)
	}
	_ = w.WriteMsg(m)
}

func (f *fakeUpstream) count(qtype, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[qtype+" "+name]
}

// A real CoreDNS (this build's plugin chain) serving that Corefile, with the dns_cache writer
// replaced by a MemoryCache: the templates answer what the policy refuses, forward answers the
// rest, and dnsbpf records exactly the forwarded A answers under the right destination.
func TestCorefileEndToEnd(t *testing.T) {
	up := &fakeUpstream{asked: map[string]int{}, addrs: map[string]string{}}
	upstream := dnstest.NewServer(up.serve)
	defer upstream.Close()

	cache := dnsbpf.NewMemoryCache()
	opened := 0
	old := dnsbpf.OpenCacheWriter
	dnsbpf.OpenCacheWriter = func() (dnsbpf.CacheWriter, error) { opened++; return cache, nil }
	defer func() { dnsbpf.OpenCacheWriter = old }()

	dnsserver.Quiet = true
	caddy.Quiet = true
	input := caddy.CaddyfileInput{Filepath: "Corefile", Contents: []byte(strings.ReplaceAll(corefile, "UPSTREAM", upstream.Addr)), ServerTypeName: "dns"}
	inst, err := caddy.Start(input)
	if err != nil {
		t.Fatalf("CoreDNS did not start: %v", err)
	}
	defer inst.Stop()
	if opened != 4 {
		t.Fatalf("the writer was opened %d times, want once per dnsbpf block (4)", opened)
	}
	servers := inst.Servers()
	if len(servers) != 1 {
		t.Fatalf("%d listeners", len(servers))
	}
	server := servers[0].LocalAddr().String()

	query := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		res, err := dns.Exchange(m, server)
		if err != nil {
			t.Fatalf("%s %s: %v", dns.TypeToString[qtype], name, err)
		}
		return res
	}
	expectA := func(name, dest string) {
		t.Helper()
		res := query(name, dns.TypeA)
		if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 {
			t.Fatalf("A %s: %v", name, res)
		}
		addr := netip.MustParseAddr(res.Answer[0].(*dns.A).A.String())
		e, ok := cache.Lookup(addr)
		if !ok || e.Destination != dest || e.Key != dnsbpf.DomainKey(dest) || e.TTL != 120 {
			t.Fatalf("A %s -> %s: dns_cache has %+v (present %v), want destination %s", name, addr, e, ok, dest)
		}
	}
	expectRefused := func(name string, qtype uint16) {
		t.Helper()
		writes := cache.Writes()
		res := query(name, qtype)
		if res.Rcode != dns.RcodeNameError || len(res.Answer) != 0 {
			t.Fatalf("%s %s: want NXDOMAIN, got %v", dns.TypeToString[qtype], name, res)
		}
		if up.count(dns.TypeToString[qtype], strings.ToLower(name)) != 0 {
			t.Fatalf("%s %s was forwarded upstream", dns.TypeToString[qtype], name)
		}
		if cache.Writes() != writes {
			t.Fatalf("%s %s was written to dns_cache", dns.TypeToString[qtype], name)
		}
	}

	expectA("github.com.", "github.com")
	expectA("GitHub.COM.", "github.com")
	expectRefused("x.github.com.", dns.TypeA)
	expectRefused("a.b.github.com.", dns.TypeAAAA)
	expectA("example.org.", ".example.org")
	expectA("www.example.org.", ".example.org")
	expectA("api.example.org.", "api.example.org")
	expectA("v1.api.example.org.", ".example.org")
	expectRefused("bad.example.org.", dns.TypeA)
	expectA("x.bad.example.org.", ".example.org")
	expectRefused("evil.com.", dns.TypeA)
	expectRefused("evil.com.", dns.TypeTXT)
	expectRefused("github.com.evil.com.", dns.TypeA)

	// AAAA: no data, from the template, never forwarded, never recorded.
	for _, name := range []string{"github.com.", "www.example.org.", "x.bad.example.org."} {
		res := query(name, dns.TypeAAAA)
		if res.Rcode != dns.RcodeSuccess || len(res.Answer) != 0 || up.count("AAAA", name) != 0 {
			t.Fatalf("AAAA %s: %v (asked upstream %d times)", name, res, up.count("AAAA", name))
		}
	}
	// The template `IN AAAA` also takes qtype ANY (the template plugin lets a query of type ANY
	// match any template type): ANY gets an empty NOERROR and is never forwarded.
	if res := query("github.com.", dns.TypeANY); res.Rcode != dns.RcodeSuccess || len(res.Answer) != 0 || up.count("ANY", "github.com.") != 0 {
		t.Fatalf("ANY github.com.: %v", res)
	}
	// Other types are forwarded; nothing to record without an A record.
	writes := cache.Writes()
	if res := query("github.com.", dns.TypeMX); res.Rcode != dns.RcodeSuccess || len(res.Answer) != 1 || cache.Writes() != writes {
		t.Fatalf("MX github.com.: %v", res)
	}
	// The upstream's NXDOMAIN passes through, unrecorded.
	if res := query("nonexistent.example.org.", dns.TypeA); res.Rcode != dns.RcodeNameError || cache.Writes() != writes {
		t.Fatalf("A nonexistent.example.org.: %v", res)
	}

	want := map[string]string{}
	for name, addr := range up.addrs {
		if !strings.HasPrefix(name, "nonexistent") {
			want[addr] = name
		}
	}
	if got := cache.Entries(); len(got) != len(want) {
		t.Fatalf("dns_cache: %v, want one entry for each of %v", got, want)
	}
}
