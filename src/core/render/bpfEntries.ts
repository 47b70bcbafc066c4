/**
 * The BPF map entries of a policy. `route_map` is keyed by {domain key, L4 protocol, port}: for the
 * names DNS answers under a destination's key, which proxy listener a connection to that port goes to.
 * IP-literal rules get a permanent `dns_cache` entry, so an address the rules name routes like a
 * resolved one. A TCP connection with no route goes to the front listener, where SNI or Host decides;
 * UDP with no route is refused.
 */
import { assertDistinctDomainKeys } from '../firewall/domainKey';
import { formatDestination } from '../firewall/destination';
import type { NormalizedRule } from '../firewall/rule';
import type { Policy } from '../policy/policy';
import { FRONT_LISTENER_PORT, type ListenerPlan } from './envoy/listenerPlan';

export interface RouteEntry {
  readonly destination: string;
  readonly domainKey: bigint;
  readonly l4: 'tcp' | 'udp';
  readonly port: number;
  readonly listenerPort: number;
}

export interface StaticDnsEntry {
  readonly address: string;
  readonly destination: string;
  readonly domainKey: bigint;
}

export interface BpfEntries {
  readonly routes: readonly RouteEntry[];
  readonly staticDnsCache: readonly StaticDnsEntry[];
}

/** A name standing for every name DNS answers under `destination`'s key. */
const representative = (rule: NormalizedRule): string =>
  rule.dst.kind === 'ipv4' ? rule.dst.address : rule.dst.wildcard ? `*.${rule.dst.name}` : rule.dst.name;

function listenerFor(rule: NormalizedRule, port: number, plan: ListenerPlan): number | undefined {
  switch (rule.proto) {
    case 'https':
    case 'wss':
      return port === 443 ? FRONT_LISTENER_PORT : plan.allocation[`tls:${port}`];
    case 'http':
    case 'ws':
      return port === 80 ? FRONT_LISTENER_PORT : plan.allocation[`http:${port}`];
    case 'udp':
      return plan.allocation[`udp:${formatDestination(rule.dst)}:${port}`];
    default:
      return plan.allocation[`tcp:${formatDestination(rule.dst)}:${port}`];
  }
}

const portsOf = (rule: NormalizedRule): number[] =>
  rule.proto === 'https' || rule.proto === 'wss' || rule.proto === 'http' || rule.proto === 'ws'
    ? [rule.port.lo]
    : Array.from({ length: rule.port.hi - rule.port.lo + 1 }, (_, i) => rule.port.lo + i);

export function renderBpfEntries(policy: Policy, plan: ListenerPlan): BpfEntries {
  // Destinations whose names DNS (or a static entry) can map to a key: every allowed rule's.
  const owners = new Map<string, NormalizedRule>();
  for (const rule of policy.rules) if (rule.action === 'allow' && !owners.has(formatDestination(rule.dst))) owners.set(formatDestination(rule.dst), rule);
  const keys = assertDistinctDomainKeys(owners.keys());

  const routes: RouteEntry[] = [];
  for (const [destination, owner] of owners) {
    const host = representative(owner);
    if (owner.dst.kind === 'domain') {
      // Only names DNS answers under this destination's key ever carry it. When DNS forwards the
      // representative name, it is under this destination: the most specific rules covering an exact
      // name are the exact rules for it, and those covering `*.zone` the wildcard `.zone`.
      if (policy.resolve(host).verdict !== 'forward') continue;
    }
    // Only ports some rule covering these names allows can have a route.
    const ports = new Set<number>();
    for (const rule of policy.rulesCovering(host)) if (rule.action === 'allow') portsOf(rule).forEach((p) => ports.add(p));
    for (const port of [...ports].sort((a, b) => a - b)) {
      // A TCP port is taken by a pinned TCP/SSH rule first, then TLS, then plain HTTP.
      for (const [l4, transports] of [['tcp', ['tcp', 'https', 'wss', 'http', 'ws']], ['udp', ['udp']]] as const) {
        const listenerPort = transports
          .map((transport) => policy.ruleFor({ host, port, transport }))
          .filter((rule): rule is NormalizedRule => rule?.action === 'allow')
          .map((rule) => listenerFor(rule, port, plan))
          .find((p) => p !== undefined);
        if (listenerPort !== undefined) routes.push({ destination, domainKey: keys.get(destination)!, l4, port, listenerPort });
      }
    }
  }
  const staticDnsCache = [...owners.entries()]
    .filter(([, r]) => r.dst.kind === 'ipv4')
    .map(([destination, r]) => ({ address: (r.dst as { address: string }).address, destination, domainKey: keys.get(destination)! }));
  return { routes, staticDnsCache };
}
