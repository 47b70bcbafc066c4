/**
 * Writes `schemas/*.schema.json` from the zod schemas (the single source of truth).
 * `--check` exits 1 when a committed file differs, which is what the drift test runs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConfigKind, jsonSchemaFor, SCHEMA_FILES } from '../src/core/config/schemas';

export const SCHEMAS_DIR = join(__dirname, '..', 'schemas');

export function renderSchema(kind: ConfigKind): string {
  return `${JSON.stringify(jsonSchemaFor(kind), null, 2)}\n`;
}

if (require.main === module) {
  const check = process.argv.includes('--check');
  let drift = false;
  for (const kind of Object.keys(SCHEMA_FILES) as ConfigKind[]) {
    const file = join(SCHEMAS_DIR, SCHEMA_FILES[kind]);
    const text = renderSchema(kind);
    if (check) {
      let current = '';
      try {
        current = readFileSync(file, 'utf8');
      } catch {
        /* missing counts as drift */
      }
      if (current !== text) {
        drift = true;
        process.stderr.write(`${file} is out of date: run 'npm run schemas'.\n`);
      }
    } else {
      writeFileSync(file, text);
      process.stdout.write(`wrote ${file}\n`);
    }
  }
  process.exitCode = drift ? 1 : 0;
}
