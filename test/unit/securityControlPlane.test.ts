/**
 * The control plane's enrollment gate and `firewall down`, with Docker and the datapath manager
 * replaced by recorders (cgroups are directories of a temporary tree, so cgroup ids are real inode
 * numbers). What must hold: the agents' cgroup is guarded locked down before anything else; an
 * agent's command is started only after its cgroup is enrolled; `down` locks every agent down
 * before it flushes anything, and keeps them locked down if the flush fails. The kernel side is the
 * e2e suites' (test/e2e/firewall.test.ts, test/faults).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { startSessionServer } from '../../src/agentd/session';
import type { CommandStatus } from '../../src/agentd/supervisor';
import { readConfig } from '../../src/controlplane/config';
import { ControlPlane, ControlPlaneError } from '../../src/controlplane/controlPlane';
import type { Bpfman, CgroupRef, ContainerConfig } from '../../src/platform/bpf/bpfman';
import { AGENTD_SESSION_PORT, LABEL_SUPERVISOR, SUPERVISOR_AGENTD } from '../../src/core/agents/agentContract';
import { issueSessionCertificate } from '../../src/core/pki/sessionCertificate';
import { loadOrCreateCa } from '../../src/platform/caStore';
import { LABEL_AGENT } from '../../src/core/stack/labels';
import { type FakeAgentContainer, inspectInfoOf, notFound } from '../helpers/dockerInspectFake';

const dir = mkdtempSync(join(tmpdir(), 'clawker-cp-gate-'));
// The host's CA, as `firewall up` copies it into every control plane's data dir (which never makes one).
const hostCa = join(dir, 'host-ca');
before(() => loadOrCreateCa(hostCa));
after(() => rmSync(dir, { recursive: true, force: true }));
const cgroupRoot = join(dir, 'cgroup');
const guardDir = join(cgroupRoot, 'clawker-agents');
mkdirSync(guardDir, { recursive: true });
const inode = (path: string): number => Number(statSync(path).ino);

interface FakeContainer extends FakeAgentContainer {
  readonly supervisor?: boolean;
}

const hexId = (head: string): string => head + '0'.repeat(64 - head.length);
const cgroupDirOf = (c: FakeContainer): string => join(cgroupRoot, (c.cgroupParent ?? '/clawker-agents').replace(/^\//, ''), c.id);

class FakeDocker {
  containers: FakeContainer[] = [];
  services = new Set<string>();
  removed: string[] = [];
  add(c: FakeContainer, withCgroup = true): FakeContainer {
    if (withCgroup) mkdirSync(cgroupDirOf(c), { recursive: true });
    this.containers.push(c);
    return c;
  }
  getContainer(ref: string) {
    return {
      inspect: async () => {
        const c = this.containers.find((x) => x.id === ref || x.name === ref);
        if (!c) throw notFound(ref);
        return inspectInfoOf({ ...c, labels: c.supervisor ? { [LABEL_SUPERVISOR]: SUPERVISOR_AGENTD } : {} });
      },
      remove: async () => {
        if (!this.services.delete(ref)) throw notFound(ref);
        this.removed.push(ref);
      },
    };
  }
  async listContainers() {
    return this.containers.filter((c) => c.running ?? true).map((c) => ({ Id: c.id, Names: [`/${c.name}`], Labels: { [LABEL_AGENT]: c.agent } }));
  }
}

/** The datapath manager: records each call and the cgroup it reaches, in order. */
class FakeBpf {
  calls: string[] = [];
  failFlush = false;
  private id = (ref: CgroupRef): number => ('cgroupDir' in ref ? inode(ref.cgroupDir) : Number(ref.cgroupId));
  async attach(cgroupDir: string) {
    this.calls.push(`attach ${inode(cgroupDir)}`);
    return { cgroupId: inode(cgroupDir) };
  }
  async detach(ref: CgroupRef) {
    this.calls.push(`detach ${this.id(ref)}`);
    return {};
  }
  async enroll(ref: CgroupRef, config: ContainerConfig) {
    this.calls.push(`enroll ${this.id(ref)} [${(config.flags ?? []).join(',')}]`);
    return { cgroupId: this.id(ref) };
  }
  async unenroll(ref: CgroupRef) {
    this.calls.push(`unenroll ${this.id(ref)}`);
    return {};
  }
  async bypass(ref: CgroupRef, seconds: number) {
    this.calls.push(`bypass ${this.id(ref)} ${seconds}`);
    return {};
  }
  async flush() {
    this.calls.push('flush');
    if (this.failFlush) throw new Error('bpfman flush: map busy');
    return { dnsCache: 0, bypass: 0, routes: 0 };
  }
  async show() {
    return { containers: {}, bypass: {}, routes: [], dnsCache: [] };
  }
}

type Internals = {
  cgroupRoot: string;
  driver: string;
  guardDir: string;
  addresses: object;
  servicesWanted: boolean;
  guardAgentsCgroup(): Promise<void>;
  enrollAgent(id: string): Promise<unknown>;
  unenrollAgent(id: string): Promise<void>;
  reconcileAgents(): Promise<void>;
  startCommand(record: { name: string }): Promise<void>;
};

let n = 0;
interface Harness {
  cp: ControlPlane;
  internals: Internals;
  docker: FakeDocker;
  bpf: FakeBpf;
  /** Audit, warn and "start" lines, in order, beside bpf.calls. */
  log: string[];
  /** Each audit line with the fields it carries into the audit log. */
  audits: { message: string; fields: object }[];
  network: string;
  caDir: string;
  stateFile: string;
}

const running: ControlPlane[] = [];
after(() => running.forEach((cp) => cp.stop()));

/** A control plane past its start-up (network, cgroup guard), reading `state` as its saved state file. */
function harness(state?: object, options: { realStart?: boolean; drainAfterMs?: number } = {}): Harness {
  const data = join(dir, `data-${n++}`);
  const config = readConfig({
    CLAWKER_DATA_DIR: data,
    CLAWKER_CGROUP2_ROOT: cgroupRoot,
    CLAWKER_PIN_DIR: join(dir, 'pin'),
    ...(options.drainAfterMs !== undefined ? { CLAWKER_DRAIN_AFTER_MS: String(options.drainAfterMs) } : {}),
  });
  cpSync(hostCa, config.caDir, { recursive: true });
  if (state) {
    mkdirSync(dirname(config.stateFile), { recursive: true });
    writeFileSync(config.stateFile, JSON.stringify(state));
  }
  const docker = new FakeDocker();
  const bpf = new FakeBpf();
  const log: string[] = [];
  const audits: { message: string; fields: object }[] = [];
  const cp = new ControlPlane(config, docker as unknown as Docker, bpf as unknown as Bpfman, {
    progress: () => undefined,
    warn: (m) => log.push(`warn: ${m}`),
    audit: (m, fields) => {
      log.push(`audit: ${m}`);
      audits.push({ message: m, fields });
    },
  });
  running.push(cp);
  const internals = cp as unknown as Internals;
  Object.assign(internals, {
    cgroupRoot,
    driver: 'cgroupfs',
    guardDir,
    servicesWanted: true,
    addresses: { subnet: '10.9.0.0/24', gateway: '10.9.0.1', envoy: '10.9.0.200', coredns: '10.9.0.201', controlplane: '10.9.0.202' },
  });
  // Here: when the start is asked for. The mTLS call itself is the "starting the command" suite's below.
  if (!options.realStart) {
    internals.startCommand = async (record) => {
      log.push(`start ${record.name}`);
      bpf.calls.push(`start ${record.name}`);
    };
  }
  return { cp, internals, docker, bpf, log, audits, stateFile: config.stateFile, network: config.names.network, caDir: config.caDir };
}

describe("the agents' cgroup guard", () => {
  test('the datapath is attached to the agents cgroup, which is then enrolled locked down', async () => {
    const h = harness();
    await h.internals.guardAgentsCgroup();
    assert.deepEqual(h.bpf.calls, [`attach ${inode(guardDir)}`, `enroll ${inode(guardDir)} [lockdown]`]);
  });

  test('an agents cgroup that never appears is an error naming it, and nothing is enrolled', async () => {
    const h = harness();
    const missingRoot = join(dir, 'no-cgroup-root');
    Object.assign(h.internals, { cgroupRoot: missingRoot });
    const primer = { start: async () => undefined, wait: async () => undefined, remove: async () => undefined };
    Object.assign(h.docker, { createContainer: async () => primer });
    await assert.rejects(h.internals.guardAgentsCgroup(), (e: unknown) => e instanceof ControlPlaneError && /the agents cgroup .*no-cgroup-root.* did not appear/.test(e.message));
    assert.deepEqual(h.bpf.calls, []);
  });
});

describe('enrollment gate: the command starts only once the cgroup is enrolled', () => {
  test('an agentd-supervised agent: enrolled enforced, then its command started', async () => {
    const h = harness();
    const c = h.docker.add({ name: 'clawker.web.dev', id: hexId('a1'), agent: 'dev', supervisor: true });
    const before = Date.now();
    await h.internals.enrollAgent(c.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(c))} []`, `start ${c.name}`]);
    assert.deepEqual(h.cp.status().agents.map((a) => [a.containerName, a.state, a.guarded]), [[c.name, 'enrolled', true]]);
    assert.ok(h.log.includes('audit: agent dev enrolled'), h.log.join('\n'));
    // The event says when the enrolment began (the kernel entry is written after it): the fault
    // suite holds the agent to "nothing got out before that".
    const since = (h.audits.find((a) => a.message === 'agent dev enrolled')?.fields as { since?: string } | undefined)?.since;
    assert.ok(since !== undefined && Date.parse(since) >= before - 1 && Date.parse(since) <= Date.now(), `since: ${since}`);
  });

  test('a container without agentd gets no start call; a stopped one is not enrolled', async () => {
    const h = harness();
    const plain = h.docker.add({ name: 'clawker.web.plain', id: hexId('a2'), agent: 'plain' });
    const stopped = h.docker.add({ name: 'clawker.web.gone', id: hexId('a3'), agent: 'gone', supervisor: true, running: false });
    await h.internals.enrollAgent(plain.id);
    assert.equal(await h.internals.enrollAgent(stopped.id), undefined);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(plain))} []`]);
  });

  test('an agent whose cgroup does not exist is refused before anything runs', async () => {
    const h = harness();
    const c = h.docker.add({ name: 'clawker.web.ghost', id: hexId('a4'), agent: 'ghost', supervisor: true }, false);
    await assert.rejects(h.internals.enrollAgent(c.id), /its cgroup .* does not exist/);
    assert.deepEqual(h.bpf.calls, []);
    assert.deepEqual(h.cp.status().agents, []);
  });

  test('an agent created outside the agents cgroup: attached to its own cgroup, with a warning, before it is enrolled', async () => {
    const h = harness();
    const c = h.docker.add({ name: 'clawker.web.stray', id: hexId('a5'), agent: 'stray', supervisor: true, cgroupParent: '/elsewhere' });
    await h.internals.enrollAgent(c.id);
    const id = inode(cgroupDirOf(c));
    assert.deepEqual(h.bpf.calls, [`attach ${id}`, `enroll ${id} []`, `start ${c.name}`]);
    assert.ok(h.log.some((l) => l === 'warn: agent clawker.web.stray was not created under clawker-agents: its datapath is attached now, after its command started'), h.log.join('\n'));
    assert.equal(h.cp.status().agents[0]!.guarded, false);
  });

  test('disabled for this very container: enrolled disabled (recorded as bypassed); disabled for an earlier container of the name: enforced', async () => {
    const same = { name: 'clawker.web.same', id: hexId('b1'), agent: 'same' };
    const renewed = { name: 'clawker.web.renewed', id: hexId('b2'), agent: 'renewed' };
    const h = harness({ version: 2, disabled: { [same.name]: { containerId: same.id }, [renewed.name]: { containerId: hexId('b9') } }, bypass: {} });
    h.docker.add(same);
    h.docker.add(renewed);
    await h.internals.enrollAgent(same.id);
    await h.internals.enrollAgent(renewed.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(same))} [disabled]`, `enroll ${inode(cgroupDirOf(renewed))} []`]);
    assert.deepEqual(Object.fromEntries(h.cp.status().agents.map((a) => [a.containerName, a.state])), { [same.name]: 'disabled', [renewed.name]: 'enrolled' });
    const saved = JSON.parse(readFileSync(h.stateFile, 'utf8')) as { disabled: Record<string, unknown> };
    assert.deepEqual(Object.keys(saved.disabled), [same.name], "the earlier container's disable is forgotten on disk");
    assert.ok(h.log.includes('audit: agent same enrolled (disabled: egress unrestricted)'), h.log.join('\n'));
    assert.ok(h.log.some((l) => l.startsWith(`audit: firewall disable for ${renewed.name} was for an earlier container of that name`)), h.log.join('\n'));
  });

  test('a bypass window of an earlier container of the name is closed on that old cgroup, not opened for the new one', async () => {
    const c = { name: 'clawker.web.win', id: hexId('c1'), agent: 'win' };
    const until = new Date(Date.now() + 60_000).toISOString();
    const h = harness({ version: 2, disabled: {}, bypass: { [c.name]: { containerId: hexId('c9'), cgroupId: 424242, until } } });
    h.docker.add(c);
    await h.internals.enrollAgent(c.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(c))} []`, 'bypass 424242 0']);
    assert.equal(h.cp.status().agents[0]!.state, 'enrolled');
    assert.deepEqual((JSON.parse(readFileSync(h.stateFile, 'utf8')) as { bypass: object }).bypass, {});
  });

  test('a bypass window of this container, still open, is kept: the agent shows bypassed until its deadline', async () => {
    const c = { name: 'clawker.web.open', id: hexId('c2'), agent: 'open' };
    mkdirSync(cgroupDirOf(c), { recursive: true });
    const until = new Date(Date.now() + 60_000).toISOString();
    const h = harness({ version: 2, disabled: {}, bypass: { [c.name]: { containerId: c.id, cgroupId: inode(cgroupDirOf(c)), until } } });
    h.docker.add(c);
    await h.internals.enrollAgent(c.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(c))} []`], 'the kernel entry is left as it is');
    assert.deepEqual(h.cp.status().agents.map((a) => [a.state, a.bypassUntil]), [['bypassed', until]]);
  });

  test('an agent that exits is unenrolled (its own cgroup; detached only when it was attached for it), its window ended', async () => {
    const h = harness();
    const guarded = h.docker.add({ name: 'clawker.web.g', id: hexId('d1'), agent: 'g' });
    const stray = h.docker.add({ name: 'clawker.web.s', id: hexId('d2'), agent: 's', cgroupParent: '/elsewhere' });
    await h.internals.enrollAgent(guarded.id);
    await h.internals.enrollAgent(stray.id);
    await h.cp.bypass(guarded.name, 60);
    h.bpf.calls = [];
    await h.internals.unenrollAgent(guarded.id);
    await h.internals.unenrollAgent(stray.id);
    const [g, s] = [inode(cgroupDirOf(guarded)), inode(cgroupDirOf(stray))];
    assert.deepEqual(h.bpf.calls, [`unenroll ${g}`, `unenroll ${s}`, `detach ${s}`]);
    assert.deepEqual(h.cp.status().agents, []);
    assert.ok(h.log.includes(`audit: bypass for g ended (agent exited): firewall re-enabled`), h.log.join('\n'));
    assert.deepEqual((JSON.parse(readFileSync(h.stateFile, 'utf8')) as { bypass: object }).bypass, {});
  });
});

describe('firewall down', () => {
  let h: Harness;
  let a: FakeContainer;
  let b: FakeContainer;
  beforeEach(async () => {
    h = harness();
    a = h.docker.add({ name: 'clawker.web.a', id: hexId('e1'), agent: 'a' });
    b = h.docker.add({ name: 'clawker.web.b', id: hexId('e2'), agent: 'b' });
    await h.internals.enrollAgent(a.id);
    await h.internals.enrollAgent(b.id);
    await h.cp.bypass(a.name, 300);
    await h.cp.setEnabled(b.name, false);
    h.docker.services = new Set(['clawker-envoy', 'clawker-coredns']);
    h.bpf.calls = [];
  });

  test('every agent is locked down before the flush; bypass windows end; Envoy and CoreDNS are removed', async () => {
    const result = await h.cp.down();
    const [ia, ib] = [inode(cgroupDirOf(a)), inode(cgroupDirOf(b))];
    assert.deepEqual(h.bpf.calls, [`enroll ${ia} [lockdown]`, `enroll ${ib} [lockdown]`, 'flush']);
    assert.deepEqual(result, { lockedDown: ['a', 'b'], stopped: ['clawker-envoy', 'clawker-coredns'] });
    assert.deepEqual(h.docker.removed, ['clawker-envoy', 'clawker-coredns']);
    assert.deepEqual(Object.fromEntries(h.cp.status().agents.map((x) => [x.containerName, x.state])), { [a.name]: 'locked-down', [b.name]: 'locked-down' });
    assert.deepEqual((JSON.parse(readFileSync(h.stateFile, 'utf8')) as { bypass: object }).bypass, {});
    assert.ok(h.log.includes('audit: firewall down: 2 agent(s) locked down (no egress), clawker-envoy, clawker-coredns stopped'), h.log.join('\n'));
  });

  test('a flush that fails leaves every agent locked down, and down reports the failure', async () => {
    h.bpf.failFlush = true;
    await assert.rejects(h.cp.down(), /map busy/);
    const [ia, ib] = [inode(cgroupDirOf(a)), inode(cgroupDirOf(b))];
    assert.deepEqual(h.bpf.calls, [`enroll ${ia} [lockdown]`, `enroll ${ib} [lockdown]`, 'flush']);
    assert.deepEqual(Object.fromEntries(h.cp.status().agents.map((x) => [x.containerName, x.state])), { [a.name]: 'locked-down', [b.name]: 'locked-down' });
  });

  test('with no stack services running, down stops nothing and says so', async () => {
    h.docker.services.clear();
    const result = await h.cp.down();
    assert.deepEqual(result.stopped, []);
    assert.ok(h.log.includes('audit: firewall down: 2 agent(s) locked down (no egress), nothing stopped'), h.log.join('\n'));
  });
});

describe('enrollment: waits, addresses, bypass windows of earlier runs, what the audit log records', () => {
  test('an agents cgroup that appears only after the primer ran is waited for, then guarded', async () => {
    const h = harness();
    const lateRoot = join(dir, 'late-cgroup-root');
    const lateGuard = join(lateRoot, 'clawker-agents');
    Object.assign(h.internals, { cgroupRoot: lateRoot });
    // Docker creates the parent cgroup a little after the primer container starts.
    const primer = { start: async () => void setTimeout(() => mkdirSync(lateGuard, { recursive: true }), 150), wait: async () => undefined, remove: async () => undefined };
    Object.assign(h.docker, { createContainer: async () => primer });
    await h.internals.guardAgentsCgroup();
    assert.deepEqual(h.bpf.calls, [`attach ${inode(lateGuard)}`, `enroll ${inode(lateGuard)} [lockdown]`]);
  });

  test("a container whose cgroup appears a little after its start event is waited for, then enrolled", async () => {
    const h = harness();
    const c = h.docker.add({ name: 'clawker.web.late', id: hexId('f1'), agent: 'late' }, false);
    setTimeout(() => mkdirSync(cgroupDirOf(c), { recursive: true }), 150);
    await h.internals.enrollAgent(c.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(c))} []`]);
  });

  test("an agent is known by its address on the firewall network, and only that one", async () => {
    const h = harness();
    const c = h.docker.add({ name: 'clawker.web.addr', id: hexId('f2'), agent: 'addr', networks: { [h.network]: '10.9.0.5', bridge: '172.17.0.9' } });
    const bare = h.docker.add({ name: 'clawker.web.bare', id: hexId('f3'), agent: 'bare', networks: { bridge: '172.17.0.10' } });
    await h.internals.enrollAgent(c.id);
    await h.internals.enrollAgent(bare.id);
    assert.deepEqual(h.cp.agentOfIp('10.9.0.5'), { agent: 'addr', container: c.id });
    assert.equal(h.cp.agentOfIp('172.17.0.9'), undefined);
    assert.equal(h.cp.agentOfIp('172.17.0.10'), undefined);
    assert.equal(h.cp.agentOfIp(''), undefined, 'an agent with no address on the network is not "the agent at no address"');
  });

  test('an agent arriving while the stack is idle brings the services back before it is enrolled', async () => {
    const h = harness();
    Object.assign(h.internals, { servicesWanted: false });
    (h.internals as unknown as { resume(): Promise<void> }).resume = async () => {
      h.bpf.calls.push('resume');
      Object.assign(h.internals, { servicesWanted: true });
    };
    const c = h.docker.add({ name: 'clawker.web.idle', id: hexId('f4'), agent: 'idle' });
    const d = h.docker.add({ name: 'clawker.web.busy', id: hexId('f5'), agent: 'busy' });
    await h.internals.enrollAgent(c.id);
    await h.internals.enrollAgent(d.id);
    assert.deepEqual(h.bpf.calls, ['resume', `enroll ${inode(cgroupDirOf(c))} []`, `enroll ${inode(cgroupDirOf(d))} []`]);
  });

  test("this container's window, expired while no control plane ran: ended as expired, nothing to close in the kernel", async () => {
    const c = { name: 'clawker.web.exp', id: hexId('f6'), agent: 'exp' };
    mkdirSync(cgroupDirOf(c), { recursive: true });
    const until = new Date(Date.now() - 1000).toISOString();
    const h = harness({ version: 2, disabled: {}, bypass: { [c.name]: { containerId: c.id, cgroupId: inode(cgroupDirOf(c)), until } } });
    h.docker.add(c);
    await h.internals.enrollAgent(c.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(c))} []`]);
    assert.ok(h.log.includes('audit: bypass for exp ended (expired): firewall re-enabled'), h.log.join('\n'));
    assert.equal(h.cp.status().agents[0]!.state, 'enrolled');
  });

  test('a window of the same container in an earlier run (another cgroup) is closed on that cgroup, and says so', async () => {
    const c = { name: 'clawker.web.rerun', id: hexId('f7'), agent: 'rerun' };
    const until = new Date(Date.now() + 60_000).toISOString();
    const h = harness({ version: 2, disabled: {}, bypass: { [c.name]: { containerId: c.id, cgroupId: 515151, until } } });
    h.docker.add(c);
    await h.internals.enrollAgent(c.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(c))} []`, 'bypass 515151 0']);
    assert.ok(h.log.includes('audit: bypass for rerun ended (it was for an earlier run of the container): firewall re-enabled'), h.log.join('\n'));
  });

  test('the audit log records who each enrollment, disable and exit was about', async () => {
    const same = { name: 'clawker.web.who', id: hexId('f8'), agent: 'who' };
    const h = harness({ version: 2, disabled: { [same.name]: { containerId: hexId('f9') } }, bypass: {} });
    h.docker.add(same);
    await h.internals.enrollAgent(same.id);
    await h.internals.unenrollAgent(same.id);
    const cgroupId = inode(cgroupDirOf(same));
    const since = (h.audits[1]?.fields as { since?: string } | undefined)?.since;
    assert.match(since ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'when the enrolment began');
    assert.deepEqual(h.audits, [
      { message: `firewall disable for ${same.name} was for an earlier container of that name (${hexId('f9').slice(0, 12)}); this one is enforced`, fields: { agent: 'who', container: same.id } },
      { message: 'agent who enrolled', fields: { agent: 'who', container: same.id, cgroupId, verdict: 'allowed', since } },
      { message: 'agent who exited; unenrolled', fields: { agent: 'who', container: same.id, cgroupId } },
    ]);
  });

  test('firewall down records its verdict in the audit log', async () => {
    const h = harness();
    await h.cp.down();
    assert.deepEqual(h.audits, [{ message: 'firewall down: 0 agent(s) locked down (no egress), nothing stopped', fields: { verdict: 'denied' } }]);
  });
});

describe('draining: the services stop a while after the last agent exits, not before', () => {
  test('one agent exits while another runs: no drain; the last exits: drained after the delay', async () => {
    const h = harness(undefined, { drainAfterMs: 1500 });
    const a = h.docker.add({ name: 'clawker.web.da', id: hexId('0a1'), agent: 'da' });
    const b = h.docker.add({ name: 'clawker.web.db', id: hexId('0a2'), agent: 'db' });
    await h.internals.enrollAgent(a.id);
    await h.internals.enrollAgent(b.id);
    h.bpf.calls = [];
    await h.internals.unenrollAgent(a.id);
    await sleep(900);
    await h.internals.unenrollAgent(b.id);
    // 1000 ms after b's exit: 1900 ms after a's (a drain counted from it would have run at 1500),
    // but only 1000 after the last agent's.
    await sleep(1000);
    assert.deepEqual(h.bpf.calls, [`unenroll ${inode(cgroupDirOf(a))}`, `unenroll ${inode(cgroupDirOf(b))}`], 'drained before the delay after the last exit');
    for (let i = 0; i < 100 && h.bpf.calls.at(-1) !== 'flush'; i++) await sleep(50);
    assert.equal(h.bpf.calls.at(-1), 'flush');
    assert.ok(h.log.includes('audit: last agent exited: stack drained (routes, DNS cache and bypass windows flushed; CoreDNS and Envoy stopped)'), h.log.join('\n'));
  });
});

describe("starting the command: the control plane asks the agent's supervisor over the mTLS session", () => {
  // Loopback addresses of this process's own, so parallel runs of this file do not share a port.
  const subnet = `127.${(process.pid % 250) + 1}.${Math.floor(Math.random() * 250) + 1}`;
  let hostCount = 0;
  type Record = { name: string };
  const recordOf = (h: Harness, id: string): Record => (h.cp as unknown as { agents: Map<string, Record> }).agents.get(id)!;
  /** Enrolling an agentd-supervised agent starts its command in the background; this waits for what it leaves. */
  async function until(what: string, done: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !done(); i++) await sleep(25);
    assert.ok(done(), `timed out waiting for ${what}`);
  }

  /** An agentd session server (agentd's own code) for the container `name`, answering start with `start`. */
  async function supervisor(h: Harness, name: string, start: () => CommandStatus) {
    const ip = `${subnet}.${++hostCount}`;
    const { ca } = await loadOrCreateCa(h.caDir);
    const own = issueSessionCertificate(ca, { commonName: name, usage: 'server', dnsNames: [name] });
    const starts: string[][] = [];
    const server = await startSessionServer(
      { ca: ca.certificatePem, certificate: own.certificatePem, key: own.privateKeyPem },
      {
        host: ip,
        port: AGENTD_SESSION_PORT,
        log: () => undefined,
        handlers: {
          status: () => ({ state: 'waiting', command: [] }),
          start: () => {
            starts.push([...h.bpf.calls]);
            return start();
          },
          exec: async () => ({ ok: false, error: 'not here' }),
        },
      },
    );
    after(() => server.close());
    return { ip, starts };
  }

  test('asked only after the cgroup is enrolled; the audit log says what runs', async () => {
    const h = harness(undefined, { realStart: true });
    const name = 'clawker.web.cmd';
    const agentd = await supervisor(h, name, () => ({ state: 'running', command: ['claude'], pid: 4242 }));
    const c = h.docker.add({ name, id: hexId('b01'), agent: 'cmd', supervisor: true, networks: { [h.network]: agentd.ip } });
    await h.internals.enrollAgent(c.id);
    await until('the command line', () => h.audits.some((a) => a.message.includes('command')));
    assert.deepEqual(agentd.starts, [[`enroll ${inode(cgroupDirOf(c))} []`]], 'one start, after the enrollment');
    assert.deepEqual(agentd.starts[0], [`enroll ${inode(cgroupDirOf(c))} []`], 'the start came after the enrollment');
    const lines = h.audits.filter((a) => a.message.includes('command'));
    assert.deepEqual(lines[0], { message: 'agent cmd: command running (pid 4242)', fields: { agent: 'cmd', container: c.id } });
  });

  test('a command that already ended, or runs without a known pid, is reported as it is', async () => {
    const h = harness(undefined, { realStart: true });
    const states: CommandStatus[] = [{ state: 'exited', command: ['true'], exitCode: 0 }, { state: 'running', command: ['claude'] }];
    const agentd = await supervisor(h, 'clawker.web.done', () => states.shift()!);
    const c = h.docker.add({ name: 'clawker.web.done', id: hexId('b02'), agent: 'done', supervisor: true, networks: { [h.network]: agentd.ip } });
    await h.internals.enrollAgent(c.id);
    await until('the command line', () => h.audits.some((a) => a.message.includes('command')));
    await h.internals.startCommand(recordOf(h, c.id));
    assert.deepEqual(h.audits.filter((a) => a.message.includes('command')).map((a) => a.message), ['agent done: command exited', 'agent done: command running (pid ?)']);
  });

  test('a supervisor that refuses: a warning that names the agent and gives its reason', async () => {
    const h = harness(undefined, { realStart: true });
    const agentd = await supervisor(h, 'clawker.web.no', () => {
      throw new Error('no command configured');
    });
    const c = h.docker.add({ name: 'clawker.web.no', id: hexId('b03'), agent: 'no', supervisor: true, networks: { [h.network]: agentd.ip } });
    await h.internals.enrollAgent(c.id);
    await until('the warning', () => h.log.some((l) => l.startsWith('warn')));
    assert.ok(h.log.includes("warn: agent no: its command was not started: clawker.web.no's supervisor refused to start the command: no command configured"), h.log.join('\n'));
  });

  test('the control plane keeps one session certificate while its CA stays the same', async () => {
    const h = harness(undefined, { realStart: true });
    const agentd = await supervisor(h, 'clawker.web.twice', () => ({ state: 'running', command: ['claude'], pid: 7 }));
    const c = h.docker.add({ name: 'clawker.web.twice', id: hexId('b04'), agent: 'twice', supervisor: true, networks: { [h.network]: agentd.ip } });
    await h.internals.enrollAgent(c.id);
    const session = () => (h.cp as unknown as { session?: { credentials: object } }).session?.credentials;
    await until('the first start', () => agentd.starts.length === 1);
    const first = session();
    await h.internals.startCommand(recordOf(h, c.id));
    assert.ok(first !== undefined && session() === first);
    assert.equal(agentd.starts.length, 2);
  });

  test('a supervisor not answering yet is retried; once the agent exits, the retries stop without a warning', { timeout: 15_000 }, async () => {
    const h = harness(undefined, { realStart: true });
    const c = h.docker.add({ name: 'clawker.web.gone', id: hexId('b05'), agent: 'gone', supervisor: true, networks: { [h.network]: `${subnet}.250` } });
    await h.internals.enrollAgent(c.id);
    const started = h.internals.startCommand(recordOf(h, c.id));
    await sleep(400);
    await h.internals.unenrollAgent(c.id);
    const t0 = Date.now();
    await started;
    assert.ok(Date.now() - t0 < 2000, 'the retries stopped');
    assert.deepEqual(h.log.filter((l) => l.startsWith('warn')), []);
  });

  test('once the control plane stops, the retries stop, with a warning naming the agent', { timeout: 15_000 }, async () => {
    const h = harness(undefined, { realStart: true });
    const c = h.docker.add({ name: 'clawker.web.stop', id: hexId('b06'), agent: 'stop', supervisor: true, networks: { [h.network]: `${subnet}.251` } });
    await h.internals.enrollAgent(c.id);
    const started = h.internals.startCommand(recordOf(h, c.id));
    await sleep(400);
    h.cp.stop();
    const t0 = Date.now();
    await started;
    assert.ok(Date.now() - t0 < 2000, 'the retries stopped');
    assert.ok(h.log.some((l) => l.startsWith('warn: agent stop: its command was not started: ')), h.log.join('\n'));
  });
});
