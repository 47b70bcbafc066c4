/** Helpers for writing Envoy v3 API objects as plain JSON (typed_config `Any`s, addresses). */

export type Json = { [key: string]: unknown };

const TYPE_PREFIX = 'type.googleapis.com/';

/** A `typed_config` Any: the message's full name and its fields. */
export const typed = (message: string, fields: Json = {}): Json => ({ '@type': `${TYPE_PREFIX}${message}`, ...fields });

export const socketAddress = (address: string, port: number, protocol?: 'UDP'): Json => ({
  socket_address: { address, port_value: port, ...(protocol ? { protocol } : {}) },
});

export const TYPES = {
  listener: 'envoy.config.listener.v3.Listener',
  cluster: 'envoy.config.cluster.v3.Cluster',
  hcm: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'envoy.extensions.filters.http.router.v3.Router',
  dfpFilter: 'envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig',
  dfpCluster: 'envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig',
  httpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  tlsInspector: 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  downstreamTls: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTls: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  tcpProxy: 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  udpProxy: 'envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig',
  udpRoute: 'envoy.extensions.filters.udp.udp_proxy.v3.Route',
  directResponseNetwork: 'envoy.extensions.filters.network.direct_response.v3.Config',
  stdoutLog: 'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  discoveryResponse: 'envoy.service.discovery.v3.DiscoveryResponse',
} as const;
