import type { ProblemCode, Severity } from '../problems';

/**
 * What a field checker says about one value, before it is placed in a file. `replaceWith` is the
 * corrected value when the fix is obvious; the caller turns it into an edit at the value's range.
 */
export interface Finding {
  readonly severity: Severity;
  readonly code: ProblemCode;
  readonly message: string;
  readonly replaceWith?: { readonly title: string; readonly value: string };
}

export type Checked<T> = { readonly value?: T; readonly findings: readonly Finding[] };

export const error = (code: ProblemCode, message: string, replaceWith?: Finding['replaceWith']): Finding =>
  replaceWith ? { severity: 'error', code, message, replaceWith } : { severity: 'error', code, message };

export const warning = (code: ProblemCode, message: string, replaceWith?: Finding['replaceWith']): Finding =>
  replaceWith ? { severity: 'warning', code, message, replaceWith } : { severity: 'warning', code, message };

export const info = (code: ProblemCode, message: string, replaceWith?: Finding['replaceWith']): Finding =>
  replaceWith ? { severity: 'info', code, message, replaceWith } : { severity: 'info', code, message };
