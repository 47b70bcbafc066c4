// Package dnsguard is the CoreDNS plugin that narrows what an agent can say through DNS, beyond the
// allowlist: a name under an allowed zone is forwarded to the real internet, so its labels and its
// query type are a channel out (and the answer a channel in). For every query, in this order:
//
//   - rate: more queries from one client address than its token bucket allows (shared by every
//     server block, so spreading over zones gains nothing)
//   - qtype: a query type outside the allowed list (an HTTPS/SSH client needs A, AAAA, CNAME and
//     HTTPS; TXT, NULL, ANY, MX, SRV, ... are what tunnels and C2 use)
//   - label-length: a label longer than the cap (exfiltration encoders fill labels to 63)
//   - name-length: a name (dotted, without the root dot) longer than the cap
//
// A refused query is answered REFUSED, not NXDOMAIN: NXDOMAIN says the name has no records of any
// type, which a stub cache would apply to the allowed name's A lookups too (RFC 8020). Each refusal
// is logged as one line (Line) that src/core/events/corednsLog.ts turns into an egress event;
// the lines are themselves rate limited per client, with a count of the suppressed ones.
//
// Corefile syntax, at most once per server block, each option optional but at least one given:
//
//	dnsguard {
//	    types A AAAA CNAME HTTPS
//	    max_label 48
//	    max_name 128
//	    rate 50 100
//	}
package dnsguard

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/miekg/dns"
)

// Name is the directive's name.
const Name = "dnsguard"

// Marker starts every line the events converter reads.
const Marker = "clawker-dns-guard"

// Reasons, as the events carry them.
const (
	ReasonRate        = "rate"
	ReasonQtype       = "qtype"
	ReasonLabelLength = "label-length"
	ReasonNameLength  = "name-length"
)

var log = clog.NewWithPlugin(Name)

// Logf receives each log line (the plugin's logger; tests replace it).
var Logf = log.Infof

// Guard is the plugin handler of one server block. Zero-valued checks are off.
type Guard struct {
	Next plugin.Handler
	// Types are the allowed query types; nil allows every type.
	Types map[uint16]bool
	// MaxLabel and MaxName cap a label's and the dotted name's length in octets; 0 is no cap.
	MaxLabel, MaxName int
	// Queries limits the queries per client address; nil is no limit.
	Queries *Limiter
	// Lines limits the log lines per client address; nil logs every refusal.
	Lines *LineLimiter
}

// Name implements plugin.Handler.
func (g *Guard) Name() string { return Name }

// Check returns the reason the guard refuses r from client, or "" when it lets r through.
func (g *Guard) Check(client string, r *dns.Msg) string {
	if g.Queries != nil && !g.Queries.Allow(client) {
		return ReasonRate
	}
	for _, q := range r.Question {
		if g.Types != nil && !g.Types[q.Qtype] {
			return ReasonQtype
		}
		if reason := g.checkName(q.Name); reason != "" {
			return reason
		}
	}
	return ""
}

func (g *Guard) checkName(name string) string {
	if g.MaxLabel == 0 && g.MaxName == 0 {
		return ""
	}
	labels, ok := wireLabels(name)
	if !ok {
		return ReasonNameLength // not a name the wire format can carry: longer than 255 octets
	}
	total := 0
	for i, label := range labels {
		if g.MaxLabel > 0 && len(label) > g.MaxLabel {
			return ReasonLabelLength
		}
		if i > 0 {
			total++ // the dot
		}
		total += len(label)
	}
	if g.MaxName > 0 && total > g.MaxName {
		return ReasonNameLength
	}
	return ""
}

// wireLabels returns the labels of name as octets (escapes such as \046 resolved), by packing it.
func wireLabels(name string) ([][]byte, bool) {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return nil, false
	}
	var labels [][]byte
	for i := 0; i < n && buf[i] != 0; i += int(buf[i]) + 1 {
		labels = append(labels, buf[i+1:i+1+int(buf[i])])
	}
	return labels, true
}

// ServeDNS implements plugin.Handler.
func (g *Guard) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	ip, port := clientOf(w.RemoteAddr())
	reason := g.Check(ip, r)
	if reason == "" {
		return plugin.NextOrFailure(g.Name(), g.Next, ctx, w, r)
	}
	g.logRefusal(reason, w.RemoteAddr().Network(), ip, port, r)
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeRefused)
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeRefused, nil
}

func clientOf(addr net.Addr) (string, string) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String(), "0"
	}
	return host, port
}

func (g *Guard) logRefusal(reason, proto, ip, port string, r *dns.Msg) {
	if g.Lines != nil {
		allowed, suppressed := g.Lines.Take(ip)
		if !allowed {
			return
		}
		if suppressed > 0 {
			Logf("%s suppressed=%d client=%s", Marker, suppressed, ip)
		}
	}
	qtype, name := "NONE", "."
	if len(r.Question) > 0 {
		qtype, name = typeString(r.Question[0].Qtype), SafeName(r.Question[0].Name)
	}
	Logf("%s", Line(reason, proto, ip, port, qtype, name))
}

// Line is the log line of one refusal:
//
//	clawker-dns-guard reason=qtype udp 10.0.0.5 40312 TXT x.github.com. REFUSED
func Line(reason, proto, ip, port, qtype, name string) string {
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s reason=%s %s %s %s %s %s REFUSED", Marker, reason, proto, ip, port, qtype, name)
}

func typeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// SafeName writes name fully qualified, with every octet other than a letter, digit, '-' or '_'
// inside a label as \DDD, so an agent's query name can neither break nor forge a log line.
func SafeName(name string) string {
	labels, ok := wireLabels(name)
	if !ok {
		return "\\invalid."
	}
	if len(labels) == 0 {
		return "."
	}
	var b strings.Builder
	for _, label := range labels {
		for _, c := range label {
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
				b.WriteByte(c)
			default:
				fmt.Fprintf(&b, "\\%03d", c)
			}
		}
		b.WriteByte('.')
	}
	return b.String()
}

// LineLimiter rate limits the log lines per client and counts the ones it holds back.
type LineLimiter struct {
	limiter    *Limiter
	mu         sync.Mutex
	suppressed map[string]int
}

// NewLineLimiter returns a line limiter of rate lines a second and a burst of burst per client.
func NewLineLimiter(l *Limiter) *LineLimiter {
	return &LineLimiter{limiter: l, suppressed: map[string]int{}}
}

// Take reports whether a line for client may be logged and, if so, how many were held back since
// the last one.
func (l *LineLimiter) Take(client string) (bool, int) {
	allowed := l.limiter.Allow(client)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !allowed {
		l.suppressed[client]++
		return false, 0
	}
	n := l.suppressed[client]
	delete(l.suppressed, client)
	return true, n
}

// Refusal log lines per client: enough for every refusal of a normal agent (a few a second) and a
// burst of them, while a flood of refused queries costs a few lines a second.
const (
	LineRate  = 5
	LineBurst = 20
)

// sharedLineLimiter returns the one line limiter of every server block (guarded by limitersMu).
func sharedLineLimiter() *LineLimiter {
	limitersMu.Lock()
	defer limitersMu.Unlock()
	if sharedLines == nil {
		sharedLines = NewLineLimiter(NewLimiter(LineRate, LineBurst))
	}
	return sharedLines
}
