/**
 * Formatting-preserving `.clawker.yaml` edits: every case compares the whole file after the edit
 * with text written out by hand, checks that it loads without errors, and that the policy then
 * allows what was asked.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { loadProject } from '../../src/core/config/load';
import { type AllowRequest, allowInProject, applyTextEdits, type TextEdit, wildcardParentOf } from '../../src/core/config/projectEdits';
import { Policy } from '../../src/core/policy/policy';

/** The policy of a file that may not load yet (an empty section): only the built-in rules then. */
const basePolicy = (text: string): Policy => {
  const loaded = loadProject(text);
  return new Policy({ project: loaded.rules });
};

const policyOf = (text: string): Policy => {
  const loaded = loadProject(text);
  assert.equal(loaded.failed, false, `does not load:\n${text}\n${JSON.stringify(loaded.problems)}`);
  return new Policy({ project: loaded.rules });
};

function allows(policy: Policy, request: AllowRequest): boolean {
  switch (request.kind) {
    case 'domain':
      return policy.decide({ transport: 'https', host: request.domain.toLowerCase().replace(/\.$/, ''), port: 443, path: '/', method: 'GET' }).verdict === 'allow';
    case 'wildcard': {
      const name = request.parent.replace(/^\./, '');
      return policy.decide({ transport: 'https', host: `any-name.${name}`, port: 443, path: '/', method: 'GET' }).verdict === 'allow';
    }
    case 'path': {
      const transport = request.proto ?? 'https';
      const port = request.port ?? (transport === 'https' ? 443 : 80);
      return policy.decide({ transport, host: request.domain, port, path: request.path, ...(request.method ? { method: request.method } : {}) }).verdict === 'allow';
    }
  }
}

/** The original text back from an edited one, when every edit was an insertion. */
function withoutInsertions(edited: string, edits: readonly TextEdit[]): string {
  let out = '';
  let at = 0; // in `edited`
  let shift = 0;
  for (const e of edits) {
    assert.equal(e.length, 0, 'an insertion');
    out += edited.slice(at, e.offset + shift);
    at = e.offset + shift + e.text.length;
    shift += e.text.length;
  }
  return out + edited.slice(at);
}

/** Asserts the whole result, that it loads, that it allows the request, and that the edits produce it. */
function expectEdit(before: string, request: AllowRequest, after: string, description?: string): void {
  const edit = allowInProject(before, request);
  assert.equal(edit.text, after);
  assert.equal(edit.already, false);
  assert.equal(applyTextEdits(before, edit.edits), after);
  assert.equal(allows(policyOf(after), request), true, 'the edited file allows the request');
  if (description) assert.equal(edit.description, description);
}

const domain = (d: string): AllowRequest => ({ kind: 'domain', domain: d });

// ---- add_domains --------------------------------------------------------------------------------

test('an empty file gets the whole section', () => {
  expectEdit('', domain('example.com'), 'security:\n  firewall:\n    add_domains:\n      - example.com\n', 'add example.com to security.firewall.add_domains');
});

test('a file with only comments keeps them and gets the section after them', () => {
  expectEdit(
    '# Clawker project\n# (nothing yet)\n',
    domain('example.com'),
    '# Clawker project\n# (nothing yet)\nsecurity:\n  firewall:\n    add_domains:\n      - example.com\n',
  );
  // Without a final newline, the file still ends without one.
  expectEdit('# only a comment', domain('example.com'), '# only a comment\nsecurity:\n  firewall:\n    add_domains:\n      - example.com');
});

test('no security section: added at the end of the file, comments and blank lines kept', () => {
  expectEdit(
    '# my project\nname: demo   # the name\n\nagent:\n  env:\n    FOO: bar\n# end\n',
    domain('Example.COM.'),
    '# my project\nname: demo   # the name\n\nagent:\n  env:\n    FOO: bar\nsecurity:\n  firewall:\n    add_domains:\n      - example.com\n# end\n',
  );
});

test('security without firewall, in a file indented by four spaces', () => {
  expectEdit(
    'security:\n    docker_socket: false\n    cap_add:\n    - SYS_PTRACE\nname: demo\n',
    domain('example.com'),
    'security:\n    docker_socket: false\n    cap_add:\n    - SYS_PTRACE\n    firewall:\n        add_domains:\n        - example.com\nname: demo\n',
  );
});

test('firewall without add_domains: the list follows the existing rules', () => {
  expectEdit(
    'security:\n  firewall:\n    rules:\n      - dst: github.com\n        proto: ssh\n        port: "22"\n      # more rules later\nname: demo\n',
    domain('example.com'),
    'security:\n  firewall:\n    rules:\n      - dst: github.com\n        proto: ssh\n        port: "22"\n    add_domains:\n      - example.com\n      # more rules later\nname: demo\n',
  );
});

test('a block list: the new item goes after the last one, before the comments that follow it', () => {
  expectEdit(
    [
      'security:',
      '  firewall:',
      '    add_domains:',
      '      - github.com   # code',
      '      - pypi.org',
      '      # - npmjs.com  (not yet)',
      '',
      '# agent settings',
      'agent:',
      '  env: {}',
      '',
    ].join('\n'),
    domain('example.com'),
    [
      'security:',
      '  firewall:',
      '    add_domains:',
      '      - github.com   # code',
      '      - pypi.org',
      '      - example.com',
      '      # - npmjs.com  (not yet)',
      '',
      '# agent settings',
      'agent:',
      '  env: {}',
      '',
    ].join('\n'),
  );
});

test('a list not indented under its key keeps that style; the quoting of the last item is copied', () => {
  expectEdit(
    "security:\n  firewall:\n    add_domains:\n    - 'github.com'\n    rules: []\n",
    domain('example.com'),
    "security:\n  firewall:\n    add_domains:\n    - 'github.com'\n    - 'example.com'\n    rules: []\n",
  );
});

test('flow lists get ", item" before the closing bracket', () => {
  expectEdit(
    'security:\n  firewall:\n    add_domains: [github.com, "pypi.org" ]  # short\n',
    domain('example.com'),
    'security:\n  firewall:\n    add_domains: [github.com, "pypi.org", "example.com" ]  # short\n',
  );
  expectEdit('security:\n  firewall:\n    add_domains: []\n', domain('example.com'), 'security:\n  firewall:\n    add_domains: [example.com]\n');
  expectEdit('security: {firewall: {}}\n', domain('example.com'), 'security: {firewall: {add_domains: [example.com]}}\n');
});

test('an empty add_domains (null) becomes a list under its key', () => {
  expectEdit(
    'security:\n  firewall:\n    add_domains:   # none yet\n    rules: []\n',
    domain('example.com'),
    'security:\n  firewall:\n    add_domains:   # none yet\n      - example.com\n    rules: []\n',
  );
  expectEdit('security:\n  firewall:\n    add_domains: ~\n', domain('example.com'), 'security:\n  firewall:\n    add_domains:\n      - example.com\n');
  expectEdit('security:\n', domain('example.com'), 'security:\n  firewall:\n    add_domains:\n      - example.com\n');
});

test('a file without a final newline still ends without one', () => {
  expectEdit(
    'security:\n  firewall:\n    add_domains:\n      - github.com',
    domain('example.com'),
    'security:\n  firewall:\n    add_domains:\n      - github.com\n      - example.com',
  );
});

test('CRLF line endings are kept', () => {
  expectEdit(
    'name: demo\r\nsecurity:\r\n  firewall:\r\n    add_domains:\r\n      - github.com\r\n',
    domain('example.com'),
    'name: demo\r\nsecurity:\r\n  firewall:\r\n    add_domains:\r\n      - github.com\r\n      - example.com\r\n',
  );
  expectEdit('name: demo\r\n', domain('example.com'), 'name: demo\r\nsecurity:\r\n  firewall:\r\n    add_domains:\r\n      - example.com\r\n');
});

test('a wildcard is added with its leading dot', () => {
  expectEdit(
    'security:\n  firewall:\n    add_domains:\n      - github.com\n',
    { kind: 'wildcard', parent: 'example.com' },
    'security:\n  firewall:\n    add_domains:\n      - github.com\n      - .example.com\n',
    'add .example.com to security.firewall.add_domains (example.com and every name below it)',
  );
});

// ---- already allowed ----------------------------------------------------------------------------

test('already allowed: the same entry, a covering wildcard, a built-in rule, a rule with every path', () => {
  const cases: [string, AllowRequest][] = [
    ['security:\n  firewall:\n    add_domains: [Example.com]\n', domain('example.com')],
    ['security:\n  firewall:\n    add_domains: [.example.com]\n', domain('api.example.com')],
    ['security:\n  firewall:\n    add_domains: [.example.com]\n', { kind: 'wildcard', parent: 'eu.example.com' }],
    ['', domain('api.anthropic.com')],
    ['security:\n  firewall:\n    add_domains: [example.com]\n', { kind: 'path', domain: 'example.com', path: '/v1/x', method: 'POST' }],
    [
      'security:\n  firewall:\n    rules:\n      - dst: example.com\n        path_rules:\n          - path: /v1/\n            action: allow\n',
      { kind: 'path', domain: 'example.com', path: '/v1/models?page=2', method: 'GET' },
    ],
  ];
  for (const [text, request] of cases) {
    const edit = allowInProject(text, request);
    assert.equal(edit.already, true, JSON.stringify(request));
    assert.deepEqual(edit.edits, []);
    assert.equal(edit.text, text);
    assert.match(edit.description, /is already allowed \(.*(project|system) rule/);
  }
});

// ---- paths --------------------------------------------------------------------------------------

test('a path: a new rules entry allowing only that path and method, the query string dropped', () => {
  expectEdit(
    '# demo\nsecurity:\n  firewall:\n    add_domains:\n      - github.com\n',
    { kind: 'path', domain: 'api.example.com', path: '/v1/models?limit=5', method: 'GET' },
    [
      '# demo',
      'security:',
      '  firewall:',
      '    add_domains:',
      '      - github.com',
      '    rules:',
      '      - dst: api.example.com',
      '        proto: https',
      '        action: allow',
      '        path_rules:',
      '          - path: /v1/models',
      '            action: allow',
      '            methods: [GET]',
      '        path_default: deny',
      '',
    ].join('\n'),
    'add a rules entry allowing only GET /v1/models on api.example.com',
  );
});

test('a path on another port, over http, without a method', () => {
  expectEdit(
    'security:\n  firewall:\n    rules:\n    - dst: github.com\n      proto: ssh\n',
    { kind: 'path', domain: 'example.com', path: '/status', proto: 'http', port: 8080 },
    [
      'security:',
      '  firewall:',
      '    rules:',
      '    - dst: github.com',
      '      proto: ssh',
      '    - dst: example.com',
      '      proto: http',
      '      port: "8080"',
      '      action: allow',
      '      path_rules:',
      '      - path: /status',
      '        action: allow',
      '      path_default: deny',
      '',
    ].join('\n'),
  );
});

test("a path on a host that has a rules entry with path rules is appended to that entry's path_rules", () => {
  expectEdit(
    [
      'security:',
      '  firewall:',
      '    rules:',
      '      - dst: "api.example.com"',
      '        proto: tls   # legacy name of https',
      '        path_rules:',
      '          - path: "/v1/chat"',
      '            action: allow',
      '          # reads only',
      '        path_default: deny',
      '      - dst: github.com',
      '        proto: ssh',
      '',
    ].join('\n'),
    { kind: 'path', domain: 'api.example.com', path: '/v1/models', method: 'get' },
    [
      'security:',
      '  firewall:',
      '    rules:',
      '      - dst: "api.example.com"',
      '        proto: tls   # legacy name of https',
      '        path_rules:',
      '          - path: "/v1/chat"',
      '            action: allow',
      '          - path: "/v1/models"',
      '            action: allow',
      '            methods: [get]',
      '          # reads only',
      '        path_default: deny',
      '      - dst: github.com',
      '        proto: ssh',
      '',
    ].join('\n'),
    'allow get /v1/models on api.example.com (a path rule on its rules entry)',
  );
});

test('a path rule appended to a flow path_rules list is written in flow style', () => {
  expectEdit(
    'security:\n  firewall:\n    rules:\n      - {dst: api.example.com, path_rules: [{path: /a, action: allow}]}\n',
    { kind: 'path', domain: 'api.example.com', path: '/b', method: 'PUT' },
    'security:\n  firewall:\n    rules:\n      - {dst: api.example.com, path_rules: [{path: /a, action: allow}, {path: /b, action: allow, methods: [PUT]}]}\n',
  );
});

test('a path that needs quoting is quoted', () => {
  expectEdit(
    '',
    { kind: 'path', domain: 'example.com', path: '/a,b#c' },
    'security:\n  firewall:\n    rules:\n      - dst: example.com\n        proto: https\n        action: allow\n        path_rules:\n          - path: "/a,b"\n            action: allow\n        path_default: deny\n',
  );
});

// ---- refusals -----------------------------------------------------------------------------------

test('refuses what it cannot do, with a message that says why, and never writes invalid YAML', () => {
  const cases: [string, AllowRequest, RegExp][] = [
    ['security:\n  firewall:\n    add_domains: [a.com\n', domain('b.com'), /does not parse/],
    ['security:\n  firewall:\n    add_domains: github.com\n', domain('b.com'), /fix them first \(line 3: /],
    ['security: [firewall]\n', domain('b.com'), /has errors|not a mapping/],
    ['security:\n  firewall:\n    rules:\n      - dst: x.com\n        proto: "no such proto"\n', domain('b.com'), /has errors, so none of its rules apply/],
    ['- a\n- b\n', domain('b.com'), /has errors|not a mapping/],
    ['security:\n  firewall:\n    rules:\n      - dst: b.com\n        action: deny\n', domain('b.com'), /b\.com is denied by the project rule for b\.com https:443; change or remove/],
    ['security:\n  firewall:\n    rules:\n      - dst: b.com\n        proto: ssh\n        action: deny\n', domain('b.com'), /denied by the project rule for b\.com ssh:22/],
    ['', { kind: 'path', domain: 'claude.ai', path: '/share/x' }, /built-in rule for \.claude\.ai https:443, whose path rules a project cannot change/],
    [
      'security:\n  firewall:\n    rules:\n      - dst: .example.com\n        path_rules: [{path: /a, action: allow}]\n',
      { kind: 'path', domain: 'api.example.com', path: '/b' },
      /governed by the rule for \.example\.com https:443, which has path rules/,
    ],
    [
      'security:\n  firewall:\n    rules:\n      - dst: example.com\n        path_rules: [{path: /a, action: allow}]\n',
      domain('example.com'),
      /has a rules entry with path_rules/,
    ],
    [
      'security:\n  firewall:\n    rules:\n      - dst: example.com\n        path_rules: [{path: /v1/secret, action: deny}]\n        path_default: deny\n',
      { kind: 'path', domain: 'example.com', path: '/v1/secret' },
      /could not allow \/v1\/secret on example\.com .*it would still be blocked/,
    ],
    ['', { kind: 'path', domain: 'example.com', path: '/a/../etc' }, /the proxy refuses this request whatever the rules/],
    ['', { kind: 'wildcard', parent: 'co.uk' }, /public suffix co\.uk/],
    ['', domain('.example.com'), /not a host name/],
    ['', domain('https://example.com/'), /not a host name/],
  ];
  for (const [text, request, message] of cases) {
    assert.throws(() => allowInProject(text, request), message, `${JSON.stringify(text)} ${JSON.stringify(request)}`);
  }
});

test('applyTextEdits refuses overlapping or out-of-range edits', () => {
  assert.equal(applyTextEdits('abcdef', [{ offset: 1, length: 2, text: 'X' }, { offset: 4, length: 0, text: 'Y' }]), 'aXdYef');
  assert.throws(() => applyTextEdits('abc', [{ offset: 2, length: 0, text: 'X' }, { offset: 1, length: 0, text: 'Y' }]), RangeError);
  assert.throws(() => applyTextEdits('abc', [{ offset: 2, length: 5, text: '' }]), RangeError);
});

// ---- wildcards offered --------------------------------------------------------------------------

test('wildcardParentOf: the parent, never a top-level domain or a public suffix', () => {
  const cases: [string, string | undefined][] = [
    ['api.foo.com', '.foo.com'],
    ['foo.com', '.foo.com'],
    ['a.b.foo.com', '.b.foo.com'],
    ['API.Foo.Com.', '.foo.com'],
    ['foo.co.uk', '.foo.co.uk'],
    ['www.foo.co.uk', '.foo.co.uk'],
    ['user.github.io', '.user.github.io'],
    ['raw.githubusercontent.com', '.raw.githubusercontent.com'],
    ['bucket.s3.amazonaws.com', '.bucket.s3.amazonaws.com'],
    ['co.uk', undefined],
    ['github.io', undefined],
    ['localhost', undefined],
    ['com', undefined],
    ['10.0.0.1', undefined],
    ['::1', undefined],
    ['', undefined],
  ];
  for (const [name, expected] of cases) assert.equal(wildcardParentOf(name), expected, name);
});

// ---- properties ---------------------------------------------------------------------------------

const label = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const hostArb = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'org', 'dev', 'io', 'test')).map(([ls, tld]) => [...ls, tld].join('.'));

/** A valid project file in one of many layouts, and the domains it lists. */
const projectArb = fc
  .record({
    eol: fc.constantFrom('\n', '\r\n'),
    step: fc.constantFrom(2, 4),
    seqIndented: fc.boolean(),
    header: fc.boolean(),
    nameFirst: fc.boolean(),
    shape: fc.constantFrom('none', 'security-null', 'security-other', 'firewall-null', 'rules-only', 'block', 'flow'),
    domains: fc.uniqueArray(hostArb, { maxLength: 3 }),
    quote: fc.constantFrom('', '"', "'"),
    trailingComment: fc.boolean(),
    agentAfter: fc.boolean(),
    finalNewline: fc.boolean(),
  })
  .map((o) => {
    const ind = (n: number): string => ' '.repeat(n * o.step);
    const seq = (level: number): string => ' '.repeat(level * o.step + (o.seqIndented ? o.step : 0));
    const lines: string[] = [];
    if (o.header) lines.push('# project file', '');
    if (o.nameFirst) lines.push('name: demo  # named');
    const items = o.domains.map((d) => `${o.quote}${d}${o.quote}`);
    switch (o.shape) {
      case 'security-null':
        lines.push('security:');
        break;
      case 'security-other':
        lines.push('security:', `${ind(1)}docker_socket: false`);
        break;
      case 'firewall-null':
        lines.push('security:', `${ind(1)}firewall:  # to do`);
        break;
      case 'rules-only':
        lines.push('security:', `${ind(1)}firewall:`, `${ind(2)}rules:`, `${seq(2)}- dst: github.com`, `${seq(2)}  proto: ssh`);
        break;
      case 'block':
        lines.push('security:', `${ind(1)}firewall:`, `${ind(2)}add_domains:${items.length ? '' : ' []'}`, ...items.map((i) => `${seq(2)}- ${i}`));
        if (o.trailingComment && items.length) lines.push(`${seq(2)}# more later`);
        break;
      case 'flow':
        lines.push('security:', `${ind(1)}firewall:`, `${ind(2)}add_domains: [${items.join(', ')}]${o.trailingComment ? '  # flow' : ''}`);
        break;
    }
    if (o.agentAfter) lines.push('agent:', `${ind(1)}env:`, `${ind(2)}FOO: bar  # kept`);
    if (!o.nameFirst) lines.push('name: demo');
    const text = lines.join(o.eol) + (o.finalNewline ? o.eol : '');
    return { text, domains: o.shape === 'block' || o.shape === 'flow' ? o.domains : [] };
  });

test('property: any layout (valid, or with empty sections) + any domain → loads, allows it, and is the original plus inserted text', () => {
  fc.assert(
    fc.property(projectArb, hostArb, ({ text, domains }, target) => {
      const before = basePolicy(text);
      const edit = allowInProject(text, domain(target));
      if (domains.includes(target) || allows(before, domain(target))) {
        assert.equal(edit.already, true);
        assert.equal(edit.text, text);
        return;
      }
      assert.equal(edit.already, false);
      assert.equal(allows(policyOf(edit.text), domain(target)), true);
      assert.equal(withoutInsertions(edit.text, edit.edits), text);
      // Line endings stay those of the file.
      if (text.includes('\r\n')) assert.equal(edit.text.replace(/\r\n/g, '').includes('\n'), false);
    }),
    { numRuns: 300 },
  );
});

test('property: paths on generated files → loads, allows exactly that method and path, insertions only', () => {
  const pathArb = fc.array(fc.stringMatching(/^[a-z0-9_-]{1,8}$/), { minLength: 1, maxLength: 3 }).map((segs) => `/${segs.join('/')}`);
  fc.assert(
    fc.property(projectArb, hostArb, pathArb, fc.constantFrom('GET', 'POST', 'DELETE'), ({ text }, host, path, method) => {
      const request: AllowRequest = { kind: 'path', domain: host, path, method };
      const edit = allowInProject(text, request);
      if (edit.already) return;
      const after = policyOf(edit.text);
      assert.equal(allows(after, request), true);
      const other = method === 'GET' ? 'POST' : 'GET';
      assert.equal(allows(after, { ...request, method: other }), allows(basePolicy(text), { ...request, method: other }), 'another method is not allowed by the edit');
      assert.equal(allows(after, { ...request, path: `/OTHER${path}` }), allows(basePolicy(text), { ...request, path: `/OTHER${path}` }), 'another path is not allowed by the edit');
      assert.equal(withoutInsertions(edit.text, edit.edits), text);
    }),
    { numRuns: 200 },
  );
});
