import { type CompletionItem, CompletionItemKind, InsertTextFormat, MarkupKind, type Position } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import { childSchema, isRecord, type JsonSchema, propertiesOf, schemaAt, valueSuggestions } from '../../core/config/jsonSchema';
import { cursorContext } from '../../core/yaml/cursorPath';
import { describeKey } from './hover';

const isContainer = (s: JsonSchema): boolean => Object.keys(propertiesOf(s)).length > 0 || isRecord(s) || !!childSchema(s, 0);

/** Key completions from the schema at the cursor's mapping, and enum/example values for scalars. */
export function completion(document: TextDocument, root: JsonSchema, position: Position): CompletionItem[] {
  const ctx = cursorContext(document.getText(), position.line, position.character);
  if (ctx.kind === 'value') {
    const schema = schemaAt(root, ctx.path);
    if (!schema) return [];
    return valueSuggestions(schema).map((value, i) => ({
      label: value,
      kind: CompletionItemKind.Value,
      sortText: String(i).padStart(3, '0'),
    }));
  }
  const schema = schemaAt(root, ctx.path);
  if (!schema) return [];
  const items: CompletionItem[] = Object.entries(propertiesOf(schema)).map(([key, child]) => {
    const nested = isContainer(child);
    const list = !!childSchema(child, 0) && Object.keys(propertiesOf(child)).length === 0;
    return {
      label: key,
      kind: nested ? CompletionItemKind.Module : CompletionItemKind.Property,
      documentation: { kind: MarkupKind.Markdown, value: describeKey([...ctx.path, key], child) },
      insertText: nested ? `${key}:\n${' '.repeat(position.character - ctx.prefix.length + 2)}${list ? '- ' : ''}$0` : `${key}: $0`,
      insertTextFormat: InsertTextFormat.Snippet,
    };
  });
  // In a list of scalars (e.g. `methods`), a `- ` line takes a value, not a key.
  const items2 = schema.type !== 'object' ? valueSuggestions(schema).map((label) => ({ label, kind: CompletionItemKind.Value })) : [];
  return [...items, ...items2];
}
