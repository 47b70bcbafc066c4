/** How YAML itself is read: merge keys like clawker's yaml.v3, no alias bombs, dates stay text. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { parseYaml } from '../../src/core/yaml/document';

test('merge keys (<<) apply, as in clawker', () => {
  const result = loadProject(
    'x-ssh: &ssh\n  proto: ssh\n  port: "22"\nsecurity:\n  firewall:\n    rules:\n      - <<: *ssh\n        dst: github.com\n',
  );
  assert.equal(result.failed, false, JSON.stringify(result.problems));
  assert.equal(result.rules[0]!.proto, 'ssh');
  assert.equal(result.rules[0]!.port.lo, 22);
});

test('an alias bomb is refused instead of expanded', () => {
  const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
  const parsed = parseYaml(levels.join('\n'));
  assert.equal(parsed.value, undefined);
  assert.match(parsed.problems[0]!.message, /expands to more than/);
});

test('dates stay text, as when clawker decodes them into string fields', () => {
  const parsed = parseYaml('agent:\n  env:\n    RELEASE: 2026-11-23\n');
  assert.equal((parsed.value as { agent: { env: { RELEASE: unknown } } }).agent.env.RELEASE, '2026-11-23');
});

test('every syntax error is reported with its position, not only the first', () => {
  const parsed = parseYaml('a: [1, 2\nb: {x: 1\n');
  assert.ok(parsed.problems.length >= 1);
  assert.ok(parsed.problems.every((p) => p.code === 'yaml-syntax' && p.severity === 'error'));
});

test('positions are only computed when needed', () => {
  let built = 0;
  const parsed = parseYaml('security:\n  docker_socket: false\n');
  const spy = Object.getOwnPropertyDescriptor(parsed, 'doc')!;
  assert.equal(typeof spy.get, 'function');
  Object.defineProperty(parsed, 'doc', { get: () => (built++, spy.get!.call(parsed)) });
  assert.equal(built, 0);
  void parsed.doc;
  assert.equal(built, 1);
});
