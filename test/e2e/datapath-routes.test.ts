/**
 * The datapath's lifecycle under load, with the Go manager (bpfman) in real containers:
 *
 *   - replacing the whole route table (`bpfman routes`) while an agent connects in a tight loop:
 *     every connection lands on the old route or the new one, never on the catch-all (which a
 *     partial or empty table would give) and never fails;
 *   - 10,000 routes replace in one swap;
 *   - reloading the datapath (`bpfman load`, as after an upgrade or a control-plane restart) while
 *     an agent connects in a loop: pinned maps are reused (enrolments, routes, DNS cache survive),
 *     attached links switch to the new programs in place, and no connection escapes;
 *   - pinned maps whose layout differs from the object are replaced, not reused;
 *   - detach leaves the container unmanaged.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { domainKey, formatDomainKey } from '../../src/core/firewall/domainKey';
import { type Agent, BPFMAN, buildBpfman, DatapathBed, ensurePythonImage, HostListener, sweepStaleNetworks } from './datapath-testbed';
import { BPFFS_DIR, bpftool, requireTestbed, runOk, sweepStale, uniqueName } from './testbed';

const SWAP_KEY = formatDomainKey(domainKey('swap.example.test'));
const SWAP_IP = '198.51.100.40';

interface Route {
  domainKey: string;
  l4: 'tcp' | 'udp';
  port: number;
  listenerPort: number;
}

/** `count` routes with random domain keys (none is SWAP_KEY), plus the swap route to `listenerPort`. */
function table(listenerPort: number, count: number): { routes: Route[]; staticDnsCache: [] } {
  const routes: Route[] = [];
  for (let i = 0; i < count; i++) {
    routes.push({ domainKey: `0x${randomBytes(8).toString('hex')}`, l4: i % 5 === 0 ? 'udp' : 'tcp', port: 1 + (i % 65535), listenerPort: 10001 + (i % 9000) });
  }
  routes.push({ domainKey: SWAP_KEY, l4: 'tcp', port: 80, listenerPort });
  return { routes, staticDnsCache: [] };
}

interface LoopResult {
  ok: boolean;
  total: number;
  counts: Record<string, number>;
}

describe('datapath: route table replacement and reloads under load', { timeout: 900_000 }, () => {
  const bed = new DatapathBed();
  const host = new HostListener();
  let hostListening = false;
  let agent: Agent;
  const tableA = () => join(bed.scriptsDir, 'routes-a.json');
  const tableB = () => join(bed.scriptsDir, 'routes-b.json');

  before(async () => {
    await requireTestbed();
    await sweepStale();
    await sweepStaleNetworks();
    await buildBpfman();
    await ensurePythonImage();
    await bed.start('dproutes', { tcp: [10000, 10001, 10002], udp: [] });
    await host.listen(bed.network.gateway);
    hostListening = true;
    bed.startEvents();
    agent = await bed.startAgent('agent');
    writeFileSync(tableA(), JSON.stringify(table(10001, 5000)));
    writeFileSync(tableB(), JSON.stringify(table(10002, 5000)));
    await bed.bpfman(['routes', '--file', tableA()]);
    await bed.bpfman(['dns-set', '--ip', SWAP_IP, '--key', SWAP_KEY, '--ttl', '3600']);
  });

  after(async () => {
    const errors = await bed.stop();
    if (hostListening) await host.close();
    assert.deepEqual(errors, [], 'cleanup');
  });

  /** Run the client loop for `seconds` while `action` repeats; returns the loop's tally and the repetitions. */
  async function underLoad(seconds: number, action: (i: number) => Promise<unknown>): Promise<{ loop: LoopResult; repetitions: number }> {
    let finished = false;
    const loop = bed.client(agent, ['loop', SWAP_IP, '80', String(seconds)], { timeoutMs: (seconds + 30) * 1000 }).finally(() => {
      finished = true;
    });
    let repetitions = 0;
    while (!finished) await action(repetitions++);
    return { loop: (await loop) as unknown as LoopResult, repetitions };
  }

  test('the route table is replaced while a client connects in a tight loop: every connection lands on the old route or the new one', async (t) => {
    const started = Date.now();
    const { loop, repetitions } = await underLoad(6, (i) => bed.bpfman(['routes', '--file', i % 2 === 0 ? tableB() : tableA()]));
    const seconds = (Date.now() - started) / 1000;
    t.diagnostic(`${loop.total} connections, ${repetitions} table swaps of 5,001 routes in ${seconds.toFixed(1)} s: ${JSON.stringify(loop.counts)}`);
    assert.deepEqual(Object.keys(loop.counts).sort().filter((k) => k !== 'envoy:10001' && k !== 'envoy:10002'), [], `only the two routes: ${JSON.stringify(loop.counts)}`);
    assert.ok((loop.counts['envoy:10001'] ?? 0) > 0 && (loop.counts['envoy:10002'] ?? 0) > 0, 'both tables were in force');
    assert.ok(repetitions >= 10, `enough swaps (${repetitions})`);
    assert.ok(loop.total >= 10 * repetitions, `enough connections per swap (${loop.total} for ${repetitions})`);
  });

  test('10,000 routes replace in one swap', async (t) => {
    const file = join(bed.scriptsDir, 'routes-10k.json');
    writeFileSync(file, JSON.stringify(table(10001, 9999)));
    const started = Date.now();
    const report = (await bed.bpfman(['routes', '--file', file])) as { routes: number; fillMs: number; swapUs: number; batch: boolean };
    const wall = Date.now() - started;
    t.diagnostic(`10,000 routes: fill ${report.fillMs} ms, swap ${report.swapUs} us, bpfman wall time ${wall} ms (batch: ${report.batch})`);
    assert.equal(report.routes, 10000);
    assert.ok(wall < 5000, `bpfman routes took ${wall} ms`);
    const state = (await bed.bpfman(['show'])) as { routes: unknown[] };
    assert.equal(state.routes.length, 10000);
    assert.deepEqual(await bed.client(agent, ['tcp', SWAP_IP, '80']), { ok: true, banner: 'envoy:10001' });
    await bed.bpfman(['routes', '--file', tableA()]);
  });

  test('reloading the datapath under load: maps reused, links switched to the new programs in place, no connection escapes', async (t) => {
    const progId = async () => ((JSON.parse(await runOk(bpftool(), ['-j', 'prog', 'show', 'pinned', join(bed.pinDir, 'progs', 'connect4')])) as { id: number }).id);
    const attachedIds = async () => (JSON.parse((await runOk(bpftool(), ['-j', 'cgroup', 'show', agent.cgroupDir])).trim() || '[]') as { id: number; attach_type: string }[])
      .filter((p) => p.attach_type === 'cgroup_inet4_connect').map((p) => p.id);
    const before = await progId();
    assert.deepEqual(await attachedIds(), [before]);
    const reports: { maps: Record<string, string>; linksUpdated: number }[] = [];
    const { loop, repetitions } = await underLoad(4, async () => reports.push((await bed.bpfman(['load'])) as { maps: Record<string, string>; linksUpdated: number }));
    t.diagnostic(`${loop.total} connections during ${repetitions} reloads: ${JSON.stringify(loop.counts)}`);
    assert.deepEqual(loop.counts, { 'envoy:10001': loop.total }, 'every connection took the route');
    assert.ok(repetitions >= 3, `reloaded ${repetitions} times`);
    for (const r of reports) {
      assert.deepEqual(new Set(Object.values(r.maps)), new Set(['reused']), `every pinned map reused: ${JSON.stringify(r.maps)}`);
      assert.equal(r.linksUpdated, 1, 'the agent\'s links were switched');
    }
    const after = await progId();
    assert.notEqual(after, before, 'a new connect4 program is pinned');
    assert.deepEqual(await attachedIds(), [after], 'the agent\'s cgroup runs the new program, and only it');
    const state = (await bed.bpfman(['show'])) as { containers: Record<string, unknown> };
    assert.ok(state.containers[String(agent.cgroupId)], 'the enrolment survived');
  });

  test('load replaces pinned maps whose layout differs from the object (stale dns_cache, container_map, route_map after an upgrade); enrolled agents stay locked down', async () => {
    const dir = join(BPFFS_DIR, uniqueName('stale'));
    try {
      await runOk('mkdir', ['-p', dir]);
      await runOk(bpftool(), ['map', 'create', join(dir, 'dns_cache'), 'type', 'hash', 'key', '4', 'value', '8', 'entries', '16', 'name', 'dns_cache']);
      // container_map of the layout before host_proxy_port (32-byte values).
      await runOk(bpftool(), ['map', 'create', join(dir, 'container_map'), 'type', 'hash', 'key', '8', 'value', '32', 'entries', '16384', 'name', 'container_map']);
      // An agent enrolled under the old layout (cgroup id 4242).
      await runOk(bpftool(), ['map', 'update', 'pinned', join(dir, 'container_map'), 'key', '0x92', '0x10', '0', '0', '0', '0', '0', '0', 'value', ...Array<string>(32).fill('0')]);
      // An old route table layout: route keys of 8 bytes.
      await runOk(bpftool(), ['map', 'create', join(dir, 'old_table'), 'type', 'hash', 'key', '8', 'value', '2', 'entries', '16', 'name', 'old_table']);
      await runOk(bpftool(), ['map', 'create', join(dir, 'route_map'), 'type', 'array_of_maps', 'key', '4', 'value', '4', 'entries', '1', 'name', 'route_map', 'inner_map', 'pinned', join(dir, 'old_table')]);
      await runOk(bpftool(), ['map', 'update', 'pinned', join(dir, 'route_map'), 'key', '0', '0', '0', '0', 'value', 'pinned', join(dir, 'old_table')]);
      const out = await runOk(bpftool(), ['-j', 'map', 'show', 'pinned', join(dir, 'route_map')]);
      assert.equal((JSON.parse(out) as { type: string }).type, 'array_of_maps');

      const report = JSON.parse(await runOk(BPFMAN, ['load', '--pin-dir', dir])) as { maps: Record<string, string>; lockedDown?: number[] };
      assert.match(report.maps.dns_cache!, /^replaced: .*ValueSize: 8 changed to 16/);
      assert.match(report.maps.container_map!, /^replaced: .*ValueSize: 32 changed to 40/);
      assert.match(report.maps.route_map!, /^replaced: route table: .*KeySize: 8 changed to 16/);
      assert.equal(report.maps.bypass_map, 'created');
      const shown = JSON.parse(await runOk(bpftool(), ['-j', 'map', 'show', 'pinned', join(dir, 'dns_cache')])) as { bytes_key: number; bytes_value: number };
      assert.deepEqual([shown.bytes_key, shown.bytes_value], [4, 16]);
      // Fail closed across the upgrade: the enrolled agent is carried over locked down, not dropped.
      assert.deepEqual(report.lockedDown, [4242]);
      const state = JSON.parse(await runOk(BPFMAN, ['show', '--pin-dir', dir])) as { containers: Record<string, { flags: string[] }> };
      assert.deepEqual(Object.keys(state.containers), ['4242']);
      assert.deepEqual(state.containers['4242']!.flags, ['lockdown']);

      const again = JSON.parse(await runOk(BPFMAN, ['load', '--pin-dir', dir])) as { maps: Record<string, string> };
      assert.deepEqual(new Set(Object.values(again.maps)), new Set(['reused']), 'a second load reuses them all');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('detach leaves the container unmanaged; attach and unenroll work by cgroup id', async () => {
    const gone = (await bed.bpfman(['detach', '--cgroup-id', String(agent.cgroupId)])) as { detached: string[] };
    assert.equal(gone.detached.length, 7);
    assert.deepEqual(await bed.client(agent, ['tcp', bed.network.gateway, String(host.port)]), { ok: true, banner: `host:${host.port}` }, 'detached: unmanaged');
    await bed.bpfman(['attach', '--cgroup', agent.cgroupDir]);
    assert.equal((await bed.client(agent, ['tcp', bed.network.gateway, String(host.port)])).errno, 'EPERM', 're-attached: enforced again (still enrolled)');
    await bed.bpfman(['unenroll', '--cgroup-id', String(agent.cgroupId)]);
    assert.deepEqual(await bed.client(agent, ['tcp', bed.network.gateway, String(host.port)]), { ok: true, banner: `host:${host.port}` }, 'unenrolled: unmanaged');
  });
});
