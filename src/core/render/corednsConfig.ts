/**
 * Renders the policy as a Corefile for our CoreDNS build. Deny by default: the root zone answers
 * NXDOMAIN. Each zone a rule names gets its own server block, so CoreDNS's most-specific-zone choice
 * mirrors `Policy.resolve`: what the policy says a name resolves to is what the block answers. In an
 * allowed block, `dnsbpf` records each A answer under its destination's key before the answer leaves,
 * AAAA gets no data (IPv6 egress is denied, so dual-stack clients fall back to IPv4), and the names
 * the policy refuses (an exact rule's subdomains, deny rules) are NXDOMAIN.
 *
 * `dnsguard` (settings `firewall.dns`, on by default) refuses, in every block that forwards, the
 * query types, label and name lengths an exfiltration tunnel needs, and in every block a client's
 * queries beyond its rate; blocks that answer everything themselves get the rate alone (nothing
 * leaves them, and their NXDOMAIN already says why: no rule).
 */
import { type DnsGuardSettings, dnsGuardSchema } from '../config/settingsSchema';
import { corednsLogDirective, type NameVerdict } from '../events/corednsLog';
import type { NameResolution, Policy } from '../policy/policy';

export const COREDNS_HEALTH_PORT = 18902;
export const DOCKER_DNS = '127.0.0.11';
/** Docker names the agents may resolve: exact names only, never a subtree to tunnel through. */
export const DOCKER_INTERNAL_NAMES = ['host.docker.internal'] as const;

export interface CorednsOptions {
  readonly upstreams: readonly string[];
  /** The DNS exfiltration defences; the defaults (on) when not given. */
  readonly dns?: DnsGuardSettings;
}

type GuardScope = 'forwarding' | 'local';

/** What settings.yaml gives when it says nothing about `firewall.dns`. */
const DEFAULT_DNS_GUARD_SETTINGS: DnsGuardSettings = dnsGuardSchema.parse({});

/** The `dnsguard` directive of a block, or nothing when the settings leave it nothing to check. */
export function dnsguardDirective(guard: DnsGuardSettings, scope: GuardScope): string[] {
  if (!guard.enable) return [];
  const options: string[] = [];
  if (scope === 'forwarding') {
    if (guard.allowed_types) options.push(`types ${[...new Set(guard.allowed_types)].join(' ')}`);
    if (guard.max_label_length !== null) options.push(`max_label ${guard.max_label_length}`);
    if (guard.max_name_length !== null) options.push(`max_name ${guard.max_name_length}`);
  }
  if (guard.query_rate) options.push(`rate ${guard.query_rate.per_second} ${guard.query_rate.burst}`);
  return options.length === 0 ? [] : ['    dnsguard {', ...options.map((o) => `        ${o}`), '    }'];
}

const escapeRegex = (name: string): string => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const nxdomainFor = (pattern: string): string[] => ['    template ANY ANY {', `        match "${pattern}"`, '        rcode NXDOMAIN', '        fallthrough', '    }'];

/** How a block answers a name, as its log line tells the event parser (src/core/events/corednsLog.ts). */
const nameVerdict = (r: NameResolution): NameVerdict => (r.verdict === 'forward' ? 'forward' : r.rule ? 'deny-rule' : 'no-rule');

/**
 * Logs the block's NXDOMAINs and NODATAs (`class denial`): the line says how the block answers the
 * apex and the subdomains, so the parser keeps the firewall's refusals and drops an upstream's
 * NXDOMAIN for a forwarded name. A block that forwards everything refuses nothing: no log.
 */
const refusalLog = (zone: string, apex: NameVerdict, sub: NameVerdict): string[] => (apex === 'forward' && sub === 'forward' ? [] : corednsLogDirective(zone, apex, sub));

function allowedBlock(zone: string, apex: string | undefined, subdomains: string | undefined, forward: string, log: string[], guard: string[]): string[] {
  const lines = [`${zone}:53 {`, ...guard];
  if (!apex) lines.push(...nxdomainFor(`^${escapeRegex(zone)}\\.$`));
  if (!subdomains) lines.push(...nxdomainFor(`^.+\\.${escapeRegex(zone)}\\.$`));
  lines.push('    template IN AAAA {', '        rcode NOERROR', '    }');
  if (forward !== DOCKER_DNS) lines.push(`    dnsbpf ${apex ?? '-'} ${subdomains ?? '-'}`);
  lines.push(`    forward . ${forward}`, ...log, '}');
  return lines;
}

const nxdomainBlock = (zone: string, log: string[], guard: string[]): string[] => [`${zone}:53 {`, '    template ANY ANY {', '        rcode NXDOMAIN', '    }', ...guard, ...log, '}'];

export function renderCorefile(policy: Policy, options: CorednsOptions): string {
  const dns = options.dns ?? DEFAULT_DNS_GUARD_SETTINGS;
  const forwardingGuard = dnsguardDirective(dns, 'forwarding');
  const localGuard = dnsguardDirective(dns, 'local');
  const zones = new Set<string>();
  for (const rule of policy.rules) if (rule.dst.kind === 'domain') zones.add(rule.dst.name);
  const blocks: string[][] = [];
  for (const zone of [...zones].sort()) {
    const apex = policy.resolve(zone);
    const sub = policy.resolve(`*.${zone}`);
    const apexDestination = apex.verdict === 'forward' ? apex.destination : undefined;
    const subDestination = sub.verdict === 'forward' ? sub.destination : undefined;
    const log = refusalLog(zone, nameVerdict(apex), nameVerdict(sub));
    blocks.push(
      apexDestination || subDestination ? allowedBlock(zone, apexDestination, subDestination, options.upstreams.join(' '), log, forwardingGuard) : nxdomainBlock(zone, log, localGuard),
    );
  }
  for (const name of DOCKER_INTERNAL_NAMES) if (!zones.has(name)) blocks.push(allowedBlock(name, name, undefined, DOCKER_DNS, refusalLog(name, 'forward', 'no-rule'), forwardingGuard));
  blocks.push([
    '.:53 {',
    `    health :${COREDNS_HEALTH_PORT}`,
    '    errors',
    ...corednsLogDirective(
      // Stryker disable next-line StringLiteral: the log names the zone as an FQDN, and '' and '.' both become '.'
      '.',
      'no-rule',
      'no-rule',
    ),
    ...localGuard,
    '    template ANY ANY {',
    '        rcode NXDOMAIN',
    '    }',
    '}',
  ]);
  return `# Generated by Clawker from the firewall policy. Do not edit: changes are overwritten.\n${blocks.map((b) => b.join('\n')).join('\n\n')}\n`;
}
