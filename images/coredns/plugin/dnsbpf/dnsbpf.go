// Package dnsbpf is the CoreDNS plugin that records, for every successful answer in an allowed
// zone, each IPv4 address with the domain key of the rule destination it was resolved under, so
// that the cgroup connect hooks can route (or deny) a connection to that address by rule.
//
// Corefile syntax, one per server block, placed before `forward` by the directive order:
//
//	dnsbpf APEX SUB [{
//	    map PATH
//	}]
//
// APEX is the destination whose key the answers for the zone's apex name carry, SUB the one for
// names below the apex; `-` means none (the Corefile answers those names NXDOMAIN before they get
// here, and dnsbpf records nothing for them). Example: `dnsbpf api.example.org .example.org`.
// PATH is the pinned dns_cache BPF map (default DefaultMapPath, or the environment variable
// MapPathEnv); it is opened when the server starts, which fails if the map is missing or has
// another layout (Corefile validation does not open it).
//
// The entries are written before the answer leaves (the plugin wraps the ResponseWriter), so a
// client never holds an address the datapath does not know; if the write fails, the client gets
// SERVFAIL instead of the answer. Only NOERROR answers are recorded, only A records, and only those
// on the CNAME chain from the query name. Entries expire after their TTL, capped at MaxTTL, plus
// ExpiryGrace; the TTLs of a recorded answer are capped at MaxTTL for the client too.
package dnsbpf

import (
	"context"
	"math"
	"net/netip"
	"strings"

	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// Name is the directive's name.
const Name = "dnsbpf"

var log = clog.NewWithPlugin(Name)

// Destination is a rule destination and its domain key. The zero value means none (`-`).
type Destination struct {
	Name string
	Key  uint64
}

// None reports whether d is `-`.
func (d Destination) None() bool { return d.Name == "" }

func (d Destination) String() string {
	if d.None() {
		return "-"
	}
	return d.Name
}

// NewDestination returns the destination named name with its key.
func NewDestination(name string) Destination { return Destination{Name: name, Key: DomainKey(name)} }

// DNSBPF is the plugin handler of one server block.
type DNSBPF struct {
	Next plugin.Handler
	// Zones are the server block's zones, fully qualified and lower case.
	Zones []string
	// Apex is the destination of each zone's apex name, Sub that of the names below it.
	Apex, Sub Destination
	// MapPath is the pinned dns_cache map the writer is opened on at startup.
	MapPath string
	// Cache receives the entries. When nil (not started), answers that would be recorded are
	// replaced by SERVFAIL.
	Cache CacheWriter
}

// Name implements plugin.Handler.
func (d *DNSBPF) Name() string { return Name }

// destinationFor returns the destination an answer for qname (lower case, fully qualified) is
// recorded under.
func (d *DNSBPF) destinationFor(qname string) Destination {
	zone := plugin.Zones(d.Zones).Matches(qname)
	switch {
	case zone == "":
		return Destination{}
	case qname == zone:
		return d.Apex
	default:
		return d.Sub
	}
}

// ServeDNS implements plugin.Handler.
func (d *DNSBPF) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	qname := state.Name()
	dest := d.destinationFor(qname)
	if dest.None() || r.Opcode != dns.OpcodeQuery {
		return plugin.NextOrFailure(d.Name(), d.Next, ctx, w, r)
	}
	rw := &ResponseWriter{ResponseWriter: w, plugin: d, req: r, qname: qname, dest: dest}
	return plugin.NextOrFailure(d.Name(), d.Next, ctx, rw, r)
}

// ResponseWriter records the addresses of an answer before passing it on.
type ResponseWriter struct {
	dns.ResponseWriter
	plugin *DNSBPF
	req    *dns.Msg
	qname  string
	dest   Destination
}

// WriteMsg implements dns.ResponseWriter.
func (w *ResponseWriter) WriteMsg(res *dns.Msg) error {
	out, ok := w.record(res)
	if !ok {
		return w.ResponseWriter.WriteMsg(w.serverFailure())
	}
	return w.ResponseWriter.WriteMsg(out)
}

// Write implements dns.ResponseWriter. A reply that does not unpack is passed on unrecorded (the
// client cannot use it either).
func (w *ResponseWriter) Write(buf []byte) (int, error) {
	res := new(dns.Msg)
	if err := res.Unpack(buf); err != nil {
		return w.ResponseWriter.Write(buf)
	}
	out, ok := w.record(res)
	if !ok {
		return 0, w.ResponseWriter.WriteMsg(w.serverFailure())
	}
	if out != res {
		return len(buf), w.ResponseWriter.WriteMsg(out)
	}
	return w.ResponseWriter.Write(buf)
}

func (w *ResponseWriter) serverFailure() *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(w.req, dns.RcodeServerFailure)
	return m
}

// record writes the entries of res to the cache and returns the reply the client gets: res, or a
// copy with its answer TTLs capped at MaxTTL when it had entries; false if the write failed and
// the client must not get res.
func (w *ResponseWriter) record(res *dns.Msg) (*dns.Msg, bool) {
	entries := Entries(w.qname, w.dest, res)
	if len(entries) == 0 {
		return res, true
	}
	if w.plugin.Cache == nil {
		log.Errorf("answering SERVFAIL for %s: no dns_cache writer (plugin not started)", w.qname)
		return nil, false
	}
	if err := w.plugin.Cache.WriteEntries(entries); err != nil {
		log.Errorf("answering SERVFAIL for %s: writing %d dns_cache entries failed: %v", w.qname, len(entries), err)
		return nil, false
	}
	return capTTLs(res), true
}

// capTTLs returns res with every answer-section TTL above MaxTTL lowered to MaxTTL (a copy; res
// itself when none is above). The entries expire after at most MaxTTL (+ ExpiryGrace), so a client
// that kept the address for longer would find its connections unrouted; with the capped TTL it
// re-resolves instead, and that answer refreshes the entry. (Only the answer section: the chain
// the client uses is there, and the additional section's OPT record uses the TTL field for flags.)
func capTTLs(res *dns.Msg) *dns.Msg {
	var out *dns.Msg
	for i, rr := range res.Answer {
		if rr.Header().Ttl <= MaxTTL {
			continue
		}
		if out == nil {
			out = res.Copy()
		}
		out.Answer[i].Header().Ttl = MaxTTL
	}
	if out == nil {
		return res
	}
	return out
}

// Entries returns the cache entries an answer to qname (lower case, fully qualified) yields under
// dest: none unless the answer is a successful (NOERROR) response; otherwise one per distinct IPv4
// address of an IN A record in the answer section whose owner is qname or a name the CNAME chain
// from qname leads to. Other records in the answer section are ignored: a client only uses the
// chain. The TTL is the smallest TTL along the chain to the address.
func Entries(qname string, dest Destination, res *dns.Msg) []CacheEntry {
	if dest.None() || res == nil || !res.Response || res.Rcode != dns.RcodeSuccess || res.Opcode != dns.OpcodeQuery {
		return nil
	}
	// ttlTo[name] is the smallest TTL on the chain from qname to name.
	ttlTo := map[string]uint32{strings.ToLower(qname): math.MaxUint32}
	for changed := true; changed; {
		changed = false
		for _, rr := range res.Answer {
			cname, ok := rr.(*dns.CNAME)
			if !ok || cname.Hdr.Class != dns.ClassINET {
				continue
			}
			from, ok := ttlTo[strings.ToLower(cname.Hdr.Name)]
			if !ok {
				continue
			}
			target := strings.ToLower(cname.Target)
			ttl := min(from, cname.Hdr.Ttl)
			if old, seen := ttlTo[target]; !seen || ttl < old {
				ttlTo[target] = ttl
				changed = true // TTLs only decrease, so this ends
			}
		}
	}
	var entries []CacheEntry
	index := map[netip.Addr]int{}
	for _, rr := range res.Answer {
		a, ok := rr.(*dns.A)
		if !ok || a.Hdr.Class != dns.ClassINET {
			continue
		}
		chainTTL, ok := ttlTo[strings.ToLower(a.Hdr.Name)]
		if !ok {
			continue
		}
		addr, ok := netip.AddrFromSlice(a.A)
		if !ok {
			continue
		}
		addr = addr.Unmap()
		if !addr.Is4() {
			continue
		}
		ttl := min(chainTTL, a.Hdr.Ttl)
		if i, dup := index[addr]; dup {
			entries[i].TTL = min(entries[i].TTL, ttl)
			continue
		}
		index[addr] = len(entries)
		entries = append(entries, CacheEntry{Addr: addr, Destination: dest.Name, Key: dest.Key, TTL: ttl, Name: strings.ToLower(qname)})
	}
	return entries
}
