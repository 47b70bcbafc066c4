/**
 * The editor's pure presentation logic: the bypass countdown, which bypass windows are open, the
 * project folder of a saved file, and how the Rules view groups `firewall list --json`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AgentStatus } from '../../src/core/stack/controlPlaneApi';
import { formatCountdown, openBypasses } from '../../src/extension/bypassCountdown';
import { isProjectFilePath, projectDirOf } from '../../src/extension/projectDir';
import { groupByDestination, type ListedRule, ruleDescription, splitBuiltIn } from '../../src/extension/views/ruleGroups';

describe('bypass countdown', () => {
  test('mm:ss below an hour, h:mm:ss above, rounding up so 0.2 s left still shows 00:01', () => {
    assert.equal(formatCountdown(299), '04:59');
    assert.equal(formatCountdown(0.2), '00:01');
    assert.equal(formatCountdown(60), '01:00');
    assert.equal(formatCountdown(3600 + 61), '1:01:01');
  });
  test('never negative: a window that just ended shows 00:00', () => {
    assert.equal(formatCountdown(-5), '00:00');
  });

  const agent = (o: Partial<AgentStatus>): AgentStatus => ({ agent: 'dev', container: 'c1', cgroupId: 1, state: 'enrolled', guarded: true, ...o });
  const now = Date.parse('2026-11-23T10:00:00Z');
  test('only bypassed agents whose deadline is still ahead are open', () => {
    const open = openBypasses(
      [
        agent({ agent: 'a', container: 'ca', state: 'bypassed', bypassUntil: '2026-11-23T10:00:30Z' }),
        agent({ agent: 'b', container: 'cb', state: 'bypassed', bypassUntil: '2026-11-23T09:59:59Z' }),
        agent({ agent: 'c', container: 'cc', state: 'enrolled', bypassUntil: '2026-11-23T10:05:00Z' }),
        agent({ agent: 'd', container: 'cd', state: 'bypassed' }),
        agent({ agent: 'e', container: 'ce', state: 'bypassed', bypassUntil: 'not a time' }),
      ],
      now,
    );
    assert.deepEqual(open, [{ agent: 'a', container: 'ca', until: now + 30_000 }]);
  });
});

describe('project folder of a saved file', () => {
  test('.clawker.yaml is in the project folder; .clawker/clawker.yaml one below it', () => {
    assert.equal(projectDirOf('/home/u/web/.clawker.yaml'), '/home/u/web');
    assert.equal(projectDirOf('/home/u/web/.clawker/clawker.yaml'), '/home/u/web');
  });
  test('isProjectFilePath says the same for URI paths', () => {
    assert.equal(isProjectFilePath('/home/u/web/.clawker.yaml'), true);
    assert.equal(isProjectFilePath('/home/u/web/.clawker/clawker.yaml'), true);
    assert.equal(isProjectFilePath('/home/u/web/.clawker.yaml.bak'), false);
    assert.equal(isProjectFilePath('/home/u/web/clawker.yaml'), false);
  });
  test('other files are not project files', () => {
    assert.equal(projectDirOf('/home/u/web/clawker.yaml'), undefined);
    assert.equal(projectDirOf('/home/u/web/x.clawker.yaml'), undefined);
    assert.equal(projectDirOf('/home/u/web/.clawker.yaml.bak'), undefined);
  });
});

describe('Rules view grouping', () => {
  const rule = (dst: string, o: Partial<ListedRule> = {}): ListedRule => ({ origin: 'project', dst, proto: 'https', port: '443', action: 'allow', ...o });
  test('one group per destination, in the order the policy lists them, rules kept in order', () => {
    const rules = [rule('a.test'), rule('b.test', { origin: 'system' }), rule('a.test', { proto: 'ssh', port: '22' })];
    assert.deepEqual(groupByDestination(rules), [
      { dst: 'a.test', rules: [rules[0], rules[2]] },
      { dst: 'b.test', rules: [rules[1]] },
    ]);
  });
  test('a rule reads proto:port · action · origin', () => {
    assert.equal(ruleDescription(rule('blocked.test')), 'https:443 · allow · project');
    assert.equal(ruleDescription(rule('x.test', { origin: 'runtime', proto: 'tcp', port: '9000-9100', action: 'deny' })), 'tcp:9000-9100 · deny · runtime');
  });
  test('a store rule that .clawker.yaml declares too (synced by refresh) reads as a project rule', () => {
    assert.equal(ruleDescription(rule('blocked.test', { origin: 'runtime', alsoInProjectFile: true })), 'https:443 · allow · project');
  });
});

describe('Rules view top level', () => {
  const rule = (dst: string, origin: ListedRule['origin'], o: Partial<ListedRule> = {}): ListedRule => ({ origin, dst, proto: 'https', port: '443', action: 'allow', ...o });
  test("the user's rules first (project, then runtime, each in policy order), built-in apart", () => {
    const sys = rule('api.anthropic.com', 'system');
    const run1 = rule('pypi.org', 'runtime');
    const proj = rule('github.com', 'project');
    const synced = rule('blocked.test', 'runtime', { alsoInProjectFile: true });
    const run2 = rule('github.com', 'runtime', { proto: 'ssh', port: '22' });
    const { own, builtIn } = splitBuiltIn([sys, run1, proj, synced, run2]);
    assert.deepEqual(own, [
      { dst: 'github.com', rules: [proj, run2] },
      { dst: 'blocked.test', rules: [synced] },
      { dst: 'pypi.org', rules: [run1] },
    ]);
    assert.deepEqual(builtIn, [{ dst: 'api.anthropic.com', rules: [sys] }]);
  });
});
