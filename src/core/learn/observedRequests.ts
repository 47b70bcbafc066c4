/**
 * What learn mode saw blocked: the denials of a session's egress events, one entry per distinct
 * request (who refused it, which name, port, method and path), counted.
 */
import type { AllowRequest } from '../config/projectEdits';
import type { EgressEvent } from '../events/eventSchema';

export interface ObservedRequest {
  /** Identity among the observed: source, name, transport, port, method and path. */
  readonly key: string;
  /** Who refused it: CoreDNS (no rule names it), the proxy, or the kernel. */
  readonly source: 'dns' | 'proxy' | 'kernel';
  /** Lower-case, without a trailing dot. Kernel: the rule destination it was routed by (may be `.example.com`). */
  readonly domain: string;
  /** Proxy: `https` (TLS with a server name) or `http`; kernel: `tcp` or `udp`. Unknown for DNS. */
  readonly transport?: 'https' | 'http' | 'tcp' | 'udp';
  readonly port?: number;
  /** Upper-case HTTP method, when the proxy saw the request. */
  readonly method?: string;
  /** The request path without its query string, when the proxy saw the request. */
  readonly path?: string;
  /** The proxy's answer (403). */
  readonly status?: number;
  /** The event's reason word of the first occurrence (`no-rule`, `path-default`, ...). */
  readonly reason?: string;
  readonly count: number;
  readonly firstTime: string;
  readonly lastTime: string;
  /** The agent of the first occurrence. */
  readonly agent?: string;
}

type Identity = Omit<ObservedRequest, 'key' | 'count' | 'firstTime' | 'lastTime' | 'agent' | 'reason' | 'status'> & { readonly status?: number };

const cleanName = (name: string | undefined): string | undefined => {
  const n = name?.trim().toLowerCase().replace(/\.$/, '');
  return n ? n : undefined;
};

/** The host and port of an HTTP authority (`api.example.com:8443`, `[::1]:443`). */
function splitAuthority(authority: string | undefined): { host?: string; port?: number } {
  if (!authority) return {};
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return {};
  const host = cleanName(m[1]!.replace(/^\[|\]$/g, ''));
  return { ...(host ? { host } : {}), ...(m[2] ? { port: Number(m[2]) } : {}) };
}

function identityOf(e: EgressEvent): Identity | undefined {
  if (e.verdict !== 'denied') return undefined;
  switch (e.source) {
    case 'dns': {
      const domain = cleanName(e.query?.name ?? e.domain);
      return domain ? { source: 'dns', domain } : undefined;
    }
    case 'proxy': {
      const authority = splitAuthority(e.http?.authority);
      const domain = cleanName(e.sni) ?? authority.host ?? cleanName(e.domain);
      if (!domain) return undefined;
      const transport = e.sni ? 'https' : e.http ? 'http' : undefined;
      const port = authority.port ?? e.dst?.port ?? (transport === 'https' ? 443 : transport === 'http' ? 80 : undefined);
      const path = e.http?.path?.split('?')[0];
      return {
        source: 'proxy',
        domain,
        ...(transport ? { transport } : {}),
        ...(port !== undefined ? { port } : {}),
        ...(e.http?.method ? { method: e.http.method.toUpperCase() } : {}),
        ...(path ? { path } : {}),
        ...(e.http?.status !== undefined ? { status: e.http.status } : {}),
      };
    }
    case 'kernel': {
      const domain = cleanName(e.domain);
      if (!domain) return undefined;
      const transport = e.l4 === 'tcp' || e.l4 === 'udp' ? e.l4 : undefined;
      return { source: 'kernel', domain, ...(transport ? { transport } : {}), ...(e.dst ? { port: e.dst.port } : {}) };
    }
    default:
      return undefined;
  }
}

/** The identity of the blocked request an event stands for, or undefined when it is not one. */
export function observedKey(e: EgressEvent): string | undefined {
  const id = identityOf(e);
  return id && [id.source, id.domain, id.transport ?? '', id.port ?? '', id.method ?? '', id.path ?? ''].join(' ');
}

const earlier = (a: string, b: string): boolean => Date.parse(a) < Date.parse(b);

/** The distinct blocked requests among `events`, in the order first seen, each counted. */
export function observedRequests(events: readonly EgressEvent[]): ObservedRequest[] {
  const seen = new Map<string, { -readonly [K in keyof ObservedRequest]: ObservedRequest[K] }>();
  for (const e of events) {
    const id = identityOf(e);
    if (!id) continue;
    const key = observedKey(e)!;
    const entry = seen.get(key);
    if (entry) {
      entry.count++;
      if (earlier(e.time, entry.firstTime)) entry.firstTime = e.time;
      if (earlier(entry.lastTime, e.time)) entry.lastTime = e.time;
      continue;
    }
    seen.set(key, {
      key,
      ...id,
      ...(e.reason ? { reason: e.reason } : {}),
      count: 1,
      firstTime: e.time,
      lastTime: e.time,
      ...(e.agent ? { agent: e.agent } : {}),
    });
  }
  return [...seen.values()];
}

/**
 * What to ask of the project file for an observed request, least privilege first: the path (and
 * method) the proxy saw, else the exact name on https 443; or why no such rule would allow it.
 */
export function allowRequestFor(o: ObservedRequest): { readonly request: AllowRequest } | { readonly reason: string } {
  if (o.domain.startsWith('.')) {
    return { reason: `the kernel saw only the rule destination ${o.domain}, not which name under it was asked for` };
  }
  if (o.path !== undefined && (o.transport === 'https' || o.transport === 'http')) {
    return {
      request: {
        kind: 'path',
        domain: o.domain,
        path: o.path,
        ...(o.method ? { method: o.method } : {}),
        proto: o.transport,
        ...(o.port !== undefined ? { port: o.port } : {}),
      },
    };
  }
  if ((o.port === undefined || o.port === 443) && o.transport !== 'http' && o.transport !== 'udp') return { request: { kind: 'domain', domain: o.domain } };
  return {
    reason: `${o.transport ?? 'traffic'} to port ${o.port ?? '?'} is not https on 443, which add_domains allows; write a rules entry with its proto and port by hand`,
  };
}
