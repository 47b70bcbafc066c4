import { type Document, isMap, isScalar, isSeq } from 'yaml';
import type { OffsetRange } from '../problems';

export interface NodeHit {
  readonly path: (string | number)[];
  /** Whether the offset is on the key itself or on its (scalar) value. */
  readonly on: 'key' | 'value';
  readonly range: OffsetRange;
}

/** The key or scalar value under `offset` in a parsed document, with its path. */
export function pathAtOffset(doc: Document.Parsed, offset: number): NodeHit | undefined {
  const inside = (r: readonly number[] | null | undefined): r is readonly number[] => !!r && offset >= r[0]! && offset <= r[1]!;
  const walk = (node: unknown, path: (string | number)[]): NodeHit | undefined => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (inside(pair.key.range)) return { path: [...path, key], on: 'key', range: { start: pair.key.range![0], end: pair.key.range![1] } };
        const value = pair.value as { range?: [number, number, number] } | null;
        if (value && inside(value.range)) return walk(value, [...path, key]);
      }
      return undefined;
    }
    if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) {
        const item = node.items[i] as { range?: [number, number, number] } | null;
        if (item && inside(item.range)) return walk(item, [...path, i]);
      }
      return undefined;
    }
    if (isScalar(node) && inside(node.range)) return { path, on: 'value', range: { start: node.range![0], end: node.range![1] } };
    return undefined;
  };
  return walk(doc.contents, []);
}
