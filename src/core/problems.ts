/**
 * A problem found in a configuration file, located by character offsets into the source text.
 * Every face (CLI, language server, extension) renders these; none computes its own.
 */

export type Severity = 'error' | 'warning' | 'info';

/** Half-open range of UTF-16 offsets into the source text. */
export interface OffsetRange {
  readonly start: number;
  readonly end: number;
}

export interface TextEdit {
  readonly range: OffsetRange;
  readonly newText: string;
}

/** A fix that is obvious enough to offer as a one-click quick fix. */
export interface Fix {
  readonly title: string;
  readonly edits: readonly TextEdit[];
}

/** Stable identifiers, so tests, quick fixes and docs can refer to a kind of problem. */
export type ProblemCode =
  | 'yaml-syntax'
  | 'schema'
  | 'unknown-key'
  | 'unsupported-key'
  | 'renamed-key'
  | 'dst-invalid'
  | 'dst-ipv6'
  | 'dst-cidr'
  | 'dst-wildcard-star'
  | 'proto-legacy-tls'
  | 'proto-invalid'
  | 'port-invalid'
  | 'port-required'
  | 'path-missing-slash'
  | 'path-invalid-char'
  | 'path-looks-like-regex'
  | 'path-regex-invalid'
  | 'path-regex-anchor'
  | 'method-invalid'
  | 'method-unusual'
  | 'l7-fields-ignored'
  | 'path-default-without-rules'
  | 'deny-with-path-rules'
  | 'duplicate-rule'
  | 'duplicate-path-rule';

export interface Problem {
  readonly severity: Severity;
  readonly code: ProblemCode;
  readonly message: string;
  readonly range: OffsetRange;
  readonly fixes?: readonly Fix[];
}

export const hasErrors = (problems: readonly Problem[]): boolean =>
  problems.some((p) => p.severity === 'error');

/** 1-based line and column of an offset, for human output (`FILE:LINE:COL`). */
export interface LineCol {
  readonly line: number;
  readonly col: number;
}

/** Maps offsets to 1-based line/column; built once per text, then O(log n) per lookup. */
export class LineIndex {
  private readonly lineStarts: number[] = [0];

  constructor(text: string) {
    for (let i = 0; i < text.length; i++) {
      if (text.charCodeAt(i) === 10 /* \n */) this.lineStarts.push(i + 1);
    }
  }

  lineCol(offset: number): LineCol {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, col: offset - this.lineStarts[lo]! + 1 };
  }

  lineStart(line: number): number {
    return this.lineStarts[line - 1] ?? 0;
  }
}

/** `FILE:LINE:COL: severity: MESSAGE`, the format `clawker validate` prints. */
export function formatProblem(file: string, index: LineIndex, problem: Problem): string {
  const { line, col } = index.lineCol(problem.range.start);
  return `${file}:${line}:${col}: ${problem.severity}: ${problem.message}`;
}
