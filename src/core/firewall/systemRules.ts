import type { NormalizedRule } from './rule';

const https = (dst: string, extra: Partial<NormalizedRule> = {}): NormalizedRule => {
  const wildcard = dst.startsWith('.');
  return {
    dst: { kind: 'domain', name: wildcard ? dst.slice(1) : dst, wildcard },
    proto: 'https',
    port: { lo: 443, hi: 443 },
    action: 'allow',
    pathRules: [],
    pathDefault: 'deny',
    origin: 'system',
    ...extra,
  };
};

/**
 * The built-in allowlist Claude Code itself needs (the spec's "Default Allowed Domains"). Merged
 * first, so a project rule with the same `destination:protocol:port` can never replace one.
 */
export const SYSTEM_RULES: readonly NormalizedRule[] = Object.freeze([
  https('api.anthropic.com'),
  https('claude.com'),
  https('platform.claude.com'),
  // User-generated content on claude.ai (shared and public pages) is denied; the rest is allowed.
  https('.claude.ai', {
    pathRules: [
      { path: '/public/', match: { kind: 'prefix', prefix: '/public/' }, action: 'deny', methods: [] },
      { path: '/share/', match: { kind: 'prefix', prefix: '/share/' }, action: 'deny', methods: [] },
    ],
    pathDefault: 'allow',
  }),
  https('mcp-proxy.anthropic.com'),
  https('registry.npmjs.org'),
  https('sentry.io'),
  https('statsig.anthropic.com'),
  https('statsig.com'),
  https('.datadoghq.com'),
  https('.datadoghq.eu'),
]);
