import { isIPv6 } from 'node:net';
import type { EgressRequest } from './policy';

const TRANSPORTS: Record<string, { transport: EgressRequest['transport']; port?: number }> = {
  'https:': { transport: 'https', port: 443 },
  'http:': { transport: 'http', port: 80 },
  'wss:': { transport: 'wss', port: 443 },
  'ws:': { transport: 'ws', port: 80 },
  'ssh:': { transport: 'tcp', port: 22 },
  'tcp:': { transport: 'tcp' },
  'udp:': { transport: 'udp' },
};

/** The IPv4 address of an IPv4-mapped IPv6 address as the URL parser prints it (`::ffff:102:304`, never dotted). */
function ipv4OfMapped(host: string): string | undefined {
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!hex) return undefined;
  const [hi, lo] = [parseInt(hex[1]!, 16), parseInt(hex[2]!, 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/**
 * The path and query exactly as written: URL parsers resolve dot segments and re-encode, which
 * would hide from the check what the proxy refuses.
 */
function rawPathOf(url: string): string {
  // What the URL parser ignores: C0 controls and spaces around the URL, tabs and newlines in it.
  const written = url.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
  const rest = /[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^#]*)/i.exec(written)?.[1] ?? '';
  return rest.startsWith('/') ? rest : `/${rest}`;
}

export type ParsedRequest =
  | { readonly ok: true; readonly request: EgressRequest }
  /** `denied`: a request the firewall would refuse whatever the rules (native IPv6). */
  | { readonly ok: false; readonly message: string; readonly denied?: true };

/**
 * Reads `https://host/path`, `ssh://host`, `tcp://host:port`, `udp://host:port` (and http, ws, wss)
 * into a request. `port` overrides the URL's port; `method` applies to HTTP.
 */
export function parseRequestUrl(url: string, options: { method?: string; port?: number } = {}): ParsedRequest {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, message: `'${url}' is not a URL: write it like https://api.example.com/v1, ssh://github.com or tcp://db.example.com:5432` };
  }
  const kind = TRANSPORTS[parsed.protocol];
  if (!kind) return { ok: false, message: `'${parsed.protocol}' is not a scheme the firewall routes: use https, http, wss, ws, ssh, tcp or udp` };
  // Stryker disable next-line Regex: the URL parser puts brackets only around a whole IPv6 host, so either anchor alone is enough
  let host = parsed.hostname.toLowerCase().replace(/^\[|\]$/g, '');
  host = ipv4OfMapped(host) ?? host;
  if (isIPv6(host)) return { ok: false, denied: true, message: `${host} is a native IPv6 address: the firewall denies native IPv6 egress` };
  if (host === '') return { ok: false, message: `'${url}' has no host` };
  const port = options.port ?? (parsed.port ? Number(parsed.port) : kind.port);
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) {
    return { ok: false, message: `'${url}' needs a port from 1 to 65535 (in the URL or with --port)` };
  }
  const http = kind.transport !== 'tcp' && kind.transport !== 'udp';
  return {
    ok: true,
    request: {
      transport: kind.transport,
      host,
      port,
      ...(http ? { path: rawPathOf(url), method: (options.method ?? 'GET').toUpperCase() } : {}),
    },
  };
}
