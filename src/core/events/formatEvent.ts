/**
 * One line per event for people (`clawker firewall events`):
 *
 *   12:00:01 denied     dev  tcp 10.0.0.5:4431 → 203.0.113.9:443 (another container on the network; connect4)
 *   12:00:02 denied     dev  dns A evil.example. NXDOMAIN (no rule names it)
 *   12:00:03 denied     dev  GET api.example.com/admin → 403 (a path rule)
 */
import { type EgressEvent, formatEndpoint } from './eventSchema';

/** Reasons in words; a reason missing here is shown as its word. */
const REASON_WORDS: Record<string, string> = {
  // kernel (enum reason)
  loopback: 'loopback',
  dns: 'DNS, to CoreDNS',
  route: 'a rule, to its listener',
  'catch-all': 'no route; catch-all',
  infra: 'the proxy',
  bypass: 'bypass window',
  gateway: 'the host (network gateway)',
  peer: 'another container on the network',
  'infra-port': 'a stack port agents do not use',
  'udp-no-route': 'UDP without a rule',
  ipv6: 'native IPv6',
  'socket-type': 'raw or ICMP socket',
  protocol: 'neither TCP nor UDP',
  lockdown: 'lockdown',
  'docker-dns': "Docker's DNS off port 53",
  disabled: 'firewall disabled for the agent',
  'host-proxy': 'the host proxy on the gateway',
  // CoreDNS
  'no-rule': 'no rule names it',
  'deny-rule': 'a deny rule',
  // CoreDNS, dnsguard (settings.yaml firewall.dns)
  qtype: 'query type not allowed (firewall.dns)',
  'label-length': 'label too long (firewall.dns)',
  'name-length': 'name too long (firewall.dns)',
  rate: 'query rate exceeded (firewall.dns)',
  // proxy
  'no-filter-chain': 'no rule for this server name',
  'no-route': 'no route',
  'no-cluster': 'no upstream cluster',
  'host-denied': 'no rule allows this host',
  'refused-path': 'ambiguous path refused',
  'path-rule': 'a path rule',
  'path-default': 'path_default deny',
};

const pad2 = (n: number): string => String(n).padStart(2, '0');

function clock(iso: string, utc: boolean): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return utc ? `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}` : `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function kernelBody(e: EgressEvent): string {
  const l4 = e.l4 ?? 'ip';
  if (!e.dst) return `${l4} ${e.sockType ?? ''} socket`.replace(/\s+/g, ' ');
  const from = e.src ? `${formatEndpoint(e.src)} ` : '';
  const via = e.redirect ? ` ⇒ ${formatEndpoint(e.redirect)}` : '';
  const name = e.domain ? ` ${e.domain}` : '';
  return `${l4} ${from}→ ${formatEndpoint(e.dst)}${name}${via}`;
}

function proxyBody(e: EgressEvent): string {
  const h = e.http;
  if (h?.method || h?.status) {
    const target = `${h.authority ?? e.domain ?? '?'}${h.path ?? ''}`;
    return `${h.method ?? 'HTTP'} ${target}${h.status ? ` → ${h.status}` : ''}`;
  }
  const to = e.dst ? formatEndpoint(e.dst) : (e.sni ?? e.domain ?? '?');
  return `${e.sni ? 'tls' : 'tcp'} ${e.src ? `${formatEndpoint(e.src)} ` : ''}→ ${to}${e.sni && e.dst ? ` (${e.sni})` : ''}`;
}

function body(e: EgressEvent): string {
  switch (e.source) {
    case 'kernel':
      return kernelBody(e);
    case 'dns':
      return e.query ? `dns ${e.query.type} ${e.query.name} ${e.query.rcode}` : `dns ${e.domain ?? '?'}`;
    case 'proxy':
      return proxyBody(e);
    case 'controlplane':
      return e.message ?? '';
  }
}

export interface FormatOptions {
  /** Clock in UTC instead of local time (tests, logs shipped elsewhere). */
  readonly utc?: boolean;
}

export function formatEgressEvent(e: EgressEvent, options: FormatOptions = {}): string {
  const why = [e.reason ? (REASON_WORDS[e.reason] ?? e.reason) : undefined, e.source === 'kernel' ? e.hook : undefined].filter(Boolean).join('; ');
  return `${clock(e.time, options.utc ?? false)} ${e.verdict.padEnd(10)} ${e.agent ?? '-'}  ${body(e)}${why ? ` (${why})` : ''}`;
}
