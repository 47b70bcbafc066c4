/**
 * CoreDNS refusals. The Corefile renderer (src/core/render/corednsConfig.ts) gives every server
 * block that refuses names a `log` directive from here, so the format and its parser are one
 * thing. The line names the block's zone and how the block answers its apex and its subdomains:
 * `class denial` also logs an upstream's NXDOMAIN for a name the block forwards, and NODATA
 * (NOERROR) answers, and neither is a firewall decision. CoreDNS prints, in its default text mode:
 *
 *   [INFO] clawker-dns zone=github.com. apex=forward sub=no-rule udp 10.0.0.5 40312 A x.github.com. NXDOMAIN
 *
 * (checked against the real server in test/unit/egressEvents.test.ts). With `-log-format=json`
 * the same text is the record's `msg`.
 *
 * The `dnsguard` plugin (images/coredns/plugin/dnsguard) logs its own refusals, one line each,
 * rate limited per client (a `suppressed=N` line counts those it held back; not an event):
 *
 *   [INFO] plugin/dnsguard: clawker-dns-guard reason=qtype udp 10.0.0.5 40312 TXT x.github.com. REFUSED
 *
 * `reason` is `qtype`, `label-length`, `name-length` or `rate`; the name is written with every
 * octet but letters, digits, `-` and `_` escaped as `\DDD` (checked in test/unit/dnsGuardEvents.test.ts).
 */
import { type AgentRef, agentFields, checkedEvent, type EgressEvent, plainAddress } from './eventSchema';

export const COREDNS_LOG_MARKER = 'clawker-dns';

/** How a block answers a name: forwards it (an upstream's NXDOMAIN is not ours), or refuses it for want of a rule or by a deny rule. */
export type NameVerdict = 'forward' | 'no-rule' | 'deny-rule';
const NAME_VERDICTS: readonly string[] = ['forward', 'no-rule', 'deny-rule'];

const fqdn = (zone: string): string => (zone.endsWith('.') ? zone : `${zone}.`);

/** The `log` directive of a server block for `zone` (`.` for the root block), indented for the Corefile. */
export function corednsLogDirective(zone: string, apex: NameVerdict, sub: NameVerdict): string[] {
  const format = `${COREDNS_LOG_MARKER} zone=${fqdn(zone)} apex=${apex} sub=${sub} {proto} {remote} {port} {type} {name} {rcode}`;
  return [`    log . "${format}" {`, '        class denial', '    }'];
}

export const DNS_GUARD_MARKER = 'clawker-dns-guard';

/** Why `dnsguard` refused a query. */
export const DNS_GUARD_REASONS = ['qtype', 'label-length', 'name-length', 'rate'] as const;
export type DnsGuardReason = (typeof DNS_GUARD_REASONS)[number];

export interface CorednsLogContext {
  /** CoreDNS's text log has no time stamp: the time the line was read (or Docker's time stamp). */
  readonly wallTime: Date;
  /** The agent behind a client address (agents' DNS reaches CoreDNS from their own address). */
  agentOfIp?(ip: string): AgentRef | undefined;
}

const LINE =
  /^(?:\[INFO\] )?clawker-dns zone=(\S+) apex=([a-z-]+) sub=([a-z-]+) (udp|tcp) \[?([0-9a-fA-F:.]+)\]? (\d{1,5}) (\S+) (\S+) ([A-Z]+)$/;

const GUARD_LINE = /^(?:\[INFO\] )?(?:plugin\/dnsguard: )?clawker-dns-guard reason=(qtype|label-length|name-length|rate) (udp|tcp) \[?([0-9a-fA-F:.]+)\]? (\d{1,5}) ([A-Z][A-Z0-9]*) (\S+) (REFUSED)$/;

/** Docker's time stamp, when the logs were read with `timestamps`. */
const DOCKER_TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) /;

/** The message of a JSON-mode record, or the line itself; with the time the line carries, if any. */
function messageOf(line: string): { text: string; time?: Date } | undefined {
  let trimmed = line.trim();
  const stamp = DOCKER_TIME.exec(trimmed);
  if (stamp) {
    trimmed = trimmed.slice(stamp[0].length);
    const time = new Date(stamp[1]!);
    if (!trimmed.startsWith('{')) return { text: trimmed, ...(Number.isNaN(time.getTime()) ? {} : { time }) };
  }
  if (!trimmed.startsWith('{')) return { text: trimmed };
  try {
    const record = JSON.parse(trimmed) as { msg?: unknown; time?: unknown };
    if (typeof record.msg !== 'string') return undefined;
    const time = typeof record.time === 'string' ? new Date(record.time) : undefined;
    return { text: record.msg, ...(time && !Number.isNaN(time.getTime()) ? { time } : {}) };
  } catch {
    return undefined;
  }
}

/** The verdict of the block for `name`: its apex's, or its subdomains' (root: every name is a subdomain). */
function verdictFor(zone: string, name: string, apex: string, sub: string): string | undefined {
  if (name === zone) return apex;
  if (zone === '.' || name.endsWith(`.${zone}`)) return sub;
  return undefined; // not this block's name: not a line the renderer's directive wrote
}

interface Refusal {
  readonly proto: string;
  readonly remote: string;
  readonly port: string;
  readonly type: string;
  readonly name: string;
  readonly rcode: string;
  readonly reason: string;
}

function refusalEvent(r: Refusal, time: Date, ctx: CorednsLogContext): EgressEvent | undefined {
  if (Number.isNaN(time.getTime())) return undefined;
  const ip = plainAddress(r.remote);
  return checkedEvent({
    time: time.toISOString(),
    source: 'dns',
    verdict: 'denied',
    ...agentFields(ip ? ctx.agentOfIp?.(ip) : undefined),
    domain: r.name === '.' ? '.' : r.name.replace(/\.$/, ''),
    ...(ip ? { src: { ip, port: Number(r.port) } } : {}),
    l4: r.proto,
    reason: r.reason,
    query: { name: r.name, type: r.type, rcode: r.rcode },
  });
}

/** A `dnsguard` refusal line → its event. */
function fromGuardLine(text: string, time: Date, ctx: CorednsLogContext): EgressEvent | undefined {
  const m = GUARD_LINE.exec(text);
  if (!m) return undefined;
  const [, reason, proto, remote, port, type, name, rcode] = m as unknown as string[];
  return refusalEvent({ reason: reason!, proto: proto!, remote: remote!, port: port!, type: type!, name: name!, rcode: rcode! }, time, ctx);
}

/** One line of CoreDNS's output → a refusal event; other lines, NODATA and upstreams' NXDOMAIN → undefined. */
export function fromCorednsLog(line: string, ctx: CorednsLogContext): EgressEvent | undefined {
  try {
    const message = messageOf(line);
    if (!message) return undefined;
    if (message.text.includes(DNS_GUARD_MARKER)) return fromGuardLine(message.text, message.time ?? ctx.wallTime, ctx);
    const m = LINE.exec(message.text);
    if (!m) return undefined;
    const [, zone, apex, sub, proto, remote, port, type, name, rcode] = m as unknown as string[];
    if (rcode !== 'NXDOMAIN' || !NAME_VERDICTS.includes(apex!) || !NAME_VERDICTS.includes(sub!)) return undefined;
    const verdict = verdictFor(zone!.toLowerCase(), name!.toLowerCase(), apex!, sub!);
    if (verdict === undefined || verdict === 'forward') return undefined;
    return refusalEvent({ reason: verdict, proto: proto!, remote: remote!, port: port!, type: type!, name: name!, rcode: rcode! }, message.time ?? ctx.wallTime, ctx);
  } catch {
    return undefined;
  }
}
