/**
 * The runtime rule operations, one spec sentence at a time (egress-firewall.md, "CLI Commands" and
 * "Blocked domains"). Expected results are the spec's words, written here by hand.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import type { NormalizedRule } from '../../src/core/firewall/rule';
import {
  addRule,
  checkState,
  EMPTY_STATE,
  effectivePolicy,
  type Outcome,
  refreshFromProject,
  removeRule,
  type RuntimeState,
  type StoredRule,
  toStoredRule,
} from '../../src/core/firewall/runtimeRules';
import { parseRequestUrl } from '../../src/core/policy/requestUrl';
import { domainsYaml, ruleYaml } from '../helpers/marked';

type Done = Extract<Outcome, { ok: true }>;

function done(outcome: Outcome): Done {
  assert.ok(outcome.ok, `expected success, got: ${JSON.stringify(outcome)}`);
  return outcome;
}

function failed(outcome: Outcome): string {
  assert.ok(!outcome.ok, `expected failure, got: ${JSON.stringify(outcome)}`);
  return outcome.errors.join('\n');
}

/** Applies operations in turn, each on the state the previous one returned. */
const chain = (state: RuntimeState, ...ops: ((s: RuntimeState) => Outcome)[]): RuntimeState => ops.reduce((s, op) => done(op(s)).state, state);

const state = (...rules: StoredRule[]): RuntimeState => ({ version: 1, rules });

function projectRules(yaml: string): readonly NormalizedRule[] {
  const loaded = loadProject(yaml);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return loaded.rules;
}

function verdict(runtime: RuntimeState, url: string, method = 'GET', project: readonly NormalizedRule[] = []): 'allow' | 'deny' {
  const checked = checkState(runtime);
  assert.equal(checked.failed, false, JSON.stringify(checked.problems));
  const parsed = parseRequestUrl(url, { method });
  assert.ok(parsed.ok, url);
  return effectivePolicy(project, checked.rules).decide(parsed.request).verdict;
}

describe('add DOMAIN', () => {
  test('adds an https allow rule on port 443 (the spec: "Add a domain allow rule")', () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'api.openai.com' }));
    assert.deepEqual(out.state.rules, [{ dst: 'api.openai.com', proto: 'https', port: '443', action: 'allow' }]);
    assert.equal(out.changed, true);
    assert.equal(verdict(out.state, 'https://api.openai.com/v1/chat'), 'allow');
  });

  test('is idempotent: the same key again changes nothing', () => {
    const once = chain(EMPTY_STATE, (s) => addRule(s, { dst: 'api.openai.com' }));
    const again = done(addRule(once, { dst: 'API.OpenAI.com' }));
    assert.equal(again.changed, false);
    assert.deepEqual(again.state, once);
    assert.match(again.changes[0]!.message, /already allowed by the rule store; nothing changed/);
  });

  test('--proto and --port follow the rule fields: ssh defaults to 22, tcp needs a port, tls means https', () => {
    assert.deepEqual(done(addRule(EMPTY_STATE, { dst: 'git.example.com', proto: 'ssh' })).state.rules[0], { dst: 'git.example.com', proto: 'ssh', port: '22', action: 'allow' });
    assert.deepEqual(done(addRule(EMPTY_STATE, { dst: 'db.example.com', proto: 'tcp', port: '5432' })).state.rules[0]!.port, '5432');
    assert.match(failed(addRule(EMPTY_STATE, { dst: 'db.example.com', proto: 'tcp' })), /'tcp' has no default port/);
    assert.equal(done(addRule(EMPTY_STATE, { dst: 'a.example.com', proto: 'tls' })).state.rules[0]!.proto, 'https');
  });

  test('a wildcard keeps its leading dot; a bad destination is an error', () => {
    assert.equal(done(addRule(EMPTY_STATE, { dst: '.datadoghq.example' })).state.rules[0]!.dst, '.datadoghq.example');
    assert.match(failed(addRule(EMPTY_STATE, { dst: 'https://evil.example/x' })), /takes a host, not a URL/);
    assert.match(failed(addRule(EMPTY_STATE, { dst: '*.example.com' })), /wildcards are written with a leading dot/);
  });

  test('a built-in domain is already allowed; its rule cannot be changed', () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'api.anthropic.com' }));
    assert.equal(out.changed, false);
    assert.deepEqual(out.state.rules, []);
    assert.match(failed(addRule(EMPTY_STATE, { dst: '.claude.ai', pathRule: { path: '/public/', action: 'allow' } })), /built-in rule, which cannot be changed/);
  });

  test('a deny rule is not turned into an allow rule behind the user\'s back', () => {
    const denied = state({ dst: 'evil.example', proto: 'https', port: '443', action: 'deny' });
    assert.match(failed(addRule(denied, { dst: 'evil.example' })), /deny rule in the rule store/);
    assert.match(failed(addRule(denied, { dst: 'evil.example', pathRule: { path: '/', action: 'allow' } })), /deny rule/);
  });
});

/** Operations are pure: a frozen input makes any mutation throw. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

describe('add DOMAIN --path P --action A: path rules', () => {
  const base = deepFreeze(chain(EMPTY_STATE, (s) => addRule(s, { dst: 'api.example.com' })));

  test('"Path rules accumulate across calls" (the spec\'s /v1 allow, /v2 deny)', () => {
    const out = chain(
      base,
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'allow' } }),
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v2', action: 'deny' } }),
    );
    assert.deepEqual(out.rules[0]!.path_rules, [
      { path: '/v1', action: 'allow' },
      { path: '/v2', action: 'deny' },
    ]);
    assert.equal(verdict(out, 'https://api.example.com/v1/chat'), 'allow');
    assert.equal(verdict(out, 'https://api.example.com/v2/x'), 'deny');
    assert.equal(verdict(out, 'https://api.example.com/admin'), 'deny', 'path_default defaults to deny');
  });

  test('"repeating the same --path with a different --action overwrites that entry\'s action"', () => {
    const out = chain(
      base,
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'allow', methods: ['GET'] } }),
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v2', action: 'allow' } }),
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'deny' } }),
    );
    assert.deepEqual(out.rules[0]!.path_rules, [
      { path: '/v1', action: 'deny' },
      { path: '/v2', action: 'allow' },
    ]);
  });

  test('a deny is never overwritten by a rule that leaves some of its methods out: those requests would fall through to what allows them (fuzzing found it)', () => {
    // The fuzzer's case: the project denies / under path_default allow; "allow POST on /" would open GET /.
    const project = projectRules('security:\n  firewall:\n    rules:\n      - dst: 10.0.0.1\n        proto: https\n        path_rules:\n          - path: /\n            action: deny\n        path_default: allow\n');
    const refreshed = done(refreshFromProject(EMPTY_STATE, project)).state;
    assert.equal(verdict(refreshed, 'https://10.0.0.1/', 'GET', project), 'deny');
    const refused = addRule(refreshed, { dst: '10.0.0.1', pathRule: { path: '/', action: 'allow', methods: ['POST'] } }, { projectRules: project });
    assert.equal(
      failed(refused),
      "10.0.0.1 https:443: path rule '/' deny would be overwritten by '/' allow [POST], which leaves out every method but POST: those requests to '/' would no longer be denied by it. Give --methods covering what it denies, or remove it first (remove with --path) if that is what you want.",
    );
    // A shorter allow behind it, path_default deny: a deny narrowed to POST would open GET /v1.
    const twoRules = chain(base, (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/', action: 'allow' } }), (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'deny', methods: ['GET', 'POST'] } }));
    assert.match(failed(addRule(twoRules, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'deny', methods: ['POST'] } })), /leaves out GET: those requests to '\/v1' would no longer be denied/);
    assert.equal(verdict(twoRules, 'https://api.example.com/v1/x', 'GET'), 'deny', 'nothing changed');
    // What covers the deny's methods is fine: every method, or more of them.
    assert.deepEqual(done(addRule(twoRules, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'allow' } })).state.rules[0]!.path_rules, [{ path: '/', action: 'allow' }, { path: '/v1', action: 'allow' }]);
    assert.equal(done(addRule(twoRules, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'deny', methods: ['GET', 'POST', 'PUT'] } })).ok, true);
  });

  test('"a different --path value appends a new entry": lookup is by exact string, so /v1 and /v1/ differ', () => {
    const out = chain(
      base,
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'allow' } }),
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1/', action: 'deny' } }),
    );
    assert.deepEqual(out.rules[0]!.path_rules!.map((pr) => pr.path), ['/v1', '/v1/']);
  });

  test('the same path and action again changes nothing', () => {
    const once = chain(base, (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'allow' } }));
    const again = done(addRule(once, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'Allow' } }));
    assert.equal(again.changed, false);
  });

  test('a path rule on a new domain creates its entry: only what a path rule allows gets through', () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'api.github.com', pathRule: { path: '/', action: 'allow', methods: ['GET', 'HEAD'] } }));
    assert.deepEqual(out.state.rules, [{ dst: 'api.github.com', proto: 'https', port: '443', action: 'allow', path_rules: [{ path: '/', action: 'allow', methods: ['GET', 'HEAD'] }] }]);
    assert.match(out.warnings.join('\n'), /path_default deny: only requests that a path rule allows get through/);
    assert.equal(verdict(out.state, 'https://api.github.com/repos/o/r'), 'allow');
    assert.equal(verdict(out.state, 'https://api.github.com/repos/o/r/git-receive-pack', 'POST'), 'deny');
  });

  test('methods are normalised: upper case, duplicates dropped, with a warning for the case', () => {
    const out = done(addRule(base, { dst: 'api.example.com', pathRule: { path: '/', action: 'allow', methods: ['get', ' head ', 'GET'] } }));
    assert.deepEqual(out.state.rules[0]!.path_rules, [{ path: '/', action: 'allow', methods: ['GET', 'HEAD'] }]);
    assert.match(out.warnings.join('\n'), /'get' is read as 'GET'/);
    assert.match(failed(addRule(base, { dst: 'api.example.com', pathRule: { path: '/', action: 'allow', methods: ['G ET'] } })), /'G ET' is not an HTTP method/);
  });

  test('a regex path with ~ is stored verbatim and matches the whole path (the spec\'s quoted CLI example)', () => {
    const out = chain(base, (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '~/repos/(myorg|other)/?', action: 'allow' } }));
    assert.equal(out.rules[0]!.path_rules![0]!.path, '~/repos/(myorg|other)/?');
    assert.equal(verdict(out, 'https://api.example.com/repos/myorg'), 'allow');
    assert.equal(verdict(out, 'https://api.example.com/repos/other/'), 'allow');
    assert.equal(verdict(out, 'https://api.example.com/repos/myorg-evil'), 'deny');
  });

  test('"An invalid path ... fails the whole add operation" and changes nothing', () => {
    const before = structuredClone(base);
    for (const [path, why] of [
      ['v1', /must start with '\/'/],
      ['/repos/(a|b)', /cannot appear in a URL path/],
      ['~/repos/(', /does not compile as RE2/],
      ['~repos', /must start with '\/' or '\^\/'/],
    ] as const) {
      const outcome = addRule(base, { dst: 'api.example.com', pathRule: { path, action: 'allow' } });
      assert.match(failed(outcome), why, path);
      assert.match(failed(outcome), /^api\.example\.com https:443: /, 'says which rule');
    }
    assert.deepEqual(base, before);
  });

  test('path rules and methods apply to http-family protocols only', () => {
    const ssh = chain(EMPTY_STATE, (s) => addRule(s, { dst: 'github.com', proto: 'ssh' }));
    assert.match(failed(addRule(ssh, { dst: 'github.com', proto: 'ssh', pathRule: { path: '/', action: 'allow' } })), /https, http, ws and wss only/);
    for (const proto of ['http', 'ws', 'wss']) assert.ok(done(addRule(EMPTY_STATE, { dst: 'a.example.com', proto, pathRule: { path: '/', action: 'allow' } })));
  });

  test('an action other than allow or deny is an error', () => {
    assert.match(failed(addRule(base, { dst: 'api.example.com', pathRule: { path: '/', action: 'permit' } })), /'permit' must be allow or deny/);
  });

  test('two path rules with the same path (from a project file) are only changed when --methods picks one', () => {
    const two = state({
      dst: 'api.github.com',
      proto: 'https',
      port: '443',
      action: 'allow',
      path_rules: [
        { path: '/repos/', action: 'deny', methods: ['POST'] },
        { path: '/repos/', action: 'allow', methods: ['GET'] },
      ],
    });
    assert.match(failed(addRule(two, { dst: 'api.github.com', pathRule: { path: '/repos/', action: 'deny' } })), /2 path rules for '\/repos\/'/);
    const picked = done(addRule(two, { dst: 'api.github.com', pathRule: { path: '/repos/', action: 'deny', methods: ['get'] } }));
    assert.deepEqual(picked.state.rules[0]!.path_rules![1], { path: '/repos/', action: 'deny', methods: ['GET'] });
  });

  test('a path rule on a project rule starts from the project\'s entry ("attach a path-scoped rule onto an existing entry")', () => {
    const project = projectRules(ruleYaml('dst: api.example.com', 'path_rules:', '  - path: /v1', '    action: allow', 'path_default: deny'));
    const out = done(addRule(EMPTY_STATE, { dst: 'api.example.com', pathRule: { path: '/v2', action: 'allow' } }, { projectRules: project }));
    assert.deepEqual(out.state.rules[0]!.path_rules!.map((pr) => pr.path), ['/v1', '/v2']);
    assert.match(out.warnings.join('\n'), /copied from the project file/);
    const plain = done(addRule(EMPTY_STATE, { dst: 'api.example.com' }, { projectRules: project }));
    assert.equal(plain.changed, false, 'already allowed by the project file');
  });
});

describe('remove DOMAIN [--path P]', () => {
  const withPaths = deepFreeze(chain(
    EMPTY_STATE,
    (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'allow' } }),
    (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v2', action: 'deny' } }),
    (s) => addRule(s, { dst: 'api.example.com', proto: 'ssh' }),
  ));

  test('removes the whole entry for the key', () => {
    const out = done(removeRule(withPaths, { dst: 'api.example.com' }));
    assert.deepEqual(out.state.rules.map((r) => `${r.dst}:${r.proto}`), ['api.example.com:ssh']);
  });

  test('--path drops a single path rule "without removing the whole entry"', () => {
    const out = done(removeRule(withPaths, { dst: 'api.example.com', path: '/v1' }));
    assert.deepEqual(out.state.rules[0]!.path_rules, [{ path: '/v2', action: 'deny' }]);
  });

  test('"the lookup is exact-string ... so a typo or sub-prefix won\'t match": the error lists the stored paths', () => {
    for (const path of ['/v', '/v1/', '/V1', 'v1']) {
      const outcome = removeRule(withPaths, { dst: 'api.example.com', path });
      assert.match(failed(outcome), new RegExp(`no path rule '${path.replace(/\//g, '\\/')}'.*its path rules are '/v1', '/v2'`));
    }
  });

  test('removing the last path rule of a deny-by-default entry is refused: it would open every path', () => {
    const one = chain(EMPTY_STATE, (s) => addRule(s, { dst: 'a.example.com', pathRule: { path: '/v1', action: 'allow' } }));
    assert.match(failed(removeRule(one, { dst: 'a.example.com', path: '/v1' })), /'\/v1' is the last path rule of a\.example\.com https:443: without path rules it would allow every path\. Remove the whole rule \(clawker firewall remove a\.example\.com\)/);
  });

  test('with path_default allow, the last path rule may go: the entry allowed every other path already', () => {
    const open: RuntimeState = { version: 1, rules: [{ dst: 'a.example.com', proto: 'https', port: '443', action: 'allow', path_rules: [{ path: '/admin', action: 'deny' }], path_default: 'allow' }] };
    const out = done(removeRule(open, { dst: 'a.example.com', path: '/admin' }));
    assert.equal(out.state.rules[0]!.path_rules, undefined);
  });

  test('a rule that is not in the store is an error naming what is there', () => {
    assert.match(failed(removeRule(withPaths, { dst: 'api.example.com', proto: 'ssh', port: '2222' })), /no rule api\.example\.com ssh:2222.*The store has: api\.example\.com https:443, api\.example\.com ssh:22/);
    assert.match(failed(removeRule(EMPTY_STATE, { dst: 'nothing.example' })), /no rule nothing\.example https:443 in the rule store\.$/);
  });

  test('built-in rules cannot be removed; project rules are removed from the project file', () => {
    assert.match(failed(removeRule(EMPTY_STATE, { dst: 'api.anthropic.com' })), /built-in rule, which cannot be removed/);
    const project = projectRules(domainsYaml('github.com'));
    assert.match(failed(removeRule(EMPTY_STATE, { dst: 'github.com' }, { projectRules: project })), /comes from the project file/);
  });
});

describe('refresh: sync the project file into the store', () => {
  const yaml = [
    'security:',
    '  firewall:',
    '    add_domains: [github.com, api.anthropic.com]',
    '    rules:',
    '      - dst: api.example.com',
    '        path_rules:',
    '          - path: /v1',
    '            action: deny',
    '        path_default: allow',
    '      - dst: github.com',
    '        proto: ssh',
    '',
  ].join('\n');

  test('adds the missing rules (built-in ones are never stored)', () => {
    const out = done(refreshFromProject(EMPTY_STATE, projectRules(yaml)));
    assert.deepEqual(out.state.rules.map((r) => `${r.dst}:${r.proto}:${r.port}`), ['github.com:https:443', 'api.example.com:https:443', 'github.com:ssh:22']);
    assert.deepEqual(out.state.rules[1], { dst: 'api.example.com', proto: 'https', port: '443', action: 'allow', path_rules: [{ path: '/v1', action: 'deny' }], path_default: 'allow' });
  });

  test('updates existing rules: the file wins the action, path_default and each path it lists', () => {
    const stored = state({ dst: 'api.example.com', proto: 'https', port: '443', action: 'allow', path_rules: [{ path: '/v1', action: 'allow' }], path_default: 'deny' });
    const out = done(refreshFromProject(stored, projectRules(yaml)));
    assert.deepEqual(out.state.rules[0], { dst: 'api.example.com', proto: 'https', port: '443', action: 'allow', path_rules: [{ path: '/v1', action: 'deny' }], path_default: 'allow' });
    assert.ok(out.changes.some((c) => c.kind === 'updated' && /api\.example\.com https:443/.test(c.message)));
  });

  test('"Sync is add/update only": rules and path rules the file does not list stay', () => {
    const stored = chain(
      EMPTY_STATE,
      (s) => addRule(s, { dst: 'only.in.store.example' }),
      (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/runtime', action: 'allow' } }),
    );
    const out = done(refreshFromProject(stored, projectRules(yaml)));
    assert.ok(out.state.rules.some((r) => r.dst === 'only.in.store.example'));
    assert.deepEqual(out.state.rules.find((r) => r.dst === 'api.example.com')!.path_rules, [
      { path: '/runtime', action: 'allow' },
      { path: '/v1', action: 'deny' },
    ]);
    const kept = out.changes.filter((c) => c.kind === 'kept').map((c) => c.message);
    assert.ok(kept.some((m) => /only\.in\.store\.example/.test(m)));
    assert.ok(kept.some((m) => /keeps path rule '\/runtime'/.test(m)));
  });

  test('a second refresh changes nothing', () => {
    const once = done(refreshFromProject(EMPTY_STATE, projectRules(yaml))).state;
    const twice = done(refreshFromProject(once, projectRules(yaml)));
    assert.equal(twice.changed, false);
    assert.deepEqual(twice.state, once);
  });

  test('a path listed several times (one per method set) replaces the stored entries for that path as a group', () => {
    const stored = state({ dst: 'api.github.com', proto: 'https', port: '443', action: 'allow', path_rules: [{ path: '/repos/', action: 'allow' }] });
    const project = projectRules(
      ruleYaml('dst: api.github.com', 'path_rules:', '  - path: /repos/', '    action: deny', '    methods: [POST]', '  - path: /repos/', '    action: allow', '    methods: [GET]'),
    );
    const out = done(refreshFromProject(stored, project));
    assert.deepEqual(out.state.rules[0]!.path_rules, [
      { path: '/repos/', action: 'deny', methods: ['POST'] },
      { path: '/repos/', action: 'allow', methods: ['GET'] },
    ]);
  });

  test('a bad rule fails the whole refresh and changes nothing', () => {
    const good = projectRules(domainsYaml('a.example.com'));
    const bad: NormalizedRule = { ...good[0]!, dst: { kind: 'domain', name: 'b.example.com', wildcard: false }, pathRules: [{ path: 'v1', match: { kind: 'prefix', prefix: 'v1' }, action: 'allow', methods: [] }] };
    const outcome = refreshFromProject(EMPTY_STATE, [...good, bad]);
    assert.match(failed(outcome), /b\.example\.com https:443: path 'v1' must start with '\/'/);
  });
});

describe('the state is checked by the project file\'s own checks', () => {
  test('every spec rule survives the trip to the stored shape and back', () => {
    const yaml = [
      'security:',
      '  firewall:',
      '    add_domains: [api.openai.com, .datadoghq.example]',
      '    rules:',
      '      - { dst: api.github.com, proto: https, port: "443", action: allow, path_rules: [{ path: /, action: allow, methods: [GET, HEAD] }], path_default: deny }',
      '      - { dst: example.com, proto: http, port: "80", action: allow, path_rules: [{ path: /evil, action: deny }], path_default: allow }',
      '      - { dst: git.internal.corp, proto: ssh, port: "22", action: allow }',
      '      - { dst: 10.0.0.5, proto: tcp, port: "8080", action: allow }',
      '      - { dst: media.example.com, proto: udp, port: "9000-9100" }',
      '      - { dst: api.github.com, proto: wss, path_rules: [{ path: "~/repos/(a|b)/?", action: allow }] }',
      '',
    ].join('\n');
    const project = projectRules(yaml);
    const checked = checkState(state(...project.map(toStoredRule)));
    assert.equal(checked.failed, false, JSON.stringify(checked.problems));
    assert.deepEqual(
      checked.rules,
      project.map((r) => ({ ...r, origin: 'runtime' })),
    );
  });

  test('a malformed state is refused with the rule it is about', () => {
    const bad = (value: unknown) => {
      const checked = checkState(value);
      assert.equal(checked.failed, true);
      return checked.problems.map((p) => `${p.index ?? '-'} ${p.message}`).join('\n');
    };
    assert.match(bad({ version: 2, rules: [] }), /version 2, not 1: it was written by a newer clawker/);
    assert.match(bad({ rules: [] }), /version none/);
    assert.match(bad({ version: 1, rules: {} }), /'rules' must be a list/);
    assert.match(bad([]), /must be an object/);
    assert.match(bad({ version: 1, rules: [{ dst: 'a.example.com' }, { dst: 'b.example.com', pth_rules: [] }] }), /^1 unknown key 'pth_rules' in rules\[1\]: did you mean 'path_rules'\?/);
    assert.match(bad({ version: 1, rules: [{ dst: 'a.example.com', port: '99999' }] }), /^0 port '99999'/);
    assert.match(bad({ version: 1, rules: [null] }), /^0 rules\[0\] must be a mapping/);
  });

  test('a duplicate key in a hand-edited state is named by its index', () => {
    const checked = checkState(state({ dst: 'a.example.com', proto: 'https', port: '443', action: 'allow' }, { dst: 'a.example.com', proto: 'https', port: '443', action: 'deny' }));
    assert.equal(checked.failed, false);
    assert.match(checked.problems.map((p) => p.message).join('\n'), /duplicates rules\[0\]/);
  });
});

describe('the rules in force (effectivePolicy)', () => {
  test('the store decides for a key it holds; the project file for the rest', () => {
    const project = projectRules(domainsYaml('api.example.com', 'other.example.com'));
    const runtime = chain(EMPTY_STATE, (s) => addRule(s, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'allow' } }, { projectRules: project }));
    assert.equal(verdict(runtime, 'https://api.example.com/v2', 'GET', project), 'deny');
    assert.equal(verdict(runtime, 'https://api.example.com/v1', 'GET', project), 'allow');
    assert.equal(verdict(runtime, 'https://other.example.com/anything', 'GET', project), 'allow');
  });

  test('"you cannot accidentally override or remove a system-required rule", even from a hand-edited store', () => {
    const runtime = state({ dst: 'api.anthropic.com', proto: 'https', port: '443', action: 'deny' });
    assert.equal(verdict(runtime, 'https://api.anthropic.com/v1/messages'), 'allow');
  });
});
