package main

import (
	"path/filepath"
	"strings"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

// Types a firewall proxy configuration may name in "@type": each must be registered (by
// imports_gen.go), or a legitimate configuration would be rejected as unknown.
var proxyTypes = []string{
	"envoy.config.bootstrap.v3.Bootstrap",
	"envoy.service.discovery.v3.DiscoveryResponse",
	"envoy.service.discovery.v3.Resource",
	"envoy.config.listener.v3.Listener",
	"envoy.config.cluster.v3.Cluster",
	"envoy.config.route.v3.RouteConfiguration",
	"envoy.config.endpoint.v3.ClusterLoadAssignment",
	"envoy.extensions.transport_sockets.tls.v3.Secret",
	"envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
	"envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
	"envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer",
	"envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
	"envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
	"envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
	"envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol",
	"envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
	"envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
	"envoy.extensions.filters.network.direct_response.v3.Config",
	"envoy.extensions.filters.network.rbac.v3.RBAC",
	"envoy.extensions.filters.network.set_filter_state.v3.Config",
	"envoy.extensions.filters.network.sni_cluster.v3.SniCluster",
	"envoy.extensions.filters.network.sni_dynamic_forward_proxy.v3.FilterConfig",
	"envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
	"envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig",
	"envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig",
	"envoy.extensions.filters.http.router.v3.Router",
	"envoy.extensions.filters.http.health_check.v3.HealthCheck",
	"envoy.extensions.filters.http.rbac.v3.RBAC",
	"envoy.extensions.filters.http.header_to_metadata.v3.Config",
	"envoy.extensions.filters.http.set_filter_state.v3.Config",
	"envoy.extensions.filters.http.set_metadata.v3.Config",
	"envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
	"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
	"envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
	"envoy.extensions.common.dynamic_forward_proxy.v3.DnsCacheConfig",
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
	"envoy.extensions.access_loggers.file.v3.FileAccessLog",
	"envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
	"envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
	"envoy.extensions.formatter.metadata.v3.Metadata",
	"envoy.config.common.matcher.v3.Matcher",
	"envoy.extensions.matching.common_inputs.network.v3.ServerNameInput",
	"envoy.extensions.matching.common_inputs.network.v3.DestinationPortInput",
	"envoy.extensions.matching.input_matchers.ip.v3.Ip",
	"xds.type.matcher.v3.Matcher",
	"xds.type.matcher.v3.HttpAttributesCelMatchInput",
	"xds.type.v3.TypedStruct",
	"udpa.type.v1.TypedStruct",
	"envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
	"envoy.extensions.udp_packet_writer.v3.UdpDefaultWriterFactory",
}

func TestProxyExtensionTypesAreRegistered(t *testing.T) {
	for _, n := range proxyTypes {
		if _, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(n)); err != nil {
			t.Errorf("%s: not registered: %v", n, err)
		}
	}
	// v2 types are deliberately not registered: Envoy no longer accepts them.
	if _, err := protoregistry.GlobalTypes.FindMessageByName("envoy.api.v2.Listener"); err == nil {
		t.Errorf("envoy.api.v2.Listener is registered; v2 types must be reported as unknown")
	}
}

// The generated ValidateAll does not look inside a google.protobuf.Any: this is why the
// checker unpacks and validates every Any itself.
func TestValidateAllDoesNotEnterAny(t *testing.T) {
	hcm, err := anypb.New(&hcmv3.HttpConnectionManager{StatPrefix: ""}) // stat_prefix: min_len 1
	if err != nil {
		t.Fatal(err)
	}
	if (&hcmv3.HttpConnectionManager{}).ValidateAll() == nil {
		t.Fatal("expected an empty HttpConnectionManager to fail validation")
	}
	l := &listenerv3.Listener{
		Name: "l",
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: "hcm", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
		}}}},
	}
	if err := l.ValidateAll(); err != nil {
		t.Fatalf("go-control-plane now validates inside Any (%v): the checker's own walk may report twice", err)
	}
	r := Result{}
	c := &checker{res: &r}
	c.checkRoot(l, "")
	all := strings.Join(r.Errors, "\n")
	for _, want := range []string{
		"filter_chains[0].filters[0].typed_config.stat_prefix: value length must be at least 1 runes",
		"filter_chains[0].filters[0].typed_config.route_specifier: value is required (one of: rds, route_config, scoped_routes)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in:\n%s", want, all)
		}
	}
}

func TestFixtures(t *testing.T) {
	valid, _ := filepath.Glob("testdata/valid/*")
	for _, f := range valid {
		if r := CheckFile(f, Options{}); len(r.Errors) != 0 {
			t.Errorf("%s: %q", f, r.Errors)
		}
	}
	invalid, _ := filepath.Glob("testdata/invalid/*")
	for _, f := range invalid {
		if r := CheckFile(f, Options{}); len(r.Errors) == 0 {
			t.Errorf("%s: passed", f)
		}
	}
	if len(valid) == 0 || len(invalid) == 0 {
		t.Fatal("no fixtures")
	}
}
