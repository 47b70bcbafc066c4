/**
 * Blocked requests for the editor: which events are blocks a user can fix by allowing a name, how
 * they add up per (agent, domain), when the project's policy no longer blocks them, the words the
 * diagnostic uses, the allow choices and where the diagnostic goes in `.clawker.yaml`. Events are
 * written the way the converters in src/core/events emit them.
 */
process.env.TZ = 'UTC'; // clock times in messages are local: pin the zone
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import {
  allowChoices,
  anchorInProject,
  type BlockedEntry,
  BlockedLog,
  blockedOf,
  clockTime,
  diagnosticMessage,
  isAllowableName,
  notificationMessage,
  stillBlocked,
} from '../../src/core/editor/blockedRequests';
import { type EgressEvent, egressEventSchema } from '../../src/core/events/eventSchema';
import { Policy } from '../../src/core/policy/policy';

const CONTAINER = '3f2a9c1d7e4b5a6c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c';

/** Every event here must be one the stream could carry. */
const ev = (e: EgressEvent): EgressEvent => egressEventSchema.parse(e);

const dnsRefusal = (time: string, name = 'blocked.test.', type = 'A', agent = 'dev'): EgressEvent =>
  ev({
    time,
    source: 'dns',
    verdict: 'denied',
    agent,
    container: CONTAINER,
    domain: name.replace(/\.$/, ''),
    src: { ip: '172.30.0.5', port: 40312 + type.length },
    l4: 'udp',
    reason: 'no-rule',
    query: { name, type, rcode: 'NXDOMAIN' },
  });

const proxy403 = (time: string, path = '/v1/x?token=abc', method = 'GET'): EgressEvent =>
  ev({
    time,
    source: 'proxy',
    verdict: 'denied',
    agent: 'dev',
    container: CONTAINER,
    domain: 'api.x.com',
    src: { ip: '172.30.0.5', port: 51544 },
    l4: 'tcp',
    reason: 'path-default',
    sni: 'api.x.com',
    http: { method, authority: 'api.x.com', path, status: 403, details: 'direct_response', route: 'path-default' },
  });

const proxyReset = (time: string, sni = 'evil.example.org'): EgressEvent =>
  ev({
    time,
    source: 'proxy',
    verdict: 'denied',
    agent: 'dev',
    container: CONTAINER,
    domain: sni,
    src: { ip: '172.30.0.5', port: 51546 },
    l4: 'tcp',
    reason: 'no-filter-chain',
    sni,
  });

const kernelDenied = (time: string, domain: string | undefined, port = 443, l4 = 'udp'): EgressEvent =>
  ev({
    time,
    source: 'kernel',
    verdict: 'denied',
    agent: 'dev',
    container: CONTAINER,
    cgroupId: 5321,
    ...(domain ? { domain } : {}),
    src: { ip: '172.30.0.5', port: 38211 },
    dst: { ip: '203.0.113.7', port },
    l4,
    sockType: l4 === 'udp' ? 'dgram' : 'stream',
    hook: l4 === 'udp' ? 'sendmsg4' : 'connect4',
    reason: l4 === 'udp' ? 'udp-no-route' : 'peer',
    pid: 812,
    uid: 1001,
  });

describe('blockedOf', () => {
  test('a DNS refusal: the query name, lower-case, without its trailing dot', () => {
    assert.deepEqual(blockedOf(dnsRefusal('2025-06-01T15:42:07.123Z', 'Blocked.TEST.')), {
      agent: 'dev',
      container: CONTAINER,
      time: '2025-06-01T15:42:07.123Z',
      domain: 'blocked.test',
      how: 'dns',
    });
  });

  test("a proxy 403: the server name, the request's method and path without its query, the status", () => {
    assert.deepEqual(blockedOf(proxy403('2025-06-01T15:42:08Z')), {
      agent: 'dev',
      container: CONTAINER,
      time: '2025-06-01T15:42:08Z',
      domain: 'api.x.com',
      how: 'proxy',
      method: 'GET',
      path: '/v1/x',
      status: 403,
    });
  });

  test('a proxy reset for a server name no rule allows: the name only', () => {
    assert.deepEqual(blockedOf(proxyReset('2025-06-01T15:42:09Z')), {
      agent: 'dev',
      container: CONTAINER,
      time: '2025-06-01T15:42:09Z',
      domain: 'evil.example.org',
      how: 'proxy',
    });
  });

  test('a plain-HTTP proxy denial without a server name: the authority without its port, and the port', () => {
    const event = ev({
      time: '2025-06-01T15:42:10Z',
      source: 'proxy',
      verdict: 'denied',
      src: { ip: '172.30.0.6', port: 40000 },
      l4: 'tcp',
      reason: 'host-denied',
      http: { method: 'POST', authority: 'Plain.Example.com:8080', path: '/upload#frag', status: 403, details: 'direct_response', route: 'deny' },
    });
    assert.deepEqual(blockedOf(event), {
      agent: 'unknown',
      time: '2025-06-01T15:42:10Z',
      domain: 'plain.example.com',
      how: 'proxy',
      method: 'POST',
      path: '/upload',
      status: 403,
      port: 8080,
    });
  });

  test('a kernel denial of a named destination: the name, port and protocol; the agent by container when unnamed', () => {
    const { agent: _agent, ...unnamed } = kernelDenied('2025-06-01T15:42:11Z', 'api.x.com');
    assert.deepEqual(blockedOf(unnamed), {
      agent: '3f2a9c1d7e4b',
      container: CONTAINER,
      time: '2025-06-01T15:42:11Z',
      domain: 'api.x.com',
      how: 'kernel',
      port: 443,
      l4: 'udp',
    });
  });

  test('nothing to allow: IP-only and wildcard kernel denials, allowed, bypassed, redirected and control-plane events', () => {
    assert.equal(blockedOf(kernelDenied('2025-06-01T15:42:11Z', undefined, 22, 'tcp')), undefined);
    assert.equal(blockedOf(kernelDenied('2025-06-01T15:42:11Z', '.example.com')), undefined);
    for (const verdict of ['allowed', 'bypassed', 'redirected'] as const) {
      assert.equal(blockedOf({ ...kernelDenied('2025-06-01T15:42:11Z', 'api.x.com'), verdict }), undefined, verdict);
      assert.equal(blockedOf({ ...proxy403('2025-06-01T15:42:11Z'), verdict }), undefined, verdict);
      assert.equal(blockedOf({ ...dnsRefusal('2025-06-01T15:42:11Z'), verdict }), undefined, verdict);
    }
    const note = ev({ time: '2025-06-01T15:42:12Z', source: 'controlplane', verdict: 'denied', agent: 'dev', domain: 'x.com', message: 'bypass closed' });
    assert.equal(blockedOf(note), undefined);
  });

  test('names no rule could allow are dropped', () => {
    assert.equal(blockedOf(dnsRefusal('2025-06-01T15:42:07Z', 'bad name.test.')), undefined);
    assert.equal(blockedOf({ ...dnsRefusal('2025-06-01T15:42:07Z'), domain: '.', query: { name: '.', type: 'NS', rcode: 'NXDOMAIN' } }), undefined);
    assert.equal(blockedOf(dnsRefusal('2025-06-01T15:42:07Z', '-lead.example.com.')), undefined);
    const byIp = ev({
      time: '2025-06-01T15:42:10Z',
      source: 'proxy',
      verdict: 'denied',
      src: { ip: '172.30.0.6', port: 40000 },
      http: { method: 'GET', authority: '10.1.2.3:443', path: '/', status: 403 },
    });
    assert.equal(blockedOf(byIp), undefined);
    assert.equal(blockedOf({ ...byIp, http: { ...byIp.http, authority: '[2001:db8::1]:443' } }), undefined);
    assert.deepEqual(
      ['github.com', '_dmarc.example.com', 'xn--bcher-kva.example', '1.2.3.4', '123', 'a..b', `${'a'.repeat(64)}.com`, 'a b.com', 'under_.ok'].map(isAllowableName),
      [true, true, true, false, false, false, false, false, true],
    );
  });
});

describe('BlockedLog', () => {
  test('counts per agent and domain, with first and last time, every way it was blocked and the last request', () => {
    const log = new BlockedLog();
    const a = log.record(dnsRefusal('2025-06-01T15:40:00Z', 'api.x.com.', 'A'));
    assert.equal(a?.count, 1);
    log.record(dnsRefusal('2025-06-01T15:40:00.002Z', 'api.x.com.', 'AAAA'));
    log.record(proxy403('2025-06-01T15:41:30Z', '/v1/x?q=1', 'POST'));
    // A reset carries no HTTP request: the last one seen stays.
    const last = log.record(proxyReset('2025-06-01T15:42:07Z', 'api.x.com'));
    const expected: BlockedEntry = {
      key: 'dev api.x.com',
      agent: 'dev',
      container: CONTAINER,
      domain: 'api.x.com',
      count: 4,
      firstTime: '2025-06-01T15:40:00Z',
      lastTime: '2025-06-01T15:42:07Z',
      how: ['dns', 'proxy'],
      method: 'POST',
      path: '/v1/x',
      status: 403,
    };
    assert.deepEqual(last, expected);
    assert.deepEqual(log.list(), [expected]);
    assert.deepEqual(log.get('dev api.x.com'), expected);

    // A later proxy 403 replaces the request; a kernel denial adds its port and protocol.
    log.record(proxy403('2025-06-01T15:42:08Z', '/v2/y'));
    assert.deepEqual(log.record(kernelDenied('2025-06-01T15:42:09Z', 'api.x.com', 443, 'udp')), {
      ...expected,
      count: 6,
      lastTime: '2025-06-01T15:42:09Z',
      how: ['dns', 'proxy', 'kernel'],
      method: 'GET',
      path: '/v2/y',
      port: 443,
      l4: 'udp',
    });
  });

  test('events that are not fixable blocks are not recorded', () => {
    const log = new BlockedLog();
    assert.equal(log.record({ ...proxy403('2025-06-01T15:42:08Z'), verdict: 'allowed' }), undefined);
    assert.equal(log.record(kernelDenied('2025-06-01T15:42:11Z', undefined, 22, 'tcp')), undefined);
    assert.deepEqual(log.list(), []);
  });

  test('an event replayed by a reconnect is not counted twice, even after clear()', () => {
    const log = new BlockedLog();
    const event = dnsRefusal('2025-06-01T15:42:07Z');
    assert.equal(log.record(event)?.count, 1);
    const reordered = Object.fromEntries(Object.entries(JSON.parse(JSON.stringify(event)) as object).reverse()) as EgressEvent;
    assert.equal(log.record(reordered), undefined);
    assert.equal(log.record(dnsRefusal('2025-06-01T15:42:07Z', 'blocked.test.', 'AAAA'))?.count, 2);
    log.clear();
    assert.equal(log.size, 0);
    assert.equal(log.record(event), undefined);
    assert.equal(log.record(dnsRefusal('2025-06-01T15:42:20Z'))?.count, 1);
  });

  test('out-of-order events keep the earliest first time and the latest last time', () => {
    const log = new BlockedLog();
    log.record(dnsRefusal('2025-06-01T15:42:07Z'));
    const entry = log.record(dnsRefusal('2025-06-01T15:30:00Z'));
    assert.deepEqual([entry?.firstTime, entry?.lastTime], ['2025-06-01T15:30:00Z', '2025-06-01T15:42:07Z']);
  });

  test('newest first, bounded (the least recently blocked goes), per agent', () => {
    const log = new BlockedLog({ maxEntries: 3 });
    log.record(dnsRefusal('2025-06-01T15:00:01Z', 'one.test.'));
    log.record(dnsRefusal('2025-06-01T15:00:02Z', 'two.test.'));
    log.record(dnsRefusal('2025-06-01T15:00:03Z', 'one.test.', 'AAAA'));
    log.record(dnsRefusal('2025-06-01T15:00:04Z', 'two.test.', 'A', 'review'));
    assert.deepEqual(log.list().map((e) => e.key), ['review two.test', 'dev one.test', 'dev two.test']);
    log.record(dnsRefusal('2025-06-01T15:00:05Z', 'three.test.'));
    assert.deepEqual(log.list().map((e) => [e.key, e.count]), [['dev three.test', 1], ['review two.test', 1], ['dev one.test', 2]]);
  });

  test('forget and prune', () => {
    const log = new BlockedLog();
    log.record(dnsRefusal('2025-06-01T15:00:01Z', 'one.test.'));
    log.record(dnsRefusal('2025-06-01T15:00:02Z', 'two.test.'));
    log.record(dnsRefusal('2025-06-01T15:00:03Z', 'three.test.'));
    assert.equal(log.forget('dev two.test'), true);
    assert.equal(log.forget('dev two.test'), false);
    const dropped = log.prune((e) => e.domain !== 'one.test');
    assert.deepEqual(dropped.map((e) => e.key), ['dev one.test']);
    assert.deepEqual(log.list().map((e) => e.key), ['dev three.test']);
  });
});

const policyOf = (yaml: string): Policy => {
  const loaded = loadProject(yaml);
  assert.deepEqual(loaded.problems.filter((p) => p.severity === 'error'), [], 'test project must load');
  return new Policy({ project: loaded.rules });
};

const entryOf = (...events: EgressEvent[]): BlockedEntry => {
  const log = new BlockedLog();
  let entry: BlockedEntry | undefined;
  for (const e of events) entry = log.record(e) ?? entry;
  assert.ok(entry);
  return entry;
};

describe('stillBlocked', () => {
  const empty = new Policy();

  test('a DNS refusal: until a rule names the domain, or a wildcard covers it', () => {
    const entry = entryOf(dnsRefusal('2025-06-01T15:42:07Z', 'api.blocked.test.'));
    assert.equal(stillBlocked(entry, empty), true);
    assert.equal(stillBlocked(entry, policyOf('security:\n  firewall:\n    add_domains:\n      - other.test\n')), true);
    assert.equal(stillBlocked(entry, policyOf('security:\n  firewall:\n    add_domains:\n      - api.blocked.test\n')), false);
    assert.equal(stillBlocked(entry, policyOf('security:\n  firewall:\n    add_domains:\n      - .blocked.test\n')), false);
    // A deny rule keeps it refused whatever else allows it.
    const denied = 'security:\n  firewall:\n    add_domains: [.blocked.test]\n    rules:\n      - dst: api.blocked.test\n        action: deny\n';
    assert.equal(stillBlocked(entry, policyOf(denied)), true);
  });

  test('a proxy denial of a path: until the policy allows that method on that path', () => {
    const entry = entryOf(proxy403('2025-06-01T15:42:08Z', '/v1/x?token=abc', 'POST'));
    const onlyPublic = (extra: string) =>
      `security:\n  firewall:\n    rules:\n      - dst: api.x.com\n        path_rules:\n          - path: /public\n            action: allow\n${extra}`;
    assert.equal(stillBlocked(entry, policyOf(onlyPublic(''))), true);
    assert.equal(stillBlocked(entry, policyOf(onlyPublic('          - path: /v1/x\n            action: allow\n            methods: [GET]\n'))), true);
    assert.equal(stillBlocked(entry, policyOf(onlyPublic('          - path: /v1/x\n            action: allow\n            methods: [POST]\n'))), false);
    assert.equal(stillBlocked(entry, policyOf('security:\n  firewall:\n    add_domains: [api.x.com]\n')), false);
  });

  test('every way it was blocked must be allowed; a kernel UDP denial needs a UDP rule', () => {
    const entry = entryOf(dnsRefusal('2025-06-01T15:42:07Z', 'api.x.com.'), kernelDenied('2025-06-01T15:42:09Z', 'api.x.com', 443, 'udp'));
    assert.equal(stillBlocked(entry, policyOf('security:\n  firewall:\n    add_domains: [api.x.com]\n')), true);
    const withUdp = 'security:\n  firewall:\n    add_domains: [api.x.com]\n    rules:\n      - dst: api.x.com\n        proto: udp\n        port: "443"\n';
    assert.equal(stillBlocked(entry, policyOf(withUdp)), false);
  });
});

describe('words', () => {
  test('clock time, and the diagnostic for each way of blocking', () => {
    assert.equal(clockTime('2025-06-01T15:42:07.900Z'), '15:42:07');
    assert.equal(clockTime('not a time'), '--:--:--');
    const dns = entryOf(dnsRefusal('2025-06-01T15:40:00Z'), dnsRefusal('2025-06-01T15:41:00Z', 'blocked.test.', 'AAAA'), dnsRefusal('2025-06-01T15:42:07Z'));
    assert.equal(diagnosticMessage(dns), 'Agent dev was blocked from blocked.test 3 times (DNS refused; last 15:42:07)');
    assert.equal(notificationMessage(dns), 'Agent dev was blocked from blocked.test');
    assert.equal(
      diagnosticMessage(entryOf(proxy403('2025-06-01T09:05:03Z'))),
      'Agent dev was blocked from api.x.com 1 time (proxy denied GET /v1/x (403); last 09:05:03)',
    );
    assert.equal(
      diagnosticMessage(entryOf(proxyReset('2025-06-01T09:05:03Z'), kernelDenied('2025-06-01T09:05:04Z', 'evil.example.org', 443, 'udp'))),
      'Agent dev was blocked from evil.example.org 2 times (proxy refused the connection, kernel denied udp port 443; last 09:05:04)',
    );
  });
});

describe('allowChoices', () => {
  const parentOf = (domain: string): string | undefined => (domain === 'api.x.com' ? '.x.com' : undefined);

  test('the name, its parent when one is offered, and the exact request when the proxy saw it', () => {
    assert.deepEqual(allowChoices(entryOf(proxy403('2025-06-01T15:42:08Z')), parentOf), [
      { title: 'Allow api.x.com (add_domains)', request: { kind: 'domain', domain: 'api.x.com' } },
      { title: 'Allow .x.com and its subdomains', request: { kind: 'wildcard', parent: '.x.com' } },
      { title: 'Allow only GET /v1/x on api.x.com', request: { kind: 'path', domain: 'api.x.com', path: '/v1/x', method: 'GET', proto: 'https' } },
    ]);
  });

  test('a DNS refusal of a name under a TLD: only the name', () => {
    assert.deepEqual(allowChoices(entryOf(dnsRefusal('2025-06-01T15:42:07Z')), parentOf), [
      { title: 'Allow blocked.test (add_domains)', request: { kind: 'domain', domain: 'blocked.test' } },
    ]);
  });

  test('plain HTTP on a non-default port keeps its protocol and port', () => {
    const event = ev({
      time: '2025-06-01T15:42:10Z',
      source: 'proxy',
      verdict: 'denied',
      agent: 'dev',
      src: { ip: '172.30.0.6', port: 40000 },
      http: { method: 'DELETE', authority: 'plain.example.com:80', path: '/items/7', status: 403 },
    });
    assert.deepEqual(allowChoices(entryOf(event), () => '.example.com')[2], {
      title: 'Allow only DELETE /items/7 on plain.example.com',
      request: { kind: 'path', domain: 'plain.example.com', path: '/items/7', method: 'DELETE', proto: 'http' },
    });
    const onPort = { ...event, http: { ...event.http, authority: 'plain.example.com:8443' } };
    assert.deepEqual(allowChoices(entryOf(onPort), () => undefined)[1]?.request, {
      kind: 'path',
      domain: 'plain.example.com',
      path: '/items/7',
      method: 'DELETE',
      proto: 'https',
      port: 8443,
    });
  });
});

describe('anchorInProject', () => {
  const at = (text: string) => {
    const a = anchorInProject(text);
    return text.slice(a.offset, a.offset + a.length);
  };

  test('the add_domains key, else firewall, else security, else the first line', () => {
    const full = '# project\nname: demo\nsecurity:\n  firewall:\n    add_domains:\n      - github.com\n';
    assert.deepEqual(anchorInProject(full), { offset: full.indexOf('add_domains'), length: 'add_domains'.length });
    assert.equal(at('security:\n  firewall:\n    rules: []\n'), 'firewall');
    assert.equal(at('name: demo\nsecurity:\n  docker_socket: false\n'), 'security');
    assert.equal(at('name: demo\nagent:\n  env: {}\n'), 'name: demo');
    assert.equal(at('security: {firewall: {add_domains: [a.com]}}'), 'add_domains');
  });

  test('never throws on a broken or odd file', () => {
    assert.deepEqual(anchorInProject(''), { offset: 0, length: 0 });
    assert.equal(at('security:\n  firewall: [\n    add_domains\n'), 'firewall');
    assert.equal(at('- a list\n- not a map\n'), '- a list');
    assert.equal(at('security: 5\r\nname: x'), 'security');
    assert.equal(at('"unterminated\nsecurity:'), '"unterminated');
    assert.equal(at('a: 1\n---\nsecurity:\n  firewall: {}\n'), 'a: 1');
  });
});
