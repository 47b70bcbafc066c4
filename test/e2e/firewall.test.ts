/**
 * The firewall end to end, as a user runs it: `clawker firewall up` (the CLI bundle) starts the real
 * control-plane image, which loads the eBPF datapath, guards the agents' cgroup, starts our CoreDNS
 * image (with dnsbpf) and the proxy, and enrolls an agent container created exactly as the product
 * creates agents. The "internet" is the test's own: a resolver and origins on their own Docker
 * network, CoreDNS's upstream. Envoy cannot run here: a stand-in at .200 reads the rendered lds.json
 * and records what reaches it (port, SNI, and whether a filter chain would take it).
 *
 * Each test says what it proves; failures print what the agent, the proxy and the origins saw.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { agentContainerSpec, DEFAULT_PROJECT_SETTINGS } from '../../src/core/stack/agentSpec';
import { agentsCgroupParent } from '../../src/core/stack/cgroupPaths';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { ControlPlaneRequestError } from '../../src/platform/controlPlaneClient';
import { controlPlaneOf } from '../../src/platform/docker/controlPlaneAccess';
import { stackNames } from '../../src/core/stack/stackNames';
import { ensurePythonImage, PY_IMAGE } from './datapath-testbed';
import { AGENT_PY } from './firewall-agent-script';
import { ensureEnvoyStandinImage, envoyRecords, type EnvoyRecord, TestInternet } from './internet';
import { ensureStackImages } from './stackImages';
import { BPFFS_DIR, clawker, type ClawkerResult, E2E_PID_LABEL, pollUntil, removeCgroupDirs, requireTestbed, ROOT, run, runOk, testStackEnv, removeStackVolumes, readControlPlaneFile } from './testbed';

const names = stackNames(`clawker-e2e-${process.pid}`);
const pinDir = join(BPFFS_DIR, names.prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-fw-data-'));
const scriptsDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-fw-agent-'));
const settings = join(dataDir, 'settings.yaml');
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const inet = new TestInternet();
let images: { coredns: string; controlplane: string; envoy: string };
let status: Status;
let agentName = '';

/** Hosts of the test internet (host numbers on its network). */
const HOST = { allowed: 10, literal: 20, blocked: 30, added: 40 } as const;

function env(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...testStackEnv({ dataDir, stack: names.prefix, pinDir, settings, images }),
    CLAWKER_DRAIN_AFTER_MS: '600000',
    CLAWKER_HEAL_AFTER_MS: '6000',
  };
}

let extraEnv: Record<string, string> = {};

const cli = (...args: string[]): Promise<ClawkerResult> => clawker(args, { env: { ...env(), ...extraEnv } });

async function cliOk(...args: string[]): Promise<string> {
  const r = await cli(...args);
  assert.equal(r.code, 0, `clawker ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function fwStatus(): Promise<Status> {
  const r = await cli('firewall', 'status', '--json');
  return JSON.parse(r.stdout) as Status;
}

async function agent(...args: string[]): Promise<Record<string, unknown>> {
  const r = await run('docker', ['exec', agentName, 'python3', '/agent/agent.py', ...args], 30_000);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new Error(`agent ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
  }
}

const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000, everyMs = 100): Promise<T> => pollUntil(what, fn, timeoutMs, everyMs);

const proxy = (): Promise<EnvoyRecord[]> => envoyRecords(names.envoy);
const connsSince = async (n: number): Promise<EnvoyRecord[]> => (await proxy()).filter((r) => r.kind === 'conn').slice(n);
const connCount = async (): Promise<number> => (await proxy()).filter((r) => r.kind === 'conn').length;

async function startAgent(agent = 'dev', project = 'e2e'): Promise<string> {
  const { name, create } = agentContainerSpec({
    stack: names,
    project,
    agent,
    image: PY_IMAGE,
    cmd: ['sleep', 'infinity'],
    workspace: scriptsDir,
    settings: { ...DEFAULT_PROJECT_SETTINGS, enableHostProxy: false },
    firewall: { enabled: true, corednsIp: status.network.coredns, cgroupParent: agentsCgroupParent('cgroupfs', names.agentsCgroup) },
    supervised: false,
    extraLabels: { [E2E_PID_LABEL]: String(process.pid) },
  });
  const container = await docker.createContainer({ name, ...create, HostConfig: { ...create.HostConfig, Binds: [`${scriptsDir}:/agent:ro`] } });
  await container.start();
  return name;
}

const listenerPorts = async (): Promise<Record<string, number>> => JSON.parse((await readControlPlaneFile(names.controlplane, 'firewall/stack/envoy/listeners.json')) ?? '{}') as Record<string, number>;

describe('the firewall, end to end (control plane, eBPF, CoreDNS+dnsbpf, proxy stand-in, a real agent container)', { timeout: 900_000 }, () => {
  before(async () => {
    await requireTestbed();
    await runOk('node', [join(ROOT, 'scripts', 'build.mjs')], 120_000);
    const [stack, envoy] = await Promise.all([ensureStackImages(), ensureEnvoyStandinImage(), ensurePythonImage()]);
    images = { ...stack, envoy };
    writeFileSync(join(scriptsDir, 'agent.py'), AGENT_PY);
    await inet.start({});
    inet.setZone({ 'allowed.test': HOST.allowed, 'blocked.test': HOST.blocked, 'added.test': HOST.added });
    await inet.startOrigin('allowed', inet.address(HOST.allowed), [443, 7000], { tls: true });
    await inet.startOrigin('literal', inet.address(HOST.literal), [443, 9999], { tls: true });
    await inet.startOrigin('added', inet.address(HOST.added), [443], { tls: true });
    writeFileSync(settings, `firewall:\n  upstream_dns:\n    - ${inet.dnsIp}\n`);
    // Rules go into the store before the stack exists: `up` must apply what the store holds.
    await cliOk('firewall', 'add', 'allowed.test');
    await cliOk('firewall', 'add', 'allowed.test', '--proto', 'tcp', '--port', '7000');
    const up = await cli('firewall', 'up', '--json');
    assert.equal(up.code, 0, `firewall up failed:\n${up.stderr}\n${up.stdout}`);
    status = JSON.parse(up.stdout) as Status;
    await inet.routeFrom(status.network.subnet);
    agentName = await startAgent();
    await waitUntil('agent enrolled', async () => ((await fwStatus()).agents.find((a) => a.agent === 'dev' && a.state === 'enrolled') ? true : undefined));
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
    rmSync(scriptsDir, { recursive: true, force: true });
  });

  test('up: every component healthy, the agent enrolled under the guarded agents cgroup, root inside', async () => {
    const s = await fwStatus();
    for (const c of s.components) assert.ok(c.healthy, `${c.name}: ${c.detail}`);
    const a = s.agents.find((x) => x.agent === 'dev');
    assert.ok(a?.guarded, 'the agent runs under the agents cgroup');
    assert.equal((await agent('id')).uid, 0, 'the agent process is root: nothing exempts it');
  });

  test('an allowed domain resolves and its connection arrives at the proxy listener for that rule; an unlisted domain gets NXDOMAIN', async () => {
    const r = await agent('resolve', 'allowed.test');
    assert.deepEqual(r.addresses, [inet.address(HOST.allowed)], JSON.stringify(r));
    const before = await connCount();
    const tls = await agent('tls', inet.address(HOST.allowed), '443', 'allowed.test');
    const tcp = await agent('tcp', inet.address(HOST.allowed), '7000');
    const seen = await waitUntil('proxy saw both', async () => {
      const c = await connsSince(before);
      return c.length >= 2 ? c : undefined;
    });
    assert.equal(seen[0]!.port, 10000, `TLS went to the front listener: ${JSON.stringify(seen[0])} (agent: ${JSON.stringify(tls)})`);
    assert.equal(seen[0]!.sni, 'allowed.test');
    assert.equal(seen[0]!.verdict, 'accepted');
    const ports = await listenerPorts();
    const dedicated = Object.entries(ports).find(([k]) => k.includes('allowed.test') && k.includes('7000'))?.[1];
    assert.ok(dedicated, `a dedicated listener for allowed.test:7000 in ${JSON.stringify(ports)}`);
    assert.equal(seen[1]!.port, dedicated, `TCP 7000 went to its listener: ${JSON.stringify(seen[1])} (agent: ${JSON.stringify(tcp)})`);
    assert.deepEqual(await inet.connections('allowed'), [], 'the origin itself was never reached');

    const blocked = await agent('resolve', 'blocked.test');
    assert.equal(blocked.errno, 'NXDOMAIN', JSON.stringify(blocked));
    assert.ok(!(await inet.queries()).some((q) => q.name.startsWith('blocked.test')), 'a blocked name is never forwarded upstream');
  });

  test('TCP to a never-resolved IP literal lands on the catch-all (an unlisted SNI is reset), never at the IP; UDP to it is refused at once', async () => {
    const before = await connCount();
    const r = await agent('tls', inet.address(HOST.literal), '443', 'exfil.example');
    const [seen] = await waitUntil('proxy saw it', async () => {
      const c = await connsSince(before);
      return c.length ? c : undefined;
    });
    assert.equal(seen!.port, 10000);
    assert.equal(seen!.sni, 'exfil.example');
    assert.equal(seen!.verdict, 'reset', JSON.stringify(seen));
    assert.equal(r.ok, false, `the agent's handshake failed: ${JSON.stringify(r)}`);
    const udp = await agent('udp', inet.address(HOST.literal), '9999');
    assert.equal(udp.errno, 'EPERM', JSON.stringify(udp));
    assert.ok((udp.seconds as number) < 0.5, 'refused at once, not timed out');
    assert.deepEqual(await inet.connections('literal'), [], 'the IP itself was never reached');
  });

  test('DNS to an outside resolver (UDP and TCP 53) never reaches it; native IPv6 refused; IPv4-mapped follows IPv4; raw and ICMP sockets refused', async () => {
    const queriesBefore = (await inet.queries()).length;
    const udp = await agent('dns', inet.dnsIp, 'blocked.test');
    const tcp = await agent('dns', inet.dnsIp, 'blocked.test', '--tcp');
    assert.equal(udp.rcode, 3, `UDP answered by CoreDNS (NXDOMAIN), not the outside resolver: ${JSON.stringify(udp)}`);
    assert.equal(udp.from, inet.dnsIp, 'the reply appears to come from the resolver the agent asked');
    assert.equal(tcp.rcode, 3, `TCP answered by CoreDNS: ${JSON.stringify(tcp)}`);
    const direct = (await inet.queries()).slice(queriesBefore);
    assert.ok(!direct.some((q) => q.name.startsWith('blocked.test')), `the outside resolver saw: ${JSON.stringify(direct)}`);

    const v6 = await agent('tcp', '2001:db8::1', '443');
    assert.equal(v6.errno, 'EPERM', `native IPv6: ${JSON.stringify(v6)}`);
    const before = await connCount();
    await agent('tls', `::ffff:${inet.address(HOST.literal)}`, '443', 'mapped.example');
    const [mapped] = await waitUntil('proxy saw the mapped connect', async () => {
      const c = await connsSince(before);
      return c.length ? c : undefined;
    });
    assert.equal(mapped!.port, 10000, 'IPv4-mapped IPv6 is routed like IPv4 (to the catch-all)');

    const sockets = await agent('sockets');
    assert.equal(sockets.tcp4, 'ok');
    assert.equal(sockets.raw4, 'EPERM', JSON.stringify(sockets));
    assert.equal(sockets.raw6, 'EPERM', JSON.stringify(sockets));
    assert.equal(sockets.icmp4, 'EPERM', `ICMP datagram sockets (which need no capability) refused by sock_create: ${JSON.stringify(sockets)}`);
  });

  test('firewall add reaches the running agent without a restart; remove takes it away again', async () => {
    const startedAt = (await docker.getContainer(agentName).inspect()).State.StartedAt;
    assert.equal((await agent('resolve', 'added.test')).errno, 'NXDOMAIN');
    const t0 = performance.now();
    const add = await cli('firewall', 'add', 'added.test');
    assert.equal(add.code, 0, add.stderr);
    const before = await connCount();
    await waitUntil('added.test enforced', async () => {
      const r = await agent('resolve', 'added.test');
      if (!r.ok) return undefined;
      await agent('tls', inet.address(HOST.added), '443', 'added.test');
      const c = await connsSince(before);
      return c.some((x) => x.sni === 'added.test' && x.verdict === 'accepted') ? true : undefined;
    }, 15_000, 20);
    const ms = performance.now() - t0;
    process.stdout.write(`# firewall add → enforced in the running agent: ${ms.toFixed(0)} ms (CLI ${add.ms.toFixed(0)} ms, of which the control plane reported: ${/in ([\d.]+) ms/.exec(add.stderr)?.[1] ?? '?'} ms)\n`);
    assert.equal((await docker.getContainer(agentName).inspect()).State.StartedAt, startedAt, 'the agent was not restarted');

    await cliOk('firewall', 'remove', 'added.test');
    assert.equal((await agent('resolve', 'added.test')).errno, 'NXDOMAIN');
    const n = await connCount();
    await agent('tls', inet.address(HOST.added), '443', 'added.test');
    const [after] = await waitUntil('proxy saw it', async () => {
      const c = await connsSince(n);
      return c.length ? c : undefined;
    });
    assert.equal(after!.port, 10000, 'no route any more: the catch-all');
    assert.equal(after!.verdict, 'reset', 'and its SNI is no longer served');
    assert.deepEqual(await inet.connections('added'), []);
  });

  test('bypass opens egress and closes it by itself when the time is up; every bypassed connection is recorded', async () => {
    const b = await cli('firewall', 'bypass', '3s', '--agent', 'dev');
    assert.equal(b.code, 0, b.stderr);
    const t = await agent('tls', inet.address(HOST.literal), '443', 'literal.example');
    const conns = await inet.connections('literal');
    assert.equal(conns.length, 1, `bypassed: the origin itself was reached (agent: ${JSON.stringify(t)})`);
    assert.equal(conns[0]!.sni, 'literal.example');
    assert.equal((await fwStatus()).agents.find((a) => a.agent === 'dev')?.state, 'bypassed');
    await sleep(3500);
    const n = await connCount();
    await agent('tls', inet.address(HOST.literal), '443', 'x.example');
    await waitUntil('back on the proxy', async () => ((await connsSince(n)).length ? true : undefined));
    assert.equal((await inet.connections('literal')).length, 1, 'after the deadline the origin is not reached again');
    await waitUntil('status enrolled again', async () => ((await fwStatus()).agents.find((a) => a.agent === 'dev')?.state === 'enrolled' ? true : undefined), 5000);
    const events = (await cliOk('firewall', 'events', '--json', '--tail', '2000')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const bypassed = events.filter((e) => e.source === 'kernel' && e.verdict === 'bypassed' && e.agent === 'dev');
    assert.ok(bypassed.some((e) => JSON.stringify(e.dst).includes(inet.address(HOST.literal))), `a bypassed kernel record for the connection: ${JSON.stringify(bypassed.slice(-3))}`);
    assert.ok(events.some((e) => e.source === 'controlplane' && /bypass for dev ended/.test(String(e.message))), 'the end of the bypass is audited');
  });

  test('disable takes an agent out of the firewall (unrestricted, recorded); enable puts it back', async () => {
    const before = (await inet.connections('literal')).length;
    const d = await cli('firewall', 'disable', '--agent', 'dev');
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, /can now reach any destination/);
    await agent('tls', inet.address(HOST.literal), '443', 'disabled.example');
    assert.equal((await inet.connections('literal')).length, before + 1, 'disabled: the origin is reached directly');
    assert.equal((await fwStatus()).agents.find((a) => a.agent === 'dev')?.state, 'disabled');
    await cliOk('firewall', 'enable', '--agent', 'dev');
    const n = await connCount();
    await agent('tls', inet.address(HOST.literal), '443', 'enabled.example');
    await waitUntil('back on the proxy', async () => ((await connsSince(n)).length ? true : undefined));
    assert.equal((await inet.connections('literal')).length, before + 1, 'enabled again: never the origin');
    const unknown = await cli('firewall', 'enable', '--agent', 'nobody');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no running agent named nobody \(running: dev\)/);
  });

  test('two projects each with an agent named dev: a bypass by container name opens that cgroup only; the bare name is refused (409, both named); status tells them apart', async () => {
    const other = await startAgent('dev', 'e2e-b');
    const otherAgent = async (...args: string[]) => JSON.parse((await runOk('docker', ['exec', other, 'python3', '/agent/agent.py', ...args])).trim().split('\n').pop()!) as Record<string, unknown>;
    try {
      const both = await waitUntil('both enrolled', async () => {
        const devs = (await fwStatus()).agents.filter((a) => a.agent === 'dev' && a.state === 'enrolled');
        return devs.length === 2 ? devs : undefined;
      });
      const cgroupOf = (name: string): number => both.find((a) => a.containerName === name)!.cgroupId;
      const [first, second] = [agentName, other].sort();

      // The bare name means two agents: refused by the CLI and by the API, nothing opened.
      const bare = await cli('firewall', 'bypass', '60s', '--agent', 'dev');
      assert.equal(bare.code, 1, bare.stderr);
      assert.equal(bare.stderr, `clawker: 2 running agents match dev: ${first}, ${second}\n  next: pass the container name (e.g. --agent ${first}) or its container id\n`);
      const api = await controlPlaneOf(docker, names).setEnabled('dev', false).then(
        () => assert.fail('the API disabled an ambiguous agent'),
        (e: unknown) => e,
      );
      assert.ok(api instanceof ControlPlaneRequestError, String(api));
      assert.equal(api.status, 409);
      assert.deepEqual(api.body.candidates, [first, second]);
      assert.deepEqual((await fwStatus()).agents.filter((a) => a.agent === 'dev').map((a) => a.state), ['enrolled', 'enrolled']);

      // By container name: only that container's cgroup is in bypass_map; both stay in container_map unflagged.
      await cliOk('firewall', 'bypass', '60s', '--agent', other);
      const kernel = JSON.parse(await runOk('docker', ['exec', names.controlplane, '/opt/clawker/bpfman', 'show', '--pin-dir', status.pinDir])) as {
        containers: Record<string, { flags?: string[] }>;
        bypass: Record<string, number> | null;
      };
      const open = Object.entries(kernel.bypass ?? {}).filter(([, left]) => left > 0).map(([id]) => Number(id));
      assert.deepEqual(open, [cgroupOf(other)], `bypass_map holds the bypassed container's cgroup only: ${JSON.stringify(kernel.bypass)}`);
      for (const name of [agentName, other]) assert.deepEqual(kernel.containers[String(cgroupOf(name))]?.flags ?? [], [], `${name} enrolled, not disabled`);

      // Behaviour: the bypassed agent reaches the origin itself; the other dev still lands on the proxy.
      const literalBefore = (await inet.connections('literal')).length;
      const bypassed = await otherAgent('tls', inet.address(HOST.literal), '443', 'other.example');
      assert.equal((await inet.connections('literal')).length, literalBefore + 1, `the bypassed agent reached the origin (${JSON.stringify(bypassed)})`);
      const n = await connCount();
      const routed = await agent('tls', inet.address(HOST.literal), '443', 'same-name.example');
      const [seen] = await waitUntil('the proxy saw the other dev', async () => {
        const c = await connsSince(n);
        return c.length ? c : undefined;
      });
      assert.equal(seen!.sni, 'same-name.example', `the agent of the other project went to the proxy (${JSON.stringify(routed)})`);
      assert.equal((await inet.connections('literal')).length, literalBefore + 1, 'and never to the origin');

      // Status: the state of each, and the container names in the human output.
      const s = await fwStatus();
      assert.deepEqual(Object.fromEntries(s.agents.map((a) => [a.containerName, a.state])), { [agentName]: 'enrolled', [other]: 'bypassed' });
      const human = await cli('firewall', 'status');
      const lines = human.stdout.split('\n').filter((l) => l.startsWith('  clawker-e2e-'));
      assert.deepEqual(lines.map((l) => l.trim().split(/\s+/).slice(0, 2)), s.agents.map((a) => [a.containerName, a.state]), human.stdout);

      const stopped = await cliOk('firewall', 'bypass', '--stop', '--agent', other);
      assert.match(stopped, new RegExp(`^bypass for ${other.replace(/\./g, '\\.')} stopped`));
      assert.deepEqual(Object.fromEntries((await fwStatus()).agents.map((a) => [a.containerName, a.state])), { [agentName]: 'enrolled', [other]: 'enrolled' });
    } finally {
      await run('docker', ['rm', '-f', other]);
      await waitUntil('the other dev unenrolled', async () => ((await fwStatus()).agents.length === 1 ? true : undefined));
    }
  });

  test('the event stream has kernel denials, DNS refusals with the blocked name, and attribution', async () => {
    await agent('udp', inet.address(HOST.literal), '9999');
    await agent('resolve', 'blocked.test');
    await sleep(1500);
    const events = (await cliOk('firewall', 'events', '--json', '--tail', '5000')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(events.some((e) => e.source === 'kernel' && e.verdict === 'denied' && e.agent === 'dev'), 'a kernel denial attributed to the agent');
    assert.ok(events.some((e) => e.source === 'dns' && e.verdict === 'denied' && JSON.stringify(e).includes('blocked.test')), 'a DNS refusal naming blocked.test');
    const logged = (await readControlPlaneFile(names.controlplane, 'events/egress.jsonl')) ?? '';
    assert.ok(logged.split('\n').some((l) => l.includes('blocked.test')), "appended as JSON lines to the control plane's event log");
  });

  test('kill CoreDNS, the proxy or the control plane, or run firewall down: egress stays closed; bring them back: service and rules return', async () => {
    // CoreDNS
    await runOk('docker', ['kill', names.coredns]);
    const noDns = await agent('dns', status.network.coredns, 'allowed.test');
    assert.equal(noDns.ok, false, `no resolver, no names: ${JSON.stringify(noDns)}`);
    await waitUntil('CoreDNS healed', async () => ((await agent('resolve', 'allowed.test')).ok ? true : undefined), 20_000, 250);
    // Proxy
    await runOk('docker', ['kill', names.envoy]);
    const noProxy = await agent('tcp', inet.address(HOST.allowed), '7000');
    assert.equal(noProxy.ok, false, `no proxy, no connection: ${JSON.stringify(noProxy)}`);
    assert.deepEqual(await inet.connections('allowed'), [], 'never the origin');
    await waitUntil('proxy healed', async () => ((await agent('tcp', inet.address(HOST.allowed), '7000')).ok ? true : undefined), 20_000, 250);
    // Control plane
    // A bypass outlives a dead control plane only until its deadline: the kernel closes it.
    await cliOk('firewall', 'bypass', '2s', '--agent', 'dev');
    await runOk('docker', ['kill', names.controlplane]);
    await sleep(2500);
    const literalBefore = (await inet.connections('literal')).length;
    const stillRouted = await agent('tls', inet.address(HOST.literal), '443', 'literal.example');
    assert.equal((await inet.connections('literal')).length, literalBefore, `without the control plane the kernel still enforces (${JSON.stringify(stillRouted)})`);
    assert.equal((await agent('resolve', 'allowed.test')).ok, true, 'and allowed traffic keeps working');
    const add = await cli('firewall', 'add', 'added.test');
    assert.match(add.stderr, /not running/, 'a change is kept for the next start');
    // An agent that starts while no control plane can enroll it is offline from its first
    // instruction: the agents' cgroup is enrolled locked down.
    const late = await startAgent('late');
    const lateExec = async (...args: string[]) => JSON.parse((await runOk('docker', ['exec', late, 'python3', '/agent/agent.py', ...args])).trim().split('\n').pop()!) as Record<string, unknown>;
    try {
      const lateTcp = await lateExec('tcp', inet.address(HOST.allowed), '7000');
      assert.equal(lateTcp.errno, 'EPERM', `an unenrolled agent has no egress: ${JSON.stringify(lateTcp)}`);
      const lateDns = await lateExec('dns', inet.dnsIp, 'allowed.test');
      assert.equal(lateDns.ok, false, `nor DNS: ${JSON.stringify(lateDns)}`);
      await cliOk('firewall', 'up');
      const s = await fwStatus();
      assert.equal(s.agents.find((a) => a.agent === 'dev')?.state, 'enrolled', 're-enrolled by the new control plane');
      assert.equal(s.agents.find((a) => a.agent === 'late')?.state, 'enrolled', 'the late agent is enrolled by the new control plane');
      assert.equal((await agent('resolve', 'added.test')).ok, true, 'the rule saved while it was down applies');
      assert.equal((await lateExec('resolve', 'allowed.test')).ok, true, 'and the late agent now follows the rules');
      const audit = (await cliOk('firewall', 'events', '--json', '--tail', '5000')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(audit.some((e) => e.source === 'controlplane' && /bypass for dev ended \(expired\)/.test(String(e.message))), 'the new control plane records the end of the bypass that expired while none ran');
    } finally {
      await run('docker', ['rm', '-f', late]);
    }
    // firewall down
    const down = await cli('firewall', 'down', '--json');
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual(JSON.parse(down.stdout).lockedDown, ['dev']);
    const lockedTcp = await agent('tcp', inet.address(HOST.allowed), '7000');
    assert.equal(lockedTcp.errno, 'EPERM', `locked down: ${JSON.stringify(lockedTcp)}`);
    const lockedDns = await agent('dns', inet.dnsIp, 'allowed.test');
    assert.equal(lockedDns.ok, false, `no DNS either: ${JSON.stringify(lockedDns)}`);
    assert.equal((await inet.connections('allowed')).length, 0);
    await cliOk('firewall', 'up');
    // `down` flushed the DNS cache: like any client after a resolver restart, the agent resolves again.
    await waitUntil('service and rules back after up', async () => {
      if (!(await agent('resolve', 'allowed.test')).ok) return undefined;
      return (await agent('tcp', inet.address(HOST.allowed), '7000')).ok ? true : undefined;
    }, 20_000, 250);
  });
  test('when the last agent exits the stack drains (routes, cache flushed; CoreDNS and Envoy stopped) and the next agent brings it back', async () => {
    await cliOk('firewall', 'down');
    extraEnv = { CLAWKER_DRAIN_AFTER_MS: '1000' };
    await cliOk('firewall', 'up');
    await run('docker', ['rm', '-f', agentName]);
    await waitUntil('idle', async () => ((await fwStatus()).phase === 'idle' ? true : undefined), 20_000, 250);
    const gone = await run('docker', ['inspect', names.coredns]);
    assert.notEqual(gone.code, 0, 'CoreDNS stopped');
    assert.notEqual((await run('docker', ['inspect', names.envoy])).code, 0, 'Envoy stopped');
    agentName = await startAgent();
    await waitUntil('ready again, agent enrolled', async () => {
      const s = await fwStatus();
      return s.phase === 'ready' && s.agents.some((a) => a.agent === 'dev' && a.state === 'enrolled') ? true : undefined;
    }, 30_000, 250);
    await waitUntil('service back', async () => {
      if (!(await agent('resolve', 'allowed.test')).ok) return undefined;
      return (await agent('tcp', inet.address(HOST.allowed), '7000')).ok ? true : undefined;
    }, 20_000, 250);
  });
});
