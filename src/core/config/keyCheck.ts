import { type Document, isMap, isScalar, isSeq } from 'yaml';
import type { Problem } from '../problems';
import { formatPath } from './schemaIssues';
import { childSchema, closestKey, IGNORED, isRecord, isStrictObject, type JsonSchema, propertiesOf, UNSUPPORTED } from './jsonSchema';

/**
 * Warns about keys the schema does not know (clawker ignores them, so they are never errors outside
 * the firewall section) and about clawker keys this extension does not implement yet. Keys of strict
 * objects are left to the schema, which rejects them.
 */
export function checkKeys(doc: Document.Parsed, root: JsonSchema): Problem[] {
  const problems: Problem[] = [];
  const visit = (node: unknown, schema: JsonSchema, path: (string | number)[]): void => {
    if (isSeq(node)) {
      const items = childSchema(schema, 0);
      if (items) node.items.forEach((item, i) => visit(item, items, [...path, i]));
      return;
    }
    if (!isMap(node)) return;
    if (isRecord(schema)) return;
    const props = propertiesOf(schema);
    for (const pair of node.items) {
      if (!isScalar(pair.key) || !pair.key.range) continue;
      const key = String(pair.key.value);
      const range = { start: pair.key.range[0], end: pair.key.range[1] };
      const dotted = formatPath([...path, key]);
      const child = props[key];
      if (!child) {
        if (isStrictObject(schema)) continue;
        const guess = closestKey(key, Object.keys(props));
        problems.push({
          severity: 'warning',
          code: 'unknown-key',
          message: `unknown key '${dotted}'${guess ? `: did you mean '${guess}'?` : ''} It is not a clawker setting and is ignored.`,
          range,
          ...(guess ? { fixes: [{ title: `Rename to '${guess}'`, edits: [{ range, newText: guess }] }] } : {}),
        });
        continue;
      }
      const ignored = child[IGNORED];
      if (ignored) {
        problems.push({ severity: 'warning', code: 'unsupported-key', message: `'${dotted}' is no longer read by clawker and is ignored: ${ignored}`, range });
        continue;
      }
      if (child[UNSUPPORTED]) {
        problems.push({
          severity: 'warning',
          code: 'unsupported-key',
          message: `'${dotted}' is a clawker setting that Clawker for VS Code does not support yet; it is ignored here.`,
          range,
        });
        continue;
      }
      visit(pair.value, child, [...path, key]);
    }
  };
  visit(doc.contents, root, []);
  return problems;
}
