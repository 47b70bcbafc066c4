/**
 * The firewall rule checks (ruleValidation.ts) and the runtime rule operations (runtimeRules.ts),
 * in process: what `clawker firewall add/remove/refresh` and the project file's checks say and do,
 * including the messages the user reads (egress-firewall.md, "Rule fields", "Path rules", "CLI
 * Commands"). Expected values are written by hand from the spec and the documented contracts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadProject } from '../../src/core/config/load';
import type { Problem } from '../../src/core/problems';
import type { NormalizedRule } from '../../src/core/firewall/rule';
import { validateFirewall } from '../../src/core/firewall/ruleValidation';
import {
  addRule,
  checkState,
  describeStoredRule,
  EMPTY_STATE,
  type Outcome,
  refreshFromProject,
  removeRule,
  type RuntimeState,
  type StoredRule,
} from '../../src/core/firewall/runtimeRules';
import { SYSTEM_RULES } from '../../src/core/firewall/systemRules';
import { LineIndex } from '../../src/core/problems';
import { parseYaml } from '../../src/core/yaml/document';
import { domainsYaml, ruleYaml } from '../helpers/marked';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Runs validateFirewall itself (not loadProject), so its own `rules` result is visible. */
function validate(text: string): { rules: readonly NormalizedRule[]; problems: readonly Problem[] } {
  const parsed = parseYaml(text);
  const value = parsed.value as { security?: { firewall?: unknown } } | undefined;
  return validateFirewall(value?.security?.firewall, { doc: parsed.doc, text, lines: new LineIndex(text) });
}

const codes = (problems: readonly Problem[]): string[] => problems.map((p) => `${p.severity} ${p.code}`);

function applyFix(text: string, p: Problem, which = 0): string {
  const fix = p.fixes?.[which];
  assert.ok(fix, `no fix ${which} on ${JSON.stringify(p)}`);
  let out = text;
  for (const e of [...fix.edits].sort((a, b) => b.range.start - a.range.start)) out = out.slice(0, e.range.start) + e.newText + out.slice(e.range.end);
  return out;
}

type Done = Extract<Outcome, { ok: true }>;
function done(outcome: Outcome): Done {
  assert.ok(outcome.ok, `expected success, got: ${JSON.stringify(outcome)}`);
  return outcome;
}
function failed(outcome: Outcome): readonly string[] {
  assert.ok(!outcome.ok, `expected failure, got: ${JSON.stringify(outcome)}`);
  return outcome.errors;
}
const state = (...rules: StoredRule[]): RuntimeState => ({ version: 1, rules });
const rule = (dst: string, extra: Partial<StoredRule> = {}): StoredRule => ({ dst, proto: 'https', port: '443', action: 'allow', ...extra });

function projectRules(yaml: string): readonly NormalizedRule[] {
  const loaded = loadProject(yaml);
  assert.equal(loaded.failed, false, JSON.stringify(loaded.problems));
  return loaded.rules;
}

const LABEL = 'api.example.com https:443';
const DEFAULT_DENY = `${LABEL} now has path rules and path_default deny: only requests that a path rule allows get through.`;
const LITERAL_DOT = (path: string) => `path '${path}' is matched literally as a prefix, character for character. If you meant a regular expression, write it with a leading '~': '~${path}'.`;

// ---------------------------------------------------------------------------------------------
// ruleValidation.ts
// ---------------------------------------------------------------------------------------------

describe('project file checks: fixes and errors', () => {
  test("a finding's obvious correction becomes a quick fix at the value ('tls' → 'https')", () => {
    const text = ruleYaml('dst: a.example.com', 'proto: tls');
    const { problems } = validate(text);
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.code, 'proto-legacy-tls');
    assert.equal(problems[0]!.fixes!.length, 1);
    assert.equal(problems[0]!.fixes![0]!.title, "Replace 'tls' with 'https'");
    assert.equal(applyFix(text, problems[0]!), ruleYaml('dst: a.example.com', 'proto: https'));
  });

  test('a finding without a correction has no fixes at all', () => {
    const { problems } = validate(ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow', '    methods: [FOO]'));
    assert.deepEqual(codes(problems), ['warning method-unusual']);
    assert.equal('fixes' in problems[0]!, false);
  });

  test('any error empties the rules: an invalid path rule is never dropped to leave the rule wider', () => {
    const out = validate([
      'security:',
      '  firewall:',
      '    add_domains: [ok.example.com]',
      '    rules:',
      '      - dst: a.example.com',
      '        path_rules:',
      '          - path: v1',
      '            action: allow',
      '',
    ].join('\n'));
    assert.deepEqual(out.rules, []);
    assert.deepEqual(codes(out.problems), ['error path-missing-slash']);
    const invalidMethod = validate(ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow', '    methods: ["G ET"]'));
    assert.deepEqual(invalidMethod.rules, []);
  });

  test('a rule that failed its checks takes no part in deduplication (no duplicate warning against it)', () => {
    const text = [
      'security:',
      '  firewall:',
      '    rules:',
      '      - dst: a.example.com',
      '        path_rules:',
      '          - path: v1',
      '            action: allow',
      '      - dst: a.example.com',
      '',
    ].join('\n');
    assert.deepEqual(codes(validate(text).problems), ['error path-missing-slash']);
  });

  test("an error elsewhere empties the rules too, and the error's correction is offered as a fix", () => {
    const text = ['security:', '  firewall:', '    rules:', '      - dst: "*.example.com"', '      - dst: b.example.com', ''].join('\n');
    const out = validate(text);
    assert.deepEqual(out.rules, []);
    assert.deepEqual(codes(out.problems), ['error dst-wildcard-star']);
    assert.equal(out.problems[0]!.fixes![0]!.title, "Use '.example.com'");
    assert.equal(applyFix(text, out.problems[0]!), ['security:', '  firewall:', '    rules:', '      - dst: ".example.com"', '      - dst: b.example.com', ''].join('\n'));
  });

  test('a firewall section that is empty, null or absent is read as no rules (it does not throw)', () => {
    for (const text of ['security:\n  firewall:\n', 'security:\n', 'a: 1\n', 'security:\n  firewall: 3\n']) {
      assert.deepEqual(validate(text).rules, [], text);
    }
    assert.deepEqual(validateFirewall(undefined, { doc: parseYaml('').doc, text: '', lines: new LineIndex('') }), { rules: [], problems: [] });
    assert.deepEqual(validateFirewall(null, { doc: parseYaml('').doc, text: '', lines: new LineIndex('') }), { rules: [], problems: [] });
    assert.equal(loadProject('security:\n  firewall:\n').rules.length, 0);
  });
});

describe('project file checks: path rules and methods', () => {
  const pathRulesOf = (text: string) => {
    const out = validate(text);
    assert.ok(out.rules.length > 0, JSON.stringify(out.problems));
    return out.rules[out.rules.length - 1]!.pathRules.map((pr) => `${pr.path} ${pr.action} ${pr.methods.join(',')}`);
  };

  test('a method listed twice (in any case) is kept once', () => {
    assert.deepEqual(pathRulesOf(ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow', '    methods: [GET, get, HEAD, GET]')), ['/a allow GET,HEAD']);
  });

  test('the same path with the same methods in another order is a duplicate, with a fix that removes it', () => {
    const text = ruleYaml(
      'dst: a.example.com',
      'path_rules:',
      '  - path: /a',
      '    action: allow',
      '    methods: [GET, POST]',
      '  - path: /a',
      '    action: deny',
      '    methods: [POST, GET]',
    );
    const { problems, rules } = validate(text);
    assert.deepEqual(codes(problems), ['warning duplicate-path-rule']);
    assert.equal(problems[0]!.message, "path rule '/a' repeats path_rules[0] with the same methods; the first one listed wins, so this one never takes effect.");
    assert.equal(problems[0]!.fixes![0]!.title, 'Remove the duplicate path rule');
    assert.equal(applyFix(text, problems[0]!), ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow', '    methods: [GET, POST]'));
    assert.deepEqual(rules[0]!.pathRules.map((pr) => pr.action), ['allow']);
  });

  test('method sets are compared as sets of whole names: [AB] and [A, B] differ', () => {
    const { problems, rules } = validate(ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow', '    methods: [AB]', '  - path: /a', '    action: deny', '    methods: [A, B]'));
    assert.equal(problems.filter((p) => p.code === 'duplicate-path-rule').length, 0);
    assert.equal(rules[0]!.pathRules.length, 2);
  });

  test("path_rules/path_default on a non-HTTP rule: each written key is warned about, and only those", () => {
    const only = (fields: string[]) => codes(validate(ruleYaml('dst: git.example.com', 'proto: ssh', ...fields)).problems);
    assert.deepEqual(only([]), []);
    assert.deepEqual(only(['path_default: allow']), ['warning l7-fields-ignored']);
    const both = validate(ruleYaml('dst: git.example.com', 'proto: ssh', 'path_rules:', '  - path: /a', '    action: allow', 'path_default: allow')).problems;
    assert.deepEqual(both.map((p) => p.message), [
      "'path_rules' is ignored on 'ssh' rules: there is no HTTP request to match paths or methods against. Remove it, or use https/http/ws/wss.",
      "'path_default' is ignored on 'ssh' rules: there is no HTTP request to match paths or methods against. Remove it, or use https/http/ws/wss.",
    ]);
    const onlyRules = validate(ruleYaml('dst: git.example.com', 'proto: ssh', 'path_rules:', '  - path: /a', '    action: allow')).problems;
    assert.deepEqual(onlyRules.map((p) => p.message.slice(0, 14)), ["'path_rules' i"]);
  });

  test('deny-with-path-rules is said for a deny rule that has path rules, and only then', () => {
    assert.deepEqual(codes(validate(ruleYaml('dst: a.example.com', 'action: deny')).problems), []);
    assert.deepEqual(codes(validate(ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: deny')).problems), []);
    assert.deepEqual(codes(validate(ruleYaml('dst: a.example.com', 'action: deny', 'path_rules:', '  - path: /a', '    action: allow')).problems), ['warning deny-with-path-rules']);
  });

  test('path-default-without-rules is said only when there are no path rules', () => {
    assert.deepEqual(codes(validate(ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow', 'path_default: allow')).problems), []);
    assert.deepEqual(codes(validate(ruleYaml('dst: a.example.com')).problems), []);
    const lone = validate(ruleYaml('dst: a.example.com', 'path_default: allow')).problems;
    assert.deepEqual(lone.map((p) => p.message), ["'path_default' has no effect without 'path_rules': every path of a.example.com is allowed. Add path rules (e.g. '- path: /' with 'methods') to restrict it."]);
  });
});

describe('project file checks: duplicates of built-in rules', () => {
  const REDUNDANT = (dst: string) => `${dst} is already allowed by a built-in rule; this entry can be removed.`;
  const CANNOT_REPLACE = (key: string, dst: string) =>
    `'${key}' duplicates the built-in rule for ${dst}, which cannot be replaced; rules are deduplicated by destination:protocol:port, so this later one is ignored.`;
  const claude = (...fields: string[]) => validate(ruleYaml('dst: .claude.ai', ...fields));
  const CLAUDE_KEY = '.claude.ai:https:443';

  test('an entry the built-in rule already covers is an info with a fix that removes it', () => {
    const text = domainsYaml('github.com', 'api.anthropic.com');
    const { problems, rules } = validate(text);
    assert.deepEqual(problems.map((p) => `${p.severity} ${p.message}`), [`info ${REDUNDANT('api.anthropic.com')}`]);
    assert.equal(problems[0]!.fixes![0]!.title, 'Remove the duplicate rule');
    assert.equal(applyFix(text, problems[0]!), domainsYaml('github.com'));
    const at = text.indexOf('api.anthropic.com');
    assert.deepEqual(problems[0]!.range, { start: at, end: at + 'api.anthropic.com'.length });
    assert.deepEqual(rules.map((r) => r.proto), ['https']);
    // path_default without path rules changes nothing on a rule without path rules: same effect.
    const pd = validate(ruleYaml('dst: api.anthropic.com', 'path_default: allow')).problems;
    assert.deepEqual(pd.filter((p) => p.code === 'duplicate-rule').map((p) => p.severity), ['info']);
  });

  test('the same path rules and path_default as the built-in .claude.ai rule: same effect', () => {
    const same = claude('path_rules:', '  - path: /public/', '    action: deny', '  - path: /share/', '    action: deny', 'path_default: allow').problems;
    assert.deepEqual(same.map((p) => `${p.severity} ${p.message}`), [`info ${REDUNDANT('.claude.ai')}`]);
  });

  test('anything that would enforce differently is a warning that the built-in rule cannot be replaced', () => {
    const differs = (...fields: string[]) => {
      const { problems } = claude(...fields);
      const dup = problems.filter((p) => p.code === 'duplicate-rule');
      assert.deepEqual(dup.map((p) => `${p.severity} ${p.message}`), [`warning ${CANNOT_REPLACE(CLAUDE_KEY, '.claude.ai')}`], fields.join(' / '));
    };
    differs('action: deny');
    // A deny of a built-in domain is never "already allowed": the action alone differs.
    const deny = validate(ruleYaml('dst: api.anthropic.com', 'action: deny')).problems;
    assert.deepEqual(deny.map((p) => `${p.severity} ${p.message}`), [`warning ${CANNOT_REPLACE('api.anthropic.com:https:443', 'api.anthropic.com')}`]);
    differs('path_rules:', '  - path: /public/', '    action: deny', 'path_default: allow'); // fewer path rules
    differs('path_rules:', '  - path: /public/', '    action: deny', '  - path: /share/', '    action: deny', 'path_default: deny');
    differs('path_rules:', '  - path: /public/', '    action: deny', '  - path: /other/', '    action: deny', 'path_default: allow');
    differs('path_rules:', '  - path: /elsewhere/', '    action: deny', '  - path: /share/', '    action: deny', 'path_default: allow');
    differs('path_rules:', '  - path: /public/', '    action: deny', '  - path: /share/', '    action: allow', 'path_default: allow');
    differs('path_rules:', '  - path: /public/', '    action: allow', '  - path: /share/', '    action: deny', 'path_default: allow');
    differs('path_rules:', '  - path: /public/', '    action: deny', '  - path: /share/', '    action: deny', '    methods: [GET]', 'path_default: allow');
    differs('path_rules:', '  - path: /public/', '    action: deny', '    methods: [GET]', '  - path: /share/', '    action: deny', 'path_default: allow');
    // A built-in rule without path rules against a project rule with some.
    const api = validate(ruleYaml('dst: api.anthropic.com', 'path_rules:', '  - path: /v1', '    action: allow')).problems;
    assert.deepEqual(api.filter((p) => p.code === 'duplicate-rule').map((p) => p.message), [CANNOT_REPLACE('api.anthropic.com:https:443', 'api.anthropic.com')]);
  });

  test('a duplicate of an earlier project rule names its line', () => {
    const text = ['security:', '  firewall:', '    add_domains: [a.example.com]', '    rules:', '      - dst: b.example.com', '      - dst: A.example.com', ''].join('\n');
    const dup = validate(text).problems;
    assert.deepEqual(dup.map((p) => p.message), [
      "'a.example.com:https:443' duplicates the rule at line 3; rules are deduplicated by destination:protocol:port, so this later one is ignored.",
    ]);
    const at = text.indexOf('A.example.com');
    assert.deepEqual(dup[0]!.range, { start: at, end: at + 'A.example.com'.length });
  });

  test('a CIDR in a rule: ignoring an allow is a warning, ignoring a deny is an error', () => {
    const allow = validate(ruleYaml('dst: 10.0.0.0/8', 'proto: tcp', 'port: 5432')).problems;
    assert.deepEqual(allow.map((p) => `${p.severity} ${p.message}`), [
      "warning '10.0.0.0/8' is a CIDR range, which Clawker for VS Code does not enforce yet. This allow rule is ignored, so that traffic stays blocked; list the addresses one by one to allow them.",
    ]);
    const deny = validate(ruleYaml('dst: 10.0.0.0/8', 'proto: tcp', 'port: 5432', 'action: deny'));
    assert.deepEqual(deny.problems.map((p) => `${p.severity} ${p.message}`), [
      "error '10.0.0.0/8' is a CIDR range, which Clawker for VS Code does not enforce yet. A deny rule that is not enforced would let that traffic through, so this file cannot be applied: list the addresses one by one.",
    ]);
    assert.deepEqual(deny.rules, []);
  });

  test('a CIDR in add_domains is an ignored allow (a warning), never an error', () => {
    const { problems } = validate(domainsYaml('10.0.0.0/8', 'a.example.com'));
    assert.deepEqual(problems.map((p) => `${p.severity} ${p.message}`), [
      "warning '10.0.0.0/8' is a CIDR range, which Clawker for VS Code does not enforce yet. This allow rule is ignored, so that traffic stays blocked; list the addresses one by one to allow them.",
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// runtimeRules.ts
// ---------------------------------------------------------------------------------------------

describe('describeStoredRule: also for a malformed rule from a damaged file', () => {
  test('a rule is "DST PROTO:PORT"; missing fields are said as they are', () => {
    assert.equal(describeStoredRule(rule('a.example.com')), 'a.example.com https:443');
    assert.equal(describeStoredRule({ dst: 'a.example.com' }), 'a.example.com https');
    assert.equal(describeStoredRule({ dst: 'g.example.com', proto: 'ssh' }), 'g.example.com ssh');
    assert.equal(describeStoredRule({ dst: 'g.example.com', proto: 'ssh', port: 2222 }), 'g.example.com ssh:2222');
  });

  test('anything that is not a mapping is shown as JSON', () => {
    assert.equal(describeStoredRule(null), 'null');
    assert.equal(describeStoredRule('x.example.com'), '"x.example.com"');
    assert.equal(describeStoredRule(42), '42');
    assert.equal(describeStoredRule(['a', 'b']), '["a","b"]');
    assert.equal(describeStoredRule(undefined), 'undefined');
  });
});

describe('checkState: the shape of the state', () => {
  const only = (value: unknown): string => {
    const checked = checkState(value);
    assert.equal(checked.failed, true);
    assert.deepEqual(checked.rules, []);
    assert.equal(checked.problems.length, 1);
    assert.equal(checked.problems[0]!.severity, 'error');
    return checked.problems[0]!.message;
  };
  const NOT_OBJECT = 'the rule state must be an object {"version": 1, "rules": [...]}.';

  test('a state that is not an object is refused, and never throws', () => {
    for (const value of [null, undefined, 'x', 42, true, [], [{ version: 1, rules: [] }]]) assert.equal(only(value), NOT_OBJECT, String(value));
  });

  test('a version other than 1 says whether a newer clawker wrote it', () => {
    assert.equal(only({ version: 2, rules: [] }), 'the rule state has version 2, not 1: it was written by a newer clawker.');
    assert.equal(only({ rules: [] }), 'the rule state has version none, not 1: it is not a rule state this clawker wrote.');
    assert.equal(only({ version: 0, rules: [] }), 'the rule state has version 0, not 1: it is not a rule state this clawker wrote.');
    assert.equal(only({ version: '2', rules: [] }), 'the rule state has version "2", not 1: it is not a rule state this clawker wrote.');
  });

  test('an empty state is valid and has no rules and no problems', () => {
    assert.deepEqual(checkState({ version: 1, rules: [] }), { state: { version: 1, rules: [] }, rules: [], problems: [], failed: false });
  });

  test("a duplicate of a rule from line 10 on is named by its index (rules[6])", () => {
    const rules = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'g'].map((n) => rule(`${n}.example.com`));
    const checked = checkState(state(...rules));
    assert.equal(checked.failed, false);
    assert.deepEqual(checked.problems, [
      {
        severity: 'warning',
        index: 7,
        message: "'g.example.com:https:443' duplicates rules[6]; rules are deduplicated by destination:protocol:port, so this later one is ignored.",
      },
    ]);
  });
});

describe('add DOMAIN', () => {
  test('a new domain: the change says what was added, with no warnings', () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'a.example.com' }));
    assert.deepEqual(out.changes, [{ kind: 'added', message: 'Added a.example.com https:443 allow' }]);
    assert.deepEqual(out.warnings, []);
  });

  test("the destination checker's notes are passed on ('tls' is read as 'https')", () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'a.example.com', proto: 'tls' }));
    assert.deepEqual(out.warnings, ["a.example.com: 'tls' is the legacy name of 'https' and is read as 'https'."]);
  });

  test('a built-in domain: nothing changes and the change says why', () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'api.anthropic.com' }));
    assert.deepEqual(out.changes, [{ kind: 'unchanged', message: 'api.anthropic.com https:443 is already allowed by a built-in rule; nothing changed.' }]);
    assert.equal(out.changed, false);
    assert.deepEqual(out.warnings, []);
    const tls = done(addRule(EMPTY_STATE, { dst: 'api.anthropic.com', proto: 'tls' }));
    assert.deepEqual(tls.warnings, ["api.anthropic.com: 'tls' is the legacy name of 'https' and is read as 'https'."]);
  });

  test('already allowed: by the store, or by the project file (named)', () => {
    const stored = done(addRule(state(rule('a.example.com')), { dst: 'a.example.com' }));
    assert.deepEqual(stored.changes, [{ kind: 'unchanged', message: 'a.example.com https:443 is already allowed by the rule store; nothing changed.' }]);
    const project = projectRules(domainsYaml('a.example.com'));
    const fromFile = done(addRule(EMPTY_STATE, { dst: 'a.example.com' }, { projectRules: project }));
    assert.deepEqual(fromFile.changes, [{ kind: 'unchanged', message: 'a.example.com https:443 is already allowed by the project file; nothing changed.' }]);
    assert.deepEqual(fromFile.state.rules, []);
  });

  test('a deny rule in the project file is named as such', () => {
    const project = projectRules(ruleYaml('dst: a.example.com', 'action: deny'));
    assert.deepEqual(failed(addRule(EMPTY_STATE, { dst: 'a.example.com' }, { projectRules: project })), [
      'a.example.com https:443 is a deny rule in the project file; it is not turned into an allow rule behind your back. Remove that deny rule first, then add the allow rule or path rule.',
    ]);
  });

  test('only the project rule with the same key counts', () => {
    const project = projectRules(domainsYaml('other.example.com'));
    const out = done(addRule(EMPTY_STATE, { dst: 'a.example.com' }, { projectRules: project }));
    assert.equal(out.changed, true);
    assert.deepEqual(out.state.rules, [rule('a.example.com')]);
  });

  test('a CIDR destination is refused by the operation (it cannot be enforced)', () => {
    assert.deepEqual(failed(addRule(EMPTY_STATE, { dst: '10.0.0.0/8' })), ["10.0.0.0/8: '10.0.0.0/8' is a CIDR range, which Clawker for VS Code does not enforce yet."]);
  });
});

describe('add DOMAIN --path: messages, kinds and warnings', () => {
  test('a path rule on a new domain: added, said with its methods, and the deny-by-default warning', () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'api.example.com', pathRule: { path: '/x', action: 'allow', methods: ['GET', 'HEAD'] } }));
    assert.deepEqual(out.changes, [{ kind: 'added', message: `Added path rule '/x' allow [GET, HEAD] to ${LABEL}` }]);
    assert.deepEqual(out.warnings, [DEFAULT_DENY]);
  });

  test('a path rule on a stored rule (index 0): updated; a second one adds no deny-by-default warning', () => {
    const first = done(addRule(state(rule('api.example.com')), { dst: 'api.example.com', pathRule: { path: '/a', action: 'allow' } }));
    assert.deepEqual(first.changes, [{ kind: 'updated', message: `Added path rule '/a' allow to ${LABEL}` }]);
    assert.deepEqual(first.warnings, [DEFAULT_DENY]);
    const second = done(addRule(first.state, { dst: 'api.example.com', pathRule: { path: '/b', action: 'deny' } }));
    assert.deepEqual(second.changes, [{ kind: 'updated', message: `Added path rule '/b' deny to ${LABEL}` }]);
    assert.deepEqual(second.warnings, []);
  });

  test("a rule with path_default allow and no path rules yet: the warning says other paths are allowed", () => {
    const open = state(rule('api.example.com', { path_default: 'allow' }));
    const out = done(addRule(open, { dst: 'api.example.com', pathRule: { path: '/admin', action: 'deny' } }));
    assert.deepEqual(out.state.rules[0], rule('api.example.com', { path_rules: [{ path: '/admin', action: 'deny' }], path_default: 'allow' }));
    assert.deepEqual(out.warnings, [`${LABEL} now has path rules; other paths are allowed (path_default allow).`]);
  });

  test("the request's own warnings (method case) come first; an unusual method is said once", () => {
    const out = done(addRule(EMPTY_STATE, { dst: 'api.example.com', pathRule: { path: '/x', action: 'allow', methods: ['FOO', 'get'] } }));
    assert.deepEqual(out.warnings, [
      `${LABEL}: 'FOO' is not a standard HTTP method; check the spelling (e.g. GET, HEAD, POST, PUT, PATCH, DELETE).`,
      `${LABEL}: HTTP methods are case-sensitive: 'get' is read as 'GET'.`,
      DEFAULT_DENY,
    ]);
  });

  test("the new state's warnings about the touched rule are reported, wherever it is", () => {
    // New rule, appended at index 1.
    const appended = done(addRule(state(rule('z.example.com')), { dst: 'api.example.com', pathRule: { path: '/a.*', action: 'allow' } }));
    assert.deepEqual(appended.warnings, [DEFAULT_DENY, `${LABEL}: ${LITERAL_DOT('/a.*')}`]);
    // Stored rule at index 0, and at index 1.
    const at0 = done(addRule(state(rule('api.example.com'), rule('z.example.com')), { dst: 'api.example.com', pathRule: { path: '/a.*', action: 'allow' } }));
    assert.deepEqual(at0.warnings, [DEFAULT_DENY, `${LABEL}: ${LITERAL_DOT('/a.*')}`]);
    const at1 = done(addRule(state(rule('z.example.com'), rule('api.example.com')), { dst: 'api.example.com', pathRule: { path: '/a.*', action: 'allow' } }));
    assert.deepEqual(at1.warnings, [DEFAULT_DENY, `${LABEL}: ${LITERAL_DOT('/a.*')}`]);
  });

  test("only the touched rule's warnings, and never infos", () => {
    // Rule 0 has an old warning (path_default without path rules); rule 1 is stored with the legacy 'tls' (an info).
    const before = state(rule('old.example.com', { path_default: 'allow' }), rule('api.example.com', { proto: 'tls' }));
    const out = done(addRule(before, { dst: 'api.example.com', pathRule: { path: '/x', action: 'allow' } }));
    assert.deepEqual(out.changes, [{ kind: 'updated', message: `Added path rule '/x' allow to ${LABEL}` }]);
    assert.deepEqual(out.warnings, [DEFAULT_DENY]);
  });

  test('the same path rule with the same methods in any order is unchanged; the change says so', () => {
    for (const [stored, asked] of [
      [['POST', 'GET'], ['GET', 'POST']],
      [['GET', 'POST'], ['POST', 'GET']],
      [['GET', 'POST'], ['GET', 'POST']],
    ]) {
      const before = state(rule('api.example.com', { path_rules: [{ path: '/x', action: 'allow', methods: stored! }] }));
      const out = done(addRule(before, { dst: 'api.example.com', pathRule: { path: '/x', action: 'allow', methods: asked! } }));
      assert.equal(out.changed, false, `${stored} / ${asked}`);
      assert.deepEqual(out.changes, [{ kind: 'unchanged', message: `${LABEL} already has path rule '/x' allow [${asked!.join(', ')}]; nothing changed.` }]);
      assert.deepEqual(out.state, before);
    }
  });

  test('a path rule whose methods differ as whole names ([AB] vs [A, B]) is updated', () => {
    const before = state(rule('api.example.com', { path_rules: [{ path: '/x', action: 'allow', methods: ['AB'] }] }));
    const out = done(addRule(before, { dst: 'api.example.com', pathRule: { path: '/x', action: 'allow', methods: ['A', 'B'] } }));
    assert.deepEqual(out.changes, [{ kind: 'updated', message: `Updated path rule on ${LABEL}: '/x' allow [AB] → '/x' allow [A, B]` }]);
  });

  test('updating a path rule: the change says before and after', () => {
    const before = state(rule('api.example.com', { path_rules: [{ path: '/x', action: 'allow' }, { path: '/y', action: 'allow' }] }));
    const out = done(addRule(before, { dst: 'api.example.com', pathRule: { path: '/x', action: 'deny', methods: ['POST'] } }));
    assert.deepEqual(out.changes, [{ kind: 'updated', message: `Updated path rule on ${LABEL}: '/x' allow → '/x' deny [POST]` }]);
    assert.deepEqual(out.warnings, []);
    assert.deepEqual(out.state.rules[0]!.path_rules, [{ path: '/x', action: 'deny', methods: ['POST'] }, { path: '/y', action: 'allow' }]);
  });

  test('several path rules for the same path and no --methods to pick one: the error lists them', () => {
    const two = state(rule('api.example.com', { path_rules: [{ path: '/r/', action: 'deny', methods: ['POST', 'PUT'] }, { path: '/r/', action: 'allow' }] }));
    assert.deepEqual(failed(addRule(two, { dst: 'api.example.com', pathRule: { path: '/r/', action: 'deny' } })), [
      `${LABEL} has 2 path rules for '/r/' ('/r/' deny [POST, PUT]; '/r/' allow), so it is not clear which one to change. Remove them (remove with --path) and add the one you want, or give the --methods of the one to change.`,
    ]);
  });

  test('starting from a project rule: added to the store, with the warning that the store now decides', () => {
    const project = projectRules(ruleYaml('dst: api.example.com', 'path_rules:', '  - path: /v1', '    action: allow', 'path_default: deny'));
    const added = done(addRule(EMPTY_STATE, { dst: 'api.example.com', pathRule: { path: '/v2', action: 'allow' } }, { projectRules: project }));
    assert.deepEqual(added.changes, [{ kind: 'added', message: `Added path rule '/v2' allow to ${LABEL}` }]);
    assert.deepEqual(added.warnings, [`${LABEL} was copied from the project file into the rule store, which now decides for it.`]);
    const changed = done(addRule(EMPTY_STATE, { dst: 'api.example.com', pathRule: { path: '/v1', action: 'deny' } }, { projectRules: project }));
    assert.deepEqual(changed.changes, [{ kind: 'added', message: `Updated path rule on ${LABEL}: '/v1' allow → '/v1' deny` }]);
    assert.deepEqual(changed.state.rules, [rule('api.example.com', { path_rules: [{ path: '/v1', action: 'deny' }], path_default: 'deny' })]);
  });

  test('a rule in both the store (index 0) and the project file: the store is changed, no copy warning', () => {
    const project = projectRules(domainsYaml('api.example.com'));
    const out = done(addRule(state(rule('api.example.com', { path_rules: [{ path: '/v1', action: 'allow' }] })), { dst: 'api.example.com', pathRule: { path: '/v2', action: 'allow' } }, { projectRules: project }));
    assert.deepEqual(out.warnings, []);
    assert.deepEqual(out.changes, [{ kind: 'updated', message: `Added path rule '/v2' allow to ${LABEL}` }]);
  });
});

describe('a failing operation: errors only, those of the rule asked for first', () => {
  test('a damaged store: the new path rule\'s error comes before the old rule\'s, warnings are not errors', () => {
    const damaged = state(rule('old.example.com', { port: '99999' }), rule('warn.example.com', { path_default: 'allow' }));
    const errors = failed(addRule(damaged, { dst: 'api.example.com', pathRule: { path: 'v1', action: 'allow' } }));
    assert.deepEqual(errors, [
      `${LABEL}: path 'v1' must start with '/': a literal path is a prefix of the URL path, e.g. '/v1'.`,
      "old.example.com https:99999: port '99999' is not a port number from 1 to 65535 (a range is written \"LO-HI\").",
    ]);
  });

  test('the same when the rule asked for comes first in the store', () => {
    const damaged = state(rule('api.example.com'), rule('old.example.com', { port: '99999' }));
    const errors = failed(addRule(damaged, { dst: 'api.example.com', pathRule: { path: 'v1', action: 'allow' } }));
    assert.deepEqual(errors, [
      `${LABEL}: path 'v1' must start with '/': a literal path is a prefix of the URL path, e.g. '/v1'.`,
      "old.example.com https:99999: port '99999' is not a port number from 1 to 65535 (a range is written \"LO-HI\").",
    ]);
  });
});

describe('remove DOMAIN [--path P]', () => {
  test('the change says what was removed; a rule also in the project file says that one applies again', () => {
    const out = done(removeRule(state(rule('a.example.com'), rule('b.example.com')), { dst: 'a.example.com' }));
    assert.deepEqual(out.changes, [{ kind: 'removed', message: 'Removed a.example.com https:443' }]);
    assert.deepEqual(out.warnings, []);
    assert.deepEqual(out.state.rules, [rule('b.example.com')]);
    const project = projectRules(domainsYaml('a.example.com'));
    const both = done(removeRule(state(rule('a.example.com')), { dst: 'a.example.com' }, { projectRules: project }));
    assert.deepEqual(both.warnings, ['a.example.com https:443 is also in the project file, so its rule there applies again.']);
  });

  test('not in the store: the error lists only the rules for the same destination', () => {
    const s = state(rule('a.example.com', { proto: 'ssh', port: '22' }), rule('b.example.com'));
    assert.deepEqual(failed(removeRule(s, { dst: 'a.example.com' })), [
      'there is no rule a.example.com https:443 in the rule store. The store has: a.example.com ssh:22 (give --proto and --port to pick one).',
    ]);
    assert.deepEqual(failed(removeRule(s, { dst: 'c.example.com' })), ['there is no rule c.example.com https:443 in the rule store.']);
  });

  test('--path on a rule without path rules says it has none', () => {
    assert.deepEqual(failed(removeRule(state(rule('a.example.com')), { dst: 'a.example.com', path: '/v1' })), [
      "a.example.com https:443 has no path rule '/v1' (paths are matched exactly as stored): it has no path rules.",
    ]);
    const two = state(rule('a.example.com', { path_rules: [{ path: '/a', action: 'allow' }, { path: '/a', action: 'deny', methods: ['POST'] }, { path: '/b', action: 'allow' }] }));
    assert.deepEqual(failed(removeRule(two, { dst: 'a.example.com', path: '/c' })), [
      "a.example.com https:443 has no path rule '/c' (paths are matched exactly as stored): its path rules are '/a', '/b'.",
    ]);
  });

  test('--path removes every path rule with that path, and says each', () => {
    const s = state(rule('a.example.com', { path_rules: [{ path: '/a', action: 'allow' }, { path: '/b.*', action: 'allow' }, { path: '/a', action: 'deny', methods: ['POST'] }] }));
    const out = done(removeRule(s, { dst: 'a.example.com', path: '/a' }));
    assert.deepEqual(out.changes, [
      { kind: 'removed', message: "Removed path rule '/a' allow from a.example.com https:443" },
      { kind: 'removed', message: "Removed path rule '/a' deny [POST] from a.example.com https:443" },
    ]);
    assert.deepEqual(out.state.rules[0]!.path_rules, [{ path: '/b.*', action: 'allow' }]);
    // The rule it changed is checked again: its remaining warning is reported.
    assert.deepEqual(out.warnings, [`a.example.com https:443: ${LITERAL_DOT('/b.*')}`]);
  });

  test('the last path rule of a deny-by-default rule on another protocol: the hint asks for --proto and --port', () => {
    const s = state(rule('a.example.com', { proto: 'http', port: '80', path_rules: [{ path: '/v1', action: 'allow' }] }));
    assert.deepEqual(failed(removeRule(s, { dst: 'a.example.com', proto: 'http', path: '/v1' })), [
      "'/v1' is the last path rule of a.example.com http:80: without path rules it would allow every path. Remove the whole rule (clawker firewall remove a.example.com --proto … --port …) to block it, or add another path rule first.",
    ]);
    const https = state(rule('a.example.com', { path_rules: [{ path: '/v1', action: 'allow' }] }));
    assert.deepEqual(failed(removeRule(https, { dst: 'a.example.com', path: '/v1' })), [
      "'/v1' is the last path rule of a.example.com https:443: without path rules it would allow every path. Remove the whole rule (clawker firewall remove a.example.com) to block it, or add another path rule first.",
    ]);
  });
});

describe('refresh', () => {
  const refresh = (s: RuntimeState, yaml: string) => done(refreshFromProject(s, projectRules(yaml)));

  test('added rules are said by their key; no warnings', () => {
    const out = refresh(EMPTY_STATE, domainsYaml('a.example.com'));
    assert.deepEqual(out.changes, [{ kind: 'added', message: 'Added a.example.com https:443' }]);
    assert.deepEqual(out.warnings, []);
    assert.equal(out.changed, true);
  });

  test('a rule only the store has is kept and said; alone it is no change', () => {
    const out = refresh(state(rule('store.example.com')), domainsYaml('a.example.com'));
    assert.deepEqual(out.changes, [
      { kind: 'added', message: 'Added a.example.com https:443' },
      { kind: 'kept', message: 'store.example.com https:443 is not in the project file and stays' },
    ]);
    assert.equal(out.changed, true);
    const onlyKept = refresh(state(rule('store.example.com')), '');
    assert.deepEqual(onlyKept.changes, [{ kind: 'kept', message: 'store.example.com https:443 is not in the project file and stays' }]);
    assert.equal(onlyKept.changed, false);
  });

  test('an up-to-date rule is said as such; the store\'s own path rules are kept and said', () => {
    const s = state(rule('a.example.com', { path_rules: [{ path: '/v1', action: 'deny' }, { path: '/mine', action: 'allow' }], path_default: 'allow' }));
    const out = refresh(s, ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /v1', '    action: deny', 'path_default: allow'));
    assert.deepEqual(out.changes, [
      { kind: 'kept', message: "a.example.com https:443 keeps path rule '/mine' allow, which is not in the project file" },
      { kind: 'unchanged', message: 'a.example.com https:443 is up to date' },
    ]);
    assert.equal(out.changed, false);
    assert.deepEqual(out.state, s);
  });

  test('a project rule without path rules keeps the stored path rules and their path_default', () => {
    const s = state(rule('a.example.com', { path_rules: [{ path: '/admin', action: 'deny' }], path_default: 'allow' }));
    const out = refresh(s, domainsYaml('a.example.com'));
    assert.equal(out.changed, false);
    assert.deepEqual(out.state, s);
  });

  test('the file wins the action: an allow in the store becomes the deny the file says', () => {
    const out = refresh(state(rule('a.example.com')), ruleYaml('dst: a.example.com', 'action: deny'));
    assert.deepEqual(out.state.rules, [rule('a.example.com', { action: 'deny' })]);
    assert.deepEqual(out.changes, [{ kind: 'updated', message: 'Updated a.example.com https:443' }]);
    assert.equal(out.changed, true);
  });

  test('the file wins path_default', () => {
    const s = state(rule('a.example.com', { path_rules: [{ path: '/v1', action: 'allow' }], path_default: 'allow' }));
    const out = refresh(s, ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /v1', '    action: allow', 'path_default: deny'));
    assert.deepEqual(out.state.rules, [rule('a.example.com', { path_rules: [{ path: '/v1', action: 'allow' }], path_default: 'deny' })]);
    assert.equal(out.changed, true);
  });

  test('a path the file lists once replaces all the stored ones for that path, in place', () => {
    const s = state(rule('a.example.com', { path_rules: [{ path: '/x', action: 'allow' }, { path: '/a', action: 'allow' }, { path: '/a', action: 'deny', methods: ['POST'] }, { path: '/b', action: 'allow' }] }));
    const out = refresh(s, ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: deny', '  - path: /c', '    action: allow'));
    assert.deepEqual(out.state.rules[0]!.path_rules, [
      { path: '/x', action: 'allow' },
      { path: '/a', action: 'deny' },
      { path: '/b', action: 'allow' },
      { path: '/c', action: 'allow' },
    ]);
    assert.equal(out.changed, true);
  });

  test('path rules that differ only by their place are an update', () => {
    const s = state(rule('a.example.com', { path_rules: [{ path: '/a', action: 'allow', methods: ['GET'] }, { path: '/b', action: 'allow', methods: ['POST'] }, { path: '/a', action: 'allow', methods: ['POST'] }], path_default: 'deny' }));
    const out = refresh(s, ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow', '    methods: [GET]', '  - path: /a', '    action: allow', '    methods: [POST]'));
    assert.deepEqual(out.state.rules[0]!.path_rules!.map((pr) => pr.path), ['/a', '/a', '/b']);
    assert.equal(out.changed, true);
  });

  test('fewer path rules for a path in the file: the extra stored one goes (the file wins the path)', () => {
    const s = state(rule('a.example.com', { path_rules: [{ path: '/a', action: 'allow' }, { path: '/a', action: 'deny', methods: ['POST'] }], path_default: 'deny' }));
    const out = refresh(s, ruleYaml('dst: a.example.com', 'path_rules:', '  - path: /a', '    action: allow'));
    assert.deepEqual(out.state.rules[0]!.path_rules, [{ path: '/a', action: 'allow' }]);
    assert.deepEqual(out.changes, [{ kind: 'updated', message: 'Updated a.example.com https:443' }]);
  });

  test("the warnings of every rule it added or updated are reported, each once", () => {
    const s = state(rule('b.example.com'), rule('old.example.com', { path_default: 'allow' }));
    const yaml = ['security:', '  firewall:', '    rules:', '      - { dst: a.example.com, path_rules: [{ path: "/a.*", action: allow }] }', '      - { dst: b.example.com, path_rules: [{ path: "/b.*", action: allow }] }', ''].join('\n');
    const out = done(refreshFromProject(s, projectRules(yaml)));
    assert.deepEqual(out.warnings, [`b.example.com https:443: ${LITERAL_DOT('/b.*')}`, `a.example.com https:443: ${LITERAL_DOT('/a.*')}`]);
  });

  test('a built-in rule handed in as a project rule is never stored', () => {
    const out = done(refreshFromProject(EMPTY_STATE, [SYSTEM_RULES[0]!]));
    assert.deepEqual(out.state.rules, []);
    assert.equal(out.changed, false);
    assert.deepEqual(out.changes, []);
  });
});
