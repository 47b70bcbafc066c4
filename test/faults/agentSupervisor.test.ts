/**
 * SIGKILL of the agent supervisor (agentd, PID 1 of the real agent image) while its command keeps
 * resolving and connecting (the loop of loadLoop.ts).
 *
 * What must happen, and is asserted: agentd is the container's init, so when it dies the kernel kills
 * every process of its PID namespace. The agent command never runs on unsupervised: its process is
 * gone at once, the container is exited (137, restart policy "no": Docker does not bring it back),
 * the control plane unenrolls it, and the loop's records stop at the kill. Nothing escaped while it
 * ran. Recovery is the one command a user runs for an exited agent: `clawker start --agent NAME`,
 * after which the command runs again, enrolled, with service.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { stopHostProxy } from '../../src/platform/hostProxyLauncher';
import { ensureEnvoyStandinImage, TestInternet } from '../e2e/internet';
import { ensureStackImages } from '../e2e/stackImages';
import { BASE_IMAGE, BPFFS_DIR, cgroup2DirOfPid, clawker, type ClawkerResult, pollUntil, removeCgroupDirs, requireTestbed, ROOT, run, runOk, testStackEnv, removeStackVolumes } from '../e2e/testbed';
import { LOAD_PY, type LoadRecord } from './loadLoop';

const names = stackNames(`clawker-e2e-fsup-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'clawker-faults-sup-data-'));
const home = mkdtempSync(join(tmpdir(), 'clawker-faults-sup-home-'));
const workspace = mkdtempSync(join(tmpdir(), 'clawker-faults-sup-ws-'));
const settings = join(dataDir, 'settings.yaml');
const PROJECT = 'faults-sup';
const AGENT_IMAGE = `clawker-e2e/agent:faults-${process.pid}`;
const inet = new TestInternet();
const HOST = { allowed: 10, literal: 20, blocked: 30 } as const;
const container = `${names.prefix}.${PROJECT}.sup`;

let images: { coredns: string; controlplane: string; envoy: string };
let status: Status;

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: home,
    ...testStackEnv({ dataDir, stack: names.prefix, pinDir, settings, images }),
    CLAWKER_BASE_IMAGE: BASE_IMAGE,
    CLAWKER_AGENT_IMAGE: AGENT_IMAGE,
    CLAWKER_DRAIN_AFTER_MS: '600000',
  };
}

const cli = (...args: string[]): Promise<ClawkerResult> => clawker(args, { env: env(), cwd: workspace, timeoutMs: 900_000 });

async function cliOk(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 100): Promise<T> => pollUntil(what, fn, timeoutMs, everyMs);

const records = (tag: string): LoadRecord[] => {
  const file = join(workspace, `${tag}.jsonl`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as LoadRecord) : [];
};
const goodSince = (tag: string, t: number): boolean => {
  const after = records(tag).filter((r) => r.t0 > t);
  return after.some((r) => r.op === 'resolve-allowed' && r.ok) && after.some((r) => r.op === 'tcp-allowed' && r.ok);
};
const agentState = async (): Promise<string | undefined> => {
  const s = JSON.parse((await cli('firewall', 'status', '--json')).stdout) as Status;
  return s.agents.find((a) => a.containerName === container)?.state ?? 'not enrolled';
};
const inspect = async (): Promise<{ Running: boolean; Pid: number; ExitCode: number; StartedAt: string; RestartCount: number }> => {
  const out = await runOk('docker', ['inspect', '-f', '{"Running":{{.State.Running}},"Pid":{{.State.Pid}},"ExitCode":{{.State.ExitCode}},"StartedAt":"{{.State.StartedAt}}","RestartCount":{{.RestartCount}}}', container]);
  return JSON.parse(out) as { Running: boolean; Pid: number; ExitCode: number; StartedAt: string; RestartCount: number };
};

before(async () => {
  await requireTestbed();
  await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 180_000);
  const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage()]);
  images = { ...stack, envoy };
  await inet.start({ 'allowed.test': HOST.allowed, 'blocked.test': HOST.blocked });
  await inet.startOrigin('allowed', inet.address(HOST.allowed), [443, 7000], { tls: true });
  await inet.startOrigin('literal', inet.address(HOST.literal), [443], { tls: true });
  await inet.startOrigin('blocked', inet.address(HOST.blocked), [443], { tls: true });
  writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${inet.dnsIp}\n`);
  writeFileSync(join(workspace, '.clawker.yaml'), `name: ${PROJECT}\nsecurity:\n  firewall:\n    rules:\n      - dst: allowed.test\n        proto: tcp\n        port: 7000\n`);
  writeFileSync(join(workspace, 'load.py'), LOAD_PY);
  chmodSync(workspace, 0o777); // the agent user (1001) writes its records here
  const up = await cli('firewall', 'up', '--json');
  assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
  status = JSON.parse(up.stdout) as Status;
  await inet.routeFrom(status.network.subnet);
});

after(async () => {
  await run('docker', ['rm', '-f', container]);
  await cli('firewall', 'down');
  for (const n of [names.controlplane, names.envoy, names.coredns]) await run('docker', ['rm', '-f', n]);
  await run('docker', ['network', 'rm', names.network]);
  await removeStackVolumes(names);
  await inet.stop();
  await stopHostProxy(dataDir).catch(() => false);
  rmSync(pinDir, { recursive: true, force: true });
  await removeCgroupDirs(names.agentsCgroup);
  await run('docker', ['rmi', AGENT_IMAGE]);
  for (const d of [dataDir, home, workspace]) rmSync(d, { recursive: true, force: true });
});

describe('SIGKILL of the agent supervisor (agentd, PID 1) under load', { timeout: 1_200_000 }, () => {
  test('the command dies with it, the container stays exited and unenrolled, nothing escaped; clawker start brings it back', async () => {
    const loop = ['python3', '/workspace/load.py', '/workspace/sup.jsonl', '/workspace/sup.stop', inet.address(HOST.allowed), inet.address(HOST.literal), inet.address(HOST.blocked), inet.dnsIp];
    await cliOk('run', '-d', '--agent', 'sup', '--', ...loop);
    await waitUntil('the loop has service', async () => (goodSince('sup', 0) ? true : undefined), 120_000);
    const queriesBefore = (await inet.queries()).length;

    // The container's processes, from its cgroup: agentd (PID 1 inside) and the command under it.
    const agentd = (await inspect()).Pid;
    const cgroup = cgroup2DirOfPid(agentd);
    const procs = (): number[] => (existsSync(join(cgroup, 'cgroup.procs')) ? readFileSync(join(cgroup, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number) : []);
    const command = procs().filter((p) => p !== agentd && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('load.py'));
    assert.equal(command.length, 1, `one load.py under agentd: ${JSON.stringify(procs())}`);
    assert.equal(readFileSync(`/proc/${command[0]}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1], '1001', 'the command runs as the agent user');

    process.kill(agentd, 'SIGKILL');
    const killedAt = Date.now() / 1000;
    await waitUntil('every process of the container gone', async () => (procs().length === 0 && !existsSync(`/proc/${command[0]}`) ? true : undefined), 10_000, 20);
    const goneAt = Date.now() / 1000;
    const state = await waitUntil('the container exited', async () => {
      const s = await inspect();
      return s.Running ? undefined : s;
    }, 10_000);
    assert.equal(state.ExitCode, 137, 'killed by SIGKILL');
    await waitUntil('the control plane unenrolled it', async () => ((await agentState()) === 'not enrolled' ? true : undefined), 15_000, 250);
    await sleep(3000);
    const after = await inspect();
    assert.equal(after.Running, false, 'Docker did not restart it (restart policy "no"): no agent command runs unsupervised');
    assert.equal(after.RestartCount, 0);
    const ps = JSON.parse(await cliOk('ps', '-a', '--json')) as { name: string; state: string; exitCode?: number }[];
    assert.deepEqual(ps.filter((r) => r.name === container).map((r) => [r.state, r.exitCode]), [['exited', 137]], 'clawker ps shows it exited');

    const recs = records('sup');
    const late = recs.filter((r) => r.t1 > goneAt + 0.2);
    assert.deepEqual(late, [], `the command wrote nothing after it was gone (${(goneAt - killedAt).toFixed(2)} s after the kill)`);
    const escaped = recs.filter((r) => r.ok && ['resolve-blocked', 'tls-literal', 'tls-blocked', 'udp-literal', 'dns-direct'].includes(r.op));
    assert.deepEqual(escaped, [], 'no success to a blocked destination while it ran');
    assert.deepEqual(await inet.connections('literal'), []);
    assert.deepEqual(await inet.connections('blocked'), []);
    assert.deepEqual((await inet.queries()).slice(queriesBefore).filter((q) => q.name.startsWith('blocked.test')), []);

    // Recovery: the one command for an exited agent.
    const restartAt = Date.now() / 1000;
    await cliOk('start', '--agent', 'sup');
    await waitUntil('enrolled again', async () => ((await agentState()) === 'enrolled' ? true : undefined), 60_000, 250);
    await waitUntil('the command runs again with service', async () => (goodSince('sup', restartAt) ? true : undefined), 60_000, 250);
    process.stdout.write(`# agentd SIGKILL: every process of the container gone ${(goneAt - killedAt).toFixed(2)} s after the kill\n`);
  });
});
