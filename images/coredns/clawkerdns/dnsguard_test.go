package clawkerdns

import (
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/miekg/dns"

	"clawker.dev/coredns/plugin/dnsbpf"
	"clawker.dev/coredns/plugin/dnsguard"
)

func TestDnsguardSitsRightAfterLogAndBeforeEveryAnsweringPlugin(t *testing.T) {
	d := dnsserver.Directives
	at := slices.Index(d, "dnsguard")
	if at < 0 || slices.Index(d, "log") != at-1 || slices.Index(d, "template") < at || slices.Index(d, "any") < at || slices.Index(d, "forward") < at {
		t.Fatalf("directives: %v", d)
	}
	if _, err := caddy.DirectiveAction("dns", "dnsguard"); err != nil {
		t.Fatalf("dnsguard has no setup action for the dns server type: %v", err)
	}
}

func TestWithDnsguardRefusesAnUnexpectedOrder(t *testing.T) {
	for _, directives := range [][]string{{"template", "log"}, {"log"}, {"template"}, {"log", "dnsguard", "template"}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%v: no panic", directives)
				}
			}()
			withDnsguard(directives)
		}()
	}
	if got := withDnsguard([]string{"errors", "log", "any", "template"}); !slices.Equal(got, []string{"errors", "log", "dnsguard", "any", "template"}) {
		t.Fatalf("got %v", got)
	}
}

// The renderer's shape with the guard on: the query types, lengths and rate refused before the
// templates and forward see them, so the upstream is never asked.
const guardedCorefile = `
github.com:0 {
    bind 127.0.0.1
    dnsguard {
        types A AAAA CNAME HTTPS
        max_label 48
        max_name 128
        rate 50 100
    }
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
    dnsguard {
        types A AAAA CNAME HTTPS
        max_label 48
        max_name 128
        rate 50 100
    }
    template IN AAAA {
        rcode NOERROR
    }
    dnsbpf .example.org .example.org
    forward . UPSTREAM
}

.:0 {
    bind 127.0.0.1
    dnsguard {
        types A AAAA CNAME HTTPS
        max_label 48
        max_name 128
        rate 50 100
    }
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`

func TestGuardedCorefileEndToEnd(t *testing.T) {
	up := &fakeUpstream{asked: map[string]int{}, addrs: map[string]string{}}
	upstream := dnstest.NewServer(up.serve)
	defer upstream.Close()
	old := dnsbpf.OpenCacheWriter
	dnsbpf.OpenCacheWriter = func() (dnsbpf.CacheWriter, error) { return dnsbpf.NewMemoryCache(), nil }
	defer func() { dnsbpf.OpenCacheWriter = old }()
	var logged []string
	oldLogf := dnsguard.Logf
	dnsguard.Logf = func(format string, args ...any) { logged = append(logged, format) }
	defer func() { dnsguard.Logf = oldLogf }()

	dnsguard.ResetLimiters()
	dnsserver.Quiet = true
	caddy.Quiet = true
	inst, err := caddy.Start(caddy.CaddyfileInput{Filepath: "Corefile", Contents: []byte(strings.ReplaceAll(guardedCorefile, "UPSTREAM", upstream.Addr)), ServerTypeName: "dns"})
	if err != nil {
		t.Fatalf("CoreDNS did not start: %v", err)
	}
	defer inst.Stop()
	server := inst.Servers()[0].LocalAddr().String()
	query := func(name string, qtype uint16) int {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		res, err := dns.Exchange(m, server)
		if err != nil {
			t.Fatalf("%s %s: %v", dns.TypeToString[qtype], name, err)
		}
		return res.Rcode
	}
	long := strings.Repeat("a", 49)
	for _, q := range []struct {
		name  string
		qtype uint16
		rcode int
	}{
		{"github.com.", dns.TypeA, dns.RcodeSuccess},
		{"github.com.", dns.TypeTXT, dns.RcodeRefused},
		{"github.com.", dns.TypeMX, dns.RcodeRefused},
		{"github.com.", dns.TypeANY, dns.RcodeRefused},
		{"www.example.org.", dns.TypeNULL, dns.RcodeRefused},
		{long + ".example.org.", dns.TypeA, dns.RcodeRefused},
		{strings.Repeat("a", 48) + ".example.org.", dns.TypeA, dns.RcodeSuccess},
		{"evil.com.", dns.TypeTXT, dns.RcodeRefused},
		{"evil.com.", dns.TypeA, dns.RcodeNameError},
	} {
		if got := query(q.name, q.qtype); got != q.rcode {
			t.Fatalf("%s %s: %s, want %s", dns.TypeToString[q.qtype], q.name, dns.RcodeToString[got], dns.RcodeToString[q.rcode])
		}
	}
	for _, asked := range []string{"TXT github.com.", "MX github.com.", "ANY github.com.", "NULL www.example.org.", "A " + long + ".example.org."} {
		if up.asked[asked] != 0 {
			t.Errorf("the upstream was asked %s", asked)
		}
	}
	if up.asked["A github.com."] != 1 {
		t.Errorf("the upstream was not asked A github.com.: %v", up.asked)
	}
	if len(logged) != 6 {
		t.Errorf("%d refusals logged, want 6: %q", len(logged), logged)
	}
	// The rate: the burst (100, less the 9 queries above) then REFUSED, for every zone alike.
	refused, first := 0, -1
	for i := range 120 {
		name := "github.com."
		if i%2 == 1 {
			name = "www.example.org."
		}
		if query(name, dns.TypeA) == dns.RcodeRefused {
			refused++
			if first < 0 {
				first = i
			}
		}
	}
	// Tokens earned back while the loop runs (50 a second) let a few more through; never fewer.
	if first < 91 || refused > 29 || refused < 10 {
		t.Fatalf("%d of 120 queries refused, the first at %d: want the 91 left of the burst answered, then (nearly) all 29 refused", refused, first)
	}
}
