/**
 * The policy's decisions where policy.test.ts (the spec's examples) does not reach: which rule
 * protocols carry which transport, how specificity and ties pick the governing rule, DNS answers
 * when several rules name a host, the merge of layers, and the reason `firewall check` prints for
 * each kind of decision. Expected values are written by hand from the rules of the spec
 * (egress-firewall.md: protocols, deny-by-default, NXDOMAIN zones, first entry of a key wins).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import type { NormalizedRule } from '../../src/core/firewall/rule';
import { Policy } from '../../src/core/policy/policy';
import { normalizeRequestPath } from '../../src/core/policy/requestPath';
import { parseRequestUrl } from '../../src/core/policy/requestUrl';

function rulesOf(rules: string): readonly NormalizedRule[] {
  const loaded = loadProject(`security:\n  firewall:\n    rules:\n${rules}`);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return loaded.rules;
}
const policyOf = (rules: string): Policy => new Policy({ project: rulesOf(rules) });
const rule = (dst: string, proto: string, port: string, action = 'allow'): string =>
  `      - dst: "${dst}"\n        proto: ${proto}\n        port: "${port}"\n        action: ${action}\n`;

function decide(policy: Policy, url: string, method = 'GET') {
  const parsed = parseRequestUrl(url, { method });
  assert.ok(parsed.ok, `${url}: ${parsed.ok ? '' : parsed.message}`);
  return policy.decide(parsed.request);
}
const verdict = (policy: Policy, url: string, method = 'GET') => decide(policy, url, method).verdict;

describe('which rule protocols carry which transport', () => {
  // One host per rule protocol, all on port 8000, so only the protocol decides.
  const protos = ['https', 'wss', 'http', 'ws', 'ssh', 'tcp', 'udp', 'postgres'] as const;
  const policy = policyOf(protos.map((p) => rule(`${p}.example.com`, p, '8000')).join(''));
  // Rows: rule protocol. Columns: the URL scheme the request uses. A = allowed, . = denied.
  const table: Record<(typeof protos)[number], string> = {
    //          https http wss ws tcp udp
    https: /*  */ 'A . . . . .',
    wss: /*    */ 'A . A . . .',
    http: /*   */ '. A . . . .',
    ws: /*     */ '. A . A . .',
    ssh: /*    */ '. . . . A .',
    tcp: /*    */ '. . . . A .',
    udp: /*    */ '. . . . . A',
    postgres: /**/ '. . . . A .',
  };
  const schemes = ['https', 'http', 'wss', 'ws', 'tcp', 'udp'];
  for (const proto of protos) {
    const row = table[proto].split(' ');
    test(`a ${proto} rule carries ${schemes.filter((_, i) => row[i] === 'A').join(' and ')} only`, () => {
      const got = schemes.map((s) => (verdict(policy, `${s}://${proto}.example.com:8000/`) === 'allow' ? 'A' : '.'));
      assert.deepEqual(got, row);
    });
  }
});

describe('the governing rule: the most specific destination; deny wins a tie', () => {
  test('an exact name beats a wildcard that denies, for connections and for DNS', () => {
    const policy = policyOf(rule('.example.com', 'https', '443', 'deny') + rule('api.example.com', 'https', '443'));
    assert.equal(verdict(policy, 'https://api.example.com/'), 'allow');
    assert.deepEqual(policy.resolve('api.example.com'), { verdict: 'forward', destination: 'api.example.com' });
    assert.equal(verdict(policy, 'https://web.example.com/'), 'deny');
    assert.equal(policy.resolve('x.api.example.com').verdict, 'nxdomain');
  });
  test('a deeper wildcard beats a shallower one, whichever acts', () => {
    const denyInside = policyOf(rule('.example.com', 'https', '443') + rule('.corp.example.com', 'https', '443', 'deny'));
    assert.equal(verdict(denyInside, 'https://x.corp.example.com/'), 'deny');
    assert.equal(verdict(denyInside, 'https://x.example.com/'), 'allow');
    const allowInside = policyOf(rule('.example.com', 'https', '443', 'deny') + rule('.corp.example.com', 'https', '443'));
    assert.equal(verdict(allowInside, 'https://x.corp.example.com/'), 'allow');
    assert.deepEqual(allowInside.resolve('x.corp.example.com'), { verdict: 'forward', destination: '.corp.example.com' });
    assert.equal(verdict(allowInside, 'https://x.example.com/'), 'deny');
  });
  test('a wildcard is matched on whole labels only', () => {
    const policy = policyOf(rule('.ample.com', 'https', '443') + rule('.le.com', 'https', '443'));
    assert.equal(verdict(policy, 'https://ample.com/'), 'allow');
    assert.equal(verdict(policy, 'https://api.example.com/'), 'deny');
    assert.equal(policy.resolve('api.example.com').verdict, 'nxdomain');
    assert.deepEqual(policy.rulesCovering('api.example.com'), []);
  });
  test('among rules of one destination, the first that carries the request governs', () => {
    const policy = policyOf(rule('db.example.com', 'tcp', '5000-6000') + rule('db.example.com', 'tcp', '5400-5500'));
    const decision = decide(policy, 'tcp://db.example.com:5432');
    assert.equal(decision.rule?.port.lo, 5000);
  });
  test('an IPv4 destination is exact: deny wins its tie with a range allow', () => {
    const policy = policyOf(rule('203.0.113.7', 'tcp', '5000-6000') + rule('203.0.113.7', 'tcp', '5432', 'deny'));
    assert.equal(verdict(policy, 'tcp://203.0.113.7:5432'), 'deny');
    assert.equal(verdict(policy, 'tcp://203.0.113.7:5433'), 'allow');
    assert.equal(verdict(policy, 'tcp://203.0.113.8:5433'), 'deny');
  });
  test('between two denies of one specificity, the first listed is the one reported', () => {
    const policy = policyOf(rule('203.0.113.7', 'tcp', '5000-6000', 'deny') + rule('203.0.113.7', 'tcp', '5432', 'deny'));
    assert.equal(decide(policy, 'tcp://203.0.113.7:5432').reason, 'denied by the project rule 203.0.113.7 tcp:5000-6000 deny');
  });
});

describe('DNS answers when several rules name a host', () => {
  for (const order of ['deny first', 'deny last']) {
    test(`a deny rule for the name makes it NXDOMAIN whatever else allows it (${order})`, () => {
      const deny = rule('example.com', 'ssh', '22', 'deny');
      const allow = rule('example.com', 'https', '443');
      const policy = policyOf(order === 'deny first' ? deny + allow : allow + deny);
      const answer = policy.resolve('example.com');
      assert.equal(answer.verdict, 'nxdomain');
      assert.equal(answer.verdict === 'nxdomain' && answer.rule?.action, 'deny');
      assert.equal(verdict(policy, 'https://example.com/'), 'deny');
    });
  }
  test('a name written like an address is no name the DNS answers for, even with a rule for that address', () => {
    const policy = policyOf(rule('203.0.113.7', 'tcp', '5432'));
    assert.equal(policy.resolve('203.0.113.7').verdict, 'nxdomain');
  });
});

describe('layers: the first rule of a key wins', () => {
  test('a runtime rule with the key of a project rule is dropped, so it cannot turn an allow into a deny or back', () => {
    const project = rulesOf(rule('api.example.com', 'https', '443'));
    const runtime = rulesOf(rule('api.example.com', 'https', '443', 'deny') + rule('db.example.com', 'tcp', '5432'));
    const policy = new Policy({ project, runtime });
    assert.equal(policy.rules.filter((r) => r.dst.kind === 'domain' && r.dst.name === 'api.example.com').length, 1);
    assert.equal(verdict(policy, 'https://api.example.com/'), 'allow');
    assert.equal(verdict(policy, 'tcp://db.example.com:5432'), 'allow');
  });
  test('rulesCovering lists every rule for a host in precedence order, exact and wildcard together', () => {
    const project = rulesOf(rule('.example.com', 'https', '443') + rule('api.example.com', 'ssh', '22'));
    const runtime = rulesOf(rule('.api.example.com', 'tcp', '5432') + rule('api.example.com', 'https', '443'));
    const policy = new Policy({ project, runtime });
    const covering = policy.rulesCovering('api.example.com').map((r) => `${r.dst.kind === 'domain' && r.dst.wildcard ? '.' : ''}${r.dst.kind === 'domain' ? r.dst.name : ''} ${r.proto}`);
    assert.deepEqual(covering, ['.example.com https', 'api.example.com ssh', '.api.example.com tcp', 'api.example.com https']);
  });
  test('answers are kept: asking again gives the same list, also after asking about another host', () => {
    const policy = policyOf(rule('.example.com', 'https', '443') + rule('api.example.com', 'ssh', '22') + rule('.example.org', 'https', '443') + rule('www.example.org', 'ssh', '22'));
    const first = policy.rulesCovering('api.example.com');
    policy.rulesCovering('www.example.org');
    assert.equal(policy.rulesCovering('api.example.com'), first);
  });
  test('the kept answers are bounded: asking about 100,001 names keeps at most 100,000', () => {
    const policy = policyOf(rule('.example.com', 'https', '443'));
    for (let i = 0; i <= 100_000; i++) policy.rulesCovering(`h${i}.example.com`);
    const kept = (policy as unknown as { covering: Map<string, unknown> }).covering.size;
    assert.ok(kept <= 100_000, `${kept} answers kept`);
  });
});

describe('the reason firewall check prints', () => {
  const policy = policyOf(
    rule('203.0.113.7', 'tcp', '5000-6000') +
      rule('203.0.113.7', 'tcp', '5432', 'deny') +
      rule('bad.example.com', 'https', '443', 'deny') +
      rule('all.example.com', 'https', '443') +
      '      - dst: api.example.com\n        proto: https\n        path_rules:\n          - path: /v1\n            methods: [GET, HEAD]\n            action: allow\n          - path: /v1/admin\n            action: deny\n        path_default: deny\n',
  );
  const cases: [string, string, string, string][] = [
    ['https://evil.com/', 'GET', 'deny', 'NXDOMAIN: no rule names evil.com (deny by default)'],
    ['https://bad.example.com/', 'GET', 'deny', 'NXDOMAIN: bad.example.com is denied by the project rule bad.example.com https:443 deny'],
    ['tcp://203.0.113.9:5432', 'GET', 'deny', 'no rule allows tcp to 203.0.113.9:5432 (deny by default)'],
    ['tcp://203.0.113.7:5432', 'GET', 'deny', 'denied by the project rule 203.0.113.7 tcp:5432 deny'],
    ['tcp://203.0.113.7:5000', 'GET', 'allow', 'allowed by the project rule 203.0.113.7 tcp:5000-6000 allow'],
    ['https://all.example.com/anything', 'GET', 'allow', 'allowed by the project rule all.example.com https:443 allow (all paths)'],
    ['https://all.example.com/%2e%2e/x', 'GET', 'deny', "refused: the path contains '%2e' (an encoded '.', '/', '\\' or '%'), which the proxy refuses"],
    ['https://all.example.com/a/../x', 'GET', 'deny', "refused: the path contains a '.' or '..' segment, which the proxy refuses"],
    ['https://api.example.com/v1/chat', 'get', 'allow', "GET /v1/chat matches path rule '/v1' [GET, HEAD] allow of the project rule api.example.com https:443 allow"],
    ['https://api.example.com/v1/admin', 'GET', 'deny', "GET /v1/admin matches path rule '/v1/admin' deny of the project rule api.example.com https:443 allow"],
    ['https://api.example.com//v1//x', 'POST', 'deny', 'POST /v1/x matches no path rule of the project rule api.example.com https:443 allow: path_default deny'],
  ];
  for (const [url, method, expected, reason] of cases) {
    test(`${method} ${url}: ${expected}`, () => {
      const decision = decide(policy, url, method);
      assert.equal(decision.verdict, expected);
      assert.equal(decision.reason, reason);
    });
  }
  test('a decision names the rule and path rule that made it', () => {
    const byDns = decide(policy, 'https://bad.example.com/');
    assert.equal(byDns.rule?.action, 'deny');
    assert.equal(byDns.rule?.dst.kind === 'domain' && byDns.rule.dst.name, 'bad.example.com');
    assert.equal(decide(policy, 'https://evil.com/').rule, undefined);
    const byPath = decide(policy, 'https://api.example.com/v1/admin');
    assert.equal(byPath.pathRule?.path, '/v1/admin');
    assert.equal(decide(policy, 'https://api.example.com/v2').pathRule, undefined);
  });
  test('a request without path or method is GET /', () => {
    const gated = policyOf('      - dst: api.example.com\n        proto: https\n        path_rules:\n          - path: /\n            methods: [GET]\n            action: allow\n        path_default: deny\n');
    assert.equal(gated.decide({ transport: 'https', host: 'api.example.com', port: 443 }).verdict, 'allow');
    assert.equal(gated.decide({ transport: 'https', host: 'api.example.com', port: 443, method: 'post' }).verdict, 'deny');
    assert.equal(gated.decide({ transport: 'https', host: 'api.example.com', port: 443, path: 'v1' }).verdict, 'deny');
  });
});

describe('request paths', () => {
  test('a path must start with /', () => {
    assert.deepEqual(normalizeRequestPath('v1/x'), { ok: false, reason: "the path 'v1/x' does not start with '/'" });
    assert.deepEqual(normalizeRequestPath('/v1//x?y#z'), { ok: true, path: '/v1/x' });
  });
});

describe('reading a URL into a request', () => {
  const request = (url: string, options: { method?: string; port?: number } = {}) => {
    const parsed = parseRequestUrl(url, options);
    return parsed.ok ? parsed.request : parsed;
  };
  test('the path is kept as written, with its query; an empty one is /', () => {
    assert.deepEqual(request('https://api.example.com/v1/./x?q=1#f'), { transport: 'https', host: 'api.example.com', port: 443, path: '/v1/./x?q=1', method: 'GET' });
    assert.deepEqual(request('https://api.example.com'), { transport: 'https', host: 'api.example.com', port: 443, path: '/', method: 'GET' });
    assert.deepEqual(request('https://api.example.com?q=1', { method: 'post' }), { transport: 'https', host: 'api.example.com', port: 443, path: '/?q=1', method: 'POST' });
  });
  test('the path is the one the URL parser sees: spaces around the URL and tabs or newlines in it do not count', () => {
    assert.equal((request(' \thttps://api.example.com/ad\nmin?x \n') as { path: string }).path, '/admin?x');
  });
  test('tcp, ssh and udp requests have no path or method', () => {
    assert.deepEqual(request('ssh://GitHub.com'), { transport: 'tcp', host: 'github.com', port: 22 });
    assert.deepEqual(request('udp://203.0.113.7:53/x', { method: 'POST' }), { transport: 'udp', host: '203.0.113.7', port: 53 });
    assert.deepEqual(request('tcp://db.example.com:1', { port: 65535 }), { transport: 'tcp', host: 'db.example.com', port: 65535 });
  });
  test('IPv4-mapped IPv6 is its IPv4 address; any other IPv6 is refused as native IPv6', () => {
    assert.equal((request('tcp://[::ffff:10.0.1.5]:9050') as { host: string }).host, '10.0.1.5');
    assert.equal((request('tcp://[::FFFF:c0a8:ff01]:9050') as { host: string }).host, '192.168.255.1');
    for (const url of ['tcp://[2001:db8::5]:1', 'tcp://[1::ffff:a00:5]:1', 'tcp://[::ffff:a00:5:1]:1', 'tcp://[::1]:1']) {
      assert.deepEqual(request(url), { ok: false, denied: true, message: `${url.slice(7, url.lastIndexOf(']'))} is a native IPv6 address: the firewall denies native IPv6 egress`.replace('FFFF', 'ffff') }, url);
    }
  });
  test('what is not a request says why', () => {
    assert.deepEqual(request('api.example.com/v1'), {
      ok: false,
      message: "'api.example.com/v1' is not a URL: write it like https://api.example.com/v1, ssh://github.com or tcp://db.example.com:5432",
    });
    assert.deepEqual(request('ftp://example.com/'), { ok: false, message: "'ftp:' is not a scheme the firewall routes: use https, http, wss, ws, ssh, tcp or udp" });
    assert.deepEqual(request('tcp://db.example.com'), { ok: false, message: "'tcp://db.example.com' needs a port from 1 to 65535 (in the URL or with --port)" });
    assert.deepEqual(request('udp://:53'), { ok: false, message: "'udp://:53' is not a URL: write it like https://api.example.com/v1, ssh://github.com or tcp://db.example.com:5432" });
    assert.deepEqual(request('tcp:///x'), { ok: false, message: "'tcp:///x' has no host" });
  });
  test('ports from 1 to 65535, no others', () => {
    for (const port of [1, 65535]) assert.equal((request('tcp://db.example.com', { port }) as { port: number }).port, port);
    for (const port of [0, 65536, 1.5, Number.NaN]) assert.equal((request('tcp://db.example.com', { port }) as { ok: boolean }).ok, false, `port ${port}`);
  });
});
