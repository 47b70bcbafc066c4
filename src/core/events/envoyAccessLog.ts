/**
 * Proxy decisions from Envoy's access log: one JSON object a line, the `json_format` of ACCESS_LOG
 * in src/core/render/envoy/envoyConfig.ts. With `json_format` every value is a string and an unset
 * one is `"-"` (Envoy's access log documentation, "Command Operators"). A denial is Envoy's own 403
 * (`direct_response`: a deny route, a refused path, a Host no rule owns; see FORBIDDEN in
 * routes.ts), a connection no filter chain matched (flag NR: a server name no rule allows), or a
 * missing cluster (NC). An upstream's own 403 is the server's answer to an allowed request.
 *
 * Envoy does not run where these tests run: the parser is tested with lines written from the
 * documented format, not with lines captured from Envoy.
 */
import { isIP } from 'node:net';
import { type AgentRef, agentFields, checkedEvent, type EgressEvent, parseEndpoint } from './eventSchema';

export interface EnvoyAccessLogContext {
  /** The agent behind a client address. */
  agentOfIp?(ip: string): AgentRef | undefined;
}

/** Response flags that mean the proxy refused the request or connection. */
const DENY_FLAGS: Record<string, string> = { NR: 'no-route', NC: 'no-cluster', UAEX: 'ext-authz' };
/** Response flags of allowed traffic that failed on the way, as reasons. */
const FAILURE_FLAGS: Record<string, string> = {
  UF: 'upstream-connect-failed',
  UH: 'no-healthy-upstream',
  UT: 'upstream-timeout',
  URX: 'upstream-retry-limit',
  UR: 'upstream-reset',
  UC: 'upstream-closed',
  UO: 'upstream-overflow',
  DF: 'dns-failed',
  DC: 'downstream-closed',
  LR: 'local-reset',
  DPE: 'downstream-protocol-error',
  UPE: 'upstream-protocol-error',
};
/** Route names of routes.ts / envoyConfig.ts whose direct response is FORBIDDEN, as reasons. */
const DENY_ROUTES: Record<string, string> = { deny: 'host-denied', 'refused-path': 'refused-path', 'path-default': 'path-default' };

/** A json_format value: `-`, empty and non-strings are unset. */
function field(record: Record<string, unknown>, key: string): string | undefined {
  const v = record[key];
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return typeof v === 'string' && v !== '-' && v !== '' ? v : undefined;
}

/** The host of an authority (`api.example.com:8443`, `[2001:db8::1]:443`), lower-cased. */
function hostOf(authority: string | undefined): string | undefined {
  if (!authority) return undefined;
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(authority);
  if (v6) return v6[1]!.toLowerCase();
  return authority.replace(/:\d+$/, '').toLowerCase() || undefined;
}

function denialReason(status: number | undefined, flags: readonly string[], details: string | undefined, route: string | undefined, upstream: string | undefined): string | undefined {
  for (const f of flags) if (DENY_FLAGS[f]) return f === 'NR' && !status ? 'no-filter-chain' : DENY_FLAGS[f];
  if (status !== 403) return undefined;
  // Envoy's own 403 says `direct_response`; a line without details: ours never reached an upstream.
  const ours = details !== undefined ? details === 'direct_response' : upstream === undefined;
  if (!ours) return undefined;
  if (route && DENY_ROUTES[route]) return DENY_ROUTES[route];
  return route && /^path-\d+$/.test(route) ? 'path-rule' : 'forbidden';
}

/** One access-log line → an event (allowed or denied); other lines → undefined. */
export function fromEnvoyAccessLog(line: string, ctx: EnvoyAccessLogContext = {}): EgressEvent | undefined {
  try {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) return undefined;
    const record = JSON.parse(trimmed) as unknown;
    if (typeof record !== 'object' || record === null || Array.isArray(record)) return undefined;
    const r = record as Record<string, unknown>;
    const startTime = field(r, 'time');
    const client = parseEndpoint(field(r, 'client'));
    if (!startTime || !client) return undefined; // not one of our access-log lines
    const time = new Date(startTime);
    if (Number.isNaN(time.getTime())) return undefined;

    const statusText = field(r, 'status');
    const status = statusText && /^\d{1,3}$/.test(statusText) && statusText !== '0' ? Number(statusText) : undefined;
    const flags = (field(r, 'flags') ?? '').split(',').filter((f) => /^[A-Z]+$/.test(f));
    const details = field(r, 'details');
    const route = field(r, 'route');
    const upstreamText = field(r, 'upstream');
    const method = field(r, 'method');
    const authority = field(r, 'authority');
    const path = field(r, 'path');
    const sni = field(r, 'sni')?.toLowerCase();

    const denied = denialReason(status, flags, details, route, upstreamText);
    const failure = flags.map((f) => FAILURE_FLAGS[f]).find((x) => x !== undefined);
    const reason = denied ?? failure;
    const domain = sni ?? hostOf(authority);
    const dst = parseEndpoint(upstreamText);
    const isHttp = method !== undefined || status !== undefined;
    return checkedEvent({
      time: time.toISOString(),
      source: 'proxy',
      verdict: denied ? 'denied' : 'allowed',
      ...agentFields(ctx.agentOfIp?.(client.ip)),
      ...(domain ? { domain } : {}),
      src: client,
      ...(dst ? { dst } : {}),
      l4: 'tcp',
      ...(reason ? { reason } : {}),
      ...(sni && !isIP(sni) ? { sni } : {}),
      ...(isHttp
        ? {
            http: {
              ...(method ? { method } : {}),
              ...(authority ? { authority } : {}),
              ...(path ? { path } : {}),
              ...(status !== undefined ? { status } : {}),
              ...(flags.length ? { flags: flags.join(',') } : {}),
              ...(details ? { details } : {}),
              ...(route ? { route } : {}),
            },
          }
        : {}),
    });
  } catch {
    return undefined;
  }
}
