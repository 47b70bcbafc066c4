/**
 * Faults of the running firewall stack under load: an agent keeps resolving and connecting (the loop of
 * loadLoop.ts) while CoreDNS, the proxy or the control plane is SIGKILLed, while the control plane
 * restarts in the middle of a bypass, and while the rule store is damaged under a running stack.
 *
 * Every fault asserts, from the loop's records and from the test internet's own logs:
 *  - fail-closed DURING the fault: nothing reached an origin it should not (the origins saw no
 *    connection, the outside resolver no query from the agent), zero successes to blocked
 *    destinations, and the fault was really felt (or, for the control plane, allowed traffic went on
 *    because the kernel keeps the rules);
 *  - recovery AFTER: by itself, or with the one command the error names, the service returns.
 *
 * The stack is the real one (`clawker firewall up`: control-plane image, eBPF, CoreDNS + dnsbpf); the
 * proxy is the Envoy stand-in of test/e2e/internet.ts (Envoy cannot run here), which answers allowed
 * traffic itself and resets unlisted names: the origins are reached only when the kernel lets the
 * agent past the proxy (a bypass).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { agentContainerSpec, DEFAULT_PROJECT_SETTINGS } from '../../src/core/stack/agentSpec';
import { agentsCgroupParent } from '../../src/core/stack/cgroupPaths';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { RuleStore } from '../../src/platform/ruleStore';
import { ensurePythonImage, PY_IMAGE } from '../e2e/datapath-testbed';
import { ensureEnvoyStandinImage, TestInternet } from '../e2e/internet';
import { ensureStackImages } from '../e2e/stackImages';
import { BPFFS_DIR, clawker, type ClawkerResult, E2E_PID_LABEL, pollUntil, removeCgroupDirs, requireTestbed, ROOT, run, runOk, testStackEnv, removeStackVolumes } from '../e2e/testbed';
import { LOAD_PY, type LoadRecord } from './loadLoop';

const names = stackNames(`clawker-e2e-faults-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'clawker-faults-stack-data-'));
/** Bind-mounted into the agent at /agent: the loop script, and its records. */
const agentDir = mkdtempSync(join(tmpdir(), 'clawker-faults-stack-agent-'));
const settings = join(dataDir, 'settings.yaml');
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const inet = new TestInternet();
const store = new RuleStore(dataDir);
/** Hosts of the test internet (host numbers on its network). */
const HOST = { allowed: 10, literal: 20, blocked: 30 } as const;

let images: { coredns: string; controlplane: string; envoy: string };
let status: Status;
let agentName = '';
let agentIp = '';

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...testStackEnv({ dataDir, stack: names.prefix, pinDir, settings, images }),
    CLAWKER_DRAIN_AFTER_MS: '600000',
    CLAWKER_HEAL_AFTER_MS: '2000',
  };
}

const cli = (...args: string[]): Promise<ClawkerResult> => clawker(args, { env: env(), cwd: agentDir });

async function cliOk(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function fwStatus(): Promise<Status | undefined> {
  const r = await cli('firewall', 'status', '--json');
  try {
    return JSON.parse(r.stdout) as Status;
  } catch {
    return undefined;
  }
}

const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 200): Promise<T> => pollUntil(what, fn, timeoutMs, everyMs);

const devEnrolled = async (): Promise<true | undefined> => ((await fwStatus())?.agents.find((a) => a.agent === 'dev')?.state === 'enrolled' ? true : undefined);

async function startAgent(): Promise<string> {
  const { name, create } = agentContainerSpec({
    stack: names,
    project: 'faults',
    agent: 'dev',
    image: PY_IMAGE,
    cmd: ['sleep', 'infinity'],
    workspace: agentDir,
    settings: { ...DEFAULT_PROJECT_SETTINGS, enableHostProxy: false },
    firewall: { enabled: true, corednsIp: status.network.coredns, cgroupParent: agentsCgroupParent('cgroupfs', names.agentsCgroup) },
    supervised: false,
    extraLabels: { [E2E_PID_LABEL]: String(process.pid) },
  });
  const container = await docker.createContainer({ name, ...create, HostConfig: { ...create.HostConfig, Binds: [`${agentDir}:/agent`] } });
  await container.start();
  return name;
}

const startedAt = async (name: string): Promise<number> => Date.parse((await docker.getContainer(name).inspect()).State.StartedAt);

/**
 * SIGKILL the container's main process from the host, as a crash or the OOM killer would. (`docker
 * kill` is not a crash: Docker records it as a deliberate stop and no restart policy applies.)
 * Returns when the process is gone, in seconds since the epoch.
 */
async function crash(name: string): Promise<number> {
  const pid = (await docker.getContainer(name).inspect()).State.Pid;
  assert.ok(pid > 0, `${name} is running`);
  process.kill(pid, 'SIGKILL');
  await waitUntil(`${name} (pid ${pid}) gone`, async () => (existsSync(`/proc/${pid}`) ? undefined : true), 10_000, 20);
  return Date.now() / 1000;
}

/** SIGKILLs every new process of the container as soon as it runs, for `ms`. */
async function keepCrashing(name: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const s = (await docker.getContainer(name).inspect()).State;
    if (s.Running && s.Pid > 0) await crash(name);
    await sleep(20);
  }
}

/** A running load loop in the agent. */
class Load {
  private constructor(
    private readonly tag: string,
    /** What the test internet had seen before this load. */
    readonly seen: Seen,
  ) {}

  static async start(tag: string): Promise<Load> {
    const load = new Load(tag, await seenNow());
    await runOk('docker', ['exec', '-d', agentName, 'python3', '/agent/load.py', `/agent/${tag}.jsonl`, `/agent/${tag}.stop`,
      inet.address(HOST.allowed), inet.address(HOST.literal), inet.address(HOST.blocked), inet.dnsIp]);
    // Service before the fault: every allowed operation of a whole round succeeded.
    await waitUntil(`${tag}: the load loop has a good round`, async () => (load.goodRoundAfter(0) !== undefined ? true : undefined), 20_000);
    return load;
  }

  records(): LoadRecord[] {
    const file = join(agentDir, `${this.tag}.jsonl`);
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as LoadRecord);
  }

  /** Start time (s) of the first round after `t` (s) whose allowed resolution and connection both succeeded. */
  goodRoundAfter(t: number): number | undefined {
    const rounds = new Map<number, LoadRecord[]>();
    for (const r of this.records()) if (r.t0 > t) rounds.set(r.round, [...(rounds.get(r.round) ?? []), r]);
    for (const ops of rounds.values()) {
      const ok = (op: LoadRecord['op']) => ops.some((r) => r.op === op && r.ok);
      if (ok('resolve-allowed') && ok('tcp-allowed')) return Math.min(...ops.map((r) => r.t0));
    }
    return undefined;
  }

  async stop(): Promise<LoadRecord[]> {
    writeFileSync(join(agentDir, `${this.tag}.stop`), '');
    await waitUntil(`${this.tag}: the load loop stopped`, async () => (this.records().some((r) => (r.op as string) === 'done') ? true : undefined), 20_000);
    return this.records().filter((r) => (r.op as string) !== 'done');
  }
}

/** What the test internet had seen when a load started: later records are this load's. */
interface Seen {
  queries: number;
  allowed: number;
  literal: number;
  blocked: number;
}

const seenNow = async (): Promise<Seen> => ({
  queries: (await inet.queries()).length,
  allowed: (await inet.connections('allowed')).length,
  literal: (await inet.connections('literal')).length,
  blocked: (await inet.connections('blocked')).length,
});

const BLOCKED_OPS: readonly LoadRecord['op'][] = ['resolve-blocked', 'tls-literal', 'tls-blocked', 'udp-literal', 'dns-direct'];

/**
 * Nothing escaped: outside a bypass (`bypassed` says which attempts were in one) no blocked name
 * resolved, no handshake with the literal or blocked origin completed, every datagram was refused
 * with EPERM, and the outside resolver never answered the agent. And the test internet's own logs
 * agree: the outside resolver saw the agent exactly as often as a bypassed direct query succeeded,
 * the origins exactly the bypassed handshakes (by SNI), and the allowed origin only in a bypass
 * (the proxy stand-in answers allowed traffic itself).
 */
async function assertNothingEscaped(since: Seen, records: readonly LoadRecord[], bypassed: (r: LoadRecord) => boolean = () => false): Promise<void> {
  const escaped = records.filter((r) => BLOCKED_OPS.includes(r.op) && r.ok && !bypassed(r));
  assert.deepEqual(escaped, [], 'successes to blocked destinations outside a bypass');
  const notEperm = records.filter((r) => r.op === 'udp-literal' && !bypassed(r) && r.err !== 'EPERM');
  assert.deepEqual(notEperm, [], 'every datagram outside a bypass refused with EPERM');
  const inBypass = (op: LoadRecord['op']) => records.filter((r) => r.op === op && bypassed(r));

  const queries = (await inet.queries()).slice(since.queries);
  assert.deepEqual(queries.filter((q) => q.peer !== agentIp && q.name.startsWith('blocked.test')), [], 'CoreDNS never forwarded a blocked name');
  const direct = queries.filter((q) => q.peer === agentIp).length;
  const answered = inBypass('dns-direct').filter((r) => r.ok).length;
  assert.ok(direct >= answered && direct <= inBypass('dns-direct').length, `the outside resolver saw the agent only for direct queries in a bypass (${direct} queries, ${answered} answered)`);
  const allowedDirect = (await inet.connections('allowed')).length - since.allowed;
  assert.ok(allowedDirect <= inBypass('tcp-allowed').length, `the allowed origin is reached only through the proxy, or in a bypass (${allowedDirect} direct)`);
  // The origins' logs name the round by SNI: each connection they saw must be an attempt in a bypass.
  const bySni = new Map(records.filter((r) => r.sni).map((r) => [r.sni!, r]));
  for (const origin of ['literal', 'blocked'] as const) {
    const seen = (await inet.connections(origin)).slice(since[origin]);
    const outside = seen.filter((c) => !bySni.has(c.sni ?? '') || !bypassed(bySni.get(c.sni!)!));
    assert.deepEqual(outside, [], `the ${origin} origin was reached outside a bypass`);
  }
}

const summary = (records: readonly LoadRecord[]): string => {
  const by = new Map<string, string>();
  for (const r of records) by.set(r.op, `${by.get(r.op) ?? ''}${r.ok ? '+' : '-'}`);
  return [...by].map(([op, s]) => `${op} ${s}`).join('\n');
};

before(async () => {
  await requireTestbed();
  await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 180_000);
  const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage(), ensurePythonImage()]);
  images = { ...stack, envoy };
  writeFileSync(join(agentDir, 'load.py'), LOAD_PY);
  await inet.start({});
  inet.setZone({ 'allowed.test': HOST.allowed, 'blocked.test': HOST.blocked });
  await inet.startOrigin('allowed', inet.address(HOST.allowed), [443, 7000], { tls: true });
  await inet.startOrigin('literal', inet.address(HOST.literal), [443], { tls: true });
  await inet.startOrigin('blocked', inet.address(HOST.blocked), [443], { tls: true });
  writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${inet.dnsIp}\n`);
  await cliOk('firewall', 'add', 'allowed.test');
  await cliOk('firewall', 'add', 'allowed.test', '--proto', 'tcp', '--port', '7000');
  const up = await cli('firewall', 'up', '--json');
  assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
  status = JSON.parse(up.stdout) as Status;
  await inet.routeFrom(status.network.subnet);
  agentName = await startAgent();
  agentIp = (await runOk('docker', ['inspect', '-f', `{{(index .NetworkSettings.Networks "${names.network}").IPAddress}}`, agentName])).trim();
  await waitUntil('agent enrolled', devEnrolled);
});

after(async () => {
  await cli('firewall', 'down');
  if (agentName) await run('docker', ['rm', '-f', agentName]);
  for (const n of [names.controlplane, names.envoy, names.coredns]) await run('docker', ['rm', '-f', n]);
  await run('docker', ['network', 'rm', names.network]);
  await removeStackVolumes(names);
  await inet.stop();
  rmSync(pinDir, { recursive: true, force: true });
  await removeCgroupDirs(names.agentsCgroup);
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(agentDir, { recursive: true, force: true });
});

describe('SIGKILL under load: fail-closed during, service back after', { timeout: 600_000 }, () => {
  test('CoreDNS: names stop resolving and the agent never falls back to the outside resolver; CoreDNS comes back by itself', async () => {
    // One crash (Docker restarts it within a second), then a crash loop of 3 s (every new process
    // killed as soon as it runs), long enough for every round of the loop to meet the outage.
    for (const crashLoop of [false, true]) {
      const load = await Load.start(`kill-coredns-${crashLoop ? 'loop' : 'once'}`);
      const killedAt = await crash(names.coredns);
      const loopEnd = crashLoop ? (await keepCrashing(names.coredns, 3000), Date.now() / 1000) : killedAt;
      const back = await waitUntil('service back', async () => load.goodRoundAfter(loopEnd), 30_000);
      const records = await load.stop();
      const during = records.filter((r) => r.t1 > killedAt && r.t0 < back);
      if (crashLoop) {
        // A resolution sent to a dead CoreDNS fails, or stalls until the resolver's retry (glibc: 5 s);
        // either kind of name (a blocked one is otherwise refused at once with NXDOMAIN).
        const felt = during.filter((r) => r.op.startsWith('resolve-') && (r.t1 - r.t0 > 1 || (r.op === 'resolve-allowed' && !r.ok)));
        assert.ok(felt.length > 0, `the outage was felt by the agent:\n${summary(during)}`);
        assert.ok(during.some((r) => r.op === 'dns-direct'), 'the agent asked the outside resolver directly during the outage');
      }
      await assertNothingEscaped(load.seen, records);
      process.stdout.write(`# CoreDNS SIGKILL (${crashLoop ? 'crash loop of 3 s' : 'once'}): service back after ${(back - killedAt).toFixed(1)} s\n`);
    }
  });

  test('the proxy: allowed connections fail (never direct to the origin) and the proxy comes back by itself', async () => {
    const load = await Load.start('kill-proxy');
    const killedAt = await crash(names.envoy);
    const back = await waitUntil('service back', async () => load.goodRoundAfter(killedAt), 30_000);
    const records = await load.stop();
    const during = records.filter((r) => r.t0 > killedAt && r.t0 < back);
    assert.ok(during.some((r) => r.op === 'tcp-allowed' && !r.ok), `the outage was felt by the agent:\n${summary(during)}`);
    await assertNothingEscaped(load.seen, records);
    process.stdout.write(`# proxy SIGKILL: service back after ${(back - killedAt).toFixed(1)} s\n`);
  });

  test('the control plane: the kernel keeps enforcing and serving the rules while it is dead; it comes back by itself and re-enrolls the agent', async () => {
    const load = await Load.start('kill-controlplane');
    const before = await startedAt(names.controlplane);
    const killedAt = await crash(names.controlplane);
    const restarted = await waitUntil('the control plane restarted by its restart policy', async () => {
      const s = await docker.getContainer(names.controlplane).inspect();
      return s.State.Running && Date.parse(s.State.StartedAt) !== before ? Date.parse(s.State.StartedAt) / 1000 : undefined;
    }, 30_000);
    await waitUntil('re-enrolled by the new control plane', devEnrolled, 30_000);
    const readyAt = Date.now() / 1000;
    await sleep(1000);
    const records = await load.stop();
    const during = records.filter((r) => r.t0 > killedAt && r.t1 < readyAt);
    assert.ok(during.filter((r) => r.op === 'resolve-allowed').length >= 2, `the loop ran through the outage:\n${summary(during)}`);
    const failedAllowed = during.filter((r) => (r.op === 'resolve-allowed' || r.op === 'tcp-allowed') && !r.ok);
    assert.deepEqual(failedAllowed, [], 'allowed traffic kept working: the rules stayed in the kernel');
    await assertNothingEscaped(load.seen, records);
    const s = (await fwStatus())!;
    for (const c of s.components) assert.ok(c.healthy, `${c.name}: ${c.detail}`);
    process.stdout.write(`# control plane SIGKILL: restarted after ${(restarted - killedAt).toFixed(1)} s, agent enrolled after ${(readyAt - killedAt).toFixed(1)} s\n`);
  });
});

describe('the control plane restarts in the middle of a bypass', { timeout: 300_000 }, () => {
  for (const how of ['SIGKILL', 'docker restart'] as const) {
    test(`${how}: the bypass closes at its deadline anyway and is never extended`, async () => {
      const load = await Load.start(`bypass-${how.replace(' ', '-')}`);
      const opened = await cliOk('firewall', 'bypass', '6s', '--agent', 'dev');
      const until = (await fwStatus())!.agents.find((a) => a.agent === 'dev')!.bypassUntil!;
      assert.ok(until, opened);
      const deadline = Date.parse(until) / 1000;
      await sleep(1500);
      if (how === 'SIGKILL') await crash(names.controlplane);
      else await runOk('docker', ['restart', '-t', '5', names.controlplane]);
      const restartedAt = Date.now() / 1000;
      // While it is back before the deadline, the window it reports is the one opened, not a new one.
      const dev = await waitUntil('the new control plane answers and knows the agent', async () => (await fwStatus())?.agents.find((a) => a.agent === 'dev'), 30_000);
      const reported = dev?.state === 'bypassed' ? `bypassed until ${dev.bypassUntil}` : dev?.state;
      assert.ok(reported === `bypassed until ${until}` || reported === 'enrolled', `after the restart: ${reported} (opened until ${until})`);
      await sleep(Math.max(0, (deadline + 2) * 1000 - Date.now()));
      await waitUntil('enrolled again after the deadline', devEnrolled, 10_000);
      await sleep(1500);
      const records = await load.stop();
      // Only rounds that started before the deadline may reach the origin (the kernel checks at connect()).
      const inWindow = (r: LoadRecord) => r.t0 < deadline + 0.1;
      await assertNothingEscaped(load.seen, records, inWindow);
      const after = records.filter((r) => r.op === 'tls-literal' && r.t0 > deadline + 0.1);
      assert.ok(after.length >= 2, `the loop ran past the deadline:\n${summary(records)}`);
      // The origin's log says which rounds reached it (assertNothingEscaped: none after the deadline).
      const round = new Map(records.filter((r) => r.op === 'tls-literal').map((r) => [r.sni, r]));
      const reached = (await inet.connections('literal')).slice(load.seen.literal).map((c) => round.get(c.sni)!);
      assert.ok(reached.some((r) => r.t0 < restartedAt), 'the bypass was open before the restart');
      const reachedAfter = reached.filter((r) => r.t0 >= restartedAt);
      const events = (await cliOk('firewall', 'events', '--json', '--tail', '5000')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const opens = events.filter((e) => e.source === 'controlplane' && /^bypass open for /.test(String(e.message)) && Date.parse(String(e.time)) / 1000 > deadline - 7);
      assert.equal(opens.length, 1, `one bypass opened, none re-opened by the new control plane: ${JSON.stringify(opens)}`);
      process.stdout.write(`# bypass across a control-plane ${how}: after the restart ${reported}; ${reachedAfter.length} rounds reached the origin between the restart and the deadline, none after\n`);
    });
  }
});

describe('the rule store is damaged under a running stack', { timeout: 300_000 }, () => {
  test('reload and add refuse it naming the host file; a restarted control plane keeps its last good copy; with the stack down, up refuses it; the named cp recovers', async () => {
    const load = await Load.start('damaged-store');
    const good = readFileSync(store.file, 'utf8');
    writeFileSync(store.file, good.slice(0, 25));
    let killedAt = 0;
    try {
      const reload = await cli('firewall', 'reload');
      assert.equal(reload.code, 2);
      assert.match(reload.stderr, new RegExp(`the rule store ${store.file.replace(/[.]/g, '\\.')} is damaged`), reload.stderr);
      assert.match(reload.stderr, new RegExp(`cp ${store.backupFile.replace(/[.]/g, '\\.')} ${store.file.replace(/[.]/g, '\\.')}`), 'the recovery command');
      const add = await cli('firewall', 'add', 'more.test');
      assert.equal(add.code, 2, 'no change is written over a damaged store');
      // The control plane has its own copy, which only a checked store replaces: a restart now
      // comes back with the last good rules, not with none and not refusing to start.
      killedAt = await crash(names.controlplane);
      await waitUntil('the restarted control plane enrolls the agent again', devEnrolled, 60_000);
      await waitUntil('the loop ran after the restart', async () => (load.records().some((r) => r.t0 > killedAt && r.op === 'resolve-allowed') ? true : undefined), 30_000);
      const failed = load.records().filter((r) => r.t0 > killedAt && (r.op === 'resolve-allowed' || r.op === 'tcp-allowed') && !r.ok);
      assert.deepEqual(failed.slice(0, 3), [], 'the last good rules stay in force after the restart');
    } finally {
      // The command the message names.
      await runOk('cp', [store.backupFile, store.file]);
    }
    const records = await load.stop();
    await assertNothingEscaped(load.seen, records);
    const list = await cliOk('firewall', 'list', '--json');
    assert.ok(list.includes('allowed.test'), 'rules intact');
    // With no control plane running, `up` is what copies the store in: a damaged one is refused by name.
    await cliOk('firewall', 'down');
    writeFileSync(store.file, good.slice(0, 25));
    try {
      const up = await cli('firewall', 'up');
      assert.notEqual(up.code, 0, 'up does not start a stack from a damaged store');
      assert.match(up.stderr, new RegExp(`the rule store ${store.file.replace(/[.]/g, '\\.')} is damaged`), `firewall up names the host file: ${up.stderr}`);
    } finally {
      await runOk('cp', [store.backupFile, store.file]);
    }
    await cliOk('firewall', 'up');
    await waitUntil('the agent is enrolled again', devEnrolled, 60_000);
  });
});
