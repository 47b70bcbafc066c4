/**
 * Where the cursor is in the key structure of a YAML file that may be half-typed (so it cannot
 * always be parsed): found from indentation, the way a person reads it. Sequence items appear as
 * index 0, which is all schema navigation needs.
 */

export type CursorContext =
  /** Typing a key (or nothing yet) inside the mapping at `path`. */
  | { readonly kind: 'key'; readonly path: (string | number)[]; readonly prefix: string }
  /** Typing the value of `path` (a key's value, or an item of a list). */
  | { readonly kind: 'value'; readonly path: (string | number)[]; readonly prefix: string };

interface Entry {
  readonly col: number;
  readonly kind: 'dash' | 'key';
  readonly key?: string;
}

const KEY = /^([A-Za-z_][\w.-]*|"[^"]*"|'[^']*')\s*:(?=\s|$)/;

/** Dashes and keys at the start of a line, with their columns: `  - dst: x` → [dash@2, key dst@4]. */
function entriesOf(line: string): Entry[] {
  const out: Entry[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ') i++;
    if (i >= line.length || line[i] === '#') return out;
    if (line[i] === '-' && (line[i + 1] === ' ' || i + 1 === line.length)) {
      out.push({ col: i, kind: 'dash' });
      i++;
      continue;
    }
    const m = KEY.exec(line.slice(i));
    if (m) out.push({ col: i, kind: 'key', key: m[1]!.replace(/^["']|["']$/g, '') });
    return out;
  }
}

/** The path of the mapping or sequence that contains a thing at column `col` of line `lineNo`. */
function containerPath(lines: readonly string[], lineNo: number, col: number, inSeqItemAt: number | undefined): (string | number)[] {
  const path: (string | number)[] = [];
  let limit = col;
  let seekingSeqParent = false;
  if (inSeqItemAt !== undefined) {
    path.unshift(0);
    limit = inSeqItemAt;
    seekingSeqParent = true;
  }
  for (let l = lineNo - 1; l >= 0 && limit > 0; l--) {
    const entries = entriesOf(lines[l]!);
    if (entries.length === 0) continue;
    // The rightmost entry left of the limit is the nearest enclosing one on this line.
    let idx = -1;
    for (let k = entries.length - 1; k >= 0; k--) {
      const e = entries[k]!;
      const enclosing = seekingSeqParent ? e.col < limit || (e.col === limit && e.kind === 'key') : e.col < limit;
      if (enclosing) {
        idx = k;
        break;
      }
    }
    if (idx < 0) continue;
    for (let k = idx; k >= 0; k--) {
      const e = entries[k]!;
      if (e.kind === 'key') {
        path.unshift(e.key!);
        seekingSeqParent = false;
      } else {
        path.unshift(0);
        seekingSeqParent = true;
      }
      limit = e.col;
    }
  }
  return path;
}

/** What is being typed at (line, character) — both 0-based — of `text`. */
export function cursorContext(text: string, line: number, character: number): CursorContext {
  const lines = text.split(/\r?\n/);
  const current = (lines[line] ?? '').slice(0, character);
  const entries = entriesOf(current);
  const last = entries[entries.length - 1];
  const dashes = entries.filter((e) => e.kind === 'dash');
  const lastDash = dashes[dashes.length - 1];

  if (last?.kind === 'key') {
    // `key: partial` → completing the value of `key` (or, inside `[ ]`, an item of it).
    const afterColon = current.slice(current.indexOf(':', last.col) + 1).trimStart();
    const parent = containerPath(lines, line, last.col, lastDash ? lastDash.col : undefined);
    const flowList = afterColon.startsWith('[');
    const prefix = (flowList ? afterColon.slice(afterColon.lastIndexOf(',', afterColon.length) + 1).replace(/^\[/, '') : afterColon).trim().replace(/^["']/, '');
    return { kind: 'value', path: flowList ? [...parent, last.key!, 0] : [...parent, last.key!], prefix };
  }
  const typed = current.trimStart().replace(/^(-\s+)+/, '');
  const col = current.length - typed.length;
  if (lastDash && typed !== '' && !/^[A-Za-z_]/.test(typed)) {
    return { kind: 'value', path: containerPath(lines, line, lastDash.col, lastDash.col), prefix: typed.replace(/^["']/, '') };
  }
  if (lastDash) {
    // `- ` then a word: a key of the item's mapping, or a scalar item. Offer both via the item path.
    return { kind: 'key', path: containerPath(lines, line, col, lastDash.col), prefix: typed };
  }
  return { kind: 'key', path: containerPath(lines, line, col, undefined), prefix: typed };
}
