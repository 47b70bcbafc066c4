import type { Document } from 'yaml';
import type { Problem } from '../problems';
import { rangeAt } from '../yaml/document';
import { childSchema, closestKey, IGNORED, isRecord, isStrictObject, type JsonSchema, propertiesOf, RENAMED, UNSUPPORTED } from './jsonSchema';
import { formatPath } from './schemaIssues';

/**
 * Warns about keys the schema does not know (clawker ignores them, so they are never errors outside
 * the firewall section) and about clawker keys this extension does not implement yet. Keys of strict
 * objects are left to the schema, which rejects them. Walks the value; positions are looked up in the
 * document only for the keys it reports.
 */
export function checkKeys(value: unknown, doc: () => Document.Parsed, root: JsonSchema): Problem[] {
  const problems: Problem[] = [];
  const report = (path: (string | number)[], problem: Omit<Problem, 'range'>, rename?: string): void => {
    const range = rangeAt(doc(), path, 'key');
    problems.push({ ...problem, range, ...(rename ? { fixes: [{ title: `Rename to '${rename}'`, edits: [{ range, newText: rename }] }] } : {}) });
  };
  const visit = (node: unknown, schema: JsonSchema, path: (string | number)[]): void => {
    if (Array.isArray(node)) {
      const items = childSchema(schema, 0);
      if (items) node.forEach((item, i) => visit(item, items, [...path, i]));
      return;
    }
    if (node === null || typeof node !== 'object' || isRecord(schema)) return;
    const props = propertiesOf(schema);
    for (const [key, child] of Object.entries(node)) {
      const keyPath = (): (string | number)[] => [...path, key]; // allocated only for a report
      const known = props[key];
      if (!known) {
        if (isStrictObject(schema)) continue;
        const guess = closestKey(key, Object.keys(props));
        report(
          keyPath(),
          { severity: 'warning', code: 'unknown-key', message: `unknown key '${formatPath(keyPath())}'${guess ? `: did you mean '${guess}'?` : '.'} It is not a clawker setting and is ignored.` },
          guess,
        );
        continue;
      }
      const ignored = known[IGNORED];
      if (ignored) {
        report(keyPath(), { severity: 'warning', code: 'unsupported-key', message: `'${formatPath(keyPath())}' is no longer read by clawker and is ignored: ${ignored}` });
      } else if (known[UNSUPPORTED]) {
        report(keyPath(), { severity: 'warning', code: 'unsupported-key', message: `'${formatPath(keyPath())}' is a clawker setting that Clawker for VS Code does not support yet; it is ignored here.` });
      } else {
        const instead = known[RENAMED];
        if (typeof instead === 'string') report(keyPath(), { severity: 'warning', code: 'renamed-key', message: `'${formatPath(keyPath())}' is an older name, still read: ${instead}` });
        visit(child, known, keyPath());
      }
    }
  };
  visit(value, root, []);
  return problems;
}
