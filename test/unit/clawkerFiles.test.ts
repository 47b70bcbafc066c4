/** Real clawker files, current and older, load as is: unknown-to-us keys warn, never fail. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, loadProject, loadSettings } from '../../src/core/config/load';
import { configKindOf } from '../../src/core/config/schemas';
import { formatDestination } from '../../src/core/firewall/destination';

const FIXTURES = join(__dirname, '..', 'fixtures', 'clawker');
const read = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

for (const file of ['current-python.clawker.yaml', 'legacy-v1.clawker.yaml', 'settings.yaml']) {
  test(`${file} loads with warnings only`, () => {
    const result = loadConfig(configKindOf(file), read(file));
    assert.deepEqual(result.problems.filter((p) => p.severity === 'error').map((p) => p.message), []);
    assert.equal(result.failed, false);
  });
}

test('current file: every key we do not implement is named in a warning', () => {
  const result = loadProject(read('current-python.clawker.yaml'));
  const warned = result.problems.filter((p) => p.code === 'unsupported-key').map((p) => p.message.match(/'([^']+)'/)![1]);
  for (const key of ['build.harness', 'build.stacks', 'build.packages', 'agent.from_env', 'agent.post_init', 'workspace', 'harnesses', 'aliases', 'bundles', 'security.git_credentials', 'security.firewall.rules[1].insecure_skip_tls_verify']) {
    assert.ok(warned.includes(key), `no warning for ${key}; warned: ${warned.join(', ')}`);
  }
});

test('current file: rules come out normalised, after the built-in ones', () => {
  const result = loadProject(read('current-python.clawker.yaml'));
  assert.deepEqual(
    result.rules.map((r) => `${formatDestination(r.dst)} ${r.proto} ${r.port.lo}-${r.port.hi} ${r.action}`),
    ['pypi.org https 443-443 allow', 'files.pythonhosted.org https 443-443 allow', 'github.com ssh 22-22 allow', 'api.github.com https 443-443 allow', '10.0.0.5 tcp 9000-9100 allow'],
  );
  const api = result.rules[3]!;
  assert.deepEqual(api.pathRules.map((p) => [p.path, p.match.kind, p.action, p.methods]), [
    ['/', 'prefix', 'allow', ['GET', 'HEAD']],
    ['~/repos/(myorg|other)/?', 'regex', 'allow', []],
  ]);
  assert.equal(api.pathDefault, 'deny');
});

test('legacy file: tls is read as https and old keys are reported as ignored', () => {
  const result = loadProject(read('legacy-v1.clawker.yaml'));
  assert.equal(result.rules.find((r) => formatDestination(r.dst) === 'gitlab.com' && r.port.lo === 443)?.proto, 'https');
  const ignored = result.problems.filter((p) => p.message.includes('no longer read by clawker')).map((p) => p.message.match(/'([^']+)'/)![1]);
  for (const key of ['version', 'project', 'build.image', 'security.enable_firewall', 'security.firewall.enable', 'security.firewall.ip_range_sources', 'loop']) {
    assert.ok(ignored.includes(key), `no warning for ${key}`);
  }
});

test('defaults follow the spec', () => {
  const project = loadProject('');
  assert.equal(project.failed, false);
  assert.equal(project.config!.security.docker_socket, false);
  assert.deepEqual(project.config!.security.cap_add, []);
  assert.equal(project.config!.security.enable_host_proxy, true);
  assert.deepEqual(project.config!.security.firewall.add_domains, []);
  const rule = loadProject('security:\n  firewall:\n    rules:\n      - dst: a.example.com\n');
  assert.equal(rule.config!.security.firewall.rules[0]!.proto, 'https');
  assert.equal(rule.config!.security.firewall.rules[0]!.action, 'allow');
  assert.equal(rule.config!.security.firewall.rules[0]!.path_default, 'deny');
  assert.deepEqual(rule.rules[0]!.port, { lo: 443, hi: 443 });
  const ports = (proto: string) => loadProject(`security:\n  firewall:\n    rules:\n      - dst: a.example.com\n        proto: ${proto}\n`).rules[0]!.port.lo;
  assert.deepEqual(['https', 'wss', 'http', 'ws', 'ssh'].map(ports), [443, 443, 80, 80, 22]);
  const settings = loadSettings('');
  assert.equal(settings.config!.firewall.enable, true);
  assert.deepEqual(settings.config!.firewall.upstream_dns, ['1.1.1.2', '1.0.0.2']);
  // No engine default in the file: DOCKER_HOST, then the docker context, then the platform decide (engineResolution).
  assert.deepEqual(settings.config!.docker, {});
});

test('an invalid rule fails the whole load: no rules are produced', () => {
  const result = loadProject('security:\n  firewall:\n    add_domains: [github.com]\n    rules:\n      - dst: a.example.com\n        path_rules:\n          - path: v1\n            action: allow\n');
  assert.equal(result.failed, true);
  assert.deepEqual(result.rules, []);
  assert.equal(result.config, undefined);
});

test('actions are read case-insensitively, as clawker does', () => {
  const result = loadProject('security:\n  firewall:\n    rules:\n      - dst: a.example.com\n        action: Allow\n        path_rules:\n          - path: /admin\n            action: DENY\n        path_default: ALLOW\n');
  assert.equal(result.failed, false);
  assert.equal(result.rules[0]!.action, 'allow');
  assert.equal(result.rules[0]!.pathRules[0]!.action, 'deny');
  assert.equal(result.rules[0]!.pathDefault, 'allow');
});
