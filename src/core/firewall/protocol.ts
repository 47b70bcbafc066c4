import { KNOWN_PROTOCOLS } from '../config/firewallSchema';
import { type Checked, error, info } from './finding';

export type KnownProtocol = (typeof KNOWN_PROTOCOLS)[number];

/** Protocols whose traffic Envoy sees as HTTP, so paths and methods can be matched. */
export const HTTP_FAMILY: ReadonlySet<string> = new Set(['https', 'http', 'ws', 'wss']);

/** Protocols that carry TLS terminated by the proxy with a per-domain certificate. */
export const TLS_TERMINATED: ReadonlySet<string> = new Set(['https', 'wss']);

/** Port used when a rule leaves `port` empty; protocols without one need an explicit port. */
export const DEFAULT_PORTS: Readonly<Record<string, number>> = { https: 443, wss: 443, http: 80, ws: 80, ssh: 22 };

// An "opaque L7 name" is passed through as TCP; keep it to a URI-scheme-like token.
const OPAQUE_NAME = /^[a-z][a-z0-9+.-]{0,31}$/;

/** Normalises `proto`: lower case, `tls` → `https`; any other token is opaque TCP pass-through. */
export function checkProtocol(raw: string): Checked<string> {
  const proto = raw.trim().toLowerCase();
  if (proto === 'tls') {
    return {
      value: 'https',
      findings: [info('proto-legacy-tls', "'tls' is the legacy name of 'https' and is read as 'https'.", { title: "Replace 'tls' with 'https'", value: 'https' })],
    };
  }
  if (proto === '') return { value: 'https', findings: [] };
  if (!OPAQUE_NAME.test(proto)) {
    return {
      findings: [
        error(
          'proto-invalid',
          `'${raw}' is not a protocol: use one of ${KNOWN_PROTOCOLS.join(', ')}, or a name made of letters, digits, '+', '-' and '.' for TCP pass-through.`,
        ),
      ],
    };
  }
  return { value: proto, findings: [] };
}

export const isKnownProtocol = (proto: string): proto is KnownProtocol => (KNOWN_PROTOCOLS as readonly string[]).includes(proto);

/** Everything that is not HTTP-family or UDP travels as raw TCP through a pinned listener. */
export const isTcpLike = (proto: string): boolean => !HTTP_FAMILY.has(proto) && proto !== 'udp';
