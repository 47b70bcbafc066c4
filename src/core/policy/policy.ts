/**
 * The policy: system, project and runtime rules merged into one immutable object, the only place
 * that decides whether a request is allowed. `clawker firewall check`, the renderers (Envoy,
 * CoreDNS, BPF maps) and every view read this object; none decides on its own.
 */
import { isIPv4 } from 'node:net';
import { formatDestination } from '../firewall/destination';
import { compileRe2 } from '../firewall/pathMatch';
import { formatPortRange } from '../firewall/port';
import { HTTP_FAMILY, TLS_TERMINATED } from '../firewall/protocol';
import { type NormalizedPathRule, type NormalizedRule, ruleKey } from '../firewall/rule';
import { SYSTEM_RULES } from '../firewall/systemRules';
import { normalizeRequestPath } from './requestPath';

/** A request as the firewall sees it: how it travels, where to, and (for HTTP) what it asks. */
export interface EgressRequest {
  /** `https`, `http`, `wss`, `ws`, `tcp` (also ssh and other TCP) or `udp`. */
  readonly transport: 'https' | 'http' | 'wss' | 'ws' | 'tcp' | 'udp';
  /** Lower-case host name or IPv4 address. */
  readonly host: string;
  readonly port: number;
  readonly path?: string;
  readonly method?: string;
}

/** What the DNS answers for a name: NXDOMAIN, or forwarded with the destination that owns it. */
export type NameResolution =
  | { readonly verdict: 'nxdomain'; readonly reason: string; readonly rule?: NormalizedRule }
  /** `destination` is the rule destination (`api.example.com`, `.example.com`) whose key DNS answers carry. */
  | { readonly verdict: 'forward'; readonly destination: string };

export interface Decision {
  readonly verdict: 'allow' | 'deny';
  /** Why, in words: the rule and path rule that decided, or the default. */
  readonly reason: string;
  readonly rule?: NormalizedRule;
  readonly pathRule?: NormalizedPathRule;
}

/**
 * How specifically a rule's destination names a host it covers: exact beats wildcard, deeper beats
 * shallower. Only asked about rules from `rulesCovering(host)`, which all cover the host.
 */
function specificity(rule: NormalizedRule): number {
  return rule.dst.kind === 'ipv4' || !rule.dst.wildcard ? 1000 : rule.dst.name.split('.').length;
}

/** Which rule protocols carry a request of this transport. */
function carries(proto: string, transport: EgressRequest['transport']): boolean {
  switch (transport) {
    case 'https':
      return TLS_TERMINATED.has(proto);
    case 'http':
      return proto === 'http' || proto === 'ws';
    case 'wss':
      return proto === 'wss';
    case 'ws':
      return proto === 'ws';
    case 'udp':
      return proto === 'udp';
    case 'tcp':
      return !HTTP_FAMILY.has(proto) && proto !== 'udp';
  }
}

const describe = (rule: NormalizedRule): string =>
  `${rule.origin} rule ${formatDestination(rule.dst)} ${rule.proto}:${formatPortRange(rule.port)} ${rule.action}`;

function matchesPath(pr: NormalizedPathRule, path: string): boolean {
  if (pr.match.kind === 'prefix') return path.startsWith(pr.match.prefix);
  const compiled = compileRe2(pr.match.pattern);
  return compiled.ok && compiled.regex.matches(path);
}

const MAX_COVERING_CACHE = 100_000;

export class Policy {
  /** Merged rules in precedence order: system, project, runtime; a later duplicate key is dropped. */
  readonly rules: readonly NormalizedRule[];
  // Indexes, so that a lookup costs the labels of a name, not the number of rules.
  private readonly exact = new Map<string, NormalizedRule[]>();
  private readonly wildcard = new Map<string, NormalizedRule[]>();
  private readonly order = new Map<NormalizedRule, number>();
  private readonly covering = new Map<string, readonly NormalizedRule[]>();

  constructor(layers: { project?: readonly NormalizedRule[]; runtime?: readonly NormalizedRule[] } = {}) {
    const seen = new Set<string>();
    const merged: NormalizedRule[] = [];
    for (const rule of [...SYSTEM_RULES, ...(layers.project ?? []), ...(layers.runtime ?? [])]) {
      const key = ruleKey(rule);
      if (seen.has(key)) continue;
      seen.add(key);
      this.order.set(rule, merged.length);
      merged.push(rule);
      const index = rule.dst.kind === 'domain' && rule.dst.wildcard ? this.wildcard : this.exact;
      const name = rule.dst.kind === 'ipv4' ? rule.dst.address : rule.dst.name;
      index.set(name, [...(index.get(name) ?? []), rule]);
    }
    this.rules = Object.freeze(merged);
    Object.freeze(this);
  }

  /** Rules whose destination covers `host` (any protocol or port), in precedence order. */
  rulesCovering(host: string): readonly NormalizedRule[] {
    let found = this.covering.get(host);
    if (found) return found;
    const lists: NormalizedRule[][] = [];
    const exact = this.exact.get(host);
    if (exact) lists.push(exact);
    // An address is only ever an exact destination: a wildcard's last label is never numeric.
    // Stryker disable next-line ConditionalExpression: skipping the walk for an address only saves time
    if (!isIPv4(host)) {
      for (let suffix = host; ; suffix = suffix.slice(suffix.indexOf('.') + 1)) {
        const wild = this.wildcard.get(suffix);
        if (wild) lists.push(wild);
        if (!suffix.includes('.')) break;
      }
    }
    found = lists.length === 1 ? lists[0]! : lists.flat().sort((a, b) => this.order.get(a)! - this.order.get(b)!);
    // The policy never changes, so answers can be kept; bounded for callers that ask about any name.
    if (this.covering.size >= MAX_COVERING_CACHE) this.covering.clear();
    this.covering.set(host, found);
    return found;
  }

  /** The rule that governs (host, transport, port): most specific destination; deny wins a tie. */
  ruleFor(request: Pick<EgressRequest, 'host' | 'port' | 'transport'>): NormalizedRule | undefined {
    let best: NormalizedRule | undefined;
    let bestScore = 0; // below any specificity (a wildcard has two labels at least)
    for (const rule of this.rulesCovering(request.host)) {
      if (!carries(rule.proto, request.transport)) continue;
      // Written so that a port that is no number (NaN) is in no range: fail closed (found by fuzzing).
      if (!(request.port >= rule.port.lo && request.port <= rule.port.hi)) continue;
      const score = specificity(rule);
      if (score > bestScore || (score === bestScore && rule.action === 'deny' && best?.action !== 'deny')) {
        best = rule;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * DNS for a name: the most specific rules covering it decide; a deny rule among them makes it
   * NXDOMAIN whatever the protocol (the spec: deny rules become NXDOMAIN zones that win over a
   * wildcard), and an exact rule leaves its subdomains to a covering wildcard, or to NXDOMAIN.
   */
  resolve(name: string): NameResolution {
    let bestScore = 0;
    let best: NormalizedRule[] = [];
    for (const rule of this.rulesCovering(name)) {
      if (rule.dst.kind !== 'domain') continue;
      const score = specificity(rule);
      if (score < bestScore) continue;
      if (score > bestScore) {
        bestScore = score;
        best = [];
      }
      best.push(rule);
    }
    if (best.length === 0) return { verdict: 'nxdomain', reason: `no rule names ${name} (deny by default)` };
    const deny = best.find((r) => r.action === 'deny');
    if (deny) return { verdict: 'nxdomain', reason: `${name} is denied by the ${describe(deny)}`, rule: deny };
    return { verdict: 'forward', destination: formatDestination(best[0]!.dst) };
  }

  decide(request: EgressRequest): Decision {
    if (!isIPv4(request.host)) {
      const dns = this.resolve(request.host);
      if (dns.verdict === 'nxdomain') return { verdict: 'deny', reason: `NXDOMAIN: ${dns.reason}`, ...(dns.rule ? { rule: dns.rule } : {}) };
    }
    const rule = this.ruleFor(request);
    const target = `${request.host}:${request.port}`;
    if (!rule) return { verdict: 'deny', reason: `no rule allows ${request.transport} to ${target} (deny by default)` };
    if (rule.action === 'deny') return { verdict: 'deny', reason: `denied by the ${describe(rule)}`, rule };
    if (!HTTP_FAMILY.has(rule.proto)) return { verdict: 'allow', reason: `allowed by the ${describe(rule)}`, rule };
    // The proxy refuses ambiguous paths on every HTTP route, whether or not the rule has path rules.
    const normalized = normalizeRequestPath(request.path ?? '/');
    if (!normalized.ok) return { verdict: 'deny', reason: `refused: ${normalized.reason}`, rule };
    if (rule.pathRules.length === 0) return { verdict: 'allow', reason: `allowed by the ${describe(rule)} (all paths)`, rule };
    const method = (request.method ?? 'GET').toUpperCase();
    // Longest rule string wins; equal lengths go to the first listed. Methods narrow a rule's match.
    let winner: NormalizedPathRule | undefined;
    for (const pr of rule.pathRules) {
      if (pr.methods.length > 0 && !pr.methods.includes(method)) continue;
      if (!matchesPath(pr, normalized.path)) continue;
      if (!winner || pr.path.length > winner.path.length) winner = pr;
    }
    if (!winner) {
      return {
        verdict: rule.pathDefault,
        reason: `${method} ${normalized.path} matches no path rule of the ${describe(rule)}: path_default ${rule.pathDefault}`,
        rule,
      };
    }
    const methods = winner.methods.length ? ` [${winner.methods.join(', ')}]` : '';
    return { verdict: winner.action, reason: `${method} ${normalized.path} matches path rule '${winner.path}'${methods} ${winner.action} of the ${describe(rule)}`, rule, pathRule: winner };
  }
}
