package dnsguard

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

func label(n int) string { return strings.Repeat("a", n) }

// nameOfLength returns a name under zone whose dotted form (no root dot) is exactly n octets long,
// with labels of at most 40 octets.
func nameOfLength(n int, zone string) string {
	left := n - len(zone) - 1
	var labels []string
	for left > 0 {
		size := min(40, left)
		if left-size == 1 { // a 1-octet remainder would need its own dot: shift one octet over
			size--
		}
		labels = append(labels, label(size))
		left -= size + 1
	}
	name := strings.Join(append(labels, zone), ".") + "."
	if got := len(name) - 1; got != n {
		panic(fmt.Sprintf("nameOfLength(%d): %d", n, got))
	}
	return name
}

func defaultGuard() *Guard {
	return &Guard{
		Types:    map[uint16]bool{dns.TypeA: true, dns.TypeAAAA: true, dns.TypeCNAME: true, dns.TypeHTTPS: true},
		MaxLabel: 48,
		MaxName:  128,
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		what  string
		name  string
		qtype uint16
		want  string
	}{
		{"A for an allowed name", "github.com.", dns.TypeA, ""},
		{"AAAA", "github.com.", dns.TypeAAAA, ""},
		{"CNAME", "www.github.com.", dns.TypeCNAME, ""},
		{"HTTPS", "github.com.", dns.TypeHTTPS, ""},
		{"TXT", "github.com.", dns.TypeTXT, ReasonQtype},
		{"NULL (iodine)", "github.com.", dns.TypeNULL, ReasonQtype},
		{"ANY", "github.com.", dns.TypeANY, ReasonQtype},
		{"MX", "github.com.", dns.TypeMX, ReasonQtype},
		{"SRV", "_x._tcp.github.com.", dns.TypeSRV, ReasonQtype},
		{"SVCB", "github.com.", dns.TypeSVCB, ReasonQtype},
		{"an unassigned type", "github.com.", 65280, ReasonQtype},
		{"a label at the cap (48)", label(48) + ".github.com.", dns.TypeA, ""},
		{"a label one over the cap (49)", label(49) + ".github.com.", dns.TypeA, ReasonLabelLength},
		{"a label of 63", label(63) + ".github.com.", dns.TypeA, ReasonLabelLength},
		{"an over-long label deep in the name", "a.b." + label(49) + ".github.com.", dns.TypeA, ReasonLabelLength},
		{"escaped octets count once", strings.Repeat(`\000`, 48) + ".github.com.", dns.TypeA, ""},
		{"escaped octets over the cap", strings.Repeat(`\000`, 49) + ".github.com.", dns.TypeA, ReasonLabelLength},
		{"an escaped dot is part of a label", label(24) + `\.` + label(24) + ".github.com.", dns.TypeA, ReasonLabelLength},
		{"a name at the cap (128)", nameOfLength(128, "github.com"), dns.TypeA, ""},
		{"a name one over the cap (129)", nameOfLength(129, "github.com"), dns.TypeA, ReasonNameLength},
		{"a name of 253", nameOfLength(253, "github.com"), dns.TypeA, ReasonNameLength},
		{"the root", ".", dns.TypeA, ""},
		{"a TXT with an over-long label: the type is named first", label(60) + ".github.com.", dns.TypeTXT, ReasonQtype},
	} {
		t.Run(tc.what, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.name, tc.qtype)
			if got := defaultGuard().Check("10.0.0.5", m); got != tc.want {
				t.Fatalf("%s %s: %q, want %q", dns.TypeToString[tc.qtype], tc.name, got, tc.want)
			}
		})
	}
}

func TestCheckWithChecksOff(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion(nameOfLength(253, label(63)+".github.com"), dns.TypeTXT)
	if got := (&Guard{}).Check("10.0.0.5", m); got != "" {
		t.Fatalf("a guard with every check off refused: %q", got)
	}
	if got := (&Guard{MaxName: 128}).Check("10.0.0.5", m); got != ReasonNameLength {
		t.Fatalf("name cap alone: %q", got)
	}
}

func TestRateIsCheckedFirstAndCountsEveryQuery(t *testing.T) {
	l, clock := newFakeLimiter(1, 3)
	g := defaultGuard()
	g.Queries = l
	txt, a := new(dns.Msg), new(dns.Msg)
	txt.SetQuestion("github.com.", dns.TypeTXT)
	a.SetQuestion("github.com.", dns.TypeA)
	for i, want := range []string{ReasonQtype, "", ReasonQtype, ReasonRate, ReasonRate} {
		m := a
		if i%2 == 0 {
			m = txt
		}
		if got := g.Check("10.0.0.5", m); got != want {
			t.Fatalf("query %d: %q, want %q", i, got, want)
		}
	}
	if got := g.Check("10.0.0.6", a); got != "" {
		t.Fatalf("another client: %q", got)
	}
	clock.advance(1e9)
	if got := g.Check("10.0.0.5", a); got != "" {
		t.Fatalf("after a second: %q", got)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"GitHub.com.":             "GitHub.com.",
		"x_y-z.github.com":        "x_y-z.github.com.",
		`a\ b.github.com.`:        `a\032b.github.com.`,
		"a\\010REFUSED.x.":        `a\010REFUSED.x.`,
		`a\.b.github.com.`:        `a\046b.github.com.`,
		".":                       ".",
		`\"\\\(.x.`:               `\034\092\040.x.`,
		strings.Repeat("a.", 130): `\invalid.`,
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLine(t *testing.T) {
	if got, want := Line("qtype", "udp", "10.0.0.5", "40312", "TXT", "x.github.com."), "clawker-dns-guard reason=qtype udp 10.0.0.5 40312 TXT x.github.com. REFUSED"; got != want {
		t.Fatalf("%q", got)
	}
	if got, want := Line("rate", "tcp", "fd00::5", "53000", "A", "github.com."), "clawker-dns-guard reason=rate tcp [fd00::5] 53000 A github.com. REFUSED"; got != want {
		t.Fatalf("%q", got)
	}
}

// captureLog replaces Logf for the test and returns the lines logged.
func captureLog(t *testing.T) *[]string {
	lines := &[]string{}
	old := Logf
	Logf = func(format string, args ...any) { *lines = append(*lines, fmt.Sprintf(format, args...)) }
	t.Cleanup(func() { Logf = old })
	return lines
}

type udpWriter struct{ test.ResponseWriter }

func (*udpWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.ParseIP("10.0.0.5"), Port: 40312}
}

func TestServeDNSRefusesAndLogsOrPassesOn(t *testing.T) {
	lines := captureLog(t)
	passed := 0
	g := defaultGuard()
	g.Next = test.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		passed++
		m := new(dns.Msg)
		m.SetReply(r)
		return dns.RcodeSuccess, w.WriteMsg(m)
	})
	serve := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		rec := dnstest.NewRecorder(&udpWriter{})
		if _, err := g.ServeDNS(context.Background(), rec, m); err != nil {
			t.Fatal(err)
		}
		return rec.Msg
	}
	if res := serve("github.com.", dns.TypeA); res.Rcode != dns.RcodeSuccess || passed != 1 || len(*lines) != 0 {
		t.Fatalf("A github.com.: %v, passed %d, logged %q", res, passed, *lines)
	}
	res := serve("github.com.", dns.TypeTXT)
	if res.Rcode != dns.RcodeRefused || !res.Response || res.Id == 0 || len(res.Question) != 1 || passed != 1 {
		t.Fatalf("TXT github.com.: %v (passed on %d times)", res, passed)
	}
	serve(label(49)+".github.com.", dns.TypeA)
	want := []string{
		"clawker-dns-guard reason=qtype udp 10.0.0.5 40312 TXT github.com. REFUSED",
		"clawker-dns-guard reason=label-length udp 10.0.0.5 40312 A " + label(49) + ".github.com. REFUSED",
	}
	if strings.Join(*lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(*lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestServeDNSRateLimitsItsLog(t *testing.T) {
	lines := captureLog(t)
	inner, clock := newFakeLimiter(1, 2)
	g := defaultGuard()
	g.Lines = NewLineLimiter(inner)
	g.Next = test.ErrorHandler()
	m := new(dns.Msg)
	m.SetQuestion("github.com.", dns.TypeTXT)
	for range 10 {
		rec := dnstest.NewRecorder(&udpWriter{})
		g.ServeDNS(context.Background(), rec, m)
		if rec.Msg.Rcode != dns.RcodeRefused {
			t.Fatalf("%v", rec.Msg)
		}
	}
	clock.advance(1e9)
	g.ServeDNS(context.Background(), dnstest.NewRecorder(&udpWriter{}), m)
	line := "clawker-dns-guard reason=qtype udp 10.0.0.5 40312 TXT github.com. REFUSED"
	want := []string{line, line, "clawker-dns-guard suppressed=8 client=10.0.0.5", line}
	if strings.Join(*lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("logged:\n%s\nwant:\n%s", strings.Join(*lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestParse(t *testing.T) {
	g, err := parse(caddy.NewTestController("dns", "dnsguard {\n types a AAAA CNAME HTTPS\n max_label 48\n max_name 128\n rate 50 100\n}"))
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Types) != 4 || !g.Types[dns.TypeA] || !g.Types[dns.TypeHTTPS] || g.MaxLabel != 48 || g.MaxName != 128 || g.Queries == nil || g.Queries.Rate != 50 || g.Queries.Burst != 100 {
		t.Fatalf("%+v", g)
	}
	g, err = parse(caddy.NewTestController("dns", "dnsguard {\n max_label 63\n}"))
	if err != nil || g.Types != nil || g.MaxName != 0 || g.Queries != nil || g.MaxLabel != 63 {
		t.Fatalf("%+v %v", g, err)
	}
	for input, want := range map[string]string{
		"dnsguard":                                                 "dnsguard without options checks nothing",
		"dnsguard {\n}":                                            "dnsguard without options checks nothing",
		"dnsguard x {\n max_label 4\n}":                            "takes no arguments",
		"dnsguard {\n types\n}":                                    "`types` needs at least one query type",
		"dnsguard {\n types A TXTX\n}":                             "'TXTX' is not a DNS query type",
		"dnsguard {\n max_label 0\n}":                              "`max_label 0`: want a whole number from 1 to 63",
		"dnsguard {\n max_label 64\n}":                             "from 1 to 63",
		"dnsguard {\n max_name 254\n}":                             "`max_name 254`: want a whole number from 1 to 253",
		"dnsguard {\n max_name x\n}":                               "`max_name x`",
		"dnsguard {\n rate 50\n}":                                  "`rate` takes 2 arguments",
		"dnsguard {\n rate 0 10\n}":                                "`rate 0`",
		"dnsguard {\n max_label 4\n max_label 5\n}":                "`max_label` is given twice",
		"dnsguard {\n ttl 4\n}":                                    "unknown option 'ttl'",
		"dnsguard {\n max_label 4\n}\ndnsguard {\n max_label 4\n}": "more than once",
	} {
		_, err := parse(caddy.NewTestController("dns", input))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one containing %q", input, err, want)
		}
	}
}
