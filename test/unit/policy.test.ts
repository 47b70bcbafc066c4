/**
 * Decisions of the policy for the spec's own examples and tables (egress-firewall.md): the expected
 * verdicts are the spec's words, written here by hand.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import { Policy } from '../../src/core/policy/policy';
import { parseRequestUrl } from '../../src/core/policy/requestUrl';

function policyOf(yaml: string): Policy {
  const loaded = loadProject(yaml);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return new Policy({ project: loaded.rules });
}

function verdict(policy: Policy, url: string, method = 'GET'): 'allow' | 'deny' {
  const parsed = parseRequestUrl(url, { method });
  if (!parsed.ok) return 'deny';
  return policy.decide(parsed.request).verdict;
}

const rulesYaml = (rules: string) => `security:\n  firewall:\n    rules:\n${rules}`;
const pathRule = (path: string, action = 'allow') => `          - path: "${path}"\n            action: ${action}\n`;
const host = (dst: string, pathRules: string, pathDefault = 'deny') =>
  `      - dst: ${dst}\n        proto: https\n        path_rules:\n${pathRules}        path_default: ${pathDefault}\n`;

describe('prefix vs ~ (the spec table "Exact and pattern matching")', () => {
  const table: [string, string[], string[]][] = [
    ['/repos/myorg', ['/repos/myorg', '/repos/myorg/pulls', '/repos/myorg-evil'], []],
    ['~/repos/myorg', ['/repos/myorg'], ['/repos/myorg/', '/repos/myorg-evil']],
    ['~/repos/myorg/?', ['/repos/myorg', '/repos/myorg/'], ['/repos/myorg-evil', '/repos/myorg/pulls']],
    ['~/repos/(myorg|other)/?', ['/repos/myorg', '/repos/other/', '/repos/myorg/'], ['/repos/myorg-evil']],
    ['~/repos/myorg(/.*)?', ['/repos/myorg', '/repos/myorg/pulls', '/repos/myorg/a/b'], ['/repos/myorg-evil']],
  ];
  for (const [rule, matches, misses] of table) {
    const policy = policyOf(rulesYaml(host('api.github.com', pathRule(rule))));
    for (const path of matches) test(`${rule} matches ${path}`, () => assert.equal(verdict(policy, `https://api.github.com${path}`), 'allow'));
    for (const path of misses) test(`${rule} does not match ${path}`, () => assert.equal(verdict(policy, `https://api.github.com${path}`), 'deny'));
  }
  test('~/blog and ~/blog/ are different rules', () => {
    const policy = policyOf(rulesYaml(host('a.example.com', pathRule('~/blog'))));
    assert.equal(verdict(policy, 'https://a.example.com/blog'), 'allow');
    assert.equal(verdict(policy, 'https://a.example.com/blog/'), 'deny');
  });
});

describe('Pattern 1: allow specific paths, deny everything else', () => {
  const policy = policyOf(rulesYaml(host('api.example.com', pathRule('/v1/chat') + pathRule('/v1/models'))));
  for (const path of ['/v1/chat/completions', '/v1/models']) test(`${path} is forwarded`, () => assert.equal(verdict(policy, `https://api.example.com${path}`), 'allow'));
  for (const path of ['/admin', '/internal']) test(`${path} gets 403`, () => assert.equal(verdict(policy, `https://api.example.com${path}`), 'deny'));
});

describe('Pattern 2: deny specific paths, allow everything else (http)', () => {
  const policy = policyOf(rulesYaml('      - dst: "example.com"\n        proto: http\n        port: "80"\n        action: allow\n        path_rules:\n          - path: "/evil"\n            action: deny\n        path_default: allow\n'));
  test('/evil and below are denied', () => {
    assert.equal(verdict(policy, 'http://example.com/evil'), 'deny');
    assert.equal(verdict(policy, 'http://example.com/evil/x'), 'deny');
  });
  test('other paths are forwarded', () => assert.equal(verdict(policy, 'http://example.com/good'), 'allow'));
  test('over https the http rule does not apply', () => assert.equal(verdict(policy, 'https://example.com/good'), 'deny'));
});

describe('method gating (the GitHub examples)', () => {
  const readOnly = policyOf(rulesYaml('      - dst: "api.github.com"\n        proto: https\n        port: "443"\n        action: allow\n        path_rules:\n          - path: "/"\n            action: allow\n            methods: [GET, HEAD]\n        path_default: deny\n'));
  test('read-only: GET and HEAD anywhere are forwarded', () => {
    assert.equal(verdict(readOnly, 'https://api.github.com/repos/o/r', 'GET'), 'allow');
    assert.equal(verdict(readOnly, 'https://api.github.com/anything', 'HEAD'), 'allow');
  });
  test('read-only: git push and contents writes are denied', () => {
    assert.equal(verdict(readOnly, 'https://api.github.com/o/r.git/git-receive-pack', 'POST'), 'deny');
    assert.equal(verdict(readOnly, 'https://api.github.com/repos/o/r/contents/f', 'PUT'), 'deny');
    assert.equal(verdict(readOnly, 'https://api.github.com/repos/o/r/contents/f', 'DELETE'), 'deny');
  });
  const denyWrites = policyOf(rulesYaml('      - dst: "api.github.com"\n        proto: https\n        port: "443"\n        action: allow\n        path_rules:\n          - path: "/repos/"\n            action: deny\n            methods: [POST, PUT, PATCH, DELETE]\n        path_default: allow\n'));
  test('deny writes: mutating verbs under /repos/ are denied', () => {
    for (const m of ['POST', 'PUT', 'PATCH', 'DELETE']) assert.equal(verdict(denyWrites, 'https://api.github.com/repos/o/r/issues', m), 'deny', m);
  });
  test('deny writes: GET/HEAD fall through to path_default allow, and writes elsewhere are allowed', () => {
    assert.equal(verdict(denyWrites, 'https://api.github.com/repos/o/r', 'GET'), 'allow');
    assert.equal(verdict(denyWrites, 'https://api.github.com/repos/o/r', 'HEAD'), 'allow');
    assert.equal(verdict(denyWrites, 'https://api.github.com/user', 'POST'), 'allow');
  });
});

describe('ordering of path rules', () => {
  test('the longest rule string wins', () => {
    const policy = policyOf(rulesYaml(host('a.example.com', pathRule('/v1') + pathRule('/v1/admin', 'deny'))));
    assert.equal(verdict(policy, 'https://a.example.com/v1/admin/x'), 'deny');
    assert.equal(verdict(policy, 'https://a.example.com/v1/users'), 'allow');
  });
  test('a regex is as long as its string, not its match: a longer literal beats a short broad regex', () => {
    const policy = policyOf(rulesYaml(host('a.example.com', pathRule('~/.*', 'deny') + pathRule('/public/files'))));
    assert.equal(verdict(policy, 'https://a.example.com/public/files/x'), 'allow');
    assert.equal(verdict(policy, 'https://a.example.com/private'), 'deny');
  });
  test('equal lengths: the first listed wins', () => {
    // '/abc' and '~/.*' are both four characters long, and both match /abc.
    const first = policyOf(rulesYaml(host('a.example.com', pathRule('/abc', 'deny') + pathRule('~/.*', 'allow'), 'allow')));
    assert.equal(verdict(first, 'https://a.example.com/abc'), 'deny');
    const second = policyOf(rulesYaml(host('a.example.com', pathRule('~/.*', 'allow') + pathRule('/abc', 'deny'), 'deny')));
    assert.equal(verdict(second, 'https://a.example.com/abc'), 'allow');
  });
  test('methods are a match condition that falls through', () => {
    const policy = policyOf(rulesYaml(host('a.example.com', '          - path: /repos/\n            action: deny\n            methods: [POST]\n' + pathRule('/'))));
    assert.equal(verdict(policy, 'https://a.example.com/repos/x', 'POST'), 'deny');
    assert.equal(verdict(policy, 'https://a.example.com/repos/x', 'GET'), 'allow');
  });
});

describe('destinations, protocols and ports', () => {
  const policy = policyOf(
    'security:\n  firewall:\n    add_domains: [github.com, .example.org]\n    rules:\n      - dst: github.com\n        proto: ssh\n        port: "22"\n      - dst: 10.0.0.5\n        proto: tcp\n        port: "9000-9100"\n      - dst: bad.example.org\n        action: deny\n',
  );
  test('nothing is allowed by default', () => assert.equal(verdict(policy, 'https://evil.com/'), 'deny'));
  test('an exact domain does not cover its subdomains', () => assert.equal(verdict(policy, 'https://x.github.com/'), 'deny'));
  test('a leading-dot wildcard covers the apex and all subdomains, not look-alikes', () => {
    assert.equal(verdict(policy, 'https://example.org/'), 'allow');
    assert.equal(verdict(policy, 'https://a.b.example.org/'), 'allow');
    assert.equal(verdict(policy, 'https://example.org.evil.com/'), 'deny');
    assert.equal(verdict(policy, 'https://notexample.org/'), 'deny');
  });
  test('a deny rule for a subdomain wins over a wildcard allow', () => assert.equal(verdict(policy, 'https://bad.example.org/'), 'deny'));
  test('add_domains is HTTPS on 443 only', () => {
    assert.equal(verdict(policy, 'https://github.com/'), 'allow');
    assert.equal(verdict(policy, 'http://github.com/'), 'deny');
    assert.equal(verdict(policy, 'https://github.com:8443/'), 'deny');
  });
  test('ssh rules pin the port', () => {
    assert.equal(verdict(policy, 'ssh://github.com'), 'allow');
    assert.equal(verdict(policy, 'ssh://github.com:2222'), 'deny');
    assert.equal(verdict(policy, 'ssh://gitlab.com'), 'deny');
  });
  test('port ranges are inclusive', () => {
    assert.equal(verdict(policy, 'tcp://10.0.0.5:9000'), 'allow');
    assert.equal(verdict(policy, 'tcp://10.0.0.5:9100'), 'allow');
    assert.equal(verdict(policy, 'tcp://10.0.0.5:9101'), 'deny');
    assert.equal(verdict(policy, 'tcp://10.0.0.6:9050'), 'deny');
    assert.equal(verdict(policy, 'udp://10.0.0.5:9050'), 'deny');
  });
  test('native IPv6 is denied; IPv4-mapped follows the IPv4 rules', () => {
    assert.equal(verdict(policy, 'tcp://[2001:db8::5]:9050'), 'deny');
    assert.equal(verdict(policy, 'tcp://[::ffff:10.0.0.5]:9050'), 'allow');
  });
});

describe('DNS: what a name resolves to', () => {
  const policy = policyOf(
    'security:\n  firewall:\n    add_domains: [.example.org, api.example.org, exact.example.net]\n    rules:\n      - dst: .example.org\n        proto: ssh\n      - dst: bad.example.org\n        action: deny\n',
  );
  test('a name no rule covers is NXDOMAIN', () => assert.equal(policy.resolve('evil.com').verdict, 'nxdomain'));
  test('an exact rule owns its name; its subdomains fall to a covering wildcard', () => {
    assert.deepEqual(policy.resolve('api.example.org'), { verdict: 'forward', destination: 'api.example.org' });
    assert.deepEqual(policy.resolve('x.api.example.org'), { verdict: 'forward', destination: '.example.org' });
  });
  test('without a covering wildcard, an exact rule leaves no DNS subtree', () => {
    assert.equal(policy.resolve('exact.example.net').verdict, 'forward');
    assert.equal(policy.resolve('x.exact.example.net').verdict, 'nxdomain');
    assert.equal(verdict(policy, 'https://x.exact.example.net/'), 'deny');
  });
  test('a deny rule is NXDOMAIN for every protocol, even one a wildcard allows', () => {
    assert.equal(policy.resolve('bad.example.org').verdict, 'nxdomain');
    assert.equal(verdict(policy, 'ssh://bad.example.org'), 'deny');
    assert.equal(verdict(policy, 'ssh://good.example.org'), 'allow');
  });
});

describe('built-in rules', () => {
  const policy = new Policy();
  test('Claude Code can reach what it needs', () => {
    for (const h of ['api.anthropic.com', 'claude.com', 'platform.claude.com', 'claude.ai', 'x.claude.ai', 'registry.npmjs.org', 'us5.datadoghq.com', 'statsig.com']) {
      assert.equal(verdict(policy, `https://${h}/`), 'allow', h);
    }
  });
  test("claude.ai's user-generated content is denied", () => {
    assert.equal(verdict(policy, 'https://claude.ai/public/artifacts/x'), 'deny');
    assert.equal(verdict(policy, 'https://claude.ai/share/abc'), 'deny');
  });
  test('a project rule cannot replace a built-in one', () => {
    const p = policyOf(rulesYaml('      - dst: .claude.ai\n        path_rules:\n          - path: /\n            action: allow\n        path_default: allow\n'));
    assert.equal(verdict(p, 'https://claude.ai/share/abc'), 'deny');
  });
});

describe('request paths: slashes merged, anything that could decode differently refused', () => {
  const policy = policyOf(rulesYaml(host('api.example.com', pathRule('/v1/chat'))));
  test('merged slashes', () => assert.equal(verdict(policy, 'https://api.example.com//v1//chat'), 'allow'));
  test('an allowed path is allowed', () => assert.equal(verdict(policy, 'https://api.example.com/v1/chat/completions'), 'allow'));
  for (const sneaky of ['/v1/chat/%2e%2e/%2e%2e/admin', '/v1/chat%2f..%2fadmin', '/v1/chat/%252e%252e/admin', '/v1/chat%5c..%5cadmin', '/v1/chat/%2E%2E/x']) {
    test(`${sneaky} is refused`, () => assert.equal(verdict(policy, `https://api.example.com${sneaky}`), 'deny'));
  }
  test('dot segments are refused, not resolved', () => {
    assert.equal(verdict(policy, 'https://api.example.com/v1/chat/../../admin'), 'deny');
    assert.equal(verdict(policy, 'https://api.example.com/v1/chat/./x'), 'deny');
    assert.equal(verdict(policy, 'https://api.example.com/v1/chat/..'), 'deny');
  });
  test('dots inside a segment are fine', () => assert.equal(verdict(policy, 'https://api.example.com/v1/chat/a..b/.well'), 'allow'));
  test('nothing else is decoded: /v1/%63hat is not /v1/chat', () => assert.equal(verdict(policy, 'https://api.example.com/v1/%63hat'), 'deny'));
  test('the query string is not part of the match', () => assert.equal(verdict(policy, 'https://api.example.com/v1/chat?x=/../admin'), 'allow'));
});

describe('a port that is no number', () => {
  test('NaN is in no rule range: no rule governs it and the request is denied', () => {
    const policy = policyOf('security:\n  firewall:\n    add_domains: [github.com]\n    rules:\n      - dst: github.com\n        proto: tcp\n        port: "1-65535"\n        action: allow\n');
    assert.notEqual(policy.ruleFor({ host: 'github.com', port: 443, transport: 'https' }), undefined, 'the control: 443 has its rule');
    assert.equal(policy.ruleFor({ host: 'github.com', port: Number.NaN, transport: 'https' }), undefined);
    assert.equal(policy.ruleFor({ host: 'github.com', port: Number.NaN, transport: 'tcp' }), undefined);
    assert.equal(policy.decide({ host: 'github.com', port: Number.NaN, transport: 'https', path: '/', method: 'GET' }).verdict, 'deny');
  });
});
