/**
 * The datapath test bed: a Docker bridge network made for the run, stand-ins for Envoy (.200) and
 * CoreDNS (.201), agent containers whose cgroups carry the datapath programs, and the Go manager
 * (bpfman, built by `make -C bpf bpfman`) driving a pin directory of its own under /sys/fs/bpf
 * (never the real /sys/fs/bpf/clawker).
 *
 * Everything stays on this machine: the network is the run's own; "outside" destinations are
 * TEST-NET addresses (203.0.113.0/24, 198.51.100.0/24) that the datapath must redirect, and that
 * would simply not route if it did not.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CLIENT_PY, STANDIN_PY } from './datapath-scripts';
import {
  BASE_IMAGE, BPF_DIR, BPFFS_DIR, E2E_PID_LABEL, cgroup2DirOfPid, containerPid, removeContainer, removeObjectsOfDeadRuns, run, runOk,
  uniqueName,
} from './testbed';

export const BPFMAN = join(BPF_DIR, 'build', 'bpfman');

const DOCKERFILE = `FROM ${BASE_IMAGE}\nRUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*\n`;
/** The image tag names its Dockerfile, so a changed Dockerfile is a new image and an unchanged one is reused. */
export const PY_IMAGE = `clawker-e2e/datapath-py:${createHash('sha256').update(DOCKERFILE).digest('hex').slice(0, 12)}`;

export const COREDNS_HEALTH_PORT = 18902;
/** What the CoreDNS stand-in answers for every A question. */
export const DNS_ANSWER = '198.51.100.77';

export interface EventJson {
  time: number;
  hook: string;
  verdict: string;
  reason: string;
  cgroupId: number;
  pid: number;
  uid: number;
  family: string;
  l4: string;
  sockType: string;
  src?: string;
  dst?: string;
  redirect?: string;
  domainKey?: string;
}

export interface Agent {
  name: string;
  id: string;
  ip: string;
  pid: number;
  cgroupDir: string;
  cgroupId: number;
}

export interface NetworkInfo {
  name: string;
  prefix: string; // "10.231.17"
  subnet: string;
  gateway: string;
  envoy: string;
  coredns: string;
}

/** A TCP listener on the host (the network's gateway address) that answers `host:<port>` and counts. */
export class HostListener {
  accepted = 0;
  port = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  constructor() {
    this.server = createServer((socket) => {
      this.accepted++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.end(`host:${this.port}\n`);
    });
  }
  listen(host: string, port = 0): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const addr = this.server.address();
        if (addr && typeof addr === 'object') resolve((this.port = addr.port));
        else reject(new Error('listener has no port'));
      });
    });
  }
  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** Build the manager (bpf/build/bpfman, with the object embedded) and the manager's Go tests. */
export async function buildBpfman(): Promise<void> {
  await runOk('make', ['-C', BPF_DIR, 'bpfman'], 600_000);
}

export async function ensurePythonImage(): Promise<void> {
  if ((await run('docker', ['image', 'inspect', '--format', '{{.Id}}', PY_IMAGE])).code === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'clawker-e2e-image-'));
  try {
    writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
    await runOk('docker', ['build', '-q', '-t', PY_IMAGE, dir], 600_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Remove networks left by a killed run of these suites (containers and pin dirs: sweepStale). */
export async function sweepStaleNetworks(): Promise<void> {
  await removeObjectsOfDeadRuns('network', E2E_PID_LABEL);
}

export class DatapathBed {
  readonly pinDir = join(BPFFS_DIR, uniqueName('datapath'));
  readonly scriptsDir = mkdtempSync(join(tmpdir(), 'clawker-e2e-datapath-'));
  network!: NetworkInfo;
  envoyName = '';
  corednsName = '';
  private readonly containers: string[] = [];
  private eventsProcess: ChildProcess | undefined;
  private eventsBuffer = '';
  readonly events: EventJson[] = [];

  /** Network, stand-ins (Envoy listening on the given ports), datapath loaded into the bed's own pin directory. */
  async start(what: string, envoyPorts: { tcp: readonly number[]; udp: readonly number[] }): Promise<void> {
    writeFileSync(join(this.scriptsDir, 'standin.py'), STANDIN_PY);
    writeFileSync(join(this.scriptsDir, 'client.py'), CLIENT_PY);
    this.network = await this.createNetwork(what);
    this.envoyName = await this.startContainer(`${what}-envoy`, [
      '--ip', this.network.envoy,
    ], ['python3', '-u', '/e2e/standin.py', '--banner', 'envoy', ...envoyPorts.tcp.flatMap((p) => ['--tcp', String(p)]), ...envoyPorts.udp.flatMap((p) => ['--udp', String(p)])]);
    this.corednsName = await this.startContainer(`${what}-coredns`, ['--ip', this.network.coredns], [
      'python3', '-u', '/e2e/standin.py', '--banner', 'coredns', '--dns', '53', '--tcp', String(COREDNS_HEALTH_PORT), '--answer', DNS_ANSWER,
    ]);
    await this.waitReady(this.envoyName);
    await this.waitReady(this.corednsName);
    await this.bpfman(['load']);
  }

  private async createNetwork(what: string): Promise<NetworkInfo> {
    const name = uniqueName(`${what}-net`);
    for (let attempt = 0; attempt < 20; attempt++) {
      const prefix = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
      const r = await run('docker', [
        'network', 'create', '--driver', 'bridge', '--label', `${E2E_PID_LABEL}=${process.pid}`,
        '--subnet', `${prefix}.0/24`, '--gateway', `${prefix}.1`, name,
      ]);
      if (r.code === 0) {
        return { name, prefix, subnet: `${prefix}.0/24`, gateway: `${prefix}.1`, envoy: `${prefix}.200`, coredns: `${prefix}.201` };
      }
      if (!/overlap/i.test(r.stderr)) throw new Error(`docker network create ${name}: ${r.stderr.trim()}`);
    }
    throw new Error('no free 10.x.y.0/24 subnet for the test network after 20 attempts');
  }

  /** Start a container of the Python image on the bed's network; returns its name. */
  async startContainer(what: string, dockerArgs: readonly string[], command: readonly string[] = ['sleep', 'infinity']): Promise<string> {
    const name = uniqueName(what);
    this.containers.push(name);
    await runOk('docker', [
      'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`, '--network', this.network.name,
      '-v', `${this.scriptsDir}:/e2e:ro`, ...dockerArgs, PY_IMAGE, ...command,
    ]);
    return name;
  }

  private async waitReady(name: string): Promise<void> {
    for (let i = 0; i < 100; i++) {
      if ((await this.logOf(name)).some((l) => l.kind === 'ready')) return;
      await sleep(100);
    }
    throw new Error(`stand-in ${name} did not start: ${(await run('docker', ['logs', name])).stderr}`);
  }

  /**
   * An agent container: root, the datapath attached to its cgroup and (unless enroll is false)
   * enrolled. IPv6 is enabled in it so ::1 exists.
   */
  async startAgent(what: string, options: { enroll?: boolean; config?: Record<string, unknown>; command?: readonly string[] } = {}): Promise<Agent> {
    const name = await this.startContainer(what, ['--sysctl', 'net.ipv6.conf.all.disable_ipv6=0'], options.command);
    const id = (await runOk('docker', ['inspect', '-f', '{{.Id}}', name])).trim();
    const ip = (await runOk('docker', ['inspect', '-f', `{{(index .NetworkSettings.Networks "${this.network.name}").IPAddress}}`, name])).trim();
    const pid = await containerPid(id);
    const cgroupDir = cgroup2DirOfPid(pid);
    const attached = (await this.bpfman(['attach', '--cgroup', cgroupDir])) as { cgroupId: number };
    const agent: Agent = { name, id, ip, pid, cgroupDir, cgroupId: attached.cgroupId };
    if (options.enroll !== false) await this.enroll(agent, options.config);
    return agent;
  }

  containerConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { envoy: this.network.envoy, coredns: this.network.coredns, gateway: this.network.gateway, network: this.network.subnet, ...extra };
  }

  async enroll(agent: Agent, extra: Record<string, unknown> = {}): Promise<void> {
    await this.bpfman(['enroll', '--cgroup-id', String(agent.cgroupId), '--config', JSON.stringify(this.containerConfig(extra))]);
  }

  /** Run bpfman against the bed's pin directory; parses its JSON output. */
  async bpfman(args: readonly string[], timeoutMs = 60_000): Promise<unknown> {
    const out = await runOk(BPFMAN, [args[0]!, '--pin-dir', this.pinDir, ...args.slice(1)], timeoutMs);
    return out.trim() ? JSON.parse(out) : undefined;
  }

  /** Run client.py in a container; returns its JSON result. */
  async client(agent: Agent | string, args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    const name = typeof agent === 'string' ? agent : agent.name;
    const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const r = await run('docker', ['exec', ...env, name, 'python3', '/e2e/client.py', ...args], options.timeoutMs ?? 60_000);
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`client.py ${args.join(' ')} in ${name} exited ${r.code} without a result:\n${r.stdout}\n${r.stderr}`);
    }
  }

  /** The JSON lines a stand-in logged. */
  async logOf(name: string): Promise<Record<string, unknown>[]> {
    const r = await runOk('docker', ['logs', name]);
    return r.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** Start draining events_ringbuf into `events` (one reader, as the netlogger would be). */
  startEvents(): void {
    const child = spawn(BPFMAN, ['events', '--pin-dir', this.pinDir, '--follow'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.eventsProcess = child;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.eventsBuffer += chunk;
      const lines = this.eventsBuffer.split('\n');
      this.eventsBuffer = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) this.events.push(JSON.parse(line) as EventJson);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => process.stderr.write(`[bpfman events] ${chunk}`));
  }

  /** The first event matching, waiting for it up to timeoutMs. */
  async waitForEvent(predicate: (e: EventJson) => boolean, what: string, timeoutMs = 5_000): Promise<EventJson> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`no event ${what} within ${timeoutMs} ms; last events:\n${this.events.slice(-10).map((e) => JSON.stringify(e)).join('\n')}`);
      }
      await sleep(50);
    }
  }

  async stop(): Promise<string[]> {
    const errors: string[] = [];
    if (this.eventsProcess && this.eventsProcess.exitCode === null) {
      const child = this.eventsProcess;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
    }
    for (const name of this.containers.reverse()) {
      try {
        await removeContainer(name);
      } catch (e) {
        errors.push(`remove ${name}: ${(e as Error).message}`);
      }
    }
    if (this.network) {
      const r = await run('docker', ['network', 'rm', this.network.name]);
      if (r.code !== 0 && !/not found/i.test(r.stderr)) errors.push(`docker network rm ${this.network.name}: ${r.stderr.trim()}`);
    }
    // Removing the pins removes the links (detaching the programs) and frees maps and programs.
    rmSync(this.pinDir, { recursive: true, force: true });
    rmSync(this.scriptsDir, { recursive: true, force: true });
    return errors;
  }
}
