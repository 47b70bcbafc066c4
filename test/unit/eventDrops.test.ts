import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dropCountersOf, dropNews, NO_DROPS, totalRateLimited } from '../../src/controlplane/eventDrops';

describe('kernel event drops, from bpfman stats', () => {
  test('counters read from stats; junk counts as nothing', () => {
    const c = dropCountersOf({ eventsDrops: 3, ratelimitDrops: { '1234': 2800, '99': 0, 'x': 5, '7': -1, '8': 'many' }, verdicts: {} });
    assert.equal(c.ring, 3);
    assert.deepEqual([...c.rateLimited], [['1234', 2800]]);
    assert.deepEqual(dropCountersOf({}), { ring: 0, rateLimited: new Map() });
    assert.equal(totalRateLimited(dropCountersOf({ ratelimitDrops: { '1': 2, '2': 3 } })), 5);
  });

  test('news: what grew since the last look, per cgroup; unchanged counters say nothing', () => {
    const first = dropCountersOf({ eventsDrops: 0, ratelimitDrops: { '1234': 2800 } });
    assert.deepEqual(dropNews(NO_DROPS, first), { ringLost: 0, rateLimited: [{ cgroupId: '1234', dropped: 2800 }] });
    const second = dropCountersOf({ eventsDrops: 10, ratelimitDrops: { '1234': 2900, '55': 4 } });
    assert.deepEqual(dropNews(first, second), {
      ringLost: 10,
      rateLimited: [
        { cgroupId: '55', dropped: 4 },
        { cgroupId: '1234', dropped: 100 },
      ],
    });
    assert.deepEqual(dropNews(second, second), { ringLost: 0, rateLimited: [] });
  });

  test('a counter that went down was reset (datapath reloaded): it counts from zero', () => {
    const before = dropCountersOf({ eventsDrops: 50, ratelimitDrops: { '1': 100 } });
    assert.deepEqual(dropNews(before, dropCountersOf({ eventsDrops: 2, ratelimitDrops: { '1': 7 } })), { ringLost: 2, rateLimited: [{ cgroupId: '1', dropped: 7 }] });
  });
});
