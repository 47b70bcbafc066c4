package dnsbpf

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// fuzzQnames are the query names a fuzz case picks from: the zone's apex and names below it (in
// any case), and names outside the zone, some of which merely end in its text.
var fuzzQnames = []string{
	"example.org.", "api.example.org.", "A.B.Example.ORG.", "evil.test.", "example.org.evil.test.", "xexample.org.", ".",
}

// fuzzWriter is the client's side: it keeps what the plugin passed on.
type fuzzWriter struct {
	test.ResponseWriter
	msg *dns.Msg
	raw []byte
}

func (w *fuzzWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *fuzzWriter) Write(b []byte) (int, error) {
	w.raw = append([]byte(nil), b...)
	return len(b), nil
}

// fuzzSeeds are real wire-format replies (packed by the dns library, as `forward` relays them).
func fuzzSeeds(t testing.TB) [][]byte {
	reply := func(qname string, rcode int, rrs ...string) []byte {
		q := new(dns.Msg)
		q.SetQuestion(qname, dns.TypeA)
		m := new(dns.Msg)
		m.SetRcode(q, rcode)
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatalf("seed %q: %v", s, err)
			}
			m.Answer = append(m.Answer, rr)
		}
		m.Compress = true
		buf, err := m.Pack()
		if err != nil {
			t.Fatalf("pack seed: %v", err)
		}
		return buf
	}
	return [][]byte{
		reply("api.example.org.", dns.RcodeSuccess, "api.example.org. 300 IN A 192.0.2.1", "api.example.org. 30 IN A 192.0.2.2"),
		reply("example.org.", dns.RcodeSuccess, "example.org. 4000000000 IN A 198.51.100.7"),
		reply("api.example.org.", dns.RcodeSuccess, "api.example.org. 60 IN CNAME edge.cdn.test.", "edge.cdn.test. 20 IN CNAME e1.cdn.test.", "e1.cdn.test. 300 IN A 203.0.113.9", "evil.test. 300 IN A 203.0.113.66"),
		reply("api.example.org.", dns.RcodeSuccess, "a.example.org. 60 IN CNAME b.example.org.", "b.example.org. 60 IN CNAME a.example.org."),
		reply("api.example.org.", dns.RcodeNameError, "api.example.org. 300 IN A 192.0.2.1"),
		reply("api.example.org.", dns.RcodeServerFailure, "api.example.org. 300 IN A 192.0.2.1"),
		reply("api.example.org.", dns.RcodeSuccess, "api.example.org. 300 IN AAAA 2001:db8::1", "api.example.org. 300 IN TXT \"x\""),
		reply("evil.test.", dns.RcodeSuccess, "evil.test. 300 IN A 192.0.2.99"),
		{},
		{0xde, 0xad, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c}, // a compression pointer to itself
	}
}

// FuzzServeDNSResponse runs arbitrary upstream replies through the plugin, as packed bytes
// (Write) or unpacked (WriteMsg), for a query inside or outside its zone. It must never panic and
// must record only what Entries promises: for a query in the zone, a NOERROR response, the query's
// destination, IPv4 addresses of IN A records of the answer, and TTLs no larger than theirs.
//
//	go test -run='^$' -fuzz=FuzzServeDNSResponse -fuzztime=20s ./plugin/dnsbpf/
func FuzzServeDNSResponse(f *testing.F) {
	for i, seed := range fuzzSeeds(f) {
		f.Add(uint8(i%len(fuzzQnames)), false, seed)
		f.Add(uint8(1), true, seed)
	}
	f.Fuzz(func(t *testing.T, pick uint8, unpacked bool, wire []byte) {
		qname := fuzzQnames[int(pick)%len(fuzzQnames)]
		cache := NewMemoryCache()
		h := &DNSBPF{
			Zones: []string{"example.org."},
			Apex:  NewDestination("example.org"),
			Sub:   NewDestination(".example.org"),
			Cache: cache,
			Next: test.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, _ *dns.Msg) (int, error) {
				if unpacked {
					m := new(dns.Msg)
					if m.Unpack(wire) == nil {
						return 0, w.WriteMsg(m)
					}
				}
				_, err := w.Write(wire)
				return 0, err
			}),
		}
		req := new(dns.Msg)
		req.SetQuestion(qname, dns.TypeA)
		client := &fuzzWriter{}
		_, _ = h.ServeDNS(context.Background(), client, req)

		entries := cache.Entries()
		if len(entries) == 0 {
			return
		}
		lower := strings.ToLower(qname)
		inZone := lower == "example.org." || strings.HasSuffix(lower, ".example.org.")
		if !inZone {
			t.Fatalf("recorded %v for %s, outside the zone", entries, qname)
		}
		res := new(dns.Msg)
		if err := res.Unpack(wire); err != nil {
			t.Fatalf("recorded %v from a reply that does not unpack: %v", entries, err)
		}
		if !res.Response || res.Rcode != dns.RcodeSuccess || res.Opcode != dns.OpcodeQuery {
			t.Fatalf("recorded %v from a reply with rcode %s, opcode %d, response %v", entries, dns.RcodeToString[res.Rcode], res.Opcode, res.Response)
		}
		dest := h.Sub
		if lower == "example.org." {
			dest = h.Apex
		}
		for _, e := range entries {
			if e.Name != lower || e.Destination != dest.Name || e.Key != dest.Key {
				t.Fatalf("entry %v: want name %s under %s (0x%016x)", e, lower, dest.Name, dest.Key)
			}
			if !e.Addr.Is4() {
				t.Fatalf("entry %v: not an IPv4 address", e)
			}
			if !answerHasA(res, e.Addr, e.TTL) {
				t.Fatalf("entry %v: no IN A record of the answer has this address with a TTL of at least %d", e, e.TTL)
			}
		}
		// What the client got instead of the reply: capped TTLs (or the reply itself when none was above).
		got := client.msg
		if got == nil {
			got = res // the reply went through as it was
		}
		if got != nil {
			for _, rr := range got.Answer {
				if rr.Header().Ttl > MaxTTL {
					t.Fatalf("the client got TTL %d > MaxTTL %d for a recorded answer: %v", rr.Header().Ttl, MaxTTL, rr)
				}
			}
		}
	})
}

func answerHasA(res *dns.Msg, addr netip.Addr, ttl uint32) bool {
	for _, rr := range res.Answer {
		a, ok := rr.(*dns.A)
		if !ok || a.Hdr.Class != dns.ClassINET {
			continue
		}
		if got, ok := netip.AddrFromSlice(a.A); ok && got.Unmap() == addr && a.Hdr.Ttl >= ttl {
			return true
		}
	}
	return false
}
