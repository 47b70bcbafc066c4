/**
 * Every YAML example in the specification (`../shared/spec/`) must load with no error. Fenced
 * blocks are read from the spec itself; container-security.md writes its examples unfenced, so
 * those are listed here as they appear there.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/core/config/load';
import { formatProblem } from '../../src/core/problems';

const SPEC_DIR = join(__dirname, '..', '..', '..', 'shared', 'spec');

const UNFENCED_CONTAINER_SECURITY_EXAMPLES = [
  '# ~/.config/clawker/settings.yaml\nfirewall:\n  enable: false\n',
  'security:\n  docker_socket: false\n',
  'security:\n  cap_add: []  # default — agent containers are fully unprivileged\n  # cap_add:\n  #   - SYS_PTRACE   # only add capabilities your workflow actually needs\n',
  'security:\n  enable_host_proxy: true\n',
];

function specExamples(): { where: string; yaml: string }[] {
  assert.ok(existsSync(SPEC_DIR), `the specification is not at ${SPEC_DIR}: clone the project beside shared/ as CI does`);
  const out: { where: string; yaml: string }[] = [];
  for (const file of readdirSync(SPEC_DIR).filter((f) => f.endsWith('.md'))) {
    const md = readFileSync(join(SPEC_DIR, file), 'utf8');
    for (const m of md.matchAll(/```ya?ml[^\n]*\n([\s\S]*?)```/g)) {
      const line = md.slice(0, m.index).split('\n').length;
      out.push({ where: `${file}:${line}`, yaml: m[1]! });
    }
  }
  UNFENCED_CONTAINER_SECURITY_EXAMPLES.forEach((yaml, i) => out.push({ where: `container-security.md example ${i + 1}`, yaml }));
  return out;
}

const examples = specExamples();

test('the spec has YAML examples to check', () => {
  assert.ok(examples.length >= 15, `found only ${examples.length}`);
});

for (const { where, yaml } of examples) {
  test(`spec example ${where} loads with no error`, () => {
    const kind = /settings\.yaml/.test(yaml) ? 'settings' : 'project';
    const result = loadConfig(kind, yaml);
    const errors = result.problems.filter((p) => p.severity === 'error').map((p) => formatProblem(where, result.lines, p));
    assert.deepEqual(errors, []);
    assert.equal(result.failed, false);
    assert.ok(result.config, 'a config object is produced');
  });
}
