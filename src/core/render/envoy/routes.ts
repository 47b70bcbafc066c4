/**
 * HTTP routes for one rule, in the order Envoy evaluates them (the first match wins): the refusal
 * of paths that could decode differently, then path rules longest string first (ties in declaration
 * order; `methods` as a `:method` header match, so other methods fall through), then `path_default`.
 * This is the same decision `Policy.decide` makes; test/unit/envoyRoutes.test.ts holds them equal.
 */
import type { NormalizedPathRule, NormalizedRule } from '../../firewall/rule';
import { REFUSED_PATH_PATTERN } from '../../policy/requestPath';
import type { Json } from './types';

export const FORBIDDEN: Json = { status: 403, body: { inline_string: 'Forbidden\n' } };

/** Escapes RE2 metacharacters, so that a method token is matched literally. */
const re2Literal = (s: string): string => s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');

function pathMatch(pr: NormalizedPathRule): Json {
  const path = pr.match.kind === 'prefix' ? { prefix: pr.match.prefix } : { safe_regex: { regex: pr.match.pattern } };
  if (pr.methods.length === 0) return path;
  // One method is an alternation of one: the escaped token, matched whole.
  return { ...path, headers: [{ name: ':method', string_match: { safe_regex: { regex: pr.methods.map(re2Literal).join('|') } } }] };
}

/** Path rules in the order that makes Envoy's first match the policy's longest match. */
export function orderedPathRules(rule: NormalizedRule): NormalizedPathRule[] {
  // Array.prototype.sort is stable (ES2019): rules of equal length keep their declaration order.
  return [...rule.pathRules].sort((a, b) => b.path.length - a.path.length);
}

export function routesFor(rule: NormalizedRule, cluster: string, websocket: boolean): Json[] {
  const forward: Json = { cluster, ...(websocket ? { upgrade_configs: [{ upgrade_type: 'websocket' }] } : {}) };
  const verdict = (action: 'allow' | 'deny', name: string, match: Json): Json =>
    action === 'allow' ? { name, match, route: forward } : { name, match, direct_response: FORBIDDEN };
  const routes: Json[] = [{ name: 'refused-path', match: { safe_regex: { regex: REFUSED_PATH_PATTERN } }, direct_response: FORBIDDEN }];
  orderedPathRules(rule).forEach((pr, i) => routes.push(verdict(pr.action, `path-${i}`, pathMatch(pr))));
  const fallback = rule.pathRules.length === 0 ? 'allow' : rule.pathDefault;
  routes.push(verdict(fallback, 'path-default', { prefix: '/' }));
  return routes;
}
