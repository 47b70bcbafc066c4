/** Learn mode's core: what was blocked, the rules proposed for it, and the words people see. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadProject } from '../../src/core/config/load';
import { applyTextEdits } from '../../src/core/config/projectEdits';
import type { EgressEvent } from '../../src/core/events/eventSchema';
import { EditedText } from '../../src/core/learn/editedText';
import {
  applyPrompt,
  learningStatusText,
  type ObservedRequest,
  observedDetail,
  observedKey,
  observedLabel,
  observedRequests,
  proposeRules,
  wildcardLabel,
  wildcardSuggestions,
} from '../../src/core/learn/learnProposal';
import { Policy } from '../../src/core/policy/policy';
import type { AgentSummary } from '../../src/core/agents/lifecycle';
import { Recording } from '../../src/extension/learn/recording';

const at = (s: number): string => `2026-03-01T10:00:${String(s).padStart(2, '0')}.000Z`;

const dns = (name: string, s = 0, extra: Partial<EgressEvent> = {}): EgressEvent => ({
  time: at(s),
  source: 'dns',
  verdict: 'denied',
  agent: 'dev',
  domain: name.replace(/\.$/, ''),
  reason: 'no-rule',
  query: { name, type: 'A', rcode: 'NXDOMAIN' },
  ...extra,
});

const proxy = (sni: string | undefined, http: EgressEvent['http'], s = 0, extra: Partial<EgressEvent> = {}): EgressEvent => ({
  time: at(s),
  source: 'proxy',
  verdict: 'denied',
  agent: 'dev',
  ...(sni ? { sni, domain: sni } : {}),
  ...(http ? { http } : {}),
  ...extra,
});

const SESSION: EgressEvent[] = [
  dns('Blocked.TEST.', 3),
  dns('blocked.test.', 1, { query: { name: 'blocked.test.', type: 'AAAA', rcode: 'NXDOMAIN' } }),
  dns('blocked.test.', 7),
  proxy('api.x.com', { method: 'get', authority: 'api.x.com', path: '/v1/models?limit=3', status: 403 }, 2, { reason: 'path-default' }),
  proxy('api.x.com', { method: 'POST', authority: 'api.x.com', path: '/v1/chat', status: 403 }, 4),
  proxy(undefined, { method: 'GET', authority: 'plain.x.com:8080', path: '/health', status: 403 }, 5),
  proxy('cdn.x.com', undefined, 6, { reason: 'no-filter-chain' }),
  { time: at(8), source: 'kernel', verdict: 'denied', agent: 'dev', domain: 'github.com', l4: 'tcp', dst: { ip: '140.82.112.3', port: 22 }, reason: 'catch-all' },
  // Not blocked requests: allowed traffic, a kernel denial without a name, the control plane's notes.
  proxy('ok.x.com', { method: 'GET', path: '/', status: 200 }, 9, { verdict: 'allowed' }),
  { time: at(9), source: 'kernel', verdict: 'denied', l4: 'tcp', dst: { ip: '203.0.113.9', port: 443 } },
  { time: at(9), source: 'controlplane', verdict: 'bypassed', message: 'bypass window opened' },
];

test('observedRequests: distinct blocked requests, counted, with first and last time', () => {
  const base = { agent: 'dev' };
  const expected: ObservedRequest[] = [
    { key: 'dns blocked.test    ', source: 'dns', domain: 'blocked.test', reason: 'no-rule', count: 3, firstTime: at(1), lastTime: at(7), ...base },
    {
      key: 'proxy api.x.com https 443 GET /v1/models',
      source: 'proxy',
      domain: 'api.x.com',
      transport: 'https',
      port: 443,
      method: 'GET',
      path: '/v1/models',
      status: 403,
      reason: 'path-default',
      count: 1,
      firstTime: at(2),
      lastTime: at(2),
      ...base,
    },
    {
      key: 'proxy api.x.com https 443 POST /v1/chat',
      source: 'proxy',
      domain: 'api.x.com',
      transport: 'https',
      port: 443,
      method: 'POST',
      path: '/v1/chat',
      status: 403,
      count: 1,
      firstTime: at(4),
      lastTime: at(4),
      ...base,
    },
    {
      key: 'proxy plain.x.com http 8080 GET /health',
      source: 'proxy',
      domain: 'plain.x.com',
      transport: 'http',
      port: 8080,
      method: 'GET',
      path: '/health',
      status: 403,
      count: 1,
      firstTime: at(5),
      lastTime: at(5),
      ...base,
    },
    { key: 'proxy cdn.x.com https 443  ', source: 'proxy', domain: 'cdn.x.com', transport: 'https', port: 443, reason: 'no-filter-chain', count: 1, firstTime: at(6), lastTime: at(6), ...base },
    { key: 'kernel github.com tcp 22  ', source: 'kernel', domain: 'github.com', transport: 'tcp', port: 22, reason: 'catch-all', count: 1, firstTime: at(8), lastTime: at(8), ...base },
  ];
  assert.deepEqual(observedRequests(SESSION), expected);
  assert.equal(observedKey(SESSION[0]!), 'dns blocked.test    ');
  assert.equal(observedKey(SESSION[8]!), undefined);
});

test('labels: what each request was, what approving it adds, and the status bar', () => {
  const observed = observedRequests(SESSION);
  assert.deepEqual(
    observed.map((o) => [observedLabel(o), observedDetail(o)]),
    [
      ['blocked.test — DNS refused ×3', 'Adds blocked.test to add_domains (https, every path).'],
      ['api.x.com GET /v1/models — proxy 403 ×1', 'Adds a path rule: only GET /v1/models on api.x.com.'],
      ['api.x.com POST /v1/chat — proxy 403 ×1', 'Adds a path rule: only POST /v1/chat on api.x.com.'],
      ['plain.x.com:8080 GET /health — proxy 403 ×1', 'Adds a path rule: only GET /health on plain.x.com:8080.'],
      ['cdn.x.com — proxy refused ×1', 'Adds cdn.x.com to add_domains (https, every path).'],
      [
        'github.com tcp:22 — kernel denied ×1',
        'Cannot be proposed: tcp to port 22 is not https on 443, which add_domains allows; write a rules entry with its proto and port by hand.',
      ],
    ],
  );
  assert.equal(learningStatusText('dev', 4), '$(record) Learning: dev (4 blocked)');
  assert.equal(applyPrompt(1, '.clawker.yaml'), 'Apply 1 rule to .clawker.yaml?');
  assert.equal(applyPrompt(3, '.clawker.yaml'), 'Apply 3 rules to .clawker.yaml?');
});

test('wildcards are suggested only where two or more names share a registrable parent', () => {
  const observed = observedRequests([dns('a.x.com.'), dns('b.x.com.'), dns('a.co.uk.'), dns('b.co.uk.'), dns('solo.y.org.'), proxy('c.x.com', undefined)]);
  const suggestions = wildcardSuggestions(observed);
  assert.deepEqual(suggestions, [{ parent: '.x.com', domains: ['a.x.com', 'b.x.com', 'c.x.com'] }]);
  assert.equal(wildcardLabel(suggestions[0]!), '.x.com — every name under x.com (broader; seen: a.x.com, b.x.com, c.x.com)');
});

test('proposeRules: exact names, one rules entry for the paths of a host, comments kept, minimal edits', () => {
  const before = ['# demo project', 'security:', '  firewall:', '    add_domains:', '      - github.com  # code', '', 'agent:', '  env: {}', ''].join('\n');
  const proposal = proposeRules(before, observedRequests(SESSION));
  const after = [
    '# demo project',
    'security:',
    '  firewall:',
    '    add_domains:',
    '      - github.com  # code',
    '      - blocked.test',
    '      - cdn.x.com',
    '    rules:',
    '      - dst: api.x.com',
    '        proto: https',
    '        action: allow',
    '        path_rules:',
    '          - path: /v1/chat',
    '            action: allow',
    '            methods: [POST]',
    '          - path: /v1/models',
    '            action: allow',
    '            methods: [GET]',
    '        path_default: deny',
    '      - dst: plain.x.com',
    '        proto: http',
    '        port: "8080"',
    '        action: allow',
    '        path_rules:',
    '          - path: /health',
    '            action: allow',
    '            methods: [GET]',
    '        path_default: deny',
    '',
    'agent:',
    '  env: {}',
    '',
  ].join('\n');
  assert.equal(proposal.text, after);
  assert.deepEqual(proposal.edits, [{ offset: before.indexOf('\n\nagent') + 1, length: 0, text: after.slice(before.indexOf('\n\nagent') + 1, after.indexOf('\n\nagent') + 1) }]);
  assert.equal(applyTextEdits(before, proposal.edits), after);
  assert.deepEqual(proposal.added, [
    'add blocked.test to security.firewall.add_domains',
    'add cdn.x.com to security.firewall.add_domains',
    'add a rules entry allowing only POST /v1/chat on api.x.com',
    'allow GET /v1/models on api.x.com (a path rule on its rules entry)',
    'add a rules entry allowing only GET /health on plain.x.com',
  ]);
  assert.deepEqual(proposal.skipped, [
    { what: 'github.com tcp:22', reason: 'tcp to port 22 is not https on 443, which add_domains allows; write a rules entry with its proto and port by hand' },
  ]);
  const loaded = loadProject(after);
  assert.equal(loaded.failed, false);
  const policy = new Policy({ project: loaded.rules });
  assert.equal(policy.decide({ transport: 'https', host: 'api.x.com', port: 443, path: '/v1/models', method: 'GET' }).verdict, 'allow');
  assert.equal(policy.decide({ transport: 'https', host: 'api.x.com', port: 443, path: '/v1/models', method: 'DELETE' }).verdict, 'deny');
  assert.equal(policy.decide({ transport: 'https', host: 'api.x.com', port: 443, path: '/admin', method: 'GET' }).verdict, 'deny');
});

test('proposeRules: separate places in the file are separate edits; already allowed requests are skipped', () => {
  const before = 'security:\n  firewall:\n    add_domains: [cdn.x.com]  # flow\n    rules:\n      - dst: api.x.com\n        path_rules:\n          - path: /v1/chat\n            action: allow\n# end\n';
  const approved = observedRequests(SESSION).filter((o) => o.source !== 'kernel' && o.domain !== 'plain.x.com');
  const proposal = proposeRules(before, approved);
  const after =
    'security:\n  firewall:\n    add_domains: [cdn.x.com, blocked.test]  # flow\n    rules:\n      - dst: api.x.com\n        path_rules:\n          - path: /v1/chat\n            action: allow\n          - path: /v1/models\n            action: allow\n            methods: [GET]\n# end\n';
  assert.equal(proposal.text, after);
  assert.deepEqual(proposal.edits, [
    { offset: before.indexOf(']'), length: 0, text: ', blocked.test' },
    { offset: before.indexOf('# end'), length: 0, text: '          - path: /v1/models\n            action: allow\n            methods: [GET]\n' },
  ]);
  assert.deepEqual(
    proposal.skipped.map((s) => s.what),
    ['cdn.x.com', 'api.x.com POST /v1/chat'],
  );
  assert.match(proposal.skipped[0]!.reason, /^cdn\.x\.com is already allowed/);
  assert.match(proposal.skipped[1]!.reason, /^POST \/v1\/chat on api\.x\.com is already allowed/);
});

test('proposeRules: a wildcard only when picked, and then the names under it are already allowed', () => {
  const observed = observedRequests([dns('a.x.com.'), dns('b.x.com.'), dns('other.org.')]);
  const proposal = proposeRules('', observed, { wildcards: ['.x.com'] });
  assert.equal(proposal.text, 'security:\n  firewall:\n    add_domains:\n      - .x.com\n      - other.org\n');
  assert.deepEqual(proposal.added, ['add .x.com to security.firewall.add_domains (x.com and every name below it)', 'add other.org to security.firewall.add_domains']);
  assert.deepEqual(
    proposal.skipped.map((s) => s.what),
    ['a.x.com', 'b.x.com'],
  );
  // Without the pick: exact names only.
  assert.equal(proposeRules('', observed).text, 'security:\n  firewall:\n    add_domains:\n      - a.x.com\n      - b.x.com\n      - other.org\n');
});

test('proposeRules: a file it cannot edit leaves the text alone and says why for each request', () => {
  const before = 'security:\n  firewall:\n    add_domains: nope\n';
  const proposal = proposeRules(before, observedRequests([dns('a.com.')]));
  assert.equal(proposal.text, before);
  assert.deepEqual(proposal.edits, []);
  assert.deepEqual(proposal.added, []);
  assert.equal(proposal.skipped.length, 1);
  assert.match(proposal.skipped[0]!.reason, /has errors, so none of its rules apply; fix them first \(line 3: /);
});

// ---- EditedText ---------------------------------------------------------------------------------

test('EditedText: later steps inside earlier insertions, and deletions, fold into edits of the original', () => {
  const t = new EditedText('abc\ndef\n');
  t.apply([{ offset: 4, length: 0, text: 'XY\n' }]); // abc\nXY\ndef\n
  t.apply([{ offset: 5, length: 0, text: '+' }, { offset: 7, length: 1, text: 'D' }]); // abc\nX+Y\nDef\n
  t.apply([{ offset: 0, length: 1, text: '' }]); // bc\nX+Y\nDef\n
  assert.equal(t.text, 'bc\nX+Y\nDef\n');
  assert.deepEqual(t.edits(), [
    { offset: 0, length: 1, text: '' },
    { offset: 4, length: 1, text: 'X+Y\nD' },
  ]);
  assert.equal(applyTextEdits(t.original, t.edits()), t.text);
});

test('property: EditedText.edits() turns the original into the edited text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), fc.infiniteStream(fc.nat()), (original, seeds, randoms) => {
      const t = new EditedText(original);
      const it = randoms[Symbol.iterator]();
      for (const _ of seeds) {
        const len = t.text.length;
        const offset = it.next().value % (len + 1);
        const length = Math.min(it.next().value % 4, len - offset);
        const text = 'xyz'.slice(0, it.next().value % 4);
        t.apply([{ offset, length, text }]);
      }
      const edits = t.edits();
      assert.equal(applyTextEdits(original, edits), t.text);
      for (let i = 1; i < edits.length; i++) assert.ok(edits[i]!.offset > edits[i - 1]!.offset + edits[i - 1]!.length, 'separate edits do not touch');
    }),
    { numRuns: 500 },
  );
});

// ---- the editor's recording ---------------------------------------------------------------------

test("Recording keeps one agent's denials since it started, once each, and counts distinct requests", () => {
  const listeners: ((e: EgressEvent) => void)[] = [];
  const feed = {
    onEvent: (fn: (e: EgressEvent) => void) => {
      listeners.push(fn);
      return { dispose: () => listeners.splice(listeners.indexOf(fn), 1) };
    },
  };
  const dev = { id: 'c-dev', agent: 'dev' } as AgentSummary;
  const other = { id: 'c-other', agent: 'other' } as AgentSummary;
  const agents = { forEvent: (e: EgressEvent) => (e.agent === 'dev' ? dev : e.agent === 'other' ? other : undefined) };
  const counts: number[] = [];
  const recording = new Recording(dev, feed as never, agents, observedKey, (n) => counts.push(n), Date.parse(at(1)));
  const emit = (e: EgressEvent): void => listeners.forEach((fn) => fn(e));

  emit(dns('before.test.', 0)); // the replayed tail from before the start
  emit(dns('a.test.', 2));
  emit(dns('a.test.', 3));
  emit(dns('a.test.', 3)); // the same event again after a reconnect
  emit(dns('theirs.test.', 4, { agent: 'other' }));
  emit(proxy('ok.test', undefined, 5, { verdict: 'allowed' }));
  emit(proxy('b.test', undefined, 6));
  assert.deepEqual(counts, [1, 2]);
  assert.deepEqual(
    observedRequests(recording.events).map((o) => [o.domain, o.count]),
    [
      ['a.test', 2],
      ['b.test', 1],
    ],
  );
  recording.dispose();
  assert.equal(listeners.length, 0);
  emit(dns('after.test.', 7));
  assert.equal(recording.events.length, 3);
});
