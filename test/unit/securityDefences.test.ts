/**
 * Defences that mutation testing (issue 13) showed no test would miss: each test states the
 * behaviour a weakened defence would change, with expected values written here by hand.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readSessionMaterial } from '../../src/agentd/session';
import { AgentSpecError, effectiveCapabilities } from '../../src/core/agents/agentContainerSpec';
import { loadProject } from '../../src/core/config/load';
import { checkPath } from '../../src/core/firewall/pathMatch';
import { Policy } from '../../src/core/policy/policy';
import { parseRequestUrl } from '../../src/core/policy/requestUrl';
import { renderBpfEntries } from '../../src/core/render/bpfEntries';
import { renderEnvoy } from '../../src/core/render/envoy/envoyConfig';
import { FRONT_LISTENER_PORT } from '../../src/core/render/envoy/listenerPlan';
import { evaluateEnvoy } from '../helpers/envoyRouteEvaluator';

function policyOf(yaml: string): Policy {
  const loaded = loadProject(yaml);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return new Policy({ project: loaded.rules });
}

const verdictOf = (policy: Policy, url: string, method = 'GET'): string => {
  const parsed = parseRequestUrl(url, { method });
  assert.ok(parsed.ok, url);
  return policy.decide(parsed.request).verdict;
};

/** What the rendered Envoy front listener does with an HTTPS request to `host`. */
const envoyOutcome = (policy: Policy, host: string, path: string, method = 'GET') =>
  evaluateEnvoy(renderEnvoy(policy).listeners, { listenerPort: FRONT_LISTENER_PORT, tls: true, sni: host, host, path, method });

describe('deny wins a tie between equally specific rules', () => {
  const rules = (first: string, second: string) => `security:\n  firewall:\n    rules:\n${first}${second}`;
  const rangeAllow = '      - { dst: 203.0.113.7, proto: tcp, port: "5000-6000", action: allow }\n';
  const portDeny = '      - { dst: 203.0.113.7, proto: tcp, port: "5432", action: deny }\n';

  for (const [order, yaml] of [
    ['allow listed first', rules(rangeAllow, portDeny)],
    ['deny listed first', rules(portDeny, rangeAllow)],
  ] as const) {
    test(`${order}: tcp 5432 is denied, the rest of the range allowed (check and the BPF route table)`, () => {
      const policy = policyOf(yaml);
      assert.equal(verdictOf(policy, 'tcp://203.0.113.7:5432'), 'deny');
      assert.equal(verdictOf(policy, 'tcp://203.0.113.7:5431'), 'allow');
      assert.equal(verdictOf(policy, 'tcp://203.0.113.7:5433'), 'allow');
      const routes = renderBpfEntries(policy, renderEnvoy(policy).plan).routes.filter((r) => r.destination === '203.0.113.7' && r.l4 === 'tcp');
      const ports = new Set(routes.map((r) => r.port));
      assert.equal(ports.has(5432), false, 'no route for the denied port');
      assert.equal(ports.has(5431) && ports.has(5433) && ports.has(5000) && ports.has(6000), true, 'routes for the allowed ports');
    });
  }
});

describe('an encoded backslash never reaches a route (Envoy configuration as rendered)', () => {
  // /admin is denied, every other path allowed: a server that reads '\' as '/' would serve /admin
  // for these spellings, so the proxy must refuse them before the routes.
  const policy = policyOf(
    'security:\n  firewall:\n    rules:\n      - dst: api.example.com\n        proto: https\n        path_rules:\n          - { path: /admin, action: deny }\n        path_default: allow\n',
  );
  for (const path of ['/%5cadmin', '/%5Cadmin', '/public/..%5cadmin', '/public%5c..%5cadmin', '/x%5c%5cadmin']) {
    test(`${path}: refused by the policy and not forwarded by the rendered Envoy routes`, () => {
      assert.equal(verdictOf(policy, `https://api.example.com${path}`), 'deny');
      const outcome = envoyOutcome(policy, 'api.example.com', path);
      assert.notEqual(outcome.kind, 'forward', JSON.stringify(outcome));
    });
  }
  test('the control: a plain path is forwarded, /admin is 403', () => {
    assert.equal(envoyOutcome(policy, 'api.example.com', '/public').kind, 'forward');
    assert.deepEqual(envoyOutcome(policy, 'api.example.com', '/admin'), { kind: 'status', status: 403, route: 'path-0' });
  });
});

describe('a method token with regex characters is matched literally', () => {
  const policy = policyOf(
    'security:\n  firewall:\n    rules:\n      - dst: api.example.com\n        proto: https\n        path_rules:\n          - { path: /, action: allow, methods: [GET, "X|.*"] }\n        path_default: deny\n',
  );
  for (const method of ['POST', 'DELETE', 'X', 'XY']) {
    test(`${method} is not allowed by methods [GET, "X|.*"] (policy and Envoy)`, () => {
      assert.equal(verdictOf(policy, 'https://api.example.com/repo', method), 'deny');
      assert.deepEqual(envoyOutcome(policy, 'api.example.com', '/repo', method), { kind: 'status', status: 403, route: 'path-default' });
    });
  }
  test('GET is allowed by both', () => {
    assert.equal(verdictOf(policy, 'https://api.example.com/repo', 'GET'), 'allow');
    assert.equal(envoyOutcome(policy, 'api.example.com', '/repo', 'GET').kind, 'forward');
  });
});

describe("a '~' path rule must be anchored at '/'", () => {
  for (const path of ['~^admin', '~admin', '~.*admin', '~^.*/admin']) {
    test(`${path} is an error with a fix that starts '~/' or '~^/'`, () => {
      const checked = checkPath(path);
      assert.equal(checked.value, undefined, 'no path rule is made from it');
      assert.equal(checked.findings.length, 1);
      assert.equal(checked.findings[0]!.severity, 'error');
      assert.match(checked.findings[0]!.replaceWith?.value ?? '', /^~\^?\//);
    });
  }
  test('a file whose deny rule is written that way does not load at all', () => {
    const loaded = loadProject(
      'security:\n  firewall:\n    rules:\n      - dst: api.example.com\n        proto: https\n        path_rules:\n          - { path: "~^admin", action: deny }\n        path_default: allow\n',
    );
    assert.equal(loaded.failed, true);
  });
  test('the control: ~^/admin and ~/admin load', () => {
    assert.deepEqual(checkPath('~^/admin').value, { kind: 'regex', pattern: '^/admin' });
    assert.deepEqual(checkPath('~/admin').value, { kind: 'regex', pattern: '/admin' });
  });
});

describe('security.cap_add refuses every capability that reaches the network stack or the kernel', () => {
  // The container-security spec's reasoning, written out independently of the code's table.
  const REFUSED = ['ALL', 'NET_RAW', 'NET_ADMIN', 'SYS_ADMIN', 'BPF', 'PERFMON', 'SYS_MODULE', 'SYS_RAWIO', 'DAC_READ_SEARCH', 'MAC_ADMIN', 'MAC_OVERRIDE'];
  for (const cap of REFUSED) {
    for (const spelling of [cap, `CAP_${cap}`, cap.toLowerCase(), ` ${cap} `]) {
      test(`${JSON.stringify(spelling)} is refused, naming ${cap}`, () => {
        assert.throws(() => effectiveCapabilities([spelling]), (e: unknown) => e instanceof AgentSpecError && new RegExp(`refused ${cap} \\(`).test(e.message));
        assert.throws(() => effectiveCapabilities(['SYS_PTRACE', spelling]), AgentSpecError, 'also among allowed ones');
      });
    }
  }
  test('the control: SYS_PTRACE is granted with a warning', () => {
    const granted = effectiveCapabilities(['SYS_PTRACE']);
    assert.ok(granted.capAdd.includes('SYS_PTRACE'));
    assert.equal(granted.warnings.length, 1);
  });
});

describe("agentd's session key must be its own", () => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-session-key-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const files = { ca: join(dir, 'ca.pem'), certificate: join(dir, 'agentd.pem'), key: join(dir, 'agentd-key.pem') };
  writeFileSync(files.ca, 'CA');
  writeFileSync(files.certificate, 'CERT');

  test('a 0600 key owned by another user is refused, naming that uid', () => {
    assert.equal(process.getuid?.(), 0, 'this test makes a file owned by another user, which needs root (the unit suite runs as root in CI)');
    writeFileSync(files.key, 'KEY', { mode: 0o600 });
    chownSync(files.key, 4242, 4242);
    const read = readSessionMaterial(files);
    assert.ok('problem' in read, 'refused');
    assert.match(read.problem, /belongs to uid 4242, not to agentd \(uid 0\)/);
    assert.doesNotMatch(read.problem, /KEY/, 'never the contents');
  });
  test('the control: a 0600 key owned by agentd is read', () => {
    rmSync(files.key, { force: true });
    writeFileSync(files.key, 'KEY', { mode: 0o600 });
    chmodSync(files.key, 0o600);
    assert.deepEqual(readSessionMaterial(files), { material: { ca: 'CA', certificate: 'CERT', key: 'KEY' } });
  });
});
