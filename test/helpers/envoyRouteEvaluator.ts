/**
 * The test oracle: evaluates rendered Envoy listeners for one request the way Envoy's documentation
 * describes it, independently of the policy code. Filter chain by SNI (exact server name, then the
 * longest `*.` wildcard; none: connection reset), `raw_buffer` chain for plain HTTP; the connection
 * manager rejects escaped slashes and merges slashes; virtual host by Host (exact, then longest
 * suffix wildcard, then `*`); the first route whose path and headers match wins (`prefix` on the
 * path, `path` exact, `safe_regex` on the whole path without the query; header `string_match`).
 */
import { RE2JS } from 're2js';

type Json = { [key: string]: any };

export interface EnvoyRequest {
  readonly listenerPort: number;
  readonly tls: boolean;
  readonly sni?: string;
  readonly host: string;
  readonly path: string;
  readonly method: string;
}

export type EnvoyOutcome = { kind: 'reset' } | { kind: 'forward'; cluster: string; route: string } | { kind: 'status'; status: number; route?: string };

const fullMatch = (regex: string, text: string): boolean => RE2JS.compile(regex).matches(text);

function chooseChain(listener: Json, req: EnvoyRequest): Json | undefined {
  const chains: Json[] = listener.filter_chains ?? [];
  if (!req.tls) return chains.find((c) => c.filter_chain_match?.transport_protocol === 'raw_buffer') ?? chains.find((c) => !c.filter_chain_match);
  const tlsChains = chains.filter((c) => c.filter_chain_match?.transport_protocol === 'tls');
  const sni = req.sni ?? '';
  const exact = tlsChains.find((c) => (c.filter_chain_match.server_names ?? []).includes(sni));
  if (exact) return exact;
  let best: Json | undefined;
  let bestLength = -1;
  for (const c of tlsChains) {
    for (const name of c.filter_chain_match.server_names ?? []) {
      if (name.startsWith('*.') && sni.endsWith(name.slice(1)) && name.length > bestLength) {
        best = c;
        bestLength = name.length;
      }
    }
  }
  return best;
}

function chooseVirtualHost(vhosts: Json[], host: string): Json | undefined {
  const h = host.toLowerCase();
  const exact = vhosts.find((v) => (v.domains as string[]).includes(h));
  if (exact) return exact;
  let best: Json | undefined;
  let bestLength = -1;
  for (const v of vhosts) {
    for (const d of v.domains as string[]) {
      if (d.startsWith('*') && d !== '*' && h.endsWith(d.slice(1)) && h.length > d.length - 1 && d.length > bestLength) {
        best = v;
        bestLength = d.length;
      }
    }
  }
  return best ?? vhosts.find((v) => (v.domains as string[]).includes('*'));
}

function stringMatches(m: Json, value: string): boolean {
  if (m.exact !== undefined) return value === m.exact;
  if (m.safe_regex) return fullMatch(m.safe_regex.regex, value);
  if (m.prefix !== undefined) return value.startsWith(m.prefix);
  throw new Error(`unsupported string_match ${JSON.stringify(m)}`);
}

function routeMatches(match: Json, pathWithQuery: string, method: string): boolean {
  const path = pathWithQuery.split('?')[0]!;
  let ok: boolean;
  if (match.prefix !== undefined) ok = pathWithQuery.startsWith(match.prefix);
  else if (match.path !== undefined) ok = path === match.path;
  else if (match.safe_regex) ok = fullMatch(match.safe_regex.regex, path);
  else throw new Error(`unsupported route match ${JSON.stringify(match)}`);
  for (const header of match.headers ?? []) {
    if (header.name !== ':method') throw new Error(`unsupported header matcher ${header.name}`);
    ok &&= stringMatches(header.string_match, method);
  }
  return ok;
}

export function evaluateEnvoy(listeners: Json[], req: EnvoyRequest): EnvoyOutcome {
  const listener = listeners.find((l) => l.address?.socket_address?.port_value === req.listenerPort);
  if (!listener) return { kind: 'reset' };
  const chain = chooseChain(listener, req);
  if (!chain) return { kind: 'reset' };
  const hcm = (chain.filters as Json[]).find((f) => f.name === 'envoy.filters.network.http_connection_manager');
  if (!hcm) return { kind: 'reset' }; // e.g. a deny chain's direct_response network filter closes the connection
  const config = hcm.typed_config;
  if (config.path_with_escaped_slashes_action === 'REJECT_REQUEST' && /%(2f|5c)/i.test(req.path.split('?')[0]!)) return { kind: 'status', status: 400 };
  const path = config.merge_slashes ? req.path.replace(/^([^?]*)/, (p) => p.replace(/\/{2,}/g, '/')) : req.path;
  const vhost = chooseVirtualHost(config.route_config.virtual_hosts, req.host);
  if (!vhost) return { kind: 'status', status: 404 };
  for (const route of vhost.routes as Json[]) {
    if (!routeMatches(route.match, path, req.method)) continue;
    if (route.route) return { kind: 'forward', cluster: route.route.cluster, route: route.name };
    if (route.direct_response) return { kind: 'status', status: route.direct_response.status, route: route.name };
    throw new Error(`route without an action: ${JSON.stringify(route)}`);
  }
  return { kind: 'status', status: 404 };
}
