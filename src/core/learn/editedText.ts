/**
 * A text edited in several steps, each step's edits given against the text as the previous step
 * left it, that can still say what changed against the original: the minimal edits an editor
 * applies at once (one undo step), even when a later step edits inside text an earlier one added.
 */
import { applyTextEdits, type TextEdit } from '../config/projectEdits';

/** A run of the current text: a slice of the original, or text that the edits put there. */
type Piece = { readonly from: 'original'; readonly start: number; readonly end: number } | { readonly from: 'edit'; readonly text: string };

const lengthOf = (p: Piece): number => (p.from === 'original' ? p.end - p.start : p.text.length);

export class EditedText {
  private pieces: Piece[];
  private current: string;

  constructor(readonly original: string) {
    this.pieces = original === '' ? [] : [{ from: 'original', start: 0, end: original.length }];
    this.current = original;
  }

  get text(): string {
    return this.current;
  }

  /** Applies edits given against the current text (in order, non-overlapping). */
  apply(edits: readonly TextEdit[]): void {
    const next = applyTextEdits(this.current, edits); // validates them first
    for (const e of [...edits].reverse()) this.replace(e.offset, e.length, e.text);
    this.current = next;
  }

  /** What changed against the original, as edits in order, adjacent changes merged. */
  edits(): TextEdit[] {
    const out: TextEdit[] = [];
    let at = 0; // how far the original is accounted for
    let added: string | undefined;
    for (const p of this.pieces) {
      if (p.from === 'edit') {
        added = (added ?? '') + p.text;
        continue;
      }
      if (p.start !== at || added !== undefined) out.push({ offset: at, length: p.start - at, text: added ?? '' });
      added = undefined;
      at = p.end;
    }
    if (at !== this.original.length || added !== undefined) out.push({ offset: at, length: this.original.length - at, text: added ?? '' });
    return out;
  }

  /** Makes a piece boundary at `offset` of the current text; returns the index of the piece starting there. */
  private cut(offset: number): number {
    let pos = 0;
    for (let i = 0; i < this.pieces.length; i++) {
      const p = this.pieces[i]!;
      if (pos === offset) return i;
      const len = lengthOf(p);
      if (offset < pos + len) {
        const k = offset - pos;
        const [a, b]: [Piece, Piece] =
          p.from === 'original'
            ? [
                { from: 'original', start: p.start, end: p.start + k },
                { from: 'original', start: p.start + k, end: p.end },
              ]
            : [
                { from: 'edit', text: p.text.slice(0, k) },
                { from: 'edit', text: p.text.slice(k) },
              ];
        this.pieces.splice(i, 1, a, b);
        return i + 1;
      }
      pos += len;
    }
    return this.pieces.length;
  }

  private replace(offset: number, length: number, text: string): void {
    const start = this.cut(offset);
    const end = this.cut(offset + length);
    this.pieces.splice(start, end - start, ...(text === '' ? [] : [{ from: 'edit', text } as const]));
  }
}
