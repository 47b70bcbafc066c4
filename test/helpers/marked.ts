/**
 * Test inputs mark the expected position of a problem with `‸` written just before it, so the
 * expected line and column come from the input itself, not from the code under test.
 */
export const MARK = '‸';

export function unmark(marked: string): { text: string; line: number; col: number } {
  const at = marked.indexOf(MARK);
  if (at < 0) throw new Error(`test input has no ${MARK} marker:\n${marked}`);
  const text = marked.slice(0, at) + marked.slice(at + MARK.length);
  const before = text.slice(0, at).split('\n');
  return { text, line: before.length, col: before[before.length - 1]!.length + 1 };
}

/** A project file with one firewall rule, whose lines are given indented as rule fields. */
export const ruleYaml = (...fields: string[]): string =>
  ['security:', '  firewall:', '    rules:', ...fields.map((f, i) => `${i === 0 ? '      - ' : '        '}${f}`), ''].join('\n');

export const domainsYaml = (...domains: string[]): string =>
  ['security:', '  firewall:', '    add_domains:', ...domains.map((d) => `      - ${d}`), ''].join('\n');
