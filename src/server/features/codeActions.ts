import { type CodeAction, CodeActionKind, type Range } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { Problem } from '../../core/problems';
import { toDiagnostic, toRange } from './diagnostics';

const overlaps = (a: Range, b: Range): boolean =>
  !(a.end.line < b.start.line || (a.end.line === b.start.line && a.end.character < b.start.character) ||
    b.end.line < a.start.line || (b.end.line === a.start.line && b.end.character < a.start.character));

/** Quick fixes for the problems touching `range`: each problem's obvious fixes, nothing guessed. */
export function codeActions(document: TextDocument, problems: readonly Problem[], range: Range): CodeAction[] {
  const actions: CodeAction[] = [];
  for (const problem of problems) {
    if (!problem.fixes?.length) continue;
    const diagnostic = toDiagnostic(document, problem);
    if (!overlaps(diagnostic.range, range)) continue;
    for (const fix of problem.fixes) {
      actions.push({
        title: fix.title,
        kind: CodeActionKind.QuickFix,
        diagnostics: [diagnostic],
        isPreferred: problem.fixes.length === 1,
        edit: { changes: { [document.uri]: fix.edits.map((e) => ({ range: toRange(document, e.range), newText: e.newText })) } },
      });
    }
  }
  return actions;
}
