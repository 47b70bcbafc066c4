/**
 * test/mutation/REPORT.md is written by three runs (Stryker's, the named survivors', the datapath
 * list); each owns the text between its markers `<!-- NAME:start -->` and `<!-- NAME:end -->`.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPORT_FILE = join(__dirname, 'REPORT.md');

const HEADER = '# Mutation testing report\n\nWritten by `npm run test:mutation` (see test/mutation/README.md); each section by its own run.\n';
const ORDER = ['stryker', 'named', 'datapath'];

export function writeReportSection(name: string, body: string): void {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  let text = existsSync(REPORT_FILE) ? readFileSync(REPORT_FILE, 'utf8') : HEADER;
  const block = `${start}\n${body.trimEnd()}\n${end}`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from >= 0 && to > from) text = text.slice(0, from) + block + text.slice(to + end.length);
  else {
    // Keep the sections in a fixed order whatever run writes first.
    const later = ORDER.slice(ORDER.indexOf(name) + 1).map((n) => text.indexOf(`<!-- ${n}:start -->`)).filter((i) => i >= 0);
    const at = later.length ? Math.min(...later) : text.length;
    text = `${text.slice(0, at).trimEnd()}\n\n${block}\n\n${text.slice(at).trimStart()}`.trimEnd() + '\n';
  }
  writeFileSync(`${REPORT_FILE}.tmp`, text);
  renameSync(`${REPORT_FILE}.tmp`, REPORT_FILE);
}
