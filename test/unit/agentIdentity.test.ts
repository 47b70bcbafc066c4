/**
 * Two projects may each run an agent called `dev`: which agent a caller means (resolveAgent), how it
 * is shown, and the control plane's persisted state keyed by container — including the fail-closed
 * migration of version 1 files, which were keyed by the agent name alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveAgent, shownName } from '../../src/controlplane/agentIdentity';
import { emptyState, isDisabled, migrateLegacy, openBypass, parseState, staleEntries, type PersistedState } from '../../src/controlplane/persistedState';
import { agentLabel } from '../../src/cli/commands/firewallStack';
import type { AgentStatus } from '../../src/core/stack/controlPlaneApi';

const WEB = { agent: 'dev', name: 'clawker.web.dev', id: `aaaa1111bbbb${'0'.repeat(52)}` };
const API = { agent: 'dev', name: 'clawker.api.dev', id: `aaaa1111cccc${'0'.repeat(52)}` };
const SOLO = { agent: 'solo', name: 'clawker.web.solo', id: `dddd${'1'.repeat(60)}` };

test('an agent is found by its exact container name, its full id, a unique id prefix of 12+, or a bare name only one agent has', () => {
  const running = [WEB, API, SOLO];
  assert.deepEqual(resolveAgent('clawker.web.dev', running), { found: WEB });
  assert.deepEqual(resolveAgent('/clawker.api.dev', running), { found: API }, "Docker's leading slash is ignored");
  assert.deepEqual(resolveAgent(API.id, running), { found: API });
  assert.deepEqual(resolveAgent('aaaa1111cccc', running), { found: API });
  assert.deepEqual(resolveAgent('solo', running), { found: SOLO });
  assert.deepEqual(resolveAgent('dev', [WEB, SOLO]), { found: WEB }, 'a bare name is fine while only one running agent has it');
});

test('a bare name two running agents share is refused with 409 naming both containers, never the first one found', () => {
  assert.deepEqual(resolveAgent('dev', [WEB, API, SOLO]), {
    status: 409,
    error: '2 running agents match dev: clawker.api.dev, clawker.web.dev',
    next: 'pass the container name (e.g. --agent clawker.api.dev) or its container id',
    candidates: ['clawker.api.dev', 'clawker.web.dev'],
  });
  assert.equal((resolveAgent('aaaa1111', [WEB, API]) as { status: number }).status, 404, 'under 12 digits is not an id prefix');
  const shared = resolveAgent('aaaa1111', [{ ...WEB, agent: 'aaaa1111' }, API]);
  assert.deepEqual(shared, { found: { ...WEB, agent: 'aaaa1111' } }, 'but it can be an agent name');
  // A 12-digit prefix two ids share is just as ambiguous.
  const both = [
    { ...WEB, id: `aaaa1111bbbb1${'0'.repeat(51)}` },
    { ...API, id: `aaaa1111bbbb2${'0'.repeat(51)}` },
  ];
  assert.deepEqual((resolveAgent('aaaa1111bbbb', both) as { candidates?: readonly string[] }).candidates, ['clawker.api.dev', 'clawker.web.dev']);
  // An agent name that is also another container's id prefix: two agents could be meant.
  const collide = resolveAgent('dddd11111111', [{ ...WEB, agent: 'dddd11111111' }, SOLO]);
  assert.equal((collide as { status: number }).status, 409);
});

test('an unknown agent is 404 listing what runs, by the names people know', () => {
  assert.deepEqual(resolveAgent('nobody', [WEB, API, SOLO]), {
    status: 404,
    error: 'no running agent named nobody (running: clawker.api.dev, clawker.web.dev, solo)',
    next: 'clawker firewall status lists the running agents',
  });
  assert.equal((resolveAgent('nobody', []) as { error: string }).error, 'no running agent named nobody (no agent is running)');
  assert.equal((resolveAgent('', [WEB]) as { status: number }).status, 400);
  assert.equal((resolveAgent('clawker.web', [WEB]) as { status: number }).status, 404, 'no partial container names');
});

test('an agent is shown by its agent name until another running agent shares it, then by its container name', () => {
  assert.equal(shownName(WEB, [WEB, SOLO]), 'dev');
  assert.equal(shownName(WEB, [WEB, API, SOLO]), 'clawker.web.dev');
  assert.equal(shownName(SOLO, [WEB, API, SOLO]), 'solo');
  const status = (o: Partial<AgentStatus>): AgentStatus => ({ agent: 'dev', container: WEB.id, containerName: WEB.name, cgroupId: 1, state: 'enrolled', guarded: true, ...o });
  const web = status({});
  const api = status({ container: API.id, containerName: API.name });
  assert.equal(agentLabel(web, [web]), 'dev');
  assert.equal(agentLabel(web, [web, api]), 'clawker.web.dev');
  const old = status({ containerName: undefined });
  assert.equal(agentLabel(old, [old, api]), 'aaaa1111bbbb', 'a control plane without containerName: the short id');
});

test('state version 2 round-trips; a damaged file is empty (nothing disabled, no window) and says why', () => {
  const state: PersistedState = {
    version: 2,
    disabled: { [API.name]: { containerId: API.id } },
    bypass: { [WEB.name]: { containerId: WEB.id, cgroupId: 101, until: '2030-01-01T00:00:00.000Z' } },
  };
  assert.deepEqual(parseState(JSON.stringify(state)), { state });
  assert.deepEqual(parseState('{"version":2,"disabled":[],"bypass":{}}'), { state: emptyState(), damaged: 'disabled: Invalid input: expected record, received array' });
  assert.equal(parseState('not json').damaged !== undefined, true);
  assert.deepEqual(parseState('{"version":3}').state, emptyState());
});

test('disable and bypass hold for the container they were made for only: not a new container of the same name, not a new cgroup', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const state: PersistedState = {
    version: 2,
    disabled: { [API.name]: { containerId: API.id } },
    bypass: { [WEB.name]: { containerId: WEB.id, cgroupId: 101, until: '2030-01-01T00:05:00.000Z' } },
  };
  assert.equal(isDisabled(state, API), true);
  assert.equal(isDisabled(state, WEB), false);
  assert.equal(isDisabled(state, { ...API, id: `ffff${'0'.repeat(60)}` }), false, 'recreated under the same name: enforced');
  assert.deepEqual(openBypass(state, { ...WEB, cgroupId: 101 }, now), state.bypass[WEB.name]);
  assert.equal(openBypass(state, { ...WEB, cgroupId: 102 }, now), undefined, 'restarted (new cgroup): closed');
  assert.equal(openBypass(state, { ...WEB, id: API.id, cgroupId: 101 }, now), undefined, 'another container: closed');
  assert.equal(openBypass(state, { ...API, cgroupId: 101 }, now), undefined, 'the other dev is not bypassed');
  assert.equal(openBypass(state, { ...WEB, cgroupId: 101 }, Date.parse('2030-01-01T00:05:00Z')), undefined, 'at the deadline: closed');
  assert.deepEqual(staleEntries(state, [WEB, { ...API, id: `ffff${'0'.repeat(60)}` }]), { disabled: [API.name], bypass: [] });
  assert.deepEqual(staleEntries(state, []), { disabled: [API.name], bypass: [WEB.name] });
});

test('a version 1 file is migrated fail-closed: kept only where exactly one container is meant, every other window closed in the kernel', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const legacyText = JSON.stringify({
    version: 1,
    disabled: ['dev', 'solo', 'gone'],
    bypass: {
      dev: { cgroupId: 101, until: '2030-01-01T00:05:00.000Z' },
      solo: { cgroupId: 999, until: '2030-01-01T00:05:00.000Z' },
      old: { cgroupId: 555, until: '2029-12-31T23:00:00.000Z' },
    },
  });
  const parsed = parseState(legacyText);
  assert.deepEqual(parsed.state, emptyState(), 'nothing applies before the migration');
  assert.ok(parsed.legacy);
  const running = [
    { ...WEB, cgroupId: 101 },
    { ...API, cgroupId: 102 },
    { ...SOLO, cgroupId: 103 },
  ];
  assert.deepEqual(migrateLegacy(parsed.legacy, running, now), {
    state: {
      version: 2,
      disabled: { [SOLO.name]: { containerId: SOLO.id } },
      bypass: { [WEB.name]: { containerId: WEB.id, cgroupId: 101, until: '2030-01-01T00:05:00.000Z' } },
    },
    closeBypass: [999, 555],
    notes: [
      'firewall disable for dev dropped (2 running containers have that agent name: clawker.api.dev, clawker.web.dev): it is enforced',
      'firewall disable for solo kept for its container clawker.web.solo',
      'firewall disable for gone dropped (no running container has that agent name): it is enforced',
      'bypass for dev until 2030-01-01T00:05:00.000Z kept for its container clawker.web.dev',
      'bypass for solo (cgroup 999) dropped and closed: no running container of that agent name has its cgroup',
      'bypass for old (cgroup 555) dropped and closed: its deadline has passed',
    ],
  });
  // Without a readable cgroup nothing can be attributed: the window is closed, not guessed.
  const unknownCgroup = migrateLegacy(parsed.legacy, [{ ...WEB, cgroupId: undefined }], now);
  assert.deepEqual(unknownCgroup.state.bypass, {});
  assert.deepEqual(unknownCgroup.closeBypass, [101, 999, 555]);
  // The window's cgroup belongs to a container of another agent name: not attributed (no widening).
  assert.deepEqual(migrateLegacy(parsed.legacy, [{ ...SOLO, cgroupId: 101 }], now).state.bypass, {});
});
