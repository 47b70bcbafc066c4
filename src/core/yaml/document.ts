/**
 * YAML with source positions: parse once with the `yaml` Document API, then answer "where is the
 * node at this path" for diagnostics, hovers and quick fixes.
 */
import { type Document, isMap, isScalar, isSeq, type Node, parseDocument, type Pair, type Scalar } from 'yaml';
import type { OffsetRange, Problem, TextEdit } from '../problems';

export type YamlPath = readonly (string | number)[];

export interface ParsedYaml {
  readonly text: string;
  readonly doc: Document.Parsed;
  /** The plain JavaScript value, or undefined when the YAML could not be read. */
  readonly value: unknown;
  readonly problems: readonly Problem[];
}

const MAX_ALIASES = 100; // refuse "billion laughs" alias expansion

export function parseYaml(text: string): ParsedYaml {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, keepSourceTokens: false });
  const problems: Problem[] = [];
  for (const err of doc.errors) {
    let start = err.pos[0];
    // Point at the offending token, not at the indentation before it.
    while (text[start] === ' ' || text[start] === '\t') start++;
    problems.push({
      severity: 'error',
      code: 'yaml-syntax',
      message: `YAML: ${firstLine(err.message)}. Fix the YAML syntax here; nothing in this file is applied until it parses.`,
      range: { start, end: Math.max(err.pos[1], start + 1) },
    });
  }
  if (problems.length > 0) return { text, doc, value: undefined, problems };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES }) ?? {};
  } catch (e) {
    problems.push({
      severity: 'error',
      code: 'yaml-syntax',
      message: `YAML: ${e instanceof Error ? e.message : String(e)}`,
      range: { start: 0, end: Math.min(1, text.length) },
    });
  }
  return { text, doc, value, problems };
}

const firstLine = (message: string): string => message.split('\n')[0]!.replace(/\s+at line \d+, column \d+:?$/, '').replace(/\.$/, '');

/** The pair or sequence item at `path`, with the node and (for maps) the pair holding it. */
function locate(doc: Document.Parsed, path: YamlPath): { node?: Node | null; pair?: Pair } | undefined {
  let current: unknown = doc.contents;
  let pair: Pair | undefined;
  for (const segment of path) {
    if (isMap(current)) {
      pair = current.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment)) as Pair | undefined;
      if (!pair) return undefined;
      current = pair.value;
    } else if (isSeq(current) && typeof segment === 'number') {
      pair = undefined;
      current = current.items[segment];
      if (current === undefined) return undefined;
    } else return undefined;
  }
  return { node: (current ?? null) as Node | null, ...(pair ? { pair } : {}) };
}

export function nodeAt(doc: Document.Parsed, path: YamlPath): Node | undefined {
  return locate(doc, path)?.node ?? undefined;
}

const rangeOfNode = (node: Node | null | undefined): OffsetRange | undefined =>
  node?.range ? { start: node.range[0], end: Math.max(node.range[1], node.range[0] + 1) } : undefined;

/**
 * The source range of the value (or key) at `path`. When the exact node is missing (a required key
 * that is absent), falls back to the nearest ancestor's key, so a message still lands somewhere useful.
 */
export function rangeAt(doc: Document.Parsed, path: YamlPath, part: 'key' | 'value' = 'value'): OffsetRange {
  for (let depth = path.length; depth >= 0; depth--) {
    const found = locate(doc, path.slice(0, depth));
    if (!found) continue;
    const exact = depth === path.length;
    const wantKey = part === 'key' || !exact;
    if (wantKey && found.pair && isScalar(found.pair.key)) {
      const r = rangeOfNode(found.pair.key as Scalar);
      if (r) return r;
    }
    const r = rangeOfNode(found.node);
    if (r) return exact || !isMap(found.node) ? r : { start: r.start, end: r.start + 1 };
  }
  return { start: 0, end: 0 };
}

/** An edit that replaces the scalar at `path` with `value`, keeping its quoting style. */
export function replaceScalarEdit(doc: Document.Parsed, text: string, path: YamlPath, value: string): TextEdit | undefined {
  const node = nodeAt(doc, path);
  if (!isScalar(node) || !node.range) return undefined;
  const [start, end] = node.range;
  const quote = text[start] === '"' || text[start] === "'" ? text[start]! : '';
  const needsQuotes = quote === '' && /^[~*&!|>%@`'"#]|:\s|\s#|^\s|\s$/.test(value);
  const q = quote || (needsQuotes ? '"' : '');
  return { range: { start, end }, newText: `${q}${value}${q}` };
}

/** An edit that deletes the sequence item at `path` together with its `- ` marker and its lines. */
export function removeSeqItemEdit(doc: Document.Parsed, text: string, path: YamlPath): TextEdit | undefined {
  const node = nodeAt(doc, path);
  if (!node?.range) return undefined;
  let start = node.range[0];
  // Walk back over the '- ' marker and indentation to the start of the line.
  let i = start - 1;
  while (i >= 0 && (text[i] === ' ' || text[i] === '\t')) i--;
  if (text[i] !== '-') return undefined; // a flow sequence: not offered
  i--;
  while (i >= 0 && (text[i] === ' ' || text[i] === '\t')) i--;
  if (i >= 0 && text[i] !== '\n') return undefined;
  start = i + 1;
  // A block node's range may already end after its newline; otherwise extend to the end of its line.
  let end = node.range[1];
  if (text[end - 1] !== '\n') {
    const newline = text.indexOf('\n', end);
    end = newline < 0 ? text.length : newline + 1;
  }
  return { range: { start, end }, newText: '' };
}
