import { type Hover, MarkupKind, type Position } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { type JsonSchema, schemaAt, UNSUPPORTED } from '../../core/config/jsonSchema';
import { formatPath } from '../../core/config/schemaIssues';
import { pathAtOffset } from '../../core/yaml/pathAtOffset';
import type { Loaded } from '../documentCache';
import { toRange } from './diagnostics';

/** Markdown for a key: its dotted path, its description, its default, and whether it is supported. */
export function describeKey(path: readonly (string | number)[], schema: JsonSchema): string {
  const parts = [`**${formatPath(path.map((s) => (typeof s === 'number' ? 0 : s))).replace(/\[0\]/g, '[]')}**`];
  if (schema.description) parts.push(schema.description);
  if (schema.default !== undefined && !(typeof schema.default === 'object' && Object.keys(schema.default as object).length === 0)) {
    parts.push(`Default: \`${JSON.stringify(schema.default)}\``);
  }
  if (schema[UNSUPPORTED]) parts.push('_Accepted for compatibility with clawker; not supported by Clawker for VS Code yet, so it is ignored._');
  return parts.join('\n\n');
}

export function hover(document: TextDocument, loaded: Loaded, root: JsonSchema, position: Position): Hover | null {
  const hit = pathAtOffset(loaded.parsed.doc, document.offsetAt(position));
  if (!hit) return null;
  // On a list item (e.g. a domain in add_domains) describe the list it belongs to.
  let path = hit.path;
  while (path.length > 0 && typeof path[path.length - 1] === 'number') path = path.slice(0, -1);
  const schema = schemaAt(root, path);
  if (!schema) return null;
  return { contents: { kind: MarkupKind.Markdown, value: describeKey(path, schema) }, range: toRange(document, hit.range) };
}
