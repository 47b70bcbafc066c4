/**
 * Agents end to end, as a user runs them: `clawker run | create | start | stop | restart | rm | logs |
 * ps` (the CLI bundle) build the agent image on the test bed's base, bring up the real firewall stack
 * (control plane, eBPF datapath, CoreDNS with dnsbpf, the forwarding Envoy stand-in), start the host
 * proxy, and create agent containers whose PID 1 is agentd. The "internet" is the test's own, with a
 * git server over HTTPS that wants a password.
 *
 * Each test says what it proves; failures print what the agent, the proxy and the origins saw.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENTD_BUNDLE, AGENT_UID, CONTROLPLANE_SESSION_CN } from '../../src/core/agents/agentContract';
import { createCertificateAuthority } from '../../src/core/pki/authority';
import { issueControlPlaneSessionCertificate, issueSessionCertificate } from '../../src/core/pki/sessionCertificate';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { stackNames } from '../../src/core/stack/stackNames';
import { sessionRequest, type SessionCredentials } from '../../src/controlplane/agentSession';
import { loadOrCreateCa } from '../../src/platform/caStore';
import { stopHostProxy } from '../../src/platform/hostProxyLauncher';
import { TestInternet } from './internet';
import { ensureStackImages } from './stackImages';
import { BASE_IMAGE, BPFFS_DIR, clawker, type ClawkerResult, removeCgroupDirs, requireTestbed, ROOT, run, runOk, testStackEnv, removeStackVolumes, readControlPlaneFile } from './testbed';

const names = stackNames(`clawker-e2e-ag-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-agents-data-'));
const home = mkdtempSync(join(tmpdir(), 'clawker-e2e-agents-home-'));
const workspace = mkdtempSync(join(tmpdir(), 'clawker-e2e-agents-ws-'));
const settings = join(dataDir, 'settings.yaml');
const PROJECT = 'e2e-agents';
const AGENT_IMAGE = `clawker-e2e/agent:${process.pid}`;
const inet = new TestInternet();
const GIT = { name: 'git.test', user: 'alice', password: 'pw-Zq81-never-logged', repo: 'demo', files: { 'README.md': '# demo\n', 'src/a.txt': 'alpha\n' } };
/** Hosts of the test internet (host numbers on its network). */
const HOST = { literal: 30, git: 20 } as const;

let images: { coredns: string; controlplane: string; envoy: string };
let status: Status;

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: home, // the host proxy asks git for credentials with this HOME (credential.helper store)
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

interface PsRow {
  name: string;
  agent: string;
  project: string;
  state: string;
  exitCode?: number;
  firewall: string;
}
const ps = async (): Promise<PsRow[]> => JSON.parse(await cliOk('ps', '-a', '--json')) as PsRow[];
const container = (agent: string): string => `${names.prefix}.${PROJECT}.${agent}`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`);
    await sleep(200);
  }
}

const waitForFile = (file: string, timeoutMs = 30_000): Promise<string> =>
  waitFor(`${file}`, async () => (existsSync(file) ? readFileSync(file, 'utf8') : undefined), timeoutMs);

const agentIp = async (agent: string): Promise<string> =>
  (await runOk('docker', ['inspect', '-f', `{{(index .NetworkSettings.Networks "${names.network}").IPAddress}}`, container(agent)])).trim();

/** What the probe command finds about itself, written as its very first act and then its second. */
const PROBE_PY = String.raw`
import json, os, socket, sys, time
out = {"t0": time.time()}
# First instruction: UDP to an address nobody resolved; a TCP connect to it.
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", (sys.argv[1], 9)); out["udp"] = "sent"
except OSError as e:
    out["udp"] = e.errno
try:
    s = socket.create_connection((sys.argv[1], 443), timeout=3); s.close(); out["tcp"] = "connected"
except OSError as e:
    out["tcp"] = str(e.errno or e)
status = {}
for line in open("/proc/self/status"):
    k, _, v = line.partition(":")
    status[k] = v.strip()
out.update(uid=status["Uid"], gid=status["Gid"], groups=status["Groups"], capEff=status["CapEff"], capPrm=status["CapPrm"], capBnd=status["CapBnd"], noNewPrivs=status.get("NoNewPrivs"))
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); out["raw"] = "opened"
except OSError as e:
    out["raw"] = e.errno
out["dockerSock"] = os.path.exists("/var/run/docker.sock")
out["pid1"] = open("/proc/1/cmdline").read().split("\0")
out["env"] = {k: v for k, v in os.environ.items() if k.startswith("CLAWKER_")}
out["cwd"] = os.getcwd()
tmp = "/workspace/probe.json.tmp"
json.dump(out, open(tmp, "w")); os.rename(tmp, "/workspace/probe.json")
time.sleep(100000)
`;

before(async () => {
  await requireTestbed();
  await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 180_000);
  const stack = await ensureStackImages();
  await inet.start({ [GIT.name]: HOST.git });
  await inet.startGitOrigin({ ...GIT, ip: HOST.git });
  images = { ...stack, envoy: await inet.forwardingEnvoyImage() };
  writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${inet.dnsIp}\n`);
  // The host's git knows the password (a credential store the host proxy's git reads).
  writeFileSync(join(home, '.gitconfig'), '[credential]\n\thelper = store\n');
  writeFileSync(join(home, '.git-credentials'), `https://${GIT.user}:${GIT.password}@${GIT.name}\n`, { mode: 0o600 });
  // The project: the agent user (1001) writes its findings into the bind-mounted workspace.
  writeFileSync(join(workspace, '.clawker.yaml'), `name: ${PROJECT}\nsecurity:\n  firewall:\n    add_domains:\n      - ${GIT.name}\n`);
  writeFileSync(join(workspace, 'probe.py'), PROBE_PY);
  chmodSync(workspace, 0o777);
  const up = await cli('firewall', 'up', '--json');
  assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
  status = JSON.parse(up.stdout) as Status;
  await inet.routeFrom(status.network.subnet);
});

after(async () => {
  for (const row of await ps().catch(() => [] as PsRow[])) await run('docker', ['rm', '-f', row.name]);
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

describe('an agent container', { timeout: 1_800_000 }, () => {
  let probe: Record<string, unknown>;

  test('boots with agentd as PID 1; its command runs as 1001 with no capabilities, no raw sockets, no Docker socket, egress enforced from its first instruction', async () => {
    const literal = inet.address(HOST.literal);
    await inet.startOrigin('literal', literal, [443]);
    const r = await cli('run', '-d', '--agent', 'probe', '--', 'python3', '/workspace/probe.py', literal);
    assert.equal(r.code, 0, `clawker run exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    probe = JSON.parse(await waitForFile(join(workspace, 'probe.json'), 60_000)) as Record<string, unknown>;
    assert.equal(probe.uid, `${AGENT_UID}\t${AGENT_UID}\t${AGENT_UID}\t${AGENT_UID}`);
    assert.equal(probe.gid, `${AGENT_UID}\t${AGENT_UID}\t${AGENT_UID}\t${AGENT_UID}`);
    assert.equal(probe.groups, '');
    assert.equal(probe.capEff, '0000000000000000');
    assert.equal(probe.capPrm, '0000000000000000');
    assert.equal(probe.noNewPrivs, '1');
    assert.equal(probe.raw, 1, 'a raw ICMP socket is refused with EPERM');
    assert.equal(probe.dockerSock, false);
    assert.equal(probe.cwd, '/workspace');
    assert.deepEqual((probe.pid1 as string[]).filter(Boolean), ['node', AGENTD_BUNDLE, '--', 'python3', '/workspace/probe.py', literal]);
    assert.deepEqual(probe.env, { CLAWKER_PROJECT: PROJECT, CLAWKER_AGENT: 'probe', CLAWKER_FIREWALL_ENABLED: 'true', CLAWKER_HOST_PROXY: 'http://host.docker.internal:18374' });
    // First instruction: UDP to an unresolved address refused at once; TCP went to the proxy, not the origin.
    assert.equal(probe.udp, 1, `UDP: ${String(probe.udp)}`);
    await sleep(500);
    const reached = await inet.connections('literal');
    assert.deepEqual(reached, [], 'the origin at the IP literal saw no connection');
    // The bounding set: only what agentd needs (SETUID 6, SETGID 7, KILL 5) — never NET_RAW (13).
    const bnd = BigInt(`0x${String(probe.capBnd)}`);
    assert.equal(bnd, (1n << 5n) | (1n << 6n) | (1n << 7n), `CapBnd ${String(probe.capBnd)}`);
  });

  test('its command started only after the control plane enrolled it', async () => {
    const events = (await cliOk('firewall', 'events', '--json', '--tail', '2000')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { time: string; message?: string; agent?: string });
    const enrolled = events.find((e) => e.agent === 'probe' && /enrolled/.test(e.message ?? ''));
    assert.ok(enrolled, JSON.stringify(events.filter((e) => e.agent === 'probe')));
    assert.ok(Date.parse(enrolled.time) <= Number(probe.t0) * 1000, `enrolled at ${enrolled.time}, command at ${new Date(Number(probe.t0) * 1000).toISOString()}`);
    assert.ok(events.some((e) => e.agent === 'probe' && /command running/.test(e.message ?? '')), 'the control plane recorded the start');
  });

  test('with no control plane to enroll it, the command does not run at all; it starts when the control plane comes back', async () => {
    const marker = join(workspace, 'gated');
    await cliOk('create', '--agent', 'gated', '--', 'sh', '-c', 'date +%s > /workspace/gated; exec sleep 100000');
    await runOk('docker', ['stop', '-t', '2', names.controlplane]);
    try {
      await runOk('docker', ['start', container('gated')]);
      await sleep(3000);
      assert.equal(existsSync(marker), false, 'the command ran before any control plane enrolled the container');
      const logs = await run('docker', ['logs', container('gated')]);
      assert.match(logs.stdout + logs.stderr, /waiting for the firewall/);
    } finally {
      await runOk('docker', ['start', names.controlplane]);
    }
    await waitForFile(marker, 60_000);
  });

  test("the supervisor's session refuses a certificate with another CN or from another CA, and accepts the control plane's", async () => {
    const ip = await agentIp('probe');
    const endpoint = { ip, containerName: container('probe') };
    const { ca } = await loadOrCreateCa(join(dataDir, 'firewall', 'ca'));
    const credentials = (c: { certificatePem: string; privateKeyPem: string }, caPem = ca.certificatePem): SessionCredentials => ({ caPem, ...c });
    const otherCa = createCertificateAuthority();
    await assert.rejects(sessionRequest(credentials(issueSessionCertificate(ca, { commonName: 'intruder', usage: 'client' })), endpoint, { op: 'status' }, 5000), 'another CN');
    await assert.rejects(sessionRequest(credentials(issueControlPlaneSessionCertificate(otherCa)), endpoint, { op: 'status' }, 5000), 'another CA');
    await assert.rejects(sessionRequest(credentials(issueSessionCertificate(ca, { commonName: CONTROLPLANE_SESSION_CN, usage: 'server' })), endpoint, { op: 'status' }, 5000), 'a server certificate');
    const ok = await sessionRequest(credentials(issueControlPlaneSessionCertificate(ca)), endpoint, { op: 'status' }, 5000);
    assert.equal(ok.ok, true);
    assert.equal(ok.state, 'running');
    assert.deepEqual(ok.command, ['python3', '/workspace/probe.py', inet.address(HOST.literal)]);
  });

  test("docker kill -s TERM reaches the agent's command, and its exit code becomes the container's", async () => {
    const ready = join(workspace, 'term-ready');
    await cliOk('run', '-d', '--agent', 'term', '--', 'sh', '-c', `trap 'exit 42' TERM; echo ready > ${'/workspace/term-ready'}; while :; do sleep 0.1; done`);
    await waitForFile(ready, 60_000);
    await runOk('docker', ['kill', '-s', 'TERM', container('term')]);
    const row = await waitFor('term to exit', async () => (await ps()).find((a) => a.agent === 'term' && a.state === 'exited'));
    assert.equal(row.exitCode, 42);
    assert.equal((await runOk('docker', ['inspect', '-f', '{{.State.ExitCode}}', container('term')])).trim(), '42');
  });

  test('git clone over HTTPS gets its password only through the host proxy; the password is in no log and no file of the container', async () => {
    const before = (await inet.gitRequests(GIT.name)).length;
    await cliOk('run', '-d', '--agent', 'git', '--', 'sh', '-c', 'git clone https://git.test/demo.git /workspace/clone > /workspace/clone.log 2>&1; echo $? > /workspace/clone.rc; exec sleep 100000');
    const rc = (await waitForFile(join(workspace, 'clone.rc'), 120_000)).trim();
    assert.equal(rc, '0', readFileSync(join(workspace, 'clone.log'), 'utf8'));
    for (const [file, content] of Object.entries(GIT.files)) assert.equal(readFileSync(join(workspace, 'clone', file), 'utf8'), content);
    const requests = (await inet.gitRequests(GIT.name)).slice(before);
    assert.ok(requests.some((q) => q.auth === 'ok' && q.user === GIT.user && q.status === 200), JSON.stringify(requests));
    assert.ok(requests.every((q) => q.peer === status.network.envoy), `only the proxy reached the origin: ${JSON.stringify(requests)}`);
    // Nowhere: the agent's logs, the stack's logs, the host proxy's log, the event log, the container's files.
    const secret = GIT.password;
    const logs = [
      await runOk('docker', ['logs', container('git')]),
      await runOk('docker', ['logs', names.controlplane]),
      readFileSync(join(dataDir, 'hostproxy', 'hostproxy.log'), 'utf8'),
      (await readControlPlaneFile(names.controlplane, 'events/egress.jsonl')) ?? '',
      readFileSync(join(workspace, 'clone.log'), 'utf8'),
      readFileSync(join(workspace, 'clone', '.git', 'config'), 'utf8'),
    ];
    logs.forEach((text, i) => assert.ok(!text.includes(secret), `log ${i} holds the password`));
    assert.match(logs[2]!, /git-credential .*operation=get .*host=git\.test .*outcome=/, 'the host proxy did answer');
    const grep = await run('docker', ['exec', container('git'), 'grep', '-rIl', '--exclude-dir=proc', '--exclude-dir=sys', '--exclude-dir=workspace', '-e', secret, '/']);
    assert.equal(grep.stdout.trim(), '', `files in the container holding the password: ${grep.stdout}`);
  });

  test('lifecycle verbs round-trip, and ps --json reports each state', async () => {
    await cliOk('create', '--agent', 'life', '--', 'sleep', '100000');
    const state = async () => (await ps()).find((a) => a.agent === 'life');
    assert.equal((await state())?.state, 'created');
    await cliOk('start', '--agent', 'life');
    assert.equal((await state())?.state, 'running');
    await waitFor('life enrolled', async () => ((await state())?.firewall === 'enrolled' ? true : undefined));
    await cliOk('stop', '--agent', 'life', '-t', '2');
    const stopped = await state();
    assert.equal(stopped?.state, 'exited');
    await cliOk('restart', '--agent', 'life');
    assert.equal((await state())?.state, 'running');
    const logs = await cli('logs', '--agent', 'life');
    assert.equal(logs.code, 0, logs.stderr);
    const refused = await cli('rm', '--agent', 'life');
    assert.notEqual(refused.code, 0, 'a running agent is not removed without --force');
    await cliOk('rm', '--agent', 'life', '--force');
    assert.equal(await state(), undefined);
    const inspect = await run('docker', ['inspect', container('life')]);
    assert.notEqual(inspect.code, 0, 'the container is gone');
  });
});
