/**
 * Blocked requests a user can fix by allowing a name: DNS refusals, proxy denials and kernel
 * denials of a known domain, gathered per (agent, domain) for the editor's "Blocked" view, its
 * diagnostics on `.clawker.yaml` and the "allow this blocked domain" quick fixes. Pure: the
 * extension feeds events in and renders what comes out.
 */
import { isIPv4 } from 'node:net';
import { isMap, isScalar, parseDocument, type Node, type Pair } from 'yaml';
import type { AllowRequest } from '../config/projectEdits';
import type { EgressEvent } from '../events/eventSchema';
import type { EgressRequest, Policy } from '../policy/policy';

/** How a request was blocked: CoreDNS refused the name, Envoy denied it, or the kernel did. */
export type BlockedHow = 'dns' | 'proxy' | 'kernel';
const HOW_ORDER: readonly BlockedHow[] = ['dns', 'proxy', 'kernel'];

/** One blocked request, from one event. */
export interface BlockedRequest {
  /** The agent's name; the container's short id when the event names no agent; `unknown` otherwise. */
  readonly agent: string;
  readonly container?: string;
  /** Lower-case host name, no trailing dot. */
  readonly domain: string;
  readonly how: BlockedHow;
  readonly time: string;
  /** Proxy: the HTTP request and the status Envoy answered; path without its query string. */
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
  /** The destination port (proxy: the authority's port or the upstream's; kernel: the connection's). */
  readonly port?: number;
  /** Kernel: `tcp`, `udp`, ... */
  readonly l4?: string;
}

/** Every block of one agent for one domain. Entries are immutable: recording makes a new one. */
export interface BlockedEntry {
  /** `agent domain` (neither contains a space). */
  readonly key: string;
  readonly agent: string;
  readonly container?: string;
  readonly domain: string;
  readonly count: number;
  readonly firstTime: string;
  readonly lastTime: string;
  /** How it was blocked, each way once, in the order dns, proxy, kernel. */
  readonly how: readonly BlockedHow[];
  /** The last known HTTP request and status (from the proxy), port and kernel protocol. */
  readonly method?: string;
  readonly path?: string;
  readonly status?: number;
  readonly port?: number;
  readonly l4?: string;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A host name a rule could allow: lower-case labels, not an IP address, at most 253 characters. */
export function isAllowableName(name: string): boolean {
  if (name.length === 0 || name.length > 253 || isIPv4(name) || /^[0-9.]+$/.test(name)) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

/** `Name.Example.com.` → `name.example.com`, or undefined when it is no name a rule could allow. */
function nameOf(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const name = raw.trim().toLowerCase().replace(/\.$/, '');
  return isAllowableName(name) ? name : undefined;
}

/** `api.example.com:8443` → host and port; IPv6 literals (`[::1]:443`) are no names. */
function splitAuthority(authority: string | undefined): { host?: string; port?: number } {
  if (authority === undefined || authority.startsWith('[')) return {};
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return {};
  const port = m[2] !== undefined ? Number(m[2]) : undefined;
  return { host: m[1]!, ...(port !== undefined && port >= 1 && port <= 65535 ? { port } : {}) };
}

const agentOf = (event: EgressEvent): Pick<BlockedRequest, 'agent' | 'container'> => ({
  agent: event.agent ?? (event.container ? event.container.slice(0, 12) : 'unknown'),
  ...(event.container ? { container: event.container } : {}),
});

/** The blocked request an event records, or undefined when allowing a name could not fix it. */
export function blockedOf(event: EgressEvent): BlockedRequest | undefined {
  if (event.verdict !== 'denied') return undefined;
  const base = { ...agentOf(event), time: event.time };
  switch (event.source) {
    case 'dns': {
      const domain = nameOf(event.query?.name ?? event.domain);
      return domain ? { ...base, domain, how: 'dns' } : undefined;
    }
    case 'proxy': {
      const authority = splitAuthority(event.http?.authority);
      const domain = nameOf(event.sni) ?? nameOf(authority.host) ?? nameOf(event.domain);
      if (!domain) return undefined;
      const http = event.http;
      const path = http?.path?.split(/[?#]/)[0];
      const port = authority.port ?? event.dst?.port;
      return {
        ...base,
        domain,
        how: 'proxy',
        ...(http?.method ? { method: http.method.toUpperCase() } : {}),
        ...(path ? { path } : {}),
        ...(http?.status !== undefined ? { status: http.status } : {}),
        ...(port !== undefined ? { port } : {}),
      };
    }
    case 'kernel': {
      // The kernel names the rule destination it routed by: a wildcard (`.example.com`) does not
      // say which name was asked, and an IP-only denial has no name to allow.
      if (event.domain === undefined || event.domain.startsWith('.')) return undefined;
      const domain = nameOf(event.domain);
      if (!domain) return undefined;
      return {
        ...base,
        domain,
        how: 'kernel',
        ...(event.dst ? { port: event.dst.port } : {}),
        ...(event.l4 ? { l4: event.l4 } : {}),
      };
    }
    default:
      return undefined;
  }
}

export const blockedKey = (agent: string, domain: string): string => `${agent} ${domain}`;

/** Keys sorted at every level, so equal events give equal text whatever their key order. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(Object.keys(record).sort().map((k) => [k, canonical(record[k])]));
}

/** A fingerprint of an event, so the tail the stream replays on reconnect is not counted twice. */
const fingerprint = (event: EgressEvent): string => JSON.stringify(canonical(event));

export interface BlockedLogOptions {
  /** Entries kept; the least recently blocked one goes first. */
  readonly maxEntries?: number;
  /** Events remembered to recognise a replayed one. */
  readonly maxSeen?: number;
}

/** Blocked requests per (agent, domain), bounded, most recently blocked last in insertion order. */
export class BlockedLog {
  private readonly entries = new Map<string, BlockedEntry>();
  private readonly seen = new Set<string>();
  private readonly maxEntries: number;
  private readonly maxSeen: number;

  constructor(options: BlockedLogOptions = {}) {
    this.maxEntries = options.maxEntries ?? 500;
    this.maxSeen = options.maxSeen ?? 5000;
  }

  /** Records the event: the updated entry, or undefined (not a fixable block, or seen already). */
  record(event: EgressEvent): BlockedEntry | undefined {
    const blocked = blockedOf(event);
    if (!blocked) return undefined;
    const print = fingerprint(event);
    if (this.seen.has(print)) return undefined;
    this.seen.add(print);
    if (this.seen.size > this.maxSeen) this.seen.delete(this.seen.values().next().value!);

    const key = blockedKey(blocked.agent, blocked.domain);
    const before = this.entries.get(key);
    const entry = before ? merged(before, blocked) : fresh(key, blocked);
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return entry;
  }

  get(key: string): BlockedEntry | undefined {
    return this.entries.get(key);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Newest (most recently blocked) first. */
  list(): BlockedEntry[] {
    return [...this.entries.values()].reverse();
  }

  forget(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Forgets every entry (replayed events stay recognised, so a reconnect does not bring them back). */
  clear(): void {
    this.entries.clear();
  }

  /** Keeps the entries `keep` says are still blocked; returns the forgotten ones. */
  prune(keep: (entry: BlockedEntry) => boolean): BlockedEntry[] {
    const dropped = [...this.entries.values()].filter((e) => !keep(e));
    for (const e of dropped) this.entries.delete(e.key);
    return dropped;
  }
}

const detailsOf = (b: BlockedRequest) => ({
  ...(b.method !== undefined ? { method: b.method } : {}),
  ...(b.path !== undefined ? { path: b.path } : {}),
  ...(b.status !== undefined ? { status: b.status } : {}),
  ...(b.port !== undefined ? { port: b.port } : {}),
  ...(b.l4 !== undefined ? { l4: b.l4 } : {}),
});

function fresh(key: string, b: BlockedRequest): BlockedEntry {
  return {
    key,
    agent: b.agent,
    ...(b.container ? { container: b.container } : {}),
    domain: b.domain,
    count: 1,
    firstTime: b.time,
    lastTime: b.time,
    how: [b.how],
    ...detailsOf(b),
  };
}

const earlier = (a: string, b: string): string => (Date.parse(b) < Date.parse(a) ? b : a);
const later = (a: string, b: string): string => (Date.parse(b) > Date.parse(a) ? b : a);

function merged(e: BlockedEntry, b: BlockedRequest): BlockedEntry {
  // A proxy denial carrying HTTP replaces the whole request seen before (its path belongs with its method).
  const http = b.method !== undefined || b.path !== undefined || b.status !== undefined;
  const { method, path, status, ...rest } = e;
  const kept = http ? rest : e;
  return {
    ...kept,
    ...(b.container ? { container: b.container } : {}),
    count: e.count + 1,
    firstTime: earlier(e.firstTime, b.time),
    lastTime: later(e.lastTime, b.time),
    how: HOW_ORDER.filter((h) => h === b.how || e.how.includes(h)),
    ...detailsOf(b),
  };
}

// ---- against a policy -------------------------------------------------------------------------

function webTransport(port: number | undefined): EgressRequest['transport'] {
  return port === 80 ? 'http' : 'https';
}

/** How the kernel's connection travels as the policy sees it: 443 and 80 go to the proxy. */
function kernelTransport(entry: BlockedEntry): EgressRequest['transport'] {
  if (entry.l4 === 'udp') return 'udp';
  if (entry.port === 443 || entry.port === 80 || entry.port === undefined) return webTransport(entry.port);
  return 'tcp';
}

/** False once the policy allows every way the entry was blocked. */
export function stillBlocked(entry: BlockedEntry, policy: Policy): boolean {
  const host = entry.domain;
  return entry.how.some((how) => {
    switch (how) {
      case 'dns':
        return policy.resolve(host).verdict === 'nxdomain';
      case 'proxy': {
        const port = entry.port ?? 443;
        const request: EgressRequest = {
          transport: webTransport(port),
          host,
          port,
          path: entry.path ?? '/',
          ...(entry.method ? { method: entry.method } : {}),
        };
        return policy.decide(request).verdict === 'deny';
      }
      case 'kernel':
        return policy.decide({ transport: kernelTransport(entry), host, port: entry.port ?? 443 }).verdict === 'deny';
    }
  });
}

// ---- words -----------------------------------------------------------------------------------

const two = (n: number): string => String(n).padStart(2, '0');

/** `15:42:07`, in local time. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '--:--:--';
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

const requestLine = (e: BlockedEntry): string => (e.method && e.path ? ` ${e.method} ${e.path}` : '');

/** What each way of blocking did, in words: `DNS refused`, `proxy denied GET /v1 (403)`. */
export function howBlocked(entry: BlockedEntry): string {
  return entry.how
    .map((how) => {
      switch (how) {
        case 'dns':
          return 'DNS refused';
        case 'proxy':
          return entry.status !== undefined ? `proxy denied${requestLine(entry)} (${entry.status})` : 'proxy refused the connection';
        case 'kernel':
          return `kernel denied ${entry.l4 ?? 'the connection'}${entry.port !== undefined ? ` port ${entry.port}` : ''}`;
      }
    })
    .join(', ');
}

/** `Agent dev was blocked from blocked.test 3 times (DNS refused; last 15:42:07)`. */
export function diagnosticMessage(entry: BlockedEntry): string {
  const times = entry.count === 1 ? '1 time' : `${entry.count} times`;
  return `Agent ${entry.agent} was blocked from ${entry.domain} ${times} (${howBlocked(entry)}; last ${clockTime(entry.lastTime)})`;
}

/** The notification's sentence: `Agent dev was blocked from blocked.test`. */
export const notificationMessage = (entry: BlockedEntry): string => `Agent ${entry.agent} was blocked from ${entry.domain}`;

// ---- what to allow -----------------------------------------------------------------------------

export interface AllowChoice {
  /** The code action's and quick pick's title. */
  readonly title: string;
  readonly request: AllowRequest;
}

/**
 * What a user may allow for an entry: the name (add_domains), its parent and subdomains when
 * `parentOf` offers one (no TLDs or public suffixes), and only the request seen when the proxy
 * saw its method and path. The first is the preferred fix.
 */
export function allowChoices(entry: BlockedEntry, parentOf: (domain: string) => string | undefined): AllowChoice[] {
  const choices: AllowChoice[] = [{ title: `Allow ${entry.domain} (add_domains)`, request: { kind: 'domain', domain: entry.domain } }];
  const parent = parentOf(entry.domain);
  if (parent) choices.push({ title: `Allow ${parent} and its subdomains`, request: { kind: 'wildcard', parent } });
  if (entry.method && entry.path) {
    const port = entry.port ?? 443;
    const proto = webTransport(port) as 'https' | 'http';
    const defaultPort = proto === 'http' ? 80 : 443;
    choices.push({
      title: `Allow only ${entry.method} ${entry.path} on ${entry.domain}`,
      request: { kind: 'path', domain: entry.domain, path: entry.path, method: entry.method, proto, ...(port !== defaultPort ? { port } : {}) },
    });
  }
  return choices;
}

// ---- where the diagnostic goes ----------------------------------------------------------------

export interface OffsetLength {
  readonly offset: number;
  readonly length: number;
}

function pairIn(node: unknown, key: string): Pair | undefined {
  if (!isMap(node)) return undefined;
  return node.items.find((p) => isScalar(p.key) && String(p.key.value) === key) as Pair | undefined;
}

const keyRange = (pair: Pair | undefined): OffsetLength | undefined => {
  const range = (pair?.key as Node | undefined)?.range;
  return range ? { offset: range[0], length: Math.max(range[1] - range[0], 1) } : undefined;
};

/**
 * Where blocked-request diagnostics go in `.clawker.yaml`: the `add_domains` key, else
 * `firewall`'s, else `security`'s, else the first line. Never throws, whatever the text.
 */
export function anchorInProject(text: string): OffsetLength {
  const firstLine = { offset: 0, length: Math.max(text.search(/\r?\n|$/), 0) };
  try {
    const doc = parseDocument(text, { prettyErrors: false });
    const security = pairIn(doc.contents, 'security');
    const firewall = pairIn(security?.value, 'firewall');
    const addDomains = pairIn(firewall?.value, 'add_domains');
    return keyRange(addDomains) ?? keyRange(firewall) ?? keyRange(security) ?? firstLine;
  } catch {
    return firstLine;
  }
}
