/**
 * Learn mode's proposal: the least-privilege `.clawker.yaml` additions that would have allowed
 * exactly the blocked requests the user approved. An HTTP request seen by the proxy becomes a path
 * rule (several paths of one host share one rules entry); a name refused by DNS, or a TLS server
 * name the proxy refused, becomes an exact `add_domains` entry. Wildcards only when the user picked
 * one. Pure; the editor shows the result as a diff and applies its edits.
 */
import { type AllowRequest, allowInProject, type TextEdit } from '../config/projectEdits';
import { EditedText } from './editedText';
import { requestWords } from './learnLabels';
import { allowRequestFor, type ObservedRequest } from './observedRequests';

export * from './learnLabels';
export * from './observedRequests';

export interface Proposal {
  /** The whole file after every addition. */
  readonly text: string;
  /** The additions as minimal edits against the original text, in order, non-overlapping. */
  readonly edits: TextEdit[];
  /** One line per addition, for people: "add github.com to security.firewall.add_domains". */
  readonly added: string[];
  /** What was not added, and why: already allowed, or not expressible as a rule here. */
  readonly skipped: readonly { readonly what: string; readonly reason: string }[];
}

/** Code-unit order: the same on every machine, whatever its locale. */
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Stable order: wildcards, whole domains, paths; each by name, then path, method and port. */
function byRequest(a: AllowRequest, b: AllowRequest): number {
  const name = (r: AllowRequest): string => (r.kind === 'wildcard' ? r.parent : r.domain);
  const rank = { wildcard: 0, domain: 1, path: 2 } as const;
  const field = (r: AllowRequest, k: 'path' | 'method'): string => (r.kind === 'path' ? (r[k] ?? '') : '');
  const port = (r: AllowRequest): number => (r.kind === 'path' ? (r.port ?? 0) : 0);
  return (
    rank[a.kind] - rank[b.kind] ||
    cmp(name(a), name(b)) ||
    cmp(field(a, 'path'), field(b, 'path')) ||
    cmp(field(a, 'method'), field(b, 'method')) ||
    port(a) - port(b)
  );
}

/**
 * Applies allowInProject for each approved request to `text` in a stable order: the wildcards the
 * user picked, then whole domains, then paths, each by name (then path, method, port). Requests already allowed, by the file or by an earlier addition, are
 * skipped, as are those no rule written here could allow (with the reason).
 */
export function proposeRules(text: string, approved: readonly ObservedRequest[], options: { readonly wildcards?: readonly string[] } = {}): Proposal {
  const file = new EditedText(text);
  const added: string[] = [];
  const skipped: { what: string; reason: string }[] = [];
  const todo: { what: string; request: AllowRequest }[] = [];
  for (const parent of new Set(options.wildcards ?? [])) todo.push({ what: parent, request: { kind: 'wildcard', parent } });
  for (const o of approved) {
    const plan = allowRequestFor(o);
    if ('reason' in plan) skipped.push({ what: requestWords(o), reason: plan.reason });
    else todo.push({ what: requestWords(o), request: plan.request });
  }
  todo.sort((a, b) => byRequest(a.request, b.request));
  for (const { what, request } of todo) {
    try {
      const edit = allowInProject(file.text, request);
      if (edit.already) {
        skipped.push({ what, reason: edit.description });
        continue;
      }
      file.apply(edit.edits);
      added.push(edit.description);
    } catch (e) {
      skipped.push({ what, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  return { text: file.text, edits: file.edits(), added, skipped };
}
