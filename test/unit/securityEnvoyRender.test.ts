/**
 * The rendered Envoy configuration (src/core/render/envoy/*), asserted as what it makes Envoy do:
 * which listener takes which traffic on which port, which certificate answers which server name,
 * which requests are forwarded to which cluster and which get Envoy's own 403, what is logged, and
 * where the pinned TCP/UDP listeners send their bytes. Requests are evaluated with the documented
 * matching of test/helpers/envoyRouteEvaluator.ts; expected values are written from the spec
 * (egress-firewall.md: TLS listener 10000, dedicated listeners from 10001, health listener 9902,
 * per-domain certificates, deny by default) and from Envoy's v3 API.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import type { NormalizedRule } from '../../src/core/firewall/rule';
import { Policy } from '../../src/core/policy/policy';
import { REFUSED_PATH_PATTERN } from '../../src/core/policy/requestPath';
import { DEFAULT_ENVOY_PATHS, discoveryFile, LEAF_KEY_FILE, renderEnvoy } from '../../src/core/render/envoy/envoyConfig';
import { FRONT_LISTENER_PORT, planListeners } from '../../src/core/render/envoy/listenerPlan';
import { FORBIDDEN, routesFor } from '../../src/core/render/envoy/routes';
import { socketAddress, typed } from '../../src/core/render/envoy/types';
import { evaluateEnvoy, type EnvoyRequest } from '../helpers/envoyRouteEvaluator';

type Json = { [key: string]: any };

function policyOf(yaml: string, runtimeYaml?: string): Policy {
  const loaded = loadProject(yaml);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  const runtime = runtimeYaml === undefined ? undefined : loadProject(runtimeYaml);
  if (runtime) assert.equal(runtime.failed, false, JSON.stringify(runtime.problems));
  return new Policy({ project: loaded.rules, ...(runtime ? { runtime: runtime.rules } : {}) });
}

const YAML = `
security:
  firewall:
    rules:
      - { dst: api.example.com, proto: https, path_rules: [{ path: /v1, action: allow }], path_default: deny }
      - { dst: .example.org, proto: https }
      - { dst: bad.example.org, proto: https, action: deny }
      - { dst: ws.example.net, proto: wss }
      - { dst: ws.example.net, proto: https }
      - { dst: .h.example, proto: http }
      - { dst: bad.h.example, proto: http, action: deny }
      - { dst: chat.example.net, proto: ws }
      - { dst: api.example.com, proto: https, port: "8443", path_rules: [{ path: /admin, action: deny }], path_default: allow }
      - { dst: plain.example.net, proto: http, port: "8080" }
      - { dst: 10.0.0.9, proto: https }
      - { dst: github.com, proto: ssh }
      - { dst: 10.0.0.5, proto: tcp, port: "5432" }
      - { dst: ntp.example.net, proto: udp, port: "123" }
      - { dst: denied.example.net, proto: tcp, port: "2222", action: deny }
`;
const policy = policyOf(YAML);
const envoy = renderEnvoy(policy);
const listeners = envoy.listeners as Json[];
const clusters = envoy.clusters as Json[];
const listener = (name: string): Json => {
  const found = listeners.find((l) => l.name === name);
  assert.ok(found, `listener ${name}`);
  return found;
};
const front = listener('front');
const chain = (l: Json, name: string): Json => {
  const found = (l.filter_chains as Json[]).filter((c) => c.name === name);
  assert.equal(found.length, 1, `one filter chain ${name}`);
  return found[0]!;
};
const hcmOf = (c: Json): Json => (c.filters as Json[]).find((f) => f.name === 'envoy.filters.network.http_connection_manager')!.typed_config;
/** The route a request ends on (host and path), in the chain's connection manager. */
function routeOf(c: Json, host: string, path: string): Json {
  const vhost = (hcmOf(c).route_config.virtual_hosts as Json[]).find((v) => (v.domains as string[]).includes(host))!;
  return (vhost.routes as Json[]).find((r) => r.match.prefix !== undefined && path.startsWith(r.match.prefix))!;
}
const https = (host: string, path = '/', method = 'GET', port = FRONT_LISTENER_PORT): EnvoyRequest => ({ listenerPort: port, tls: true, sni: host, host, path, method });
const http = (host: string, path = '/', method = 'GET', port = FRONT_LISTENER_PORT): EnvoyRequest => ({ listenerPort: port, tls: false, host, path, method });
const outcome = (req: EnvoyRequest, ls: Json[] = listeners) => evaluateEnvoy(ls, req);
const portOf = (key: string): number => {
  const port = envoy.plan.allocation[key];
  assert.ok(port !== undefined, key);
  return port;
};

const ACCESS_LOG = [
  {
    name: 'envoy.access_loggers.stdout',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
      log_format: {
        json_format: {
          time: '%START_TIME%',
          listener: '%DOWNSTREAM_LOCAL_ADDRESS%',
          client: '%DOWNSTREAM_REMOTE_ADDRESS%',
          sni: '%REQUESTED_SERVER_NAME%',
          authority: '%REQ(:AUTHORITY)%',
          method: '%REQ(:METHOD)%',
          path: '%REQ(:PATH)%',
          status: '%RESPONSE_CODE%',
          flags: '%RESPONSE_FLAGS%',
          details: '%RESPONSE_CODE_DETAILS%',
          route: '%ROUTE_NAME%',
          upstream: '%UPSTREAM_HOST%',
          bytes_sent: '%BYTES_SENT%',
          bytes_received: '%BYTES_RECEIVED%',
        },
      },
    },
  },
];
const HTTP_FILTERS = [
  {
    name: 'envoy.filters.http.dynamic_forward_proxy',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig',
      dns_cache_config: { name: 'clawker_dns_cache', dns_lookup_family: 'V4_ONLY' },
    },
  },
  { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
];
const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } };
const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const downstreamTls = (cert: string) => ({
  name: 'envoy.transport_sockets.tls',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
    common_tls_context: {
      tls_certificates: [{ certificate_chain: { filename: `/etc/envoy/clawker/certs/${cert}` }, private_key: { filename: '/etc/envoy/clawker/certs/leaf-key.pem' } }],
      alpn_protocols: ['h2', 'http/1.1'],
    },
  },
});

describe('listeners and ports (spec: TLS listener 10000, dedicated listeners from 10001)', () => {
  test('the front listener listens on 0.0.0.0:10000, inspects TLS and logs connections no chain takes', () => {
    assert.equal(front['@type'], LISTENER_TYPE);
    assert.deepEqual(front.address, { socket_address: { address: '0.0.0.0', port_value: 10000 } });
    assert.deepEqual(front.listener_filters, [TLS_INSPECTOR]);
    assert.deepEqual(front.access_log, ACCESS_LOG);
    assert.equal(listeners[0], front);
  });
  test('dedicated listeners are numbered from 10001 in key order; denied TCP rules get none', () => {
    assert.deepEqual(envoy.plan.allocation, {
      'http:8080': 10001,
      'tcp:10.0.0.5:5432': 10002,
      'tcp:github.com:22': 10003,
      'tls:8443': 10004,
      'udp:ntp.example.net:123': 10005,
    });
    assert.deepEqual(
      listeners.map((l) => [l.name, l.address.socket_address.port_value]),
      [
        ['front', 10000],
        ['http:8080', 10001],
        ['tcp:10.0.0.5:5432', 10002],
        ['tcp:github.com:22', 10003],
        ['tls:8443', 10004],
        ['udp:ntp.example.net:123', 10005],
      ],
    );
  });
  test('HTTPS on another port (8443) has its own TLS listener, deciding with that rule', () => {
    const l = listener('tls:8443');
    assert.deepEqual(l.listener_filters, [TLS_INSPECTOR]);
    assert.deepEqual(l.access_log, ACCESS_LOG);
    const port = portOf('tls:8443');
    const req = (path: string): EnvoyRequest => ({ ...https('api.example.com', path, 'GET', port), host: 'api.example.com:8443' });
    assert.deepEqual(outcome(req('/public')), { kind: 'forward', cluster: 'upstream_https', route: 'path-default' });
    assert.deepEqual(outcome(req('/admin')), { kind: 'status', status: 403, route: 'path-0' });
    // The front listener's rule for api.example.com (path_default deny) is not the one on 8443.
    assert.deepEqual(outcome(https('api.example.com', '/public')), { kind: 'status', status: 403, route: 'path-default' });
    // The Host of a request to a port that is not the scheme's default names the port.
    assert.deepEqual(hcmOf(chain(l, 'tls:api.example.com:8443')).route_config.virtual_hosts[0].domains, ['api.example.com:8443']);
    assert.deepEqual(outcome({ ...https('api.example.com', '/x', 'GET', port), host: 'api.example.com' }), { kind: 'status', status: 403, route: 'deny' });
    // No TLS on the plain HTTP listener, no plain HTTP on the TLS one.
    assert.deepEqual(outcome(http('api.example.com:8443', '/x', 'GET', port)), { kind: 'reset' });
  });
  test('plain HTTP on another port (8080) has its own listener taking raw_buffer', () => {
    const port = portOf('http:8080');
    const l = listener('http:8080');
    assert.deepEqual(l.listener_filters, [TLS_INSPECTOR]);
    assert.deepEqual(
      (l.filter_chains as Json[]).map((c) => [c.name, c.filter_chain_match]),
      [['http:8080', { transport_protocol: 'raw_buffer' }]],
    );
    assert.deepEqual(outcome(http('plain.example.net:8080', '/x', 'GET', port)), { kind: 'forward', cluster: 'upstream_http', route: 'path-default' });
    assert.deepEqual(outcome(http('plain.example.net', '/x', 'GET', port)), { kind: 'status', status: 403, route: 'deny' });
    assert.deepEqual(outcome(https('plain.example.net', '/x', 'GET', port)), { kind: 'reset' });
  });
  test('an SSH rule pins its port to one host: a TCP proxy to the cluster of github.com:22, logged', () => {
    assert.deepEqual(listener('tcp:github.com:22'), {
      '@type': LISTENER_TYPE,
      name: 'tcp:github.com:22',
      address: { socket_address: { address: '0.0.0.0', port_value: 10003 } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.tcp_proxy',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
                stat_prefix: 'tcp:github.com:22',
                cluster: 'tcp:github.com:22',
                access_log: ACCESS_LOG,
              },
            },
          ],
        },
      ],
    });
  });
  test('a UDP rule gets a udp_proxy listener on a UDP socket, routed to its pinned cluster', () => {
    assert.deepEqual(listener('udp:ntp.example.net:123'), {
      '@type': LISTENER_TYPE,
      name: 'udp:ntp.example.net:123',
      address: { socket_address: { address: '0.0.0.0', port_value: 10005, protocol: 'UDP' } },
      listener_filters: [
        {
          name: 'envoy.filters.udp_listener.udp_proxy',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.UdpProxyConfig',
            stat_prefix: 'udp:ntp.example.net:123',
            matcher: {
              on_no_match: {
                action: { name: 'route', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.udp.udp_proxy.v3.Route', cluster: 'udp:ntp.example.net:123' } },
              },
            },
          },
        },
      ],
    });
  });
  test('a TCP rule to an address pins to that address', () => {
    const l = listener('tcp:10.0.0.5:5432');
    assert.deepEqual(l.address, { socket_address: { address: '0.0.0.0', port_value: 10002 } });
    assert.equal(l.filter_chains[0].filters[0].typed_config.cluster, 'tcp:10.0.0.5:5432');
    assert.equal(l.listener_filters, undefined);
  });
});

describe('clusters: where allowed traffic goes', () => {
  test('exactly the two forward-proxy clusters and one pinned cluster per TCP/UDP listener', () => {
    assert.deepEqual(
      clusters.map((c) => c.name),
      ['upstream_https', 'upstream_http', 'tcp:10.0.0.5:5432', 'tcp:github.com:22', 'udp:ntp.example.net:123'],
    );
  });
  test('HTTPS is re-encrypted upstream with the requested name as SNI, verified against the system CAs', () => {
    assert.deepEqual(clusters[0], {
      '@type': CLUSTER_TYPE,
      name: 'upstream_https',
      connect_timeout: '10s',
      lb_policy: 'CLUSTER_PROVIDED',
      cluster_type: {
        name: 'envoy.clusters.dynamic_forward_proxy',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig',
          dns_cache_config: { name: 'clawker_dns_cache', dns_lookup_family: 'V4_ONLY' },
        },
      },
      typed_extension_protocol_options: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
          auto_config: {},
        },
      },
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
          common_tls_context: { validation_context: { trusted_ca: { filename: '/etc/ssl/certs/ca-certificates.crt' } } },
        },
      },
    });
  });
  test('plain HTTP goes upstream in plain text through the same DNS cache', () => {
    assert.deepEqual(clusters[1], {
      '@type': CLUSTER_TYPE,
      name: 'upstream_http',
      connect_timeout: '10s',
      lb_policy: 'CLUSTER_PROVIDED',
      cluster_type: {
        name: 'envoy.clusters.dynamic_forward_proxy',
        typed_config: {
          '@type': 'type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig',
          dns_cache_config: { name: 'clawker_dns_cache', dns_lookup_family: 'V4_ONLY' },
        },
      },
    });
  });
  test('a pinned domain resolves by DNS (IPv4) to its own port; an address is static', () => {
    const pinned = (name: string, type: string, address: string, port: number, protocol?: string) => ({
      '@type': CLUSTER_TYPE,
      name,
      type,
      dns_lookup_family: 'V4_ONLY',
      connect_timeout: '10s',
      load_assignment: {
        cluster_name: name,
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address, port_value: port, ...(protocol ? { protocol } : {}) } } } }] }],
      },
    });
    assert.deepEqual(clusters[2], pinned('tcp:10.0.0.5:5432', 'STATIC', '10.0.0.5', 5432));
    assert.deepEqual(clusters[3], pinned('tcp:github.com:22', 'STRICT_DNS', 'github.com', 22));
    assert.deepEqual(clusters[4], pinned('udp:ntp.example.net:123', 'STRICT_DNS', 'ntp.example.net', 123, 'UDP'));
  });
});

describe('TLS: one filter chain and certificate per destination (spec: per-domain certificates)', () => {
  test('an allowed HTTPS destination answers its own name with its own certificate and the shared leaf key', () => {
    const c = chain(front, 'tls:api.example.com:443');
    assert.deepEqual(c.filter_chain_match, { server_names: ['api.example.com'], transport_protocol: 'tls' });
    assert.deepEqual(c.transport_socket, downstreamTls('api.example.com.pem'));
  });
  test('a wildcard destination answers the bare name and every subdomain, with the wildcard certificate', () => {
    const c = chain(front, 'tls:.example.org:443');
    assert.deepEqual(c.filter_chain_match, { server_names: ['example.org', '*.example.org'], transport_protocol: 'tls' });
    assert.deepEqual(c.transport_socket, downstreamTls('wildcard+example.org.pem'));
    assert.deepEqual(outcome(https('a.example.org', '/x')), { kind: 'forward', cluster: 'upstream_https', route: 'path-default' });
    assert.deepEqual(outcome(https('example.org', '/x')), { kind: 'forward', cluster: 'upstream_https', route: 'path-default' });
  });
  test('an HTTPS rule to an address answers that address, with the port-less and the :443 Host', () => {
    const c = chain(front, 'tls:10.0.0.9:443');
    assert.deepEqual(c.filter_chain_match, { server_names: ['10.0.0.9'], transport_protocol: 'tls' });
    assert.deepEqual(c.transport_socket, downstreamTls('10.0.0.9.pem'));
    assert.deepEqual(hcmOf(c).route_config.virtual_hosts[0].domains, ['10.0.0.9', '10.0.0.9:443']);
    assert.deepEqual(outcome(https('10.0.0.9', '/x')).kind, 'forward');
  });
  test('a denied name inside an allowed wildcard: its chain has no certificate and closes the connection', () => {
    const c = chain(front, 'tls:bad.example.org:443');
    assert.deepEqual(c, {
      name: 'tls:bad.example.org:443',
      filter_chain_match: { server_names: ['bad.example.org'], transport_protocol: 'tls' },
      filters: [{ name: 'envoy.filters.network.direct_response', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.direct_response.v3.Config' } }],
    });
    assert.deepEqual(outcome(https('bad.example.org', '/x')), { kind: 'reset' });
  });
  test('an unknown server name has no filter chain (connection reset); a Host no rule owns inside a chain gets 403 "deny"', () => {
    assert.deepEqual(outcome(https('evil.com', '/')), { kind: 'reset' });
    // Domain fronting: the SNI of an allowed name, the Host of another.
    assert.deepEqual(outcome({ ...https('api.example.com', '/v1'), host: 'evil.com' }), { kind: 'status', status: 403, route: 'deny' });
  });
  test('domain fronting into a more specific rule: the wildcard chain refuses a Host another chain owns', () => {
    // SNI of an allowed subdomain, Host of a denied one: the policy denies bad.example.org, so must Envoy.
    assert.equal(policy.decide({ host: 'bad.example.org', port: 443, transport: 'https', path: '/v1', method: 'GET' }).verdict, 'deny');
    for (const sni of ['a.example.org', 'example.org']) {
      for (const host of ['bad.example.org', 'bad.example.org:443', 'BAD.example.org']) {
        assert.deepEqual(outcome({ ...https(sni, '/v1'), host }), { kind: 'status', status: 403, route: 'deny' }, `${sni} ${host}`);
      }
    }
    const vhosts = hcmOf(chain(front, 'tls:.example.org:443')).route_config.virtual_hosts as Json[];
    assert.deepEqual(vhosts.find((v) => v.name === 'elsewhere:https:bad.example.org:443'), {
      name: 'elsewhere:https:bad.example.org:443',
      domains: ['bad.example.org', 'bad.example.org:443'],
      routes: [{ name: 'deny', match: { prefix: '/' }, direct_response: FORBIDDEN }],
    });
    // Only names a wildcard chain's `*.x` could take are listed: the configuration grows with the rules, not their square.
    assert.deepEqual(vhosts.map((v) => v.name), ['https:.example.org:443', 'elsewhere:https:bad.example.org:443', 'deny-all']);
    assert.deepEqual(
      (hcmOf(chain(front, 'tls:api.example.com:443')).route_config.virtual_hosts as Json[]).map((v) => v.name),
      ['https:api.example.com:443', 'deny-all'],
    );
    // And the exact rule's own chain refuses the wildcard's names.
    assert.deepEqual(outcome({ ...https('api.example.com', '/v1'), host: 'x.example.org' }), { kind: 'status', status: 403, route: 'deny' });
  });
  test('domain fronting into a nested wildcard: its names are refused in the outer wildcard\'s chain, others are not listed', () => {
    const p = policyOf(`
security:
  firewall:
    rules:
      - { dst: .n.example, proto: https }
      - { dst: .a.n.example, proto: https, action: deny }
      - { dst: other.example, proto: https }
      - { dst: xn.example, proto: https }
`);
    const ls = renderEnvoy(p).listeners as Json[];
    for (const host of ['x.a.n.example', 'a.n.example']) {
      assert.equal(p.decide({ host, port: 443, transport: 'https', path: '/', method: 'GET' }).verdict, 'deny');
      assert.deepEqual(outcome({ ...https('c.n.example'), host }, ls), { kind: 'status', status: 403, route: 'deny' }, host);
    }
    const c = (ls[0]!.filter_chains as Json[]).find((x) => x.name === 'tls:.n.example:443')!;
    assert.deepEqual((hcmOf(c).route_config.virtual_hosts as Json[]).map((v) => [v.name, v.domains]), [
      ['https:.n.example:443', ['n.example', 'n.example:443', '*.n.example', '*.n.example:443']],
      ['elsewhere:https:.a.n.example:443', ['a.n.example', 'a.n.example:443', '*.a.n.example', '*.a.n.example:443']],
      ['deny-all', ['*']],
    ]);
    assert.deepEqual(outcome({ ...https('c.n.example'), host: 'xn.example' }, ls), { kind: 'status', status: 403, route: 'deny' });
  });
  test('domain fronting past path rules: a Host with its own rule is decided in its own chain only', () => {
    const p = policyOf(`
security:
  firewall:
    rules:
      - { dst: .front.example, proto: https }
      - { dst: x.front.example, proto: https, path_rules: [{ path: /admin, action: deny }], path_default: allow }
`);
    const ls = renderEnvoy(p).listeners as Json[];
    assert.deepEqual(outcome(https('x.front.example', '/admin'), ls), { kind: 'status', status: 403, route: 'path-0' });
    assert.deepEqual(outcome({ ...https('y.front.example', '/admin'), host: 'x.front.example' }, ls), { kind: 'status', status: 403, route: 'deny' });
    assert.deepEqual(outcome(https('y.front.example', '/admin'), ls), { kind: 'forward', cluster: 'upstream_https', route: 'path-default' });
  });
  test('https and wss to one destination share one chain, with WebSocket upgrades; a plain https rule has none', () => {
    const c = chain(front, 'tls:ws.example.net:443');
    assert.deepEqual(c.filter_chain_match, { server_names: ['ws.example.net'], transport_protocol: 'tls' });
    assert.deepEqual(routeOf(c, 'ws.example.net', '/socket').route, { cluster: 'upstream_https', upgrade_configs: [{ upgrade_type: 'websocket' }] });
    assert.deepEqual(routeOf(chain(front, 'tls:.example.org:443'), 'example.org', '/').route, { cluster: 'upstream_https' });
    assert.deepEqual(routeOf(chain(front, 'tls:api.example.com:443'), 'api.example.com', '/v1').route, { cluster: 'upstream_https' });
  });
  test('every chain is named once and every connection manager is configured the same way', () => {
    const names = (front.filter_chains as Json[]).map((c) => c.name);
    assert.equal(new Set(names).size, names.length, names.join(' '));
    for (const l of listeners.filter((x) => x.filter_chains && x.listener_filters)) {
      for (const c of l.filter_chains as Json[]) {
        const f = (c.filters as Json[])[0]!;
        if (f.name !== 'envoy.filters.network.http_connection_manager') continue;
        const cfg = f.typed_config;
        assert.equal(cfg['@type'], 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
        assert.equal(cfg.merge_slashes, true);
        assert.equal(cfg.path_with_escaped_slashes_action, 'REJECT_REQUEST');
        assert.equal(cfg.server_header_transformation, 'PASS_THROUGH');
        assert.deepEqual(cfg.access_log, ACCESS_LOG);
        assert.deepEqual(cfg.http_filters, HTTP_FILTERS);
        assert.equal(cfg.route_config.name, cfg.stat_prefix);
        const vhosts = cfg.route_config.virtual_hosts as Json[];
        // Envoy rejects a route configuration that lists a domain or a virtual host name twice.
        const domains = vhosts.flatMap((v) => v.domains as string[]);
        assert.equal(new Set(domains).size, domains.length, `${c.name}: ${domains.join(' ')}`);
        assert.equal(new Set(vhosts.map((v) => v.name)).size, vhosts.length, c.name);
        assert.deepEqual(vhosts[vhosts.length - 1], { name: 'deny-all', domains: ['*'], routes: [{ name: 'deny', match: { prefix: '/' }, direct_response: { status: 403, body: { inline_string: 'Forbidden\n' } } }] });
      }
    }
  });
  test('the chain names of the front listener, TLS then plain HTTP', () => {
    const names = (front.filter_chains as Json[]).map((c) => c.name);
    for (const n of ['tls:api.example.com:443', 'tls:.example.org:443', 'tls:bad.example.org:443', 'tls:ws.example.net:443', 'tls:10.0.0.9:443']) assert.ok(names.includes(n), n);
    assert.equal(names[names.length - 1], 'http:80');
    assert.equal(hcmOf(chain(front, 'tls:api.example.com:443')).stat_prefix, 'tls_api.example.com_443');
    assert.equal(hcmOf(chain(front, 'http:80')).stat_prefix, 'http_80');
  });
  test('the certificate directory is configurable', () => {
    const other = renderEnvoy(policy, { paths: { configDir: '/cfg', certDir: '/certs' } });
    const c = (other.listeners[0]!.filter_chains as Json[]).find((x) => x.name === 'tls:api.example.com:443')!;
    assert.deepEqual(c.transport_socket.typed_config.common_tls_context.tls_certificates, [
      { certificate_chain: { filename: '/certs/api.example.com.pem' }, private_key: { filename: '/certs/leaf-key.pem' } },
    ]);
  });
});

describe('a server name claimed by several rules goes to the rule the policy picks', () => {
  // https allow and wss deny for the same wildcard: the policy lets deny win the tie, so the names
  // belong to the deny rule's chain (connection closed), not to the first rule listed.
  const p = policyOf(`
security:
  firewall:
    rules:
      - { dst: .dup.example, proto: https }
      - { dst: .dup.example, proto: wss, action: deny }
      - { dst: .pick.example, proto: https }
      - { dst: pick.example, proto: https, action: deny }
`);
  const ls = renderEnvoy(p).listeners as Json[];
  test('the wildcard and the bare name go to the deny rule: reset, as Policy.decide says', () => {
    assert.equal(p.decide({ host: 'x.dup.example', port: 443, transport: 'https', path: '/', method: 'GET' }).verdict, 'deny');
    assert.deepEqual(outcome(https('x.dup.example'), ls), { kind: 'reset' });
    assert.deepEqual(outcome(https('dup.example'), ls), { kind: 'reset' });
    const chains = (ls[0]!.filter_chains as Json[]).filter((c) => c.name === 'tls:.dup.example:443');
    assert.deepEqual(chains.map((c) => [c.filter_chain_match.server_names, c.transport_socket]), [[['dup.example', '*.dup.example'], undefined]]);
  });
  test('an exact rule under the wildcard does not decide who owns the wildcard names', () => {
    const q = policyOf(`
security:
  firewall:
    rules:
      - { dst: .dup.example, proto: https }
      - { dst: .dup.example, proto: wss, action: deny }
      - { dst: x.dup.example, proto: https }
`);
    assert.equal(q.decide({ host: 'y.dup.example', port: 443, transport: 'https', path: '/', method: 'GET' }).verdict, 'deny');
    const qs = renderEnvoy(q).listeners as Json[];
    assert.deepEqual(outcome(https('y.dup.example'), qs), { kind: 'reset' });
    assert.deepEqual(outcome(https('x.dup.example'), qs), { kind: 'forward', cluster: 'upstream_https', route: 'path-default' });
  });
  test('a rule the policy picks from another listener (an https port range) leaves the name to this listener\'s claimant', () => {
    const q = policyOf(`
security:
  firewall:
    rules:
      - { dst: .rng.example, proto: https, port: "440-450" }
      - { dst: .rng.example, proto: https }
`);
    assert.equal(q.decide({ host: 'a.rng.example', port: 443, transport: 'https', path: '/', method: 'GET' }).verdict, 'allow');
    assert.deepEqual(outcome(https('a.rng.example'), renderEnvoy(q).listeners as Json[]), { kind: 'forward', cluster: 'upstream_https', route: 'path-default' });
  });
  test('an exact deny takes its name from a wildcard allow', () => {
    assert.deepEqual(outcome(https('pick.example'), ls), { kind: 'reset' });
    assert.deepEqual(outcome({ ...https('a.pick.example'), host: 'pick.example' }, ls), { kind: 'status', status: 403, route: 'deny' });
    assert.deepEqual(outcome(https('a.pick.example'), ls).kind, 'forward');
    const fc = ls[0]!.filter_chains as Json[];
    assert.deepEqual(fc.find((c) => c.name === 'tls:.pick.example:443')!.filter_chain_match.server_names, ['*.pick.example']);
    assert.deepEqual(fc.find((c) => c.name === 'tls:pick.example:443')!.filter_chain_match.server_names, ['pick.example']);
  });
});

describe('plain HTTP on 80: by Host header', () => {
  test('a wildcard allow forwards; a denied name inside it gets 403 from its own virtual host', () => {
    assert.deepEqual(outcome(http('x.h.example', '/p')), { kind: 'forward', cluster: 'upstream_http', route: 'path-default' });
    assert.deepEqual(outcome(http('h.example:80', '/p')), { kind: 'forward', cluster: 'upstream_http', route: 'path-default' });
    assert.deepEqual(outcome(http('bad.h.example', '/p')), { kind: 'status', status: 403, route: 'deny' });
    const vhosts = hcmOf(chain(front, 'http:80')).route_config.virtual_hosts as Json[];
    assert.deepEqual(vhosts.find((v) => v.name === 'http:bad.h.example:80'), {
      name: 'http:bad.h.example:80',
      domains: ['bad.h.example', 'bad.h.example:80'],
      routes: [{ name: 'deny', match: { prefix: '/' }, direct_response: FORBIDDEN }],
    });
    assert.deepEqual(vhosts.find((v) => v.name === 'http:.h.example:80')!.domains, ['h.example', 'h.example:80', '*.h.example', '*.h.example:80']);
  });
  test('a ws rule upgrades WebSockets; a plain http rule does not', () => {
    const c = chain(front, 'http:80');
    assert.deepEqual(chain(front, 'http:80').filter_chain_match, { transport_protocol: 'raw_buffer' });
    assert.deepEqual(routeOf(c, 'chat.example.net', '/').route, { cluster: 'upstream_http', upgrade_configs: [{ upgrade_type: 'websocket' }] });
    assert.deepEqual(routeOf(c, 'h.example', '/').route, { cluster: 'upstream_http' });
  });
  test('a name claimed by several rules is listed once (Envoy rejects a domain listed twice), for the rule the policy picks', () => {
    const p = policyOf(`
security:
  firewall:
    rules:
      - { dst: .h2.example, proto: http }
      - { dst: h2.example, proto: http, action: deny }
      - { dst: x.example, proto: http, path_rules: [{ path: /a, action: allow }], path_default: deny }
      - { dst: x.example, proto: ws }
      - { dst: .w.example, proto: http }
      - { dst: .w.example, proto: ws, action: deny }
`);
    const ls = renderEnvoy(p).listeners as Json[];
    const c = (ls[0]!.filter_chains as Json[]).find((x) => x.name === 'http:80')!;
    const vhosts = hcmOf(c).route_config.virtual_hosts as Json[];
    const domains = vhosts.flatMap((v) => v.domains as string[]);
    assert.equal(new Set(domains).size, domains.length, domains.join(' '));
    // Envoy picks a virtual host by its domains, not by its place in the list.
    assert.deepEqual(
      vhosts.map((v) => [v.name, v.domains]).sort(),
      [
        ['http:.h2.example:80', ['*.h2.example', '*.h2.example:80']],
        ['http:h2.example:80', ['h2.example', 'h2.example:80']],
        ['http:x.example:80', ['x.example', 'x.example:80']],
        ['ws:.w.example:80', ['w.example', 'w.example:80', '*.w.example', '*.w.example:80']],
        ['deny-all', ['*']],
      ].sort(),
    );
    const decide = (host: string, path: string) => p.decide({ host, port: 80, transport: 'http', path, method: 'GET' }).verdict;
    assert.deepEqual([decide('a.h2.example', '/'), decide('h2.example', '/'), decide('x.example', '/a'), decide('x.example', '/b'), decide('a.w.example', '/')], ['allow', 'deny', 'allow', 'deny', 'deny']);
    assert.deepEqual(outcome(http('a.h2.example', '/'), ls), { kind: 'forward', cluster: 'upstream_http', route: 'path-default' });
    assert.deepEqual(outcome(http('h2.example', '/'), ls), { kind: 'status', status: 403, route: 'deny' });
    assert.deepEqual(outcome(http('x.example', '/a'), ls), { kind: 'forward', cluster: 'upstream_http', route: 'path-0' });
    assert.deepEqual(outcome(http('x.example', '/b'), ls), { kind: 'status', status: 403, route: 'path-default' });
    assert.deepEqual(outcome(http('a.w.example', '/'), ls), { kind: 'status', status: 403, route: 'deny' });
    // The http rule for x.example serves its WebSocket upgrades too (the ws rule allows them).
    assert.deepEqual(routeOf(c, 'x.example', '/a').route, { cluster: 'upstream_http', upgrade_configs: [{ upgrade_type: 'websocket' }] });
  });
  test('an unknown Host gets 403 and TLS to an unknown name is reset', () => {
    assert.deepEqual(outcome(http('evil.com', '/')), { kind: 'status', status: 403, route: 'deny' });
  });
});

describe('routes: the refused-path pattern, path and method rules, the default', () => {
  const p = policyOf(`
security:
  firewall:
    rules:
      - dst: r.example
        proto: https
        path_rules:
          - { path: /abc, action: deny }
          - { path: "~/.*", action: allow }
          - { path: /m, action: allow, methods: [GET] }
          - { path: /n, action: allow, methods: [GET, HEAD] }
        path_default: deny
`);
  const ls = renderEnvoy(p).listeners as Json[];
  const rule = p.rules.find((r) => r.dst.kind === 'domain' && r.dst.name === 'r.example')!;
  test('FORBIDDEN is a 403 with a short body', () => assert.deepEqual(FORBIDDEN, { status: 403, body: { inline_string: 'Forbidden\n' } }));
  test('the first route refuses ambiguous paths, by name', () => {
    const routes = routesFor(rule, 'c', false);
    assert.deepEqual(routes[0], { name: 'refused-path', match: { safe_regex: { regex: REFUSED_PATH_PATTERN } }, direct_response: FORBIDDEN });
    assert.deepEqual(outcome(https('r.example', '/x/../abc'), ls), { kind: 'status', status: 403, route: 'refused-path' });
    assert.deepEqual(outcome(https('r.example', '/x/%2e%2e/abc'), ls), { kind: 'status', status: 403, route: 'refused-path' });
  });
  test('equal lengths: the rule listed first wins (/abc deny before ~/.* allow)', () => {
    assert.deepEqual(outcome(https('r.example', '/abc'), ls), { kind: 'status', status: 403, route: 'path-0' });
    assert.deepEqual(outcome(https('r.example', '/abd'), ls), { kind: 'forward', cluster: 'upstream_https', route: 'path-1' });
    assert.deepEqual(routesFor(rule, 'c', false).map((r) => r.name), ['refused-path', 'path-0', 'path-1', 'path-2', 'path-3', 'path-default']);
    assert.deepEqual(routesFor(rule, 'c', false)[1].match, { prefix: '/abc' });
  });
  test('methods: a whole-token alternation of the escaped methods', () => {
    const routes = routesFor(rule, 'c', false);
    assert.deepEqual(routes[3].match, { prefix: '/m', headers: [{ name: ':method', string_match: { safe_regex: { regex: 'GET' } } }] });
    const m = renderEnvoy(policyOf(`
security:
  firewall:
    rules:
      - { dst: m.example, proto: https, path_rules: [{ path: /m, action: allow, methods: [GET] }, { path: /n, action: allow, methods: [GET, HEAD] }], path_default: deny }
`)).listeners as Json[];
    assert.deepEqual(outcome(https('m.example', '/m', 'GET'), m), { kind: 'forward', cluster: 'upstream_https', route: 'path-0' });
    assert.deepEqual(outcome(https('m.example', '/m', 'GETX'), m), { kind: 'status', status: 403, route: 'path-default' });
    assert.deepEqual(outcome(https('m.example', '/m', 'HEAD'), m), { kind: 'status', status: 403, route: 'path-default' });
    assert.deepEqual(outcome(https('m.example', '/n', 'HEAD'), m), { kind: 'forward', cluster: 'upstream_https', route: 'path-1' });
    assert.deepEqual(outcome(https('m.example', '/n', 'POST'), m), { kind: 'status', status: 403, route: 'path-default' });
    assert.deepEqual(routes[4].match, { prefix: '/n', headers: [{ name: ':method', string_match: { safe_regex: { regex: 'GET|HEAD' } } }] });
  });
  test('the default route takes every path, by name', () => {
    const routes = routesFor(rule, 'c', true);
    assert.deepEqual(routes[routes.length - 1], { name: 'path-default', match: { prefix: '/' }, direct_response: FORBIDDEN });
    const open = p.rules.find((r) => r.dst.kind === 'domain' && r.dst.name === 'api.anthropic.com')!;
    assert.deepEqual(routesFor(open, 'c', false).at(-1), { name: 'path-default', match: { prefix: '/' }, route: { cluster: 'c' } });
    assert.deepEqual(routesFor(open, 'c', true).at(-1), { name: 'path-default', match: { prefix: '/' }, route: { cluster: 'c', upgrade_configs: [{ upgrade_type: 'websocket' }] } });
  });
});

describe('bootstrap, health and discovery files', () => {
  test('the bootstrap: node identity, the health listener on 9902, listeners and clusters from watched files', () => {
    assert.deepEqual(envoy.bootstrap, {
      node: { id: 'clawker-envoy', cluster: 'clawker' },
      static_resources: {
        listeners: [
          {
            name: 'health',
            address: { socket_address: { address: '0.0.0.0', port_value: 9902 } },
            filter_chains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typed_config: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                      stat_prefix: 'health',
                      route_config: {
                        name: 'health',
                        virtual_hosts: [{ name: 'health', domains: ['*'], routes: [{ match: { path: '/' }, direct_response: { status: 200, body: { inline_string: 'ok\n' } } }] }],
                      },
                      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
      dynamic_resources: {
        lds_config: { path_config_source: { path: '/etc/envoy/clawker/lds.json', watched_directory: { path: '/etc/envoy/clawker' } }, resource_api_version: 'V3' },
        cds_config: { path_config_source: { path: '/etc/envoy/clawker/cds.json', watched_directory: { path: '/etc/envoy/clawker' } }, resource_api_version: 'V3' },
      },
    });
  });
  test('the health listener answers GET / with 200 (the spec\'s probe)', () => {
    assert.deepEqual(evaluateEnvoy((envoy.bootstrap as Json).static_resources.listeners, { listenerPort: 9902, tls: false, host: '192.168.215.200:9902', path: '/', method: 'GET' }), { kind: 'status', status: 200, route: undefined });
  });
  test('default paths and file names', () => {
    assert.deepEqual(DEFAULT_ENVOY_PATHS, { configDir: '/etc/envoy/clawker', certDir: '/etc/envoy/clawker/certs' });
    assert.equal(LEAF_KEY_FILE, 'leaf-key.pem');
    assert.deepEqual(discoveryFile([{ a: 1 }]), { resources: [{ a: 1 }] });
  });
  test('typed configs and socket addresses', () => {
    assert.deepEqual(typed('x.Y', { f: 1 }), { '@type': 'type.googleapis.com/x.Y', f: 1 });
    assert.deepEqual(socketAddress('1.2.3.4', 5), { socket_address: { address: '1.2.3.4', port_value: 5 } });
    assert.deepEqual(socketAddress('1.2.3.4', 5, 'UDP'), { socket_address: { address: '1.2.3.4', port_value: 5, protocol: 'UDP' } });
  });
});

describe('listener plan: which rules get which listener port', () => {
  const base = { pathRules: [], pathDefault: 'allow', origin: { layer: 'project' } };
  const rule = (name: string, proto: string, lo: number, hi = lo, action = 'allow'): NormalizedRule =>
    ({ ...base, dst: /^\d/.test(name) ? { kind: 'ipv4', address: name } : { kind: 'domain', name, wildcard: false }, proto, port: { lo, hi }, action }) as unknown as NormalizedRule;

  test('TLS on 443 and HTTP on 80 are the front listener\'s; other ports are dedicated', () => {
    const rules = [rule('a.example', 'https', 443), rule('b.example', 'http', 80), rule('c.example', 'https', 80), rule('d.example', 'http', 443), rule('e.example', 'ws', 80), rule('f.example', 'wss', 443)];
    const plan = planListeners(rules);
    assert.deepEqual(plan.front.tls, [rules[0], rules[5]]);
    assert.deepEqual(plan.front.http, [rules[1], rules[4]]);
    assert.deepEqual(plan.dedicated.map((g) => [g.key, g.kind, g.upstreamPort, g.port, g.rules]), [
      ['http:443', 'http', 443, 10001, [rules[3]]],
      ['tls:80', 'tls', 80, 10002, [rules[2]]],
    ]);
  });
  test('a denied TCP/UDP rule gets no listener (no route: refused)', () => {
    const plan = planListeners([rule('x.example', 'tcp', 22, 22, 'deny'), rule('y.example', 'udp', 53, 53, 'deny')]);
    assert.deepEqual(plan.dedicated, []);
    assert.deepEqual(plan.allocation, {});
  });
  test('a port range gets one listener per port, at most 1024 per rule', () => {
    const ok = planListeners([rule('10.0.0.7', 'tcp', 1000, 2023)]);
    assert.equal(ok.dedicated.length, 1024);
    assert.deepEqual(ok.dedicated[0]!.key, 'tcp:10.0.0.7:1000');
    assert.deepEqual(ok.dedicated[1023]!.key, 'tcp:10.0.0.7:2023');
    assert.throws(() => planListeners([rule('10.0.0.7', 'tcp', 1000, 2024)]), {
      message: '10.0.0.7 tcp:1000-2024 spans 1025 ports; at most 1024 pinned listeners per rule',
    });
    assert.equal(planListeners([rule('10.0.0.7', 'udp', 7, 9)]).dedicated.length, 3);
  });
  test('9999 dedicated listeners fit (10001-19999); one more is refused', () => {
    const rules = [...Array.from({ length: 9 }, (_, i) => rule(`h${i}.example`, 'tcp', 1, 1024)), rule('z.example', 'tcp', 1, 783)];
    const plan = planListeners(rules);
    assert.equal(plan.dedicated.length, 9999);
    assert.equal(plan.dedicated[9998]!.port, 19999);
    assert.throws(() => planListeners([...rules, rule('zz.example', 'udp', 1)]), { message: 'more than 9999 dedicated listeners are needed' });
  });
  test('previous ports are kept when valid (10001-19999, not taken twice); others are renumbered', () => {
    const rules = [rule('a.example', 'tcp', 1), rule('b.example', 'tcp', 2), rule('c.example', 'tcp', 3), rule('d.example', 'tcp', 4), rule('e.example', 'tcp', 5), rule('f.example', 'tcp', 6)];
    const plan = planListeners(rules, {
      'tcp:a.example:1': 19999,
      'tcp:b.example:2': 10000,
      'tcp:c.example:3': 10001,
      'tcp:d.example:4': 20000,
      'tcp:e.example:5': 19999,
      'tcp:f.example:6': 5,
    });
    assert.deepEqual(plan.allocation, {
      'tcp:a.example:1': 19999,
      'tcp:b.example:2': 10002,
      'tcp:c.example:3': 10001,
      'tcp:d.example:4': 10003,
      'tcp:e.example:5': 10004,
      'tcp:f.example:6': 10005,
    });
    assert.deepEqual(
      plan.dedicated.map((g) => g.port),
      [10001, 10002, 10003, 10004, 10005, 19999],
    );
  });
  test('new ports go in key order, whatever the order of the rules', () => {
    const plan = planListeners([rule('z.example', 'tcp', 22), rule('m.example', 'tcp', 22), rule('a.example', 'tcp', 22)]);
    assert.deepEqual(plan.allocation, { 'tcp:z.example:22': 10003, 'tcp:m.example:22': 10002, 'tcp:a.example:22': 10001 });
    assert.deepEqual(plan.dedicated.map((g) => g.key), ['tcp:a.example:22', 'tcp:m.example:22', 'tcp:z.example:22']);
  });
});
