package main

import (
	"fmt"
	"regexp/syntax"
	"strings"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Load-time rules of Envoy that are not protoc-gen-validate rules, approximated here so that a
// generated configuration that Envoy would refuse fails in tests. They are approximations of
// Envoy's C++ checks, written from its documentation and error messages, not Envoy itself:
//
//   - a filesystem xDS file holds resources of one type, with unique names;
//   - an extension (listener filter, network filter, HTTP filter, transport socket, access log,
//     ...) must carry typed_config: Envoy finds the extension by its "@type" (lookup by name
//     is deprecated and being removed);
//   - the filter chains of a listener must not have the same (overlapping) filter_chain_match
//     ("multiple filter chains with the same matching rules are defined");
//   - domains must be unique across the virtual hosts of a route configuration
//     ("Only unique values for domains are permitted");
//   - safe_regex must compile as RE2 (checked with Go's regexp/syntax, which implements RE2's
//     syntax).
func (c *checker) semantic(m protoreflect.Message, path string) {
	c.requireTypedConfig(m, path)
	switch x := m.Interface().(type) {
	case *listenerv3.Listener:
		c.listener(x, path)
	case *routev3.RouteConfiguration:
		c.routeConfiguration(x, path)
	case *matcherv3.RegexMatcher:
		c.regex(x.GetRegex(), join(path, "regex"))
	case *xdsmatcherv3.RegexMatcher:
		c.regex(x.GetRegex(), join(path, "regex"))
	}
}

// requireTypedConfig: a message whose oneof config_type offers typed_config must set it (or
// another member of the oneof, such as config_discovery).
func (c *checker) requireTypedConfig(m protoreflect.Message, path string) {
	md := m.Descriptor()
	od := md.Oneofs().ByName("config_type")
	if od == nil || od.Fields().ByName("typed_config") == nil {
		return
	}
	if m.WhichOneof(od) != nil {
		return
	}
	name := ""
	if fd := md.Fields().ByName("name"); fd != nil && fd.Kind() == protoreflect.StringKind {
		name = fmt.Sprintf(" (name %q)", m.Get(fd).String())
	}
	c.errorf(join(path, "typed_config"), "not set%s: Envoy selects an extension by the \"@type\" of its typed_config [%s]", name, md.FullName())
}

func (c *checker) regex(re, path string) {
	if _, err := syntax.Parse(re, syntax.Perl); err != nil {
		c.errorf(path, "not a valid RE2 regular expression: %v", err)
	}
}

func (c *checker) discoveryResponse(m *discoveryv3.DiscoveryResponse) {
	firstType := ""
	names := map[string]int{}
	for i, a := range m.GetResources() {
		path := fmt.Sprintf("resources[%d]", i)
		t := a.GetTypeUrl()
		inner, err := a.UnmarshalNew()
		if err != nil {
			continue // reported by checkAny
		}
		// A resource may come wrapped in envoy.service.discovery.v3.Resource.
		if r, ok := inner.(*discoveryv3.Resource); ok && r.GetResource() != nil {
			t = r.GetResource().GetTypeUrl()
			if inner, err = r.GetResource().UnmarshalNew(); err != nil {
				continue
			}
		}
		if m.GetTypeUrl() != "" && t != m.GetTypeUrl() {
			c.errorf(path, "type %s differs from the file's type_url %s", t, m.GetTypeUrl())
		}
		if i == 0 {
			firstType = t
		} else if t != firstType {
			c.errorf(path, "type %s differs from resources[0] (%s): one path_config_source file holds one resource type", t, firstType)
		}
		if nameOf(inner.ProtoReflect()) != "" {
			n := t + " " + nameOf(inner.ProtoReflect())
			if j, dup := names[n]; dup {
				c.errorf(join(path, "name"), "%q is also the name of resources[%d]", nameOf(inner.ProtoReflect()), j)
			} else {
				names[n] = i
			}
		}
	}
}

func nameOf(m protoreflect.Message) string {
	if fd := m.Descriptor().Fields().ByName("name"); fd != nil && fd.Kind() == protoreflect.StringKind {
		return m.Get(fd).String()
	}
	if fd := m.Descriptor().Fields().ByName("cluster_name"); fd != nil && fd.Kind() == protoreflect.StringKind {
		return m.Get(fd).String() // ClusterLoadAssignment
	}
	return ""
}

func cidrs(rs []*corev3.CidrRange) []string {
	if len(rs) == 0 {
		return []string{""}
	}
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s/%d", r.GetAddressPrefix(), r.GetPrefixLen().GetValue()))
	}
	return out
}

func orAny(xs []string) []string {
	if len(xs) == 0 {
		return []string{""}
	}
	return xs
}

// matchKeys expands a FilterChainMatch into every combination of its criteria (an empty list
// matches anything and counts as one wildcard entry), the way Envoy builds its filter chain
// lookup tree; two chains sharing a combination are ambiguous and Envoy refuses the listener.
func matchKeys(m *listenerv3.FilterChainMatch, limit int) ([]string, bool) {
	port := ""
	if m.GetDestinationPort() != nil {
		port = fmt.Sprint(m.GetDestinationPort().GetValue())
	}
	var srcPorts []string
	for _, p := range m.GetSourcePorts() {
		srcPorts = append(srcPorts, fmt.Sprint(p))
	}
	dims := [][]string{
		{port},
		cidrs(m.GetPrefixRanges()),
		orAny(m.GetServerNames()),
		{m.GetTransportProtocol()},
		orAny(m.GetApplicationProtocols()),
		cidrs(m.GetDirectSourcePrefixRanges()),
		{m.GetSourceType().String()},
		cidrs(m.GetSourcePrefixRanges()),
		orAny(srcPorts),
	}
	total := 1
	for _, d := range dims {
		total *= len(d)
		if total > limit {
			return nil, false
		}
	}
	keys := []string{""}
	for i, d := range dims {
		next := make([]string, 0, len(keys)*len(d))
		for _, k := range keys {
			for _, v := range d {
				if i == 0 {
					next = append(next, v)
				} else {
					next = append(next, k+"\x00"+v)
				}
			}
		}
		keys = next
	}
	return keys, true
}

func describeKey(k string) string {
	parts := strings.Split(k, "\x00")
	labels := []string{"destination_port", "prefix_ranges", "server_names", "transport_protocol",
		"application_protocols", "direct_source_prefix_ranges", "source_type", "source_prefix_ranges", "source_ports"}
	var out []string
	for i, p := range parts {
		if p != "" && !(labels[i] == "source_type" && p == "ANY") {
			out = append(out, fmt.Sprintf("%s %q", labels[i], p))
		}
	}
	if len(out) == 0 {
		return "match anything"
	}
	return strings.Join(out, ", ")
}

func (c *checker) listener(l *listenerv3.Listener, path string) {
	if l.GetFilterChainMatcher() != nil {
		return // the matcher API replaces filter_chain_match, which is then ignored
	}
	seen := map[string]int{}
	for i, fc := range l.GetFilterChains() {
		keys, ok := matchKeys(fc.GetFilterChainMatch(), 200000)
		if !ok {
			c.warnf(fmt.Sprintf("%s[%d].filter_chain_match", join(path, "filter_chains"), i), "too many combinations to check for overlaps")
			continue
		}
		reported := false
		for _, k := range keys {
			if j, dup := seen[k]; dup && j != i {
				if !reported {
					c.errorf(fmt.Sprintf("%s[%d].filter_chain_match", join(path, "filter_chains"), i),
						"overlaps filter_chains[%d] (%s): Envoy rejects a listener whose filter chains have the same matching rules", j, describeKey(k))
					reported = true
				}
				continue
			}
			seen[k] = i
		}
	}
}

func (c *checker) routeConfiguration(rc *routev3.RouteConfiguration, path string) {
	type at struct{ vh, d int }
	seen := map[string]at{}
	for i, vh := range rc.GetVirtualHosts() {
		for j, d := range vh.GetDomains() {
			k := strings.ToLower(d)
			dpath := fmt.Sprintf("%s[%d].domains[%d]", join(path, "virtual_hosts"), i, j)
			if prev, dup := seen[k]; dup {
				c.errorf(dpath, "domain %q is also in virtual_hosts[%d].domains[%d]: Envoy permits only unique domains in a route configuration", d, prev.vh, prev.d)
				continue
			}
			seen[k] = at{i, j}
		}
	}
}
