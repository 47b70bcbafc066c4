/**
 * The machinery of bench/kernel: a Docker bridge network of the run's own, containers of the test
 * bed's base image running the static C helper (bench/c/netbench.c, bind-mounted at /bench), the
 * real CoreDNS build (images/coredns), and the Go datapath manager (bpfman) on a pin directory of
 * the run's own (/sys/fs/bpf/clawker-bench-<pid>, never /sys/fs/bpf/clawker).
 *
 * Everything the run creates carries its pid (container and network label, pin directory name), so
 * a run that was killed is swept by the next one; `stop` removes it all and reports what it could not.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BPFMAN, buildBpfman } from '../../test/e2e/datapath-testbed';
import { BASE_IMAGE, BPFFS_DIR, cgroup2DirOfPid, containerPid, findExecutable, pidAlive, removeContainer, removeObjectsOfDeadRuns, ROOT, run, runOk } from '../../test/e2e/testbed';

export const BENCH_LABEL = 'dev.clawker.bench.pid';
export const BENCH_PREFIX = 'clawker-bench';
/** Where the helper and CoreDNS are mounted in every container. */
export const IN_CONTAINER = '/bench';

export interface Net {
  readonly name: string;
  readonly prefix: string; // "10.231.17"
  readonly subnet: string;
  readonly gateway: string;
  readonly at: (host: number) => string;
}

export interface Container {
  readonly name: string;
  readonly ip: string;
  readonly pid: number;
}

/** Containers, networks and pin directories left by a bench run that no longer exists. */
export async function sweepStaleBench(): Promise<void> {
  await removeObjectsOfDeadRuns('container', BENCH_LABEL);
  await removeObjectsOfDeadRuns('network', BENCH_LABEL);
  if (!existsSync(BPFFS_DIR)) return;
  for (const entry of readdirSync(BPFFS_DIR)) {
    const m = new RegExp(`^${BENCH_PREFIX}-(\\d+)$`).exec(entry);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(BPFFS_DIR, entry), { recursive: true, force: true });
  }
}

/** A long-running `netbench poll` in a container: resolves its "ready …" line, then its last line. */
export class Poller {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffer = '';
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  private exited = false;
  private stderr = '';

  constructor(container: string, args: readonly string[]) {
    this.child = spawn('docker', ['exec', container, `${IN_CONTAINER}/netbench`, 'poll', ...args]);
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => {
      this.buffer += chunk;
      const parts = this.buffer.split('\n');
      this.buffer = parts.pop() ?? '';
      this.lines.push(...parts.filter(Boolean));
      this.wake();
    });
    this.child.stderr.on('data', (chunk: string) => (this.stderr += chunk));
    this.child.on('close', () => {
      this.exited = true;
      if (this.buffer.trim()) this.lines.push(this.buffer.trim());
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  /** The first line starting with `prefix`. */
  async line(prefix: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((l) => l.startsWith(prefix));
      if (found) return found;
      if (this.exited || Date.now() > deadline) {
        throw new Error(`netbench poll: no "${prefix}" line${this.exited ? ' (it exited)' : ` within ${timeoutMs} ms`}; output: ${JSON.stringify(this.lines)} ${this.stderr.trim()}`);
      }
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), sleep(Math.min(200, Math.max(1, deadline - Date.now())))]);
    }
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

export class KernelBed {
  readonly pinDir = join(BPFFS_DIR, `${BENCH_PREFIX}-${process.pid}`);
  readonly dir = mkdtempSync(join(tmpdir(), `${BENCH_PREFIX}-`));
  net!: Net;
  private readonly containers: string[] = [];

  /** The C helper, CoreDNS with dnsbpf, and bpfman. */
  async build(): Promise<void> {
    await runOk('cc', ['-O2', '-static', '-Wall', '-o', join(this.dir, 'netbench'), join(ROOT, 'bench', 'c', 'netbench.c')], 120_000);
    const go = findExecutable('go') ?? (existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
    if (!go) throw new Error('go not found (needed to build CoreDNS with dnsbpf from images/coredns)');
    const coredns = join(this.dir, 'coredns-clawker');
    await new Promise<void>((resolve, reject) => {
      const child = spawn(go, ['build', '-trimpath', '-ldflags=-s -w', '-o', coredns, './cmd/coredns-clawker'], {
        cwd: join(ROOT, 'images', 'coredns'),
        env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`go build ./cmd/coredns-clawker exited ${code}\n${err}`))));
    });
    await buildBpfman();
  }

  async createNetwork(): Promise<Net> {
    const name = `${BENCH_PREFIX}-net-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
    for (let attempt = 0; attempt < 20; attempt++) {
      const prefix = `10.${200 + Math.floor(Math.random() * 50)}.${Math.floor(Math.random() * 256)}`;
      const r = await run('docker', ['network', 'create', '--driver', 'bridge', '--label', `${BENCH_LABEL}=${process.pid}`, '--subnet', `${prefix}.0/24`, '--gateway', `${prefix}.1`, name]);
      if (r.code === 0) {
        this.net = { name, prefix, subnet: `${prefix}.0/24`, gateway: `${prefix}.1`, at: (host) => `${prefix}.${host}` };
        return this.net;
      }
      if (!/overlap/i.test(r.stderr)) throw new Error(`docker network create ${name}: ${r.stderr.trim()}`);
    }
    throw new Error('no free 10.x.y.0/24 subnet after 20 attempts');
  }

  /** A container of the base image on the run's network, with the helper mounted at /bench. */
  async start(what: string, options: { ip?: string; args?: readonly string[]; command?: readonly string[] } = {}): Promise<Container> {
    const name = `${BENCH_PREFIX}-${what}-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
    this.containers.push(name);
    await runOk('docker', [
      'run', '-d', '--name', name, '--label', `${BENCH_LABEL}=${process.pid}`, '--network', this.net.name,
      ...(options.ip ? ['--ip', options.ip] : []), '-v', `${this.dir}:${IN_CONTAINER}:ro`, ...(options.args ?? []),
      BASE_IMAGE, ...(options.command ?? ['sleep', 'infinity']),
    ]);
    const ip = (await runOk('docker', ['inspect', '-f', `{{(index .NetworkSettings.Networks "${this.net.name}").IPAddress}}`, name])).trim();
    return { name, ip, pid: await containerPid(name) };
  }

  /** Waits for a `ready` line in a container's log (the helper's servers print one). */
  async waitReady(c: Container): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const r = await run('docker', ['logs', c.name]);
      if (/^ready$/m.test(r.stdout)) return;
      await sleep(100);
    }
    throw new Error(`${c.name} did not get ready: ${(await run('docker', ['logs', c.name])).stderr}`);
  }

  /** Runs the helper in a container; its stdout. */
  helper(c: Container, args: readonly string[], timeoutMs = 120_000): Promise<string> {
    return runOk('docker', ['exec', c.name, `${IN_CONTAINER}/netbench`, ...args], timeoutMs);
  }

  /** A command in a container's network namespace, run from the host (the container needs no NET_ADMIN). */
  inNetns(c: Container, command: string, args: readonly string[]): Promise<string> {
    return runOk('nsenter', ['-t', String(c.pid), '-n', command, ...args]);
  }

  cgroupDir(c: Container): string {
    return cgroup2DirOfPid(c.pid);
  }

  /** bpfman on the run's pin directory; its JSON output. */
  async bpfman(args: readonly string[], timeoutMs = 60_000): Promise<unknown> {
    const out = await runOk(BPFMAN, [args[0]!, '--pin-dir', this.pinDir, ...args.slice(1)], timeoutMs);
    return out.trim() ? JSON.parse(out) : undefined;
  }

  poll(c: Container, args: readonly string[]): Poller {
    return new Poller(c.name, args);
  }

  async stop(): Promise<string[]> {
    const errors: string[] = [];
    for (const name of this.containers.reverse()) {
      try {
        await removeContainer(name);
      } catch (e) {
        errors.push(`remove ${name}: ${(e as Error).message}`);
      }
    }
    if (this.net) {
      const r = await run('docker', ['network', 'rm', this.net.name]);
      if (r.code !== 0 && !/not found/i.test(r.stderr)) errors.push(`docker network rm ${this.net.name}: ${r.stderr.trim()}`);
    }
    // Removing the pins removes the links (detaching the programs) and frees the maps and programs.
    rmSync(this.pinDir, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
    return errors;
  }
}
