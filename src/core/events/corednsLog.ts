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

export interface CorednsLogContext {
  /** CoreDNS's text log has no time stamp: the time the line was read (or Docker's time stamp). */
  readonly wallTime: Date;
  /** The agent behind a client address (agents' DNS reaches CoreDNS from their own address). */
  agentOfIp?(ip: string): AgentRef | undefined;
}

const LINE =
  /^(?:\[INFO\] )?clawker-dns zone=(\S+) apex=([a-z-]+) sub=([a-z-]+) (udp|tcp) \[?([0-9a-fA-F:.]+)\]? (\d{1,5}) (\S+) (\S+) ([A-Z]+)$/;

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

/** One line of CoreDNS's output → a refusal event; other lines, NODATA and upstreams' NXDOMAIN → undefined. */
export function fromCorednsLog(line: string, ctx: CorednsLogContext): EgressEvent | undefined {
  try {
    const message = messageOf(line);
    const m = message && LINE.exec(message.text);
    if (!m) return undefined;
    const [, zone, apex, sub, proto, remote, port, type, name, rcode] = m as unknown as string[];
    if (rcode !== 'NXDOMAIN' || !NAME_VERDICTS.includes(apex!) || !NAME_VERDICTS.includes(sub!)) return undefined;
    const verdict = verdictFor(zone!.toLowerCase(), name!.toLowerCase(), apex!, sub!);
    if (verdict === undefined || verdict === 'forward') return undefined;
    const ip = plainAddress(remote!);
    const time = message!.time ?? ctx.wallTime;
    if (Number.isNaN(time.getTime())) return undefined;
    return checkedEvent({
      time: time.toISOString(),
      source: 'dns',
      verdict: 'denied',
      ...agentFields(ip ? ctx.agentOfIp?.(ip) : undefined),
      domain: name === '.' ? '.' : name!.replace(/\.$/, ''),
      ...(ip ? { src: { ip, port: Number(port) } } : {}),
      l4: proto!,
      reason: verdict,
      query: { name: name!, type: type!, rcode: rcode! },
    });
  } catch {
    return undefined;
  }
}
