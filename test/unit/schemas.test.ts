/** `schemas/*.schema.json` are generated from the zod schemas and must not drift from them. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type ConfigKind, SCHEMA_FILES } from '../../src/core/config/schemas';
import { renderSchema, SCHEMAS_DIR } from '../../scripts/gen-schemas';

for (const kind of Object.keys(SCHEMA_FILES) as ConfigKind[]) {
  test(`schemas/${SCHEMA_FILES[kind]} matches the zod schema (run 'npm run schemas' if not)`, () => {
    const committed = readFileSync(join(SCHEMAS_DIR, SCHEMA_FILES[kind]), 'utf8');
    assert.equal(committed, renderSchema(kind));
  });
}

test('the project schema documents every firewall rule field from the spec', () => {
  const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, SCHEMA_FILES.project), 'utf8'));
  const rule = schema.properties.security.properties.firewall.properties.rules.items;
  for (const field of ['dst', 'proto', 'port', 'action', 'path_rules', 'path_default']) {
    assert.ok(rule.properties[field]?.description, `rule.${field} has no description`);
  }
  assert.deepEqual(Object.keys(rule.properties.path_rules.items.properties), ['path', 'action', 'methods']);
  assert.equal(rule.additionalProperties, false, 'unknown rule keys are rejected');
});
