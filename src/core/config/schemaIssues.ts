import type { Document } from 'yaml';
import type { z } from 'zod';
import type { Problem } from '../problems';
import { rangeAt, type YamlPath } from '../yaml/document';
import { closestKey, type JsonSchema, propertiesOf, schemaAt } from './jsonSchema';

/** `security.firewall.rules[0].dst`: how a path is written in messages. */
export function formatPath(path: YamlPath): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out || 'the document';
}

function valueAt(value: unknown, path: YamlPath): unknown {
  let v = value;
  for (const seg of path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[seg] : undefined;
  return v;
}

const typeName = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : typeof v === 'string' ? `the text '${v}'` : `${typeof v} ${String(v)}`;

const TYPE_WORDS: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};
const expectedWord = (t: string): string => TYPE_WORDS[t] ?? t;

type Issue = z.core.$ZodIssue;

/** Turns zod's issues into located problems whose messages say where, what and what to do. */
export function schemaProblems(issues: readonly Issue[], doc: Document.Parsed, value: unknown, schema: JsonSchema): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path as (string | number)[];
    const where = formatPath(path);
    const actual = valueAt(value, path);
    if (actual === undefined && issue.code !== 'unrecognized_keys' && path.length > 0) {
      problems.push({
        severity: 'error',
        code: 'schema',
        message: `${formatPath(path.slice(0, -1))} is missing '${String(path[path.length - 1])}', which is required.`,
        range: rangeAt(doc, path, 'key'),
      });
      continue;
    }
    switch (issue.code) {
      case 'unrecognized_keys': {
        const known = Object.keys(propertiesOf(schemaAt(schema, path) ?? {}));
        for (const key of issue.keys) {
          const range = rangeAt(doc, [...path, key], 'key');
          const guess = closestKey(key, known);
          problems.push({
            severity: 'error',
            code: 'schema',
            message:
              `unknown key '${key}' in ${where}${guess ? `: did you mean '${guess}'?` : '.'} ` +
              `Unknown keys are errors in the firewall section, because a misspelt key could silently loosen a rule. Known keys: ${known.join(', ')}.`,
            range,
            ...(guess ? { fixes: [{ title: `Rename to '${guess}'`, edits: [{ range, newText: guess }] }] } : {}),
          });
        }
        break;
      }
      case 'invalid_type': {
        problems.push({
          severity: 'error',
          code: 'schema',
          message: `${where} must be ${expectedWord(issue.expected)}, not ${typeName(actual)}.`,
          range: rangeAt(doc, path),
        });
        break;
      }
      case 'invalid_value':
        problems.push({
          severity: 'error',
          code: 'schema',
          message: `${where} must be one of ${issue.values.map(String).join(', ')}, not ${typeName(actual)}.`,
          range: rangeAt(doc, path),
        });
        break;
      case 'invalid_union': {
        const expected = [...new Set(issue.errors.flat().flatMap((e) => (e.code === 'invalid_type' ? [expectedWord(e.expected)] : [])))];
        problems.push({
          severity: 'error',
          code: 'schema',
          message: `${where} must be ${expected.length ? expected.join(' or ') : 'a different value'}, not ${typeName(actual)}.`,
          range: rangeAt(doc, path),
        });
        break;
      }
      default:
        problems.push({ severity: 'error', code: 'schema', message: `${where}: ${issue.message}.`, range: rangeAt(doc, path) });
    }
  }
  return problems;
}
