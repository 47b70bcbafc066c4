/**
 * The control plane with two agents named `dev` in two projects, with Docker and the datapath
 * manager replaced by recorders (the cgroups are directories of a temporary tree, so cgroup ids are
 * real inode numbers): which cgroup each operation reaches, what status says, what the state file
 * keeps across control-plane restarts and container recreation, and what the API and the CLI answer
 * for an ambiguous name. The kernel side itself is the e2e suite's (test/e2e/firewall.test.ts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type Docker from 'dockerode';
import { startApi } from '../../src/controlplane/api';
import { readConfig } from '../../src/controlplane/config';
import { ControlPlane, ControlPlaneError } from '../../src/controlplane/controlPlane';
import type { Bpfman, CgroupRef, ContainerConfig } from '../../src/platform/bpf/bpfman';
import { UnixSocketTransport } from '../../src/platform/controlPlaneTransport';
import { ControlPlaneClient, ControlPlaneRequestError } from '../../src/platform/controlPlaneClient';
import type { AgentStatus } from '../../src/core/stack/controlPlaneApi';
import { LABEL_AGENT } from '../../src/core/stack/labels';
import { inspectInfoOf, notFound } from '../helpers/dockerInspectFake';

const ROOT = join(__dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'clawker-cp-agents-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hexId = (head: string): string => head + '0'.repeat(64 - head.length);
const WEB = { name: 'clawker.web.dev', id: hexId('aaaa1111bbbb'), agent: 'dev' };
const API = { name: 'clawker.api.dev', id: hexId('aaaa1111cccc'), agent: 'dev' };
const API_RECREATED = { name: 'clawker.api.dev', id: hexId('eeee2222'), agent: 'dev' };

const cgroupRoot = join(dir, 'cgroup');
mkdirSync(join(cgroupRoot, 'clawker-agents'), { recursive: true });
const cgroupDirOf = (id: string): string => join(cgroupRoot, 'clawker-agents', id);
const cgroupIdOf = (id: string): number => Number(statSync(cgroupDirOf(id)).ino);

/** Docker as the control plane reads it: inspect and list. */
class FakeDocker {
  readonly containers: { name: string; id: string; agent: string }[] = [];
  add(c: { name: string; id: string; agent: string }): void {
    mkdirSync(cgroupDirOf(c.id), { recursive: true });
    this.containers.push(c);
  }
  remove(id: string): void {
    this.containers.splice(this.containers.findIndex((c) => c.id === id), 1);
  }
  getContainer(ref: string) {
    return {
      inspect: async () => {
        const c = this.containers.find((x) => x.id === ref || x.name === ref);
        if (!c) throw notFound(ref);
        return inspectInfoOf(c);
      },
    };
  }
  async listContainers() {
    return this.containers.map((c) => ({ Id: c.id, Names: [`/${c.name}`], Labels: { [LABEL_AGENT]: c.agent } }));
  }
}

/** The datapath manager, recording which cgroup each call reaches. */
class FakeBpf {
  calls: string[] = [];
  private id = (ref: CgroupRef): number => ('cgroupDir' in ref ? Number(statSync(ref.cgroupDir).ino) : Number(ref.cgroupId));
  async enroll(ref: CgroupRef, config: ContainerConfig) {
    this.calls.push(`enroll ${this.id(ref)} [${(config.flags ?? []).join(',')}]`);
    return { cgroupId: this.id(ref) };
  }
  async bypass(ref: CgroupRef, seconds: number) {
    this.calls.push(`bypass ${this.id(ref)} ${seconds}`);
    return {};
  }
  async show() {
    return { containers: {}, bypass: {}, routes: [], dnsCache: [] };
  }
  async unenroll() {
    return {};
  }
}

const config = readConfig({ CLAWKER_DATA_DIR: join(dir, 'data'), CLAWKER_CGROUP2_ROOT: cgroupRoot, CLAWKER_PIN_DIR: join(dir, 'pin'), CLAWKER_API_SOCKET: join(dir, 'run', 'api.sock') });
const docker = new FakeDocker();
const audits: string[] = [];

/** A control plane past its start-up (network, cgroup guard) with the fakes; agents enrolled by reconcile. */
async function controlPlane(bpf: FakeBpf): Promise<ControlPlane> {
  const cp = new ControlPlane(config, docker as unknown as Docker, bpf as unknown as Bpfman, {
    progress: () => undefined,
    warn: (m) => audits.push(`warn: ${m}`),
    audit: (m) => audits.push(m),
  });
  const internals = cp as unknown as { cgroupRoot: string; driver: string; guardDir: string; addresses: object; reconcileAgents(): Promise<void> };
  Object.assign(internals, {
    cgroupRoot,
    driver: 'cgroupfs',
    guardDir: join(cgroupRoot, 'clawker-agents'),
    addresses: { subnet: '10.9.0.0/24', gateway: '10.9.0.1', envoy: '10.9.0.200', coredns: '10.9.0.201', controlplane: '10.9.0.202' },
  });
  await internals.reconcileAgents();
  return cp;
}

const states = (agents: readonly AgentStatus[]): Record<string, string> => Object.fromEntries(agents.map((a) => [a.containerName!, a.state]));
const stateFile = (): unknown => JSON.parse(readFileSync(config.stateFile, 'utf8'));

docker.add(WEB);
docker.add(API);
let webCgroup = 0;
let apiCgroup = 0;

test('two agents named dev: the bare name is refused (409, both named); the container name or an id prefix reaches that cgroup only', async () => {
  webCgroup = cgroupIdOf(WEB.id);
  apiCgroup = cgroupIdOf(API.id);
  const bpf = new FakeBpf();
  const cp = await controlPlane(bpf);
  try {
    assert.deepEqual(
      cp.status().agents.map((a) => [a.agent, a.containerName, a.container, a.cgroupId]),
      [
        ['dev', WEB.name, WEB.id, webCgroup],
        ['dev', API.name, API.id, apiCgroup],
      ],
    );
    bpf.calls = [];
    await assert.rejects(cp.bypass('dev', 60), (e: unknown) => {
      assert.ok(e instanceof ControlPlaneError);
      assert.equal(e.status, 409);
      assert.equal(e.message, '2 running agents match dev: clawker.api.dev, clawker.web.dev');
      assert.deepEqual(e.candidates, ['clawker.api.dev', 'clawker.web.dev']);
      return true;
    });
    await assert.rejects(cp.setEnabled('dev', false), /2 running agents match dev/);
    assert.deepEqual(bpf.calls, [], 'nothing reached the datapath');

    const opened = await cp.bypass('clawker.web.dev', 60);
    assert.deepEqual(bpf.calls, [`bypass ${webCgroup} 60`], 'the bypass reached the web agent cgroup only');
    assert.match(opened.message, /^bypass open for clawker\.web\.dev until /);
    assert.deepEqual(states(cp.status().agents), { [WEB.name]: 'bypassed', [API.name]: 'enrolled' });

    bpf.calls = [];
    await cp.setEnabled(API.id.slice(0, 12), false);
    assert.deepEqual(bpf.calls, [`enroll ${apiCgroup} [disabled]`], 'disable reached the api agent cgroup only');
    assert.deepEqual(states(cp.status().agents), { [WEB.name]: 'bypassed', [API.name]: 'disabled' });
    const saved = stateFile() as { version: number; disabled: unknown; bypass: Record<string, { containerId: string; cgroupId: number }> };
    assert.equal(saved.version, 2);
    assert.deepEqual(saved.disabled, { [API.name]: { containerId: API.id } });
    assert.deepEqual(Object.keys(saved.bypass), [WEB.name]);
    assert.deepEqual([saved.bypass[WEB.name]!.containerId, saved.bypass[WEB.name]!.cgroupId], [WEB.id, webCgroup]);
  } finally {
    cp.stop();
  }
});

test('the API answers the ambiguous name with 409, the candidates and what to pass; the CLI prints it and exits 1; status shows container names', async () => {
  const cp = await controlPlane(new FakeBpf());
  const events = { tail: () => [], subscribe: () => () => undefined };
  const server: Server = await startApi(config.socketPath, cp, events, { onDown: () => undefined });
  try {
    const client = new ControlPlaneClient(new UnixSocketTransport(config.socketPath), 5000);
    await assert.rejects(client.bypass('dev', 60), (e: unknown) => {
      assert.ok(e instanceof ControlPlaneRequestError);
      assert.equal(e.status, 409);
      assert.deepEqual(e.body, {
        error: '2 running agents match dev: clawker.api.dev, clawker.web.dev',
        next: 'pass the container name (e.g. --agent clawker.api.dev) or its container id',
        candidates: ['clawker.api.dev', 'clawker.web.dev'],
      });
      return true;
    });
    const byName = await client.status();
    assert.deepEqual(states(byName.agents), { [WEB.name]: 'bypassed', [API.name]: 'disabled' }, 'the new control plane kept both, each for its own container');

    // Asynchronous: this process answers the CLI's API calls meanwhile.
    const cli = (...args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, env: { ...process.env, CLAWKER_DATA_DIR: config.dataDir, CLAWKER_API_SOCKET: config.socketPath } }, (error, stdout, stderr) =>
          resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
    const refused = await cli('firewall', 'bypass', '5m', '--agent', 'dev');
    assert.equal(refused.status, 1, refused.stderr);
    assert.equal(refused.stderr, 'clawker: 2 running agents match dev: clawker.api.dev, clawker.web.dev\n  next: pass the container name (e.g. --agent clawker.api.dev) or its container id\n');
    const status = await cli('firewall', 'status');
    const agentsBlock = status.stdout.slice(status.stdout.indexOf('agents:')).replace(/until \S+ \([^)]*\)/, 'until T (left)');
    assert.equal(agentsBlock, `agents: 2\n  ${WEB.name.padEnd(20)}bypassed until T (left)\n  ${API.name.padEnd(20)}disabled\n`);
  } finally {
    server.close();
    cp.stop();
  }
});

test('a recreated container of the same name inherits nothing; a removed one loses its window, closed in the kernel', async () => {
  docker.remove(WEB.id);
  docker.remove(API.id);
  docker.add(API_RECREATED);
  const bpf = new FakeBpf();
  audits.length = 0;
  const cp = await controlPlane(bpf);
  try {
    const recreated = cgroupIdOf(API_RECREATED.id);
    assert.deepEqual(bpf.calls, [`enroll ${recreated} []`, `bypass ${webCgroup} 0`], 'enrolled enforced; the gone agent window closed on its own cgroup');
    assert.deepEqual(states(cp.status().agents), { [API.name]: 'enrolled' });
    assert.deepEqual(stateFile(), { version: 2, disabled: {}, bypass: {} });
    assert.ok(audits.includes(`firewall disable for ${API.name} was for an earlier container of that name (aaaa1111cccc); this one is enforced`), audits.join('\n'));
    assert.ok(audits.includes(`bypass for ${WEB.name} ended (its container is gone): firewall re-enabled`), audits.join('\n'));
    // A lone dev answers to its bare name again.
    assert.equal((await cp.bypass('dev', 30)).agent.containerName, API.name);
  } finally {
    cp.stop();
  }
});

test('a version 1 state file is migrated at start: the ambiguous disable dropped, the window kept for the cgroup it was opened on', async () => {
  docker.remove(API_RECREATED.id);
  docker.add(WEB);
  docker.add(API);
  writeFileSync(
    config.stateFile,
    JSON.stringify({ version: 1, disabled: ['dev'], bypass: { dev: { cgroupId: cgroupIdOf(API.id), until: new Date(Date.now() + 60_000).toISOString() } } }),
  );
  const bpf = new FakeBpf();
  audits.length = 0;
  const cp = await controlPlane(bpf);
  try {
    assert.deepEqual(bpf.calls, [`enroll ${cgroupIdOf(WEB.id)} []`, `enroll ${cgroupIdOf(API.id)} []`], 'neither dev comes back disabled');
    assert.deepEqual(states(cp.status().agents), { [WEB.name]: 'enrolled', [API.name]: 'bypassed' });
    const saved = stateFile() as { version: number; disabled: object; bypass: Record<string, unknown> };
    assert.deepEqual([saved.version, saved.disabled, Object.keys(saved.bypass)], [2, {}, [API.name]]);
    assert.ok(audits.some((a) => a.startsWith('state file migrated: firewall disable for dev dropped (2 running containers')), audits.join('\n'));
  } finally {
    cp.stop();
  }
});
