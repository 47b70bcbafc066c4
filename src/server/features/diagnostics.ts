import { type Diagnostic, DiagnosticSeverity, type Range } from 'vscode-languageserver';
import type { TextDocument } from 'vscode-languageserver-textdocument';
import type { OffsetRange, Problem, Severity } from '../../core/problems';

export const DIAGNOSTIC_SOURCE = 'clawker';

const SEVERITY: Record<Severity, DiagnosticSeverity> = {
  error: DiagnosticSeverity.Error,
  warning: DiagnosticSeverity.Warning,
  info: DiagnosticSeverity.Information,
};

export const toRange = (document: TextDocument, range: OffsetRange): Range => ({
  start: document.positionAt(range.start),
  end: document.positionAt(range.end),
});

export function toDiagnostic(document: TextDocument, problem: Problem): Diagnostic {
  return {
    range: toRange(document, problem.range),
    severity: SEVERITY[problem.severity],
    source: DIAGNOSTIC_SOURCE,
    code: problem.code,
    message: problem.message,
  };
}
