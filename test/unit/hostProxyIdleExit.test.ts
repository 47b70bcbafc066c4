/** When the host proxy ends by itself (src/hostproxy/idleExit.ts): pure steps over observations. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_IDLE_POLICY, DEFAULT_IDLE_POLL_MS, idleStart, idleStep } from '../../src/hostproxy/idleExit';

const policy = { graceMs: 1_000, maxErrors: 3 };

test("defaults: clawker's (a 60 s grace, 10 Docker errors in a row, asked every 30 s)", () => {
  assert.deepEqual(DEFAULT_IDLE_POLICY, { graceMs: 60_000, maxErrors: 10 });
  assert.equal(DEFAULT_IDLE_POLL_MS, 30_000);
});

test('the grace counts from the start, then from the last poll that saw an agent', () => {
  const start = idleStart(100);
  assert.deepEqual(start, { lastBusyAt: 100, errors: 0 });
  assert.deepEqual(idleStep(start, { running: 0 }, 1_099, policy), { state: start });
  assert.deepEqual(idleStep(start, { running: 0 }, 1_100, policy), { exit: 'no agent of the stack has run for 1 s' });
  const busy = idleStep(start, { running: 2 }, 5_000, policy);
  assert.deepEqual(busy, { state: { lastBusyAt: 5_000, errors: 0 } });
  assert.deepEqual(idleStep({ lastBusyAt: 5_000, errors: 0 }, { running: 0 }, 5_999, policy), { state: { lastBusyAt: 5_000, errors: 0 } });
  assert.deepEqual(idleStep({ lastBusyAt: 5_000, errors: 0 }, { running: 0 }, 65_400, { ...policy, graceMs: 60_000 }), { exit: 'no agent of the stack has run for 60 s' });
});

test('Docker errors: counted in a row, any answer resets them; the last error is named', () => {
  let state = idleStart(0);
  for (const n of [1, 2]) {
    const step = idleStep(state, { error: `e${n}` }, 10_000, policy);
    assert.ok('state' in step, `error ${n} is not yet the end`);
    assert.deepEqual(step.state, { lastBusyAt: 0, errors: n }, 'an error is not a sign of idleness either');
    state = step.state;
  }
  assert.deepEqual(idleStep(state, { error: 'connect ECONNREFUSED' }, 10_000, policy), { exit: 'Docker could not list the agents 3 times in a row (last: connect ECONNREFUSED)' });
  assert.deepEqual(idleStep(state, { running: 1 }, 10_000, policy), { state: { lastBusyAt: 10_000, errors: 0 } });
  assert.deepEqual(idleStep({ lastBusyAt: 9_500, errors: 2 }, { running: 0 }, 10_000, policy), { state: { lastBusyAt: 9_500, errors: 0 } });
});
