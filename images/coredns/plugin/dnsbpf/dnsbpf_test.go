package dnsbpf

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// upstream is a next handler that answers like `forward` does: the reply it is given, made a
// reply to the query (through WriteMsg, or through Write as packed bytes when packed is set).
func upstream(rcode int, answer []dns.RR, packed bool) test.HandlerFunc {
	return func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		m.Answer = answer
		if packed {
			buf, err := m.Pack()
			if err != nil {
				return dns.RcodeServerFailure, err
			}
			_, err = w.Write(buf)
			return 0, err
		}
		return 0, w.WriteMsg(m)
	}
}

// handler is the plugin of a block `api.example.org:53 { dnsbpf api.example.org .example.org }`.
func handler(next test.HandlerFunc, cache CacheWriter) *DNSBPF {
	return &DNSBPF{
		Next:  next,
		Zones: []string{"api.example.org."},
		Apex:  NewDestination("api.example.org"),
		Sub:   NewDestination(".example.org"),
		Cache: cache,
	}
}

// serve runs one query through h and returns what the client got.
func serve(t *testing.T, h *DNSBPF, qname string, qtype uint16) *dnstest.Recorder {
	t.Helper()
	req := new(dns.Msg)
	req.SetQuestion(qname, qtype)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := h.ServeDNS(context.Background(), rec, req); err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	if rec.Msg == nil {
		t.Fatal("no reply was written")
	}
	return rec
}

func entry(addr, dest string, ttl uint32, name string) CacheEntry {
	return CacheEntry{Addr: netip.MustParseAddr(addr), Destination: dest, Key: DomainKey(dest), TTL: ttl, Name: name}
}

func assertEntries(t *testing.T, cache *MemoryCache, want ...CacheEntry) {
	t.Helper()
	got := cache.Entries()
	if len(want) == 0 && len(got) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("dns_cache entries:\n got  %v\n want %v", got, want)
	}
}

func TestApexAnswerIsRecordedUnderApexDestination(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{
		test.A("api.example.org. 300 IN A 192.0.2.1"),
		test.A("api.example.org. 300 IN A 192.0.2.2"),
	}, false), cache)
	rec := serve(t, h, "api.example.org.", dns.TypeA)
	if rec.Rcode != dns.RcodeSuccess || len(rec.Msg.Answer) != 2 {
		t.Fatalf("client got %v", rec.Msg)
	}
	assertEntries(t, cache,
		entry("192.0.2.1", "api.example.org", 300, "api.example.org."),
		entry("192.0.2.2", "api.example.org", 300, "api.example.org."))
}

func TestNameBelowApexIsRecordedUnderSubDestination(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.A("x.api.example.org. 60 IN A 198.51.100.7")}, false), cache)
	serve(t, h, "x.api.example.org.", dns.TypeA)
	assertEntries(t, cache, entry("198.51.100.7", ".example.org", 60, "x.api.example.org."))
	if e, ok := cache.Lookup(netip.MustParseAddr("198.51.100.7")); !ok || e.Key == DomainKey("x.api.example.org") || e.Key == DomainKey("api.example.org") {
		t.Fatalf("keyed by the query name or the apex: %v", e)
	}
}

// The query name's case does not matter (CoreDNS zones and destinations are lower case); answers
// echo the client's case (0x20 randomisation).
func TestMixedCaseQuery(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.A("Api.Example.ORG. 30 IN A 192.0.2.9")}, false), cache)
	serve(t, h, "Api.Example.ORG.", dns.TypeA)
	assertEntries(t, cache, entry("192.0.2.9", "api.example.org", 30, "api.example.org."))
}

// A CDN answer: CNAME chain to another name's A records. The addresses belong to the query's
// destination; the TTL is the smallest along the chain. A records off the chain are ignored.
func TestCNAMEChain(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{
		test.CNAME("api.example.org. 3600 IN CNAME edge.cdn.example.net."),
		test.CNAME("edge.cdn.example.net. 120 IN CNAME e1.cdn.example.net."),
		test.A("e1.cdn.example.net. 20 IN A 203.0.113.5"),
		test.A("e1.cdn.example.net. 600 IN A 203.0.113.6"),
		test.A("unrelated.example.com. 600 IN A 203.0.113.66"),
	}, false), cache)
	serve(t, h, "api.example.org.", dns.TypeA)
	assertEntries(t, cache,
		entry("203.0.113.5", "api.example.org", 20, "api.example.org."),
		entry("203.0.113.6", "api.example.org", 120, "api.example.org."))
}

func TestCNAMELoopTerminates(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{
		test.CNAME("api.example.org. 300 IN CNAME a.example.net."),
		test.CNAME("a.example.net. 300 IN CNAME api.example.org."),
	}, false), cache)
	serve(t, h, "api.example.org.", dns.TypeA)
	assertEntries(t, cache)
	if cache.Writes() != 0 {
		t.Fatal("an empty write was made")
	}
}

func TestSameAddressTwiceKeepsSmallestTTL(t *testing.T) {
	got := Entries("api.example.org.", NewDestination("api.example.org"), answer(dns.RcodeSuccess,
		test.A("api.example.org. 90 IN A 192.0.2.1"),
		test.A("api.example.org. 30 IN A 192.0.2.1")))
	if len(got) != 1 || got[0].TTL != 30 {
		t.Fatalf("%v", got)
	}
}

func answer(rcode int, rrs ...dns.RR) *dns.Msg {
	req := new(dns.Msg)
	req.SetQuestion("api.example.org.", dns.TypeA)
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.Answer = rrs
	return m
}

// Nothing is recorded from a failed or refused answer, even one that carries A records.
func TestNonSuccessRcodesRecordNothing(t *testing.T) {
	for _, rcode := range []int{dns.RcodeNameError, dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented} {
		cache := NewMemoryCache()
		h := handler(upstream(rcode, []dns.RR{test.A("api.example.org. 300 IN A 192.0.2.1")}, false), cache)
		rec := serve(t, h, "api.example.org.", dns.TypeA)
		if rec.Rcode != rcode {
			t.Errorf("%s: the client got %s, want the answer passed through", dns.RcodeToString[rcode], dns.RcodeToString[rec.Rcode])
		}
		if cache.Writes() != 0 {
			t.Errorf("%s: %d writes, want none", dns.RcodeToString[rcode], cache.Writes())
		}
	}
}

func TestAAAARecordsNothing(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.AAAA("api.example.org. 300 IN AAAA 2001:db8::1")}, false), cache)
	rec := serve(t, h, "api.example.org.", dns.TypeAAAA)
	if len(rec.Msg.Answer) != 1 || cache.Writes() != 0 {
		t.Fatalf("answer %v, %d writes", rec.Msg.Answer, cache.Writes())
	}
	// Nor does an IPv4-mapped address smuggled into an AAAA record become an IPv4 entry.
	h = handler(upstream(dns.RcodeSuccess, []dns.RR{test.AAAA("api.example.org. 300 IN AAAA ::ffff:192.0.2.1")}, false), cache)
	serve(t, h, "api.example.org.", dns.TypeAAAA)
	if cache.Writes() != 0 {
		t.Fatal("an AAAA record was recorded")
	}
}

// Names whose destination is '-' pass through untouched: not even the ResponseWriter is wrapped.
func TestNoneDestinationRecordsNothing(t *testing.T) {
	cache := NewMemoryCache()
	wrapped := false
	next := func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		_, wrapped = w.(*ResponseWriter)
		return upstream(dns.RcodeSuccess, []dns.RR{test.A(r.Question[0].Name + " 300 IN A 192.0.2.1")}, false)(ctx, w, r)
	}
	h := &DNSBPF{Next: test.HandlerFunc(next), Zones: []string{"github.com."}, Apex: NewDestination("github.com"), Cache: cache}
	serve(t, h, "x.github.com.", dns.TypeA)
	if wrapped || cache.Writes() != 0 {
		t.Fatalf("below an exact zone: wrapped %v, %d writes", wrapped, cache.Writes())
	}
	h = &DNSBPF{Next: test.HandlerFunc(next), Zones: []string{"bad.example.org."}, Sub: NewDestination(".example.org"), Cache: cache}
	serve(t, h, "bad.example.org.", dns.TypeA)
	if wrapped || cache.Writes() != 0 {
		t.Fatalf("a denied apex: wrapped %v, %d writes", wrapped, cache.Writes())
	}
	serve(t, h, "x.bad.example.org.", dns.TypeA)
	assertEntries(t, cache, entry("192.0.2.1", ".example.org", 300, "x.bad.example.org."))
}

// The entries are in the cache before the client has the answer.
func TestWrittenBeforeTheReply(t *testing.T) {
	cache := NewMemoryCache()
	var rec *dnstest.Recorder
	calls := 0
	cache.BeforeWrite = func([]CacheEntry) {
		calls++
		if rec.Msg != nil {
			t.Error("the reply reached the client before the dns_cache write")
		}
	}
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.A("api.example.org. 300 IN A 192.0.2.1")}, false), cache)
	req := new(dns.Msg)
	req.SetQuestion("api.example.org.", dns.TypeA)
	rec = dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := h.ServeDNS(context.Background(), rec, req); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || rec.Msg == nil || len(cache.Entries()) != 1 {
		t.Fatalf("%d writes, reply %v", calls, rec.Msg)
	}
}

// If the write fails, the client gets SERVFAIL, never an address the datapath does not know.
func TestWriteFailureAnswersServfail(t *testing.T) {
	cache := NewMemoryCache()
	cache.Err = errors.New("map full")
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.A("api.example.org. 300 IN A 192.0.2.1")}, false), cache)
	rec := serve(t, h, "api.example.org.", dns.TypeA)
	if rec.Rcode != dns.RcodeServerFailure || len(rec.Msg.Answer) != 0 {
		t.Fatalf("client got %v", rec.Msg)
	}
	if rec.Msg.Id == 0 || rec.Msg.Question[0].Name != "api.example.org." {
		t.Fatalf("the SERVFAIL is not a reply to the query: %v", rec.Msg)
	}
	// Not started (no writer): the same.
	h = handler(upstream(dns.RcodeSuccess, []dns.RR{test.A("api.example.org. 300 IN A 192.0.2.1")}, false), nil)
	if rec := serve(t, h, "api.example.org.", dns.TypeA); rec.Rcode != dns.RcodeServerFailure {
		t.Fatalf("without a writer the client got %v", rec.Msg)
	}
	// An answer without addresses needs no write, so it passes even then.
	h = handler(upstream(dns.RcodeSuccess, nil, false), nil)
	if rec := serve(t, h, "api.example.org.", dns.TypeA); rec.Rcode != dns.RcodeSuccess {
		t.Fatalf("an empty answer became %v", rec.Msg)
	}
}

// A reply written as packed bytes is recorded the same way.
func TestPackedReply(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.A("api.example.org. 300 IN A 192.0.2.1")}, true), cache)
	req := new(dns.Msg)
	req.SetQuestion("api.example.org.", dns.TypeA)
	if _, err := h.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), req); err != nil {
		t.Fatal(err)
	}
	assertEntries(t, cache, entry("192.0.2.1", "api.example.org", 300, "api.example.org."))

	cache.Err = errors.New("map full")
	var got *dns.Msg
	w := &captureWriter{ResponseWriter: &test.ResponseWriter{}, msg: &got}
	if _, err := h.ServeDNS(context.Background(), w, req); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Rcode != dns.RcodeServerFailure || w.raw != 0 {
		t.Fatalf("a failed write with a packed reply: %v (raw writes %d)", got, w.raw)
	}
}

type captureWriter struct {
	dns.ResponseWriter
	msg *(*dns.Msg)
	raw int
}

func (c *captureWriter) WriteMsg(m *dns.Msg) error   { *c.msg = m; return nil }
func (c *captureWriter) Write(b []byte) (int, error) { c.raw++; return len(b), nil }

// Other query types are recorded only for the A records on the chain (none for MX, say).
func TestOtherTypesRecordOnlyChainARecords(t *testing.T) {
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.MX("api.example.org. 300 IN MX 10 mail.example.org.")}, false), cache)
	serve(t, h, "api.example.org.", dns.TypeMX)
	if cache.Writes() != 0 {
		t.Fatal("an MX answer was recorded")
	}
}

func TestEntriesNeedAResponse(t *testing.T) {
	m := answer(dns.RcodeSuccess, test.A("api.example.org. 300 IN A 192.0.2.1"))
	m.Response = false
	if got := Entries("api.example.org.", NewDestination("api.example.org"), m); len(got) != 0 {
		t.Fatalf("a message that is not a response yielded %v", got)
	}
	if got := Entries("api.example.org.", Destination{}, answer(dns.RcodeSuccess, test.A("api.example.org. 300 IN A 192.0.2.1"))); len(got) != 0 {
		t.Fatalf("destination '-' yielded %v", got)
	}
}

// The client's copy of a recorded answer expires no later than the entries: answer TTLs above
// MaxTTL are lowered to it (the entries get the upstream TTL; the writer caps it the same way).
func TestRecordedAnswerTTLsAreCapped(t *testing.T) {
	for _, packed := range []bool{false, true} {
		cache := NewMemoryCache()
		rrs := []dns.RR{
			test.CNAME("api.example.org. 86400 IN CNAME edge.example.net."),
			test.A("edge.example.net. 604800 IN A 192.0.2.1"),
			test.A("edge.example.net. 60 IN A 192.0.2.2"),
		}
		h := handler(upstream(dns.RcodeSuccess, rrs, packed), cache)
		var got *dns.Msg
		w := &captureWriter{ResponseWriter: &test.ResponseWriter{}, msg: &got}
		req := new(dns.Msg)
		req.SetQuestion("api.example.org.", dns.TypeA)
		if _, err := h.ServeDNS(context.Background(), w, req); err != nil {
			t.Fatal(err)
		}
		if got == nil || len(got.Answer) != 3 || got.Id != req.Id {
			t.Fatalf("packed %v: client got %v", packed, got)
		}
		for i, want := range []uint32{MaxTTL, MaxTTL, 60} {
			if ttl := got.Answer[i].Header().Ttl; ttl != want {
				t.Errorf("packed %v: answer %d has TTL %d, want %d", packed, i, ttl, want)
			}
		}
		if rrs[0].Header().Ttl != 86400 {
			t.Error("the upstream's message was modified in place")
		}
		assertEntries(t, cache,
			entry("192.0.2.1", "api.example.org", 86400, "api.example.org."),
			entry("192.0.2.2", "api.example.org", 60, "api.example.org."))
	}
	// Unrecorded answers pass untouched (an MX, say).
	cache := NewMemoryCache()
	h := handler(upstream(dns.RcodeSuccess, []dns.RR{test.MX("api.example.org. 86400 IN MX 10 mail.example.org.")}, false), cache)
	if rec := serve(t, h, "api.example.org.", dns.TypeMX); rec.Msg.Answer[0].Header().Ttl != 86400 {
		t.Fatalf("an unrecorded answer was changed: %v", rec.Msg)
	}
}
