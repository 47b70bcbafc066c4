/**
 * Appending an item to a sequence at a key path of a YAML file by inserting text, never by
 * re-stringifying the document: comments, blank lines, quoting and line endings elsewhere stay
 * byte for byte. Positions come from the `yaml` package's parsed nodes (`node.range`); new text
 * copies the indentation of the collection it goes into, and the file's own indentation style for
 * collections it has to create. Missing keys and empty (`key:`) values on the way are created.
 *
 * Serves src/core/config/projectEdits.ts (the `.clawker.yaml` quick fixes and learn mode).
 */
import { load as loadJsYaml, CORE_SCHEMA } from 'js-yaml';
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type Node, type Pair, parse, visit, type YAMLMap, type YAMLSeq } from 'yaml';
import type { TextEdit } from '../config/projectEdits';

/** A value to write. Scalars carry their YAML text, already quoted (see formatScalar). */
export type Fragment =
  | { readonly kind: 'scalar'; readonly text: string }
  | { readonly kind: 'seq'; readonly items: readonly Fragment[]; readonly flow?: boolean }
  | { readonly kind: 'map'; readonly entries: readonly (readonly [string, Fragment])[] };

export type YamlPath = readonly (string | number)[];
export type QuoteStyle = 'plain' | 'double' | 'single';

export const scalar = (text: string): Fragment => ({ kind: 'scalar', text });

/** True when `value` reads back as the same string, plain, in block and flow context, by both YAML readers we use. */
function plainSafe(value: string): boolean {
  // Conservative: URL-ish characters only, none that YAML gives a meaning to at the start or in flow.
  if (!/^[A-Za-z0-9_./][A-Za-z0-9_./~:@!$&'()*+;=%-]*$/.test(value) || value.endsWith(':')) return false;
  try {
    const contexts = [`- ${value}\n`, `[${value}]\n`];
    return contexts.every((t) => {
      const a = parse(t) as unknown;
      const b = loadJsYaml(t, { schema: CORE_SCHEMA }) as unknown;
      return Array.isArray(a) && a[0] === value && Array.isArray(b) && b[0] === value;
    });
  } catch {
    return false;
  }
}

/** `value` as a YAML scalar in `style` when that style can hold it, else double-quoted (JSON's quoting is valid YAML). */
export function formatScalar(value: string, style: QuoteStyle = 'plain'): string {
  if (style === 'plain' && plainSafe(value)) return value;
  // eslint-disable-next-line no-control-regex
  if (style === 'single' && !/[\x00-\x1f\x7f]/.test(value)) return `'${value.replace(/'/g, "''")}'`;
  return JSON.stringify(value);
}

/** How a scalar node is quoted in the file. */
export function quoteStyleOf(node: unknown): QuoteStyle | undefined {
  if (!isScalar(node)) return undefined;
  return node.type === 'QUOTE_DOUBLE' ? 'double' : node.type === 'QUOTE_SINGLE' ? 'single' : 'plain';
}

/** A path for messages: `security.firewall.rules[2].path_rules`. */
export const describePath = (path: YamlPath): string =>
  path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('') || 'the file';

/** The file's conventions for new collections. */
interface Layout {
  readonly eol: string;
  /** Extra indentation of a nested mapping's keys. */
  readonly step: number;
  /** Indentation of a block sequence's `-` relative to its key (0: `key:\n- x`). */
  readonly seqIndent: number;
}

type Ranged = Node & { range: [number, number, number] };
const hasRange = (n: unknown): n is Ranged => n !== null && typeof n === 'object' && Array.isArray((n as Node).range);

const columnOf = (text: string, offset: number): number => offset - (text.lastIndexOf('\n', offset - 1) + 1);

function layoutOf(doc: Document.Parsed, text: string): Layout {
  let step: number | undefined;
  let seqIndent: number | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (!hasRange(pair.key)) return undefined;
      const keyCol = columnOf(text, pair.key.range[0]);
      const v = pair.value;
      if (step === undefined && isMap(v) && !v.flow && hasRange(v.items[0]?.key)) {
        const d = columnOf(text, v.items[0].key.range[0]) - keyCol;
        if (d > 0) step = d;
      }
      if (seqIndent === undefined && isSeq(v) && !v.flow && hasRange(v)) {
        const d = columnOf(text, v.range[0]) - keyCol;
        if (d >= 0) seqIndent = d;
      }
      return step !== undefined && seqIndent !== undefined ? visit.BREAK : undefined;
    },
  });
  const s = step ?? 2;
  return { eol: text.includes('\r\n') ? '\r\n' : '\n', step: s, seqIndent: seqIndent ?? s };
}

const spaces = (n: number): string => ' '.repeat(n);

function flowText(f: Fragment): string {
  switch (f.kind) {
    case 'scalar':
      return f.text;
    case 'seq':
      return `[${f.items.map(flowText).join(', ')}]`;
    case 'map':
      return `{${f.entries.map(([k, v]) => `${k}: ${flowText(v)}`).join(', ')}}`;
  }
}

/** Block lines of `key: value` with the key at column `col`. */
function entryLines(key: string, value: Fragment, col: number, layout: Layout): string[] {
  if (value.kind === 'scalar' || (value.kind === 'seq' && (value.flow || value.items.length === 0))) return [`${spaces(col)}${key}: ${flowText(value)}`];
  if (value.kind === 'map') return [`${spaces(col)}${key}:`, ...mapLines(value, col + layout.step, layout)];
  return [`${spaces(col)}${key}:`, ...value.items.flatMap((item) => seqItemLines(item, col + layout.seqIndent, 2, layout))];
}

function mapLines(map: Extract<Fragment, { kind: 'map' }>, col: number, layout: Layout): string[] {
  return map.entries.flatMap(([k, v]) => entryLines(k, v, col, layout));
}

/** Block lines of one `- item` with the dash at `dashCol` and the item `gap` columns after it. */
function seqItemLines(item: Fragment, dashCol: number, gap: number, layout: Layout): string[] {
  const marker = `${spaces(dashCol)}-${spaces(gap - 1)}`;
  if (item.kind !== 'map' || item.entries.length === 0) return [`${marker}${flowText(item)}`];
  const lines = mapLines(item, dashCol + gap, layout);
  return [`${marker}${lines[0]!.slice(dashCol + gap)}`, ...lines.slice(1)];
}

export class YamlEditError extends Error {}

/**
 * Where new lines go after `offset` (the end of the last thing they follow): the start of the
 * next line, past a comment on the same line. At the end of a file without a final newline, the
 * lines are led by a line break instead of ending with one, so the file still ends as it did.
 */
function lineInsertion(text: string, offset: number, lines: readonly string[], eol: string): TextEdit {
  if (offset === 0 || text[offset - 1] === '\n') return { offset, length: 0, text: lines.map((l) => l + eol).join('') };
  const newline = text.indexOf('\n', offset);
  if (newline >= 0) return { offset: newline + 1, length: 0, text: lines.map((l) => l + eol).join('') };
  return { offset: text.length, length: 0, text: lines.map((l) => eol + l).join('') };
}

/** Where a node's own content ends: trailing comments after a collection's last item are not part of it. */
function contentEnd(node: Ranged): number {
  if (isMap(node) && !node.flow && node.items.length > 0) {
    const last = node.items[node.items.length - 1]!;
    if (hasRange(last.value)) return contentEnd(last.value);
    if (hasRange(last.key)) return last.key.range[1];
  }
  if (isSeq(node) && !node.flow && node.items.length > 0) {
    const last = node.items[node.items.length - 1];
    if (hasRange(last)) return contentEnd(last);
  }
  return node.range[1];
}

const isNullScalar = (n: unknown): boolean => n === null || n === undefined || (isScalar(n) && n.value === null);

/** The value to create under the missing keys `rest`: nested mappings ending in a sequence holding `item`. */
function nested(rest: YamlPath, item: Fragment, at: YamlPath): Fragment {
  if (rest.length === 0) return { kind: 'seq', items: [item] };
  const [key, ...more] = rest;
  if (typeof key === 'number') throw new YamlEditError(`${describePath(at)} has no item ${key}`);
  return { kind: 'map', entries: [[key, nested(more, item, [...at, key])]] };
}

type Slot = { readonly kind: 'root' } | { readonly kind: 'pair'; readonly pair: Pair; readonly map: YAMLMap };

class Inserter {
  readonly layout: Layout;

  constructor(
    readonly doc: Document.Parsed,
    readonly text: string,
  ) {
    this.layout = layoutOf(doc, text);
  }

  /** A null value (empty file, `key:`, `key: ~`) becomes `value`. */
  fill(slot: Slot, value: Fragment, node: unknown): TextEdit[] {
    const { text, layout } = this;
    if (slot.kind === 'root') {
      if (value.kind !== 'map') throw new YamlEditError('the file is empty');
      if (hasRange(node) && node.range[1] > node.range[0]) throw new YamlEditError('the file holds only a null value; replace it with a mapping first');
      return [lineInsertion(text, text.length, mapLines(value, 0, layout), layout.eol)];
    }
    const { pair, map } = slot;
    if (!hasRange(pair.key)) throw new YamlEditError('a key without a position');
    const explicit = hasRange(node) && node.range[1] > node.range[0] ? node : undefined;
    if (map.flow) {
      const flow = flowText(value);
      if (explicit) return [{ offset: explicit.range[0], length: explicit.range[1] - explicit.range[0], text: flow }];
      const at = hasRange(node) ? node.range[0] : pair.key.range[1];
      return [{ offset: at, length: 0, text: text[at - 1] === ':' ? ` ${flow}` : flow }];
    }
    const keyCol = columnOf(text, pair.key.range[0]);
    if (value.kind === 'scalar') throw new YamlEditError('only collections are created');
    const lines =
      value.kind === 'map' ? mapLines(value, keyCol + layout.step, layout) : value.items.flatMap((i) => seqItemLines(i, keyCol + layout.seqIndent, 2, layout));
    const edits: TextEdit[] = [];
    let end = hasRange(node) ? node.range[1] : pair.key.range[1];
    if (explicit) {
      // `key: ~` → `key:` followed by the new lines; the spaces before `~` go too.
      let start = explicit.range[0];
      while (start > 0 && (text[start - 1] === ' ' || text[start - 1] === '\t')) start--;
      edits.push({ offset: start, length: explicit.range[1] - start, text: '' });
      end = explicit.range[1];
    }
    edits.push(lineInsertion(text, end, lines, layout.eol));
    return edits;
  }

  addPair(map: YAMLMap, key: string, value: Fragment): TextEdit[] {
    if (map.flow) {
      if (map.items.length === 0) return [{ offset: (map as unknown as Ranged).range[0] + 1, length: 0, text: `${key}: ${flowText(value)}` }];
      return [{ offset: contentEnd(map.items[map.items.length - 1]!.value as Ranged), length: 0, text: `, ${key}: ${flowText(value)}` }];
    }
    const first = map.items[0]?.key;
    if (!hasRange(first) || !hasRange(map)) throw new YamlEditError('a mapping without positions');
    const col = columnOf(this.text, first.range[0]);
    return [lineInsertion(this.text, contentEnd(map), entryLines(key, value, col, this.layout), this.layout.eol)];
  }

  appendItem(seq: YAMLSeq, item: Fragment): TextEdit[] {
    if (!hasRange(seq)) throw new YamlEditError('a sequence without a position');
    if (seq.flow) {
      if (seq.items.length === 0) return [{ offset: seq.range[0] + 1, length: 0, text: flowText(item) }];
      const last = seq.items[seq.items.length - 1];
      const end = hasRange(last) ? contentEnd(last) : isPair(last) && hasRange(last.value) ? contentEnd(last.value) : seq.range[1] - 1;
      return [{ offset: end, length: 0, text: `, ${flowText(item)}` }];
    }
    const dashCol = columnOf(this.text, seq.range[0]);
    // Copy the gap after `-` of the first item when it sits on the dash's line (`-   x`).
    const first = seq.items[0];
    const firstStart = hasRange(first) ? first.range[0] : -1;
    const sameLine = firstStart > seq.range[0] && !this.text.slice(seq.range[0], firstStart).includes('\n');
    const gap = sameLine ? Math.max(2, firstStart - seq.range[0]) : 2;
    return [lineInsertion(this.text, contentEnd(seq), seqItemLines(item, dashCol, gap, this.layout), this.layout.eol)];
  }
}

/**
 * The edits that append `item` to the sequence at `path`, creating the keys (and the sequence)
 * that are missing or empty on the way. Throws YamlEditError when something on the path is not
 * what it must be (a scalar where a mapping belongs, an alias, a missing sequence item).
 */
export function appendToSequence(doc: Document.Parsed, text: string, path: YamlPath, item: Fragment): TextEdit[] {
  const ins = new Inserter(doc, text);
  let node: unknown = doc.contents;
  let slot: Slot = { kind: 'root' };
  for (let i = 0; ; i++) {
    const here = path.slice(0, i);
    if (isAlias(node)) throw new YamlEditError(`${describePath(here)} is an alias (*${node.source}); edit the anchored value instead`);
    if (isNullScalar(node)) {
      if (typeof path[i] === 'number') throw new YamlEditError(`${describePath(here)} is empty`);
      return ins.fill(slot, nested(path.slice(i), item, here), node);
    }
    if (i === path.length) {
      if (!isSeq(node)) throw new YamlEditError(`${describePath(here)} is not a list`);
      return ins.appendItem(node, item);
    }
    const segment = path[i]!;
    if (typeof segment === 'number') {
      const next = isSeq(node) ? node.items[segment] : undefined;
      if (!isMap(next)) throw new YamlEditError(`${describePath([...here, segment])} is not a mapping`);
      node = next;
      continue;
    }
    if (!isMap(node)) throw new YamlEditError(`${describePath(here)} is not a mapping`);
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === segment);
    if (!pair) return ins.addPair(node, segment, nested(path.slice(i + 1), item, [...here, segment]));
    slot = { kind: 'pair', pair, map: node };
    node = pair.value;
  }
}
