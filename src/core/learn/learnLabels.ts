/**
 * What learn mode shows people: the status bar text, one pick per observed request, the wildcard
 * suggestions and the apply prompt. Pure, so the words are tested without an editor.
 */
import { wildcardParentOf } from '../config/projectEdits';
import { allowRequestFor, type ObservedRequest } from './observedRequests';

/** `:8443` when the port is not the transport's usual one. */
export function portSuffix(o: ObservedRequest): string {
  if (o.port === undefined) return '';
  const usual = o.transport === 'http' ? 80 : 443;
  return o.port === usual ? '' : `:${o.port}`;
}

/** The request in a few words: `api.x.com GET /v1/models`, `github.com tcp:22`. */
export function requestWords(o: ObservedRequest): string {
  const where = o.source === 'kernel' && o.port !== undefined ? `${o.domain} ${o.transport ?? 'ip'}:${o.port}` : o.domain + portSuffix(o);
  return [where, o.method, o.path].filter(Boolean).join(' ');
}

function refusedBy(o: ObservedRequest): string {
  switch (o.source) {
    case 'dns':
      return 'DNS refused';
    case 'proxy':
      return o.status !== undefined ? `proxy ${o.status}` : 'proxy refused';
    case 'kernel':
      return 'kernel denied';
  }
}

/** The pick's label: `blocked.test — DNS refused ×3`, `api.x.com GET /v1/models — proxy 403 ×1`. */
export const observedLabel = (o: ObservedRequest): string => `${requestWords(o)} — ${refusedBy(o)} ×${o.count}`;

/** The pick's detail: what approving it adds, or why it cannot be proposed. */
export function observedDetail(o: ObservedRequest): string {
  const plan = allowRequestFor(o);
  if ('reason' in plan) return `Cannot be proposed: ${plan.reason}.`;
  const r = plan.request;
  if (r.kind === 'path') return `Adds a path rule: only ${r.method ?? 'any method'} ${r.path} on ${r.domain}${portSuffix(o)}.`;
  if (r.kind === 'domain') return `Adds ${r.domain} to add_domains (https, every path).`;
  return `Adds .${r.parent} to add_domains.`;
}

/** A wildcard worth offering: two or more observed names share the parent. */
export interface WildcardSuggestion {
  readonly parent: string;
  readonly domains: readonly string[];
}

/** Parents (`.foo.com`) shared by at least two observed names that would become add_domains entries, by parent. */
export function wildcardSuggestions(observed: readonly ObservedRequest[]): WildcardSuggestion[] {
  const byParent = new Map<string, Set<string>>();
  for (const o of observed) {
    const plan = allowRequestFor(o);
    if ('reason' in plan || plan.request.kind !== 'domain') continue;
    const parent = wildcardParentOf(o.domain);
    if (!parent) continue;
    byParent.set(parent, (byParent.get(parent) ?? new Set()).add(o.domain));
  }
  return [...byParent]
    .filter(([, names]) => names.size >= 2)
    .map(([parent, names]) => ({ parent, domains: [...names].sort() }))
    .sort((a, b) => (a.parent < b.parent ? -1 : a.parent > b.parent ? 1 : 0));
}

/** `.foo.com — every name under foo.com (broader: a.foo.com, b.foo.com seen)`. */
export const wildcardLabel = (s: WildcardSuggestion): string => `${s.parent} — every name under ${s.parent.slice(1)} (broader; seen: ${s.domains.join(', ')})`;

/** The status bar while recording. */
export const learningStatusText = (agent: string, blocked: number): string => `$(record) Learning: ${agent} (${blocked} blocked)`;

export const learningTooltip = (agent: string): string =>
  `Recording what the firewall blocks for ${agent}. Click to stop and review the rules that would allow it.`;

/** The notification that offers the proposal. */
export const applyPrompt = (rules: number, file: string): string => `Apply ${rules} rule${rules === 1 ? '' : 's'} to ${file}?`;
