/**
 * YAML with source positions: parse once with the `yaml` Document API, then answer "where is the
 * node at this path" for diagnostics, hovers and quick fixes.
 */
import * as jsYaml from 'js-yaml';
import { CORE_SCHEMA, load, type Type, YAMLException } from 'js-yaml';
import { type Document, isMap, isScalar, isSeq, type Node, parseDocument, type Pair, type Scalar } from 'yaml';
import type { OffsetRange, Problem, TextEdit } from '../problems';

export type YamlPath = readonly (string | number)[];

export interface ParsedYaml {
  readonly text: string;
  /** The plain JavaScript value, or undefined when the YAML could not be read. */
  readonly value: unknown;
  readonly problems: readonly Problem[];
  /** The document with source positions, built on first use (only needed to place a message). */
  readonly doc: Document.Parsed;
}

/**
 * Values are read with js-yaml: about 18× faster than the `yaml` Document API on large files (see
 * bench/validate), and, like clawker's own Go yaml.v3, it honours `<<` merge keys. Timestamps stay
 * text, as they do when clawker decodes them into string fields.
 */
// js-yaml exports its built-in types at run time; its type declarations omit them.
const VALUE_SCHEMA = CORE_SCHEMA.extend({ implicit: [(jsYaml as unknown as { types: { merge: Type } }).types.merge] });

/** Aliases can make a small file expand exponentially; refuse a value larger than this many nodes. */
const MAX_EXPANDED_NODES = 1_000_000;

function expandsWithin(value: unknown, budget: number): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    if (--budget < 0) return false;
    const v = stack.pop();
    if (Array.isArray(v)) stack.push(...v);
    else if (v !== null && typeof v === 'object') stack.push(...Object.values(v));
  }
  return true;
}

const syntaxProblem = (text: string, message: string, start: number, end: number): Problem => {
  // Point at the offending token, not at the indentation before it.
  while (text[start] === ' ' || text[start] === '\t') start++;
  return {
    severity: 'error',
    code: 'yaml-syntax',
    message: `YAML: ${message}. Fix the YAML syntax here; nothing in this file is applied until it parses.`,
    range: { start, end: Math.max(end, start + 1) },
  };
};

export function parseYaml(text: string): ParsedYaml {
  let doc: Document.Parsed | undefined;
  const getDoc = (): Document.Parsed => (doc ??= parseDocument(text, { prettyErrors: false, uniqueKeys: true, merge: true }));
  const parsed = (value: unknown, problems: Problem[]): ParsedYaml => ({
    text,
    value,
    problems,
    get doc() {
      return getDoc();
    },
  });
  let value: unknown;
  try {
    value = load(text, { schema: VALUE_SCHEMA, json: false }) ?? {};
  } catch (e) {
    // Report every syntax error the Document API finds, with ranges; js-yaml's first one otherwise.
    const problems = getDoc().errors.map((err) => syntaxProblem(text, firstLine(err.message), err.pos[0], err.pos[1]));
    if (problems.length === 0) {
      const mark = e instanceof YAMLException ? e.mark : undefined;
      const at = mark?.position ?? 0;
      problems.push(syntaxProblem(text, e instanceof YAMLException ? e.reason : String(e), at, at + 1));
    }
    return parsed(undefined, problems);
  }
  if (!expandsWithin(value, MAX_EXPANDED_NODES)) {
    return parsed(undefined, [syntaxProblem(text, `the document expands to more than ${MAX_EXPANDED_NODES} values through aliases`, 0, 1)]);
  }
  return parsed(value, []);
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
