/**
 * Which Envoy listener serves which rules, with stable port numbers: the front listener (10000)
 * takes TLS on 443 (by SNI) and plain HTTP on 80 (by Host), and is where traffic without a route
 * lands; every other (protocol, port) group and every TCP/UDP (destination, port) gets its own
 * listener from 10001. Ports already handed out keep their number across renders, so the BPF
 * `route_map` and Envoy never disagree about a listener while rules change.
 */
import { formatDestination } from '../../firewall/destination';
import { HTTP_FAMILY, TLS_TERMINATED } from '../../firewall/protocol';
import type { NormalizedRule } from '../../firewall/rule';

export const FRONT_LISTENER_PORT = 10000;
export const FIRST_DEDICATED_PORT = 10001;
export const LAST_DEDICATED_PORT = 19999;
/** A TCP/UDP port range becomes one pinned listener per port; refuse ranges that would exhaust them. */
export const MAX_PINNED_PORTS_PER_RULE = 1024;

export type ListenerKind = 'tls' | 'http' | 'tcp' | 'udp';

export interface ListenerGroup {
  /** Stable identity: `tls:8443`, `http:8080`, `tcp:github.com:22`, `udp:10.0.0.5:5353`. */
  readonly key: string;
  readonly kind: ListenerKind;
  /** The upstream port this listener forwards to. */
  readonly upstreamPort: number;
  /** Envoy's listening port. */
  readonly port: number;
  readonly rules: readonly NormalizedRule[];
}

export interface ListenerPlan {
  /** Rules served by the front listener: TLS on 443 and plain HTTP on 80. */
  readonly front: { readonly tls: readonly NormalizedRule[]; readonly http: readonly NormalizedRule[] };
  readonly dedicated: readonly ListenerGroup[];
  /** Every port handed out, by key: pass it back as `previous` to keep numbers stable. */
  readonly allocation: Readonly<Record<string, number>>;
}

const kindOf = (rule: NormalizedRule): ListenerKind =>
  TLS_TERMINATED.has(rule.proto) ? 'tls' : HTTP_FAMILY.has(rule.proto) ? 'http' : rule.proto === 'udp' ? 'udp' : 'tcp';

export function planListeners(rules: readonly NormalizedRule[], previous: Readonly<Record<string, number>> = {}): ListenerPlan {
  const frontTls: NormalizedRule[] = [];
  const frontHttp: NormalizedRule[] = [];
  const groups = new Map<string, { kind: ListenerKind; upstreamPort: number; rules: NormalizedRule[] }>();
  const add = (key: string, kind: ListenerKind, upstreamPort: number, rule: NormalizedRule) => {
    const group = groups.get(key) ?? { kind, upstreamPort, rules: [] };
    group.rules.push(rule);
    groups.set(key, group);
  };

  for (const rule of rules) {
    const kind = kindOf(rule);
    if (kind === 'tls' || kind === 'http') {
      // HTTP-family rules name one upstream port; a range has no single port to forward to.
      const port = rule.port.lo;
      if (kind === 'tls' && port === 443) frontTls.push(rule);
      else if (kind === 'http' && port === 80) frontHttp.push(rule);
      else add(`${kind}:${port}`, kind, port, rule);
      continue;
    }
    if (rule.action === 'deny') continue; // no listener: traffic without a route is refused
    const span = rule.port.hi - rule.port.lo + 1;
    if (span > MAX_PINNED_PORTS_PER_RULE) {
      throw new Error(`${formatDestination(rule.dst)} ${rule.proto}:${rule.port.lo}-${rule.port.hi} spans ${span} ports; at most ${MAX_PINNED_PORTS_PER_RULE} pinned listeners per rule`);
    }
    for (let port = rule.port.lo; port <= rule.port.hi; port++) add(`${kind}:${formatDestination(rule.dst)}:${port}`, kind, port, rule);
  }

  const allocation: Record<string, number> = {};
  // Stryker disable next-line ArrayDeclaration: the front port (10000) is below FIRST_DEDICATED_PORT, so neither a previous port (checked >= 10001) nor `next` (from 10001) can be it; listed for clarity only
  const used = new Set<number>([FRONT_LISTENER_PORT]);
  for (const key of groups.keys()) {
    const port = previous[key];
    if (port !== undefined && port >= FIRST_DEDICATED_PORT && port <= LAST_DEDICATED_PORT && !used.has(port)) {
      allocation[key] = port;
      used.add(port);
    }
  }
  let next = FIRST_DEDICATED_PORT;
  for (const key of [...groups.keys()].sort()) {
    if (allocation[key] !== undefined) continue;
    while (used.has(next)) next++;
    if (next > LAST_DEDICATED_PORT) throw new Error(`more than ${LAST_DEDICATED_PORT - FIRST_DEDICATED_PORT + 1} dedicated listeners are needed`);
    allocation[key] = next;
    used.add(next);
  }
  const dedicated = [...groups.entries()]
    .map(([key, g]) => ({ key, kind: g.kind, upstreamPort: g.upstreamPort, port: allocation[key]!, rules: g.rules }))
    .sort((a, b) => a.port - b.port);
  return { front: { tls: frontTls, http: frontHttp }, dedicated, allocation };
}
