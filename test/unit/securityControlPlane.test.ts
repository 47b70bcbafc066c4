/**
 * The control plane's enrollment gate and `firewall down`, with Docker and the datapath manager
 * replaced by recorders (cgroups are directories of a temporary tree, so cgroup ids are real inode
 * numbers). What must hold: the agents' cgroup is guarded locked down before anything else; an
 * agent's command is started only after its cgroup is enrolled; `down` locks every agent down
 * before it flushes anything, and keeps them locked down if the flush fails. The kernel side is the
 * e2e suites' (test/e2e/firewall.test.ts, test/faults).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import type Docker from 'dockerode';
import { readConfig } from '../../src/controlplane/config';
import { ControlPlane, ControlPlaneError } from '../../src/controlplane/controlPlane';
import type { Bpfman, CgroupRef, ContainerConfig } from '../../src/platform/bpf/bpfman';
import { LABEL_SUPERVISOR, SUPERVISOR_AGENTD } from '../../src/core/agents/agentContract';
import { LABEL_AGENT } from '../../src/core/stack/labels';
import { type FakeAgentContainer, inspectInfoOf, notFound } from '../helpers/dockerInspectFake';

const dir = mkdtempSync(join(tmpdir(), 'clawker-cp-gate-'));
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
  stateFile: string;
}

const running: ControlPlane[] = [];
after(() => running.forEach((cp) => cp.stop()));

/** A control plane past its start-up (network, cgroup guard), reading `state` as its saved state file. */
function harness(state?: object): Harness {
  const data = join(dir, `data-${n++}`);
  const config = readConfig({ CLAWKER_DATA_DIR: data, CLAWKER_CGROUP2_ROOT: cgroupRoot, CLAWKER_PIN_DIR: join(dir, 'pin') });
  if (state) {
    mkdirSync(dirname(config.stateFile), { recursive: true });
    writeFileSync(config.stateFile, JSON.stringify(state));
  }
  const docker = new FakeDocker();
  const bpf = new FakeBpf();
  const log: string[] = [];
  const cp = new ControlPlane(config, docker as unknown as Docker, bpf as unknown as Bpfman, {
    progress: () => undefined,
    warn: (m) => log.push(`warn: ${m}`),
    audit: (m) => log.push(`audit: ${m}`),
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
  // The mTLS call to agentd is the session suite's (test/unit/agentd.test.ts); here: when it is made.
  internals.startCommand = async (record) => {
    log.push(`start ${record.name}`);
    bpf.calls.push(`start ${record.name}`);
  };
  return { cp, internals, docker, bpf, log, stateFile: config.stateFile };
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
    await h.internals.enrollAgent(c.id);
    assert.deepEqual(h.bpf.calls, [`enroll ${inode(cgroupDirOf(c))} []`, `start ${c.name}`]);
    assert.deepEqual(h.cp.status().agents.map((a) => [a.containerName, a.state, a.guarded]), [[c.name, 'enrolled', true]]);
    assert.ok(h.log.includes('audit: agent dev enrolled'), h.log.join('\n'));
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
