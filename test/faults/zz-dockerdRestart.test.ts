/**
 * The Docker daemon restarts under a running firewall and an agent that keeps resolving and connecting.
 *
 * The file's name sorts last on purpose: a daemon restart stops every container on the machine, so
 * it runs after every other suite of `test/faults/*.test.ts` (and after test/e2e, which run.sh runs first).
 *
 * What must happen, and is asserted:
 *  - while the daemon is down, the kernel keeps the guard on the agents' cgroup (the programs stay attached);
 *  - the stack comes back by itself: the control plane (restart policy unless-stopped) restarts,
 *    CoreDNS and the proxy with it, and `firewall status` is healthy again;
 *  - an agent that Docker restarts (here one whose restart policy asks for it; the product's agents
 *    have "no") runs under the same guarded cgroup: nothing it tried before the new control plane
 *    enrolled it succeeded (how many attempts that was is printed: usually none, as the control plane
 *    is back first and enrolls it on Docker's start event; test/e2e/firewall.test.ts's "late" agent
 *    shows the guard refusing an agent no control plane enrolls); then egress returns;
 *  - nothing reached an origin it should not, at any point.
 *
 * The daemon is restarted the way it runs here: `systemctl restart docker` where systemd manages it,
 * otherwise SIGTERM to the pid in /var/run/docker.pid and the same command line started again
 * (detached, into the same log), as test/testbed/provision.sh starts it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { agentContainerSpec, DEFAULT_PROJECT_SETTINGS } from '../../src/core/stack/agentSpec';
import { agentsCgroupParent } from '../../src/core/stack/cgroupPaths';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { ensurePythonImage, PY_IMAGE } from '../e2e/datapath-testbed';
import { ensureEnvoyStandinImage, TestInternet } from '../e2e/internet';
import { ensureStackImages } from '../e2e/stackImages';
import { BPFFS_DIR, bpftool, cgroup2MountPoint, clawker, type ClawkerResult, E2E_PID_LABEL, findExecutable, pollUntil, removeCgroupDirs, requireTestbed, ROOT, run, runOk, testStackEnv, removeStackVolumes, readControlPlaneFile } from '../e2e/testbed';
import { LOAD_PY, type LoadRecord } from './loadLoop';

const names = stackNames(`clawker-e2e-fdockerd-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'clawker-faults-dockerd-data-'));
const agentDir = mkdtempSync(join(tmpdir(), 'clawker-faults-dockerd-agent-'));
const settings = join(dataDir, 'settings.yaml');
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const inet = new TestInternet();
const HOST = { allowed: 10, literal: 20, blocked: 30 } as const;
const DOCKER_PIDFILE = '/var/run/docker.pid';

let images: { coredns: string; controlplane: string; envoy: string };
let status: Status;
let agentName = '';

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...testStackEnv({ dataDir, stack: names.prefix, pinDir, settings, images }),
    CLAWKER_DRAIN_AFTER_MS: '600000',
    CLAWKER_HEAL_AFTER_MS: '2000',
  };
}

const cli = (...args: string[]): Promise<ClawkerResult> => clawker(args, { env: env(), cwd: agentDir });

const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 200): Promise<T> => pollUntil(what, fn, timeoutMs, everyMs);

async function fwStatus(): Promise<Status | undefined> {
  const r = await cli('firewall', 'status', '--json');
  try {
    return JSON.parse(r.stdout) as Status;
  } catch {
    return undefined;
  }
}

const dockerAnswers = async (): Promise<boolean> => (await run('docker', ['version', '--format', '{{.Server.Version}}'], 10_000).catch(() => ({ code: 1 }))).code === 0;

/** The running daemon's command line and log, to start it again the same way. */
function dockerdProcess(): { pid: number; argv: string[]; log: string } {
  const pid = Number(readFileSync(DOCKER_PIDFILE, 'utf8').trim());
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  let log = '/dev/null';
  try {
    const out = readlinkSync(`/proc/${pid}/fd/1`);
    if (out.startsWith('/')) log = out;
  } catch {
    // no stdout: /dev/null
  }
  return { pid, argv, log };
}

function startDockerd(argv: readonly string[], log: string): void {
  const fd = openSync(log, 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd] }); // its own session: it outlives this test
  child.unref();
  closeSync(fd);
}

/**
 * Containers running on this machine that are not this test's: a daemon restart would stop them.
 * Another suite (or another person's run on a shared test bed) may be running; wait for it.
 */
async function othersRunning(): Promise<string[]> {
  const out = await runOk('docker', ['ps', '--format', `{{.Names}}\t{{.Label "${E2E_PID_LABEL}"}}`]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\t') as [string, string])
    .filter(([name, pid]) => pid !== String(process.pid) && !name.startsWith(`${names.prefix}-`) && !name.startsWith(`${names.prefix}.`))
    .map(([name]) => name);
}

/**
 * Stops the Docker daemon, runs `whileDown`, starts it again; resolves when it answers, with the
 * times (s since the epoch) it went down and answered again.
 */
async function restartDockerd(whileDown: () => Promise<void>): Promise<{ downAt: number; upAt: number }> {
  const systemd = findExecutable('systemctl') && (await run('systemctl', ['is-active', 'docker'])).stdout.trim() === 'active';
  const downAt = Date.now() / 1000;
  let start: () => Promise<void>;
  if (systemd) {
    await runOk('systemctl', ['stop', 'docker'], 120_000);
    start = async () => void (await runOk('systemctl', ['start', 'docker'], 120_000));
  } else {
    const { pid, argv, log } = dockerdProcess();
    assert.equal(argv[0] && /dockerd$/.test(argv[0]), true, `pid ${pid} in ${DOCKER_PIDFILE} is dockerd: ${argv.join(' ')}`);
    process.kill(pid, 'SIGTERM');
    await waitUntil(`dockerd (pid ${pid}) stopped`, async () => (existsSync(`/proc/${pid}`) ? undefined : true), 60_000);
    start = async () => startDockerd(argv, log);
  }
  try {
    await whileDown();
  } finally {
    await start();
    await waitUntil('dockerd answers again', async () => ((await dockerAnswers()) ? true : undefined), 60_000, 250);
  }
  return { downAt, upAt: Date.now() / 1000 };
}

/** The eBPF programs attached to the agents' parent cgroup (the guard every agent runs under). */
async function guardPrograms(): Promise<string[]> {
  const dir = join(cgroup2MountPoint()!, names.agentsCgroup);
  const out = await runOk(bpftool(), ['-j', 'cgroup', 'show', dir]);
  return (JSON.parse(out) as { name: string }[]).map((p) => p.name).sort();
}

const records = (): LoadRecord[] => {
  const file = join(agentDir, 'load.jsonl');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as LoadRecord) : [];
};
const goodRoundAfter = (t: number): true | undefined => {
  const after = records().filter((r) => r.t0 > t);
  return after.some((r) => r.op === 'resolve-allowed' && r.ok) && after.some((r) => r.op === 'tcp-allowed' && r.ok) ? true : undefined;
};

before(async () => {
  await requireTestbed();
  await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 180_000);
  const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage(), ensurePythonImage()]);
  images = { ...stack, envoy };
  writeFileSync(join(agentDir, 'load.py'), LOAD_PY);
  await inet.start({ 'allowed.test': HOST.allowed, 'blocked.test': HOST.blocked });
  await inet.startOrigin('allowed', inet.address(HOST.allowed), [443, 7000], { tls: true });
  await inet.startOrigin('literal', inet.address(HOST.literal), [443], { tls: true });
  await inet.startOrigin('blocked', inet.address(HOST.blocked), [443], { tls: true });
  writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${inet.dnsIp}\n`);
  for (const args of [['allowed.test'], ['allowed.test', '--proto', 'tcp', '--port', '7000']]) {
    const r = await cli('firewall', 'add', ...args);
    assert.equal(r.code, 0, r.stderr);
  }
  const up = await cli('firewall', 'up', '--json');
  assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
  status = JSON.parse(up.stdout) as Status;
  await inet.routeFrom(status.network.subnet);

  // An agent whose command is the load loop itself, restarted by Docker when the daemon comes back.
  const { name, create } = agentContainerSpec({
    stack: names,
    project: 'faults',
    agent: 'dev',
    image: PY_IMAGE,
    cmd: ['python3', '/agent/load.py', '/agent/load.jsonl', '/agent/load.stop', inet.address(HOST.allowed), inet.address(HOST.literal), inet.address(HOST.blocked), inet.dnsIp],
    workspace: agentDir,
    settings: { ...DEFAULT_PROJECT_SETTINGS, enableHostProxy: false },
    firewall: { enabled: true, corednsIp: status.network.coredns, cgroupParent: agentsCgroupParent('cgroupfs', names.agentsCgroup) },
    supervised: false,
    extraLabels: { [E2E_PID_LABEL]: String(process.pid) },
  });
  agentName = name;
  const c = await docker.createContainer({ name, ...create, HostConfig: { ...create.HostConfig, Binds: [`${agentDir}:/agent`], RestartPolicy: { Name: 'unless-stopped' } } });
  await c.start();
});

after(async () => {
  if (!(await dockerAnswers())) {
    // A failed restart must not leave the machine without Docker.
    const argv = ['dockerd', '--exec-opt', 'native.cgroupdriver=cgroupfs'];
    startDockerd(argv, existsSync('/var/cache/clawker-testbed') ? '/var/cache/clawker-testbed/dockerd.log' : '/dev/null');
    await waitUntil('dockerd answers', async () => ((await dockerAnswers()) ? true : undefined), 60_000).catch(() => undefined);
  }
  writeFileSync(join(agentDir, 'load.stop'), '');
  if (agentName) await run('docker', ['rm', '-f', agentName]);
  await cli('firewall', 'down');
  for (const n of [names.controlplane, names.envoy, names.coredns]) await run('docker', ['rm', '-f', n]);
  await run('docker', ['network', 'rm', names.network]);
  await removeStackVolumes(names);
  await inet.stop();
  rmSync(pinDir, { recursive: true, force: true });
  await removeCgroupDirs(names.agentsCgroup);
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(agentDir, { recursive: true, force: true });
});

describe('the Docker daemon restarts under load', { timeout: 900_000 }, () => {
  test('the stack comes back by itself; the agent Docker restarts is offline until enrolled; then egress returns; nothing escaped', async () => {
    await waitUntil('the agent enrolled, with service', async () => goodRoundAfter(0), 60_000);
    let others: string[] = [];
    await waitUntil('no other containers running (a daemon restart would stop them)', async () => ((others = await othersRunning()).length ? undefined : true), 600_000, 2000).catch(() => {
      throw new Error(`refusing to restart dockerd while containers that are not this test's run: ${others.join(', ')}`);
    });
    const controlPlaneStarted = (await docker.getContainer(names.controlplane).inspect()).State.StartedAt;

    const guard = await guardPrograms();
    assert.deepEqual(guard, ['connect4', 'connect6', 'recvmsg4', 'recvmsg6', 'sendmsg4', 'sendmsg6', 'sock_create'], 'the agents cgroup is guarded');
    const { downAt, upAt } = await restartDockerd(async () => {
      // With no Docker at all (not asked: a socket-activated docker would start again), the kernel
      // still holds the guard.
      assert.deepEqual(await guardPrograms(), guard, 'the guard stays attached while Docker is down');
    });

    // The test's internet has no restart policy (its containers are not the product's): start it again.
    const ours = (await runOk('docker', ['ps', '-a', '--filter', `label=${E2E_PID_LABEL}=${process.pid}`, '--format', '{{.Names}}'])).split('\n').filter(Boolean);
    for (const name of ours.filter((n) => n !== agentName)) await runOk('docker', ['start', name]);
    // Docker puts its own NAT rules back in front on start: route the test internet again.
    await inet.routeFrom(status.network.subnet);

    // The stack: back by itself.
    const cp = await waitUntil('the control plane restarted by Docker', async () => {
      const s = (await docker.getContainer(names.controlplane).inspect()).State;
      return s.Running && s.StartedAt !== controlPlaneStarted ? s : undefined;
    }, 60_000);
    const s = await waitUntil('firewall status healthy with the agent enrolled', async () => {
      const st = await fwStatus();
      return st && st.components.every((c) => c.healthy) && st.agents.some((a) => a.agent === 'dev' && a.state === 'enrolled') ? st : undefined;
    }, 60_000, 500);
    assert.ok(s.agents.find((a) => a.agent === 'dev')?.guarded, 'the agent runs under the guarded agents cgroup');
    assert.deepEqual(await guardPrograms(), guard, 'the same guard after the restart');

    // Egress returns.
    await waitUntil('service back', async () => goodRoundAfter(upAt), 60_000, 250);
    // When Docker restarted the agent: read now, before the loop ends (its exit may be followed by
    // another restart under the restart policy, which would move StartedAt past its enrolment).
    const agentStarted = Date.parse((await docker.getContainer(agentName).inspect()).State.StartedAt) / 1000;
    writeFileSync(join(agentDir, 'load.stop'), '');
    await waitUntil('the loop stopped', async () => (records().some((r) => (r.op as string) === 'done') ? true : undefined), 20_000);
    const all = records().filter((r) => (r.op as string) !== 'done');

    // Offline until enrolled: every attempt of the restarted agent before the enrollment failed (how
    // many there were depends on which container Docker started first; the count is printed).
    // From the log files themselves: the load loop's kernel events can push the enrolment out of any tail.
    const logs = await Promise.all(['egress.jsonl.1', 'egress.jsonl'].map((f) => readControlPlaneFile(names.controlplane, `events/${f}`)));
    const audit = logs
      .flatMap((text) => (text ?? '').split('\n'))
      .filter((l) => l.includes('"source":"controlplane"'))
      .map((l) => JSON.parse(l) as { time: string; since?: string; source: string; message?: string; agent?: string });
    assert.ok(agentStarted > downAt, 'Docker restarted the agent');
    // Its enrolment: the first after this container started (a new cgroup needs a new one).
    const enrolled = audit.filter((e) => e.source === 'controlplane' && e.agent === 'dev' && /enrolled/.test(e.message ?? '') && Date.parse(e.time) / 1000 >= agentStarted - 0.05);
    assert.ok(enrolled.length > 0, `the new control plane enrolled the restarted agent: ${JSON.stringify(audit.filter((e) => e.agent === 'dev').slice(-5))}`);
    // The kernel entry is written during the enrolment, between its `since` and its `time` (the
    // event is stamped after bpfman returns, which under load is tens of ms later): nothing may get
    // out before the enrolment began; an attempt inside that window may already be let through.
    const enrolledAt = Date.parse(enrolled[0]!.since ?? enrolled[0]!.time) / 1000;
    const restartedRun = all.filter((r) => r.t0 >= agentStarted);
    const beforeEnrolment = restartedRun.filter((r) => r.t1 < enrolledAt);
    assert.deepEqual(beforeEnrolment.filter((r) => r.ok), [], 'nothing succeeded before the agent was enrolled');
    const refused = beforeEnrolment.filter((r) => ['tcp-allowed', 'udp-literal', 'tls-literal'].includes(r.op));
    assert.ok(refused.every((r) => r.err === 'EPERM'), `refused by the guard (EPERM): ${JSON.stringify(refused.slice(0, 5))}`);

    // Nothing escaped, before, during or after.
    const escaped = all.filter((r) => r.ok && ['resolve-blocked', 'tls-literal', 'tls-blocked', 'udp-literal', 'dns-direct'].includes(r.op));
    assert.deepEqual(escaped, [], 'successes to blocked destinations');
    assert.deepEqual(await inet.connections('literal'), [], 'the literal origin was never reached');
    assert.deepEqual(await inet.connections('blocked'), [], 'the blocked origin was never reached');
    assert.deepEqual(await inet.connections('allowed'), [], 'the allowed origin only through the proxy');
    assert.deepEqual((await inet.queries()).filter((q) => q.name.startsWith('blocked.test')), [], 'no blocked name reached the outside resolver');
    process.stdout.write(
      `# dockerd restart: Docker answered after ${(upAt - downAt).toFixed(1)} s; control plane started at ${cp.StartedAt}; ` +
        `agent restarted ${(agentStarted - upAt).toFixed(1)} s and its enrolment began ${(enrolledAt - upAt).toFixed(1)} s after it answered ` +
        `(and took ${(Date.parse(enrolled[0]!.time) - enrolledAt * 1000).toFixed(0)} ms); ${beforeEnrolment.length} attempts before it, all refused\n`,
    );
  });
});
