/**
 * Renders the policy as Envoy configuration: a bootstrap that reads listeners and clusters from
 * files Envoy watches (`path_config_source` + `watched_directory`), so a rule change is a rename of
 * new files over old ones — applied without a restart, existing connections drained gracefully.
 */
import { formatDestination } from '../../firewall/destination';
import { certificateFileName } from '../../pki/domainCertificate';
import type { NormalizedRule } from '../../firewall/rule';
import type { Policy } from '../../policy/policy';
import { type ListenerGroup, type ListenerPlan, FRONT_LISTENER_PORT, planListeners } from './listenerPlan';
import { FORBIDDEN, routesFor } from './routes';
import { type Json, socketAddress, typed, TYPES } from './types';

export const HEALTH_PORT = 9902;
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export interface EnvoyPaths {
  /** Directory Envoy watches for `lds.json` and `cds.json`. */
  readonly configDir: string;
  /** Directory with one certificate per TLS destination and the shared leaf key. */
  readonly certDir: string;
}

export const DEFAULT_ENVOY_PATHS: EnvoyPaths = { configDir: '/etc/envoy/clawker', certDir: '/etc/envoy/clawker/certs' };

/** The shared private key of every domain certificate, in the certificate directory. */
export const LEAF_KEY_FILE = 'leaf-key.pem';

export interface EnvoyConfig {
  readonly bootstrap: Json;
  readonly listeners: Json[];
  readonly clusters: Json[];
  readonly plan: ListenerPlan;
}

const UPSTREAM_HTTPS = 'upstream_https';
const UPSTREAM_HTTP = 'upstream_http';
const DNS_CACHE = { name: 'clawker_dns_cache', dns_lookup_family: 'V4_ONLY' };

const ACCESS_LOG: Json[] = [
  {
    name: 'envoy.access_loggers.stdout',
    typed_config: typed(TYPES.stdoutLog, {
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
          // `direct_response` (our 403) or `via_upstream` (the server's): src/core/events/envoyAccessLog.ts
          details: '%RESPONSE_CODE_DETAILS%',
          route: '%ROUTE_NAME%',
          upstream: '%UPSTREAM_HOST%',
          bytes_sent: '%BYTES_SENT%',
          bytes_received: '%BYTES_RECEIVED%',
        },
      },
    }),
  },
];

/** Names a rule covers (SNI, and Host without the port); Envoy takes `*.x` as a wildcard. */
const serverNames = (rule: NormalizedRule): string[] =>
  rule.dst.kind === 'ipv4' ? [rule.dst.address] : rule.dst.wildcard ? [rule.dst.name, `*.${rule.dst.name}`] : [rule.dst.name];

/** Names a request's Host may carry: with the port, and bare when it is the scheme's default. */
function virtualHostDomains(names: readonly string[], port: number, defaultPort: number): string[] {
  return names.flatMap((n) => (port === defaultPort ? [n, `${n}:${port}`] : [`${n}:${port}`]));
}

function httpConnectionManager(statPrefix: string, virtualHosts: Json[]): Json {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: typed(TYPES.hcm, {
      stat_prefix: statPrefix,
      codec_type: 'AUTO',
      // Paths are matched as written, slashes merged; escaped slashes are refused outright.
      merge_slashes: true,
      path_with_escaped_slashes_action: 'REJECT_REQUEST',
      // No `server: envoy` on our own responses: a denial does not name the product.
      server_header_transformation: 'PASS_THROUGH',
      access_log: ACCESS_LOG,
      route_config: { name: statPrefix, virtual_hosts: virtualHosts },
      http_filters: [
        { name: 'envoy.filters.http.dynamic_forward_proxy', typed_config: typed(TYPES.dfpFilter, { dns_cache_config: DNS_CACHE }) },
        { name: 'envoy.filters.http.router', typed_config: typed(TYPES.router) },
      ],
    }),
  };
}

/** Every Host that no rule owns gets 403: also what defeats domain fronting inside a TLS chain. */
const DENY_ALL_VHOST: Json = { name: 'deny-all', domains: ['*'], routes: [{ name: 'deny', match: { prefix: '/' }, direct_response: FORBIDDEN }] };

function ruleVirtualHost(rule: NormalizedRule, port: number, tls: boolean, websocket: boolean, names: readonly string[]): Json {
  const name = `${rule.proto}:${formatDestination(rule.dst)}:${port}`;
  const domains = virtualHostDomains(names, port, tls ? 443 : 80);
  if (rule.action === 'deny') return { name, domains, routes: DENY_ALL_VHOST.routes };
  return { name, domains, routes: routesFor(rule, tls ? UPSTREAM_HTTPS : UPSTREAM_HTTP, websocket) };
}

/**
 * Which rule serves each name of a listener: a name claimed by several rules (`example.com` by
 * `example.com` and `.example.com`, or by an `http` and a `ws` rule) goes to the rule the policy
 * picks for it, so that Envoy sees each name once (it rejects a domain listed twice) and decides
 * as the policy does.
 */
function ownedNames(policy: Policy, rules: readonly NormalizedRule[], port: number, transport: 'https' | 'http'): Map<NormalizedRule, string[]> {
  const claimants = new Map<string, NormalizedRule[]>();
  for (const rule of rules) for (const name of serverNames(rule)) claimants.set(name, [...(claimants.get(name) ?? []), rule]);
  const owned = new Map<NormalizedRule, string[]>();
  for (const [name, claiming] of claimants) {
    // `*.x` is looked up as written: no exact rule has that name, so only wildcard rules decide it
    // (as `x.x` would be, an exact rule for `x.x` would take it, which owns no `*.x`).
    const chosen = policy.ruleFor({ host: name, port, transport });
    const owner = chosen && claiming.includes(chosen) ? chosen : claiming[0]!;
    owned.set(owner, [...(owned.get(owner) ?? []), name]);
  }
  return owned;
}

/**
 * One filter chain per TLS destination, carrying only that destination's virtual host (plus deny-all);
 * `https` and `wss` rules for one destination share a chain.
 * A Host that another chain owns gets 403 inside this one: a wildcard's virtual host must not take
 * the name of a more specific rule (SNI `a.example.org`, Host `bad.example.org` denied by its own rule).
 */
function tlsFilterChains(policy: Policy, rules: readonly NormalizedRule[], port: number, paths: EnvoyPaths): Json[] {
  const owned = ownedNames(policy, rules, port, 'https');
  // Only a wildcard's `*.x` can take another chain's name (`a.x`, `*.a.x`); any other Host falls to deny-all.
  // Each owned name is filed under every `.suffix` it ends with, so a wildcard finds what it would take
  // without a scan of all names (10,000 rules would make that quadratic).
  const under = new Map<string, [NormalizedRule, string][]>();
  for (const [r, names] of owned) {
    for (const n of names) {
      for (let i = n.indexOf('.'); i >= 0; i = n.indexOf('.', i + 1)) {
        const list = under.get(n.slice(i));
        if (list) list.push([r, n]);
        else under.set(n.slice(i), [[r, n]]);
      }
    }
  }
  const ownedElsewhere = (self: NormalizedRule, own: readonly string[]): Json[] => {
    const taken = new Map<NormalizedRule, string[]>();
    for (const wildcard of own.filter((n) => n.startsWith('*.'))) {
      for (const [r, n] of under.get(wildcard.slice(1)) ?? []) if (r !== self) taken.set(r, [...(taken.get(r) ?? []), n]);
    }
    return [...taken].map(([r, names]) => ({ name: `elsewhere:${r.proto}:${formatDestination(r.dst)}:${port}`, domains: virtualHostDomains(names, port, 443), routes: DENY_ALL_VHOST.routes }));
  };
  const wss = new Set(rules.filter((r) => r.proto === 'wss').map((r) => formatDestination(r.dst)));
  const chains: Json[] = [];
  for (const rule of rules) {
    const names = owned.get(rule);
    if (!names) continue;
    const websocket = wss.has(formatDestination(rule.dst));
    const filters =
      rule.action === 'deny'
        ? [{ name: 'envoy.filters.network.direct_response', typed_config: typed(TYPES.directResponseNetwork) }]
        : [httpConnectionManager(`tls_${formatDestination(rule.dst)}_${port}`, [ruleVirtualHost(rule, port, true, websocket, names), ...ownedElsewhere(rule, names), DENY_ALL_VHOST])];
    chains.push({
      name: `tls:${formatDestination(rule.dst)}:${port}`,
      filter_chain_match: { server_names: names, transport_protocol: 'tls' },
      ...(rule.action === 'deny'
        ? {}
        : {
            transport_socket: {
              name: 'envoy.transport_sockets.tls',
              typed_config: typed(TYPES.downstreamTls, {
                common_tls_context: {
                  tls_certificates: [
                    { certificate_chain: { filename: `${paths.certDir}/${certificateFileName(formatDestination(rule.dst))}` }, private_key: { filename: `${paths.certDir}/${LEAF_KEY_FILE}` } },
                  ],
                  alpn_protocols: ['h2', 'http/1.1'],
                },
              }),
            },
          }),
      filters,
    });
  }
  return chains;
}

/** One chain for plain HTTP, by Host; `http` and `ws` rules for one destination share a virtual host. */
function plainHttpChain(policy: Policy, rules: readonly NormalizedRule[], port: number): Json {
  const owned = ownedNames(policy, rules, port, 'http');
  const ws = new Set(rules.filter((r) => r.proto === 'ws').map((r) => formatDestination(r.dst)));
  const vhosts = [...owned].map(([r, names]) => ruleVirtualHost(r, port, false, ws.has(formatDestination(r.dst)), names));
  return { name: `http:${port}`, filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: [httpConnectionManager(`http_${port}`, [...vhosts, DENY_ALL_VHOST])] };
}

const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: typed(TYPES.tlsInspector) };

function httpListener(name: string, port: number, chains: Json[]): Json {
  // The listener's own access log records connections no filter chain takes (unknown SNI: flag NR),
  // so the event stream sees those denials too.
  return { '@type': `type.googleapis.com/${TYPES.listener}`, name, address: socketAddress('0.0.0.0', port), listener_filters: [TLS_INSPECTOR], filter_chains: chains, access_log: ACCESS_LOG };
}

/** A pinned (TCP/UDP) group's key is `kind:destination:upstream port` already: the cluster takes it as its name. */
const clusterName = (g: ListenerGroup): string => g.key;

function pinnedListener(g: ListenerGroup): Json {
  const cluster = clusterName(g);
  if (g.kind === 'udp') {
    return {
      '@type': `type.googleapis.com/${TYPES.listener}`,
      name: g.key,
      address: socketAddress('0.0.0.0', g.port, 'UDP'),
      listener_filters: [
        {
          name: 'envoy.filters.udp_listener.udp_proxy',
          typed_config: typed(TYPES.udpProxy, {
            stat_prefix: g.key,
            matcher: { on_no_match: { action: { name: 'route', typed_config: typed(TYPES.udpRoute, { cluster }) } } },
          }),
        },
      ],
    };
  }
  return {
    '@type': `type.googleapis.com/${TYPES.listener}`,
    name: g.key,
    address: socketAddress('0.0.0.0', g.port),
    filter_chains: [{ filters: [{ name: 'envoy.filters.network.tcp_proxy', typed_config: typed(TYPES.tcpProxy, { stat_prefix: g.key, cluster, access_log: ACCESS_LOG }) }] }],
  };
}

function pinnedCluster(g: ListenerGroup): Json {
  const rule = g.rules[0]!;
  const host = rule.dst.kind === 'ipv4' ? rule.dst.address : rule.dst.name;
  return {
    '@type': `type.googleapis.com/${TYPES.cluster}`,
    name: clusterName(g),
    type: rule.dst.kind === 'ipv4' ? 'STATIC' : 'STRICT_DNS',
    dns_lookup_family: 'V4_ONLY',
    connect_timeout: '10s',
    load_assignment: { cluster_name: clusterName(g), endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, g.upstreamPort, g.kind === 'udp' ? 'UDP' : undefined) } }] }] },
  };
}

function forwardProxyCluster(name: string, tls: boolean): Json {
  return {
    '@type': `type.googleapis.com/${TYPES.cluster}`,
    name,
    connect_timeout: '10s',
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: { name: 'envoy.clusters.dynamic_forward_proxy', typed_config: typed(TYPES.dfpCluster, { dns_cache_config: DNS_CACHE }) },
    ...(tls
      ? {
          // Re-encrypt with the requested name as SNI and verify the server against the system CAs.
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': typed(TYPES.httpProtocolOptions, {
              upstream_http_protocol_options: { auto_sni: true, auto_san_validation: true },
              auto_config: {},
            }),
          },
          transport_socket: {
            name: 'envoy.transport_sockets.tls',
            typed_config: typed(TYPES.upstreamTls, { common_tls_context: { validation_context: { trusted_ca: { filename: SYSTEM_CA_BUNDLE } } } }),
          },
        }
      : {}),
  };
}

function healthListener(): Json {
  return {
    name: 'health',
    address: socketAddress('0.0.0.0', HEALTH_PORT),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: typed(TYPES.hcm, {
              stat_prefix: 'health',
              route_config: {
                name: 'health',
                virtual_hosts: [{ name: 'health', domains: ['*'], routes: [{ match: { path: '/' }, direct_response: { status: 200, body: { inline_string: 'ok\n' } } }] }],
              },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: typed(TYPES.router) }],
            }),
          },
        ],
      },
    ],
  };
}

export function renderEnvoy(policy: Policy, options: { paths?: EnvoyPaths; previousAllocation?: Readonly<Record<string, number>> } = {}): EnvoyConfig {
  const paths = options.paths ?? DEFAULT_ENVOY_PATHS;
  const plan = planListeners(policy.rules, options.previousAllocation);
  const frontChains = [...tlsFilterChains(policy, plan.front.tls, 443, paths), plainHttpChain(policy, plan.front.http, 80)];
  const listeners: Json[] = [httpListener('front', FRONT_LISTENER_PORT, frontChains)];
  for (const g of plan.dedicated) {
    if (g.kind === 'tls') listeners.push(httpListener(g.key, g.port, tlsFilterChains(policy, g.rules, g.upstreamPort, paths)));
    else if (g.kind === 'http') listeners.push(httpListener(g.key, g.port, [plainHttpChain(policy, g.rules, g.upstreamPort)]));
    else listeners.push(pinnedListener(g));
  }
  const clusters: Json[] = [forwardProxyCluster(UPSTREAM_HTTPS, true), forwardProxyCluster(UPSTREAM_HTTP, false), ...plan.dedicated.filter((g) => g.kind === 'tcp' || g.kind === 'udp').map(pinnedCluster)];
  const watched = (file: string) => ({ path_config_source: { path: `${paths.configDir}/${file}`, watched_directory: { path: paths.configDir } }, resource_api_version: 'V3' });
  const bootstrap: Json = {
    node: { id: 'clawker-envoy', cluster: 'clawker' },
    static_resources: { listeners: [healthListener()] },
    dynamic_resources: { lds_config: watched('lds.json'), cds_config: watched('cds.json') },
  };
  return { bootstrap, listeners, clusters, plan };
}

/** A filesystem xDS file: what Envoy's `path_config_source` reads. */
export const discoveryFile = (resources: Json[]): Json => ({ resources });
