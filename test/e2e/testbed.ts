/**
 * Helpers for the end-to-end suites: run commands (argument arrays, never shell strings), find the
 * test bed's components, fail (not skip) naming what is missing, and clean up what a run left.
 *
 * The test bed is installed and started by `bash test/testbed/provision.sh`.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const BPF_DIR = join(ROOT, 'bpf');
export const BPFFS_DIR = '/sys/fs/bpf';
export const BASE_IMAGE = 'clawker-testbed/debian:bookworm';
/** Prefix of everything these suites create: container names, bpffs pin dirs. */
export const E2E_PREFIX = 'clawker-e2e';
/** Label on every container these suites start; its value is the pid of the test process. */
export const E2E_PID_LABEL = 'dev.clawker.e2e.pid';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program with an argument array; resolves with its exit code and output, never throws on exit code. */
export function run(file: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        // spawn failure (ENOENT, EACCES): not an exit code
        reject(new Error(`cannot run ${file}: ${err.message}`));
        return;
      }
      if (err && err.killed) {
        reject(new Error(`${file} ${args.join(' ')}: killed after ${timeoutMs} ms\n${stderr}`));
        return;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Where the CLI bundle is (node scripts/build.mjs writes it). */
export const CLI_BUNDLE = join(ROOT, 'dist', 'cli.js');

export interface ClawkerResult extends RunResult {
  /** Wall-clock milliseconds, Node's start included. */
  ms: number;
}

/**
 * Run the `clawker` CLI bundle as a user would, in its own Node process, with the given environment
 * (the suites' CLAWKER_* settings). Resolves with its exit code and output whatever happens (a
 * timeout or a crash is a non-zero code), so a test can assert on failures too.
 */
export function clawker(args: readonly string[], o: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; asUser?: string }): Promise<ClawkerResult> {
  const started = performance.now();
  // As another user (runuser: its uid, gid and groups) with a clean environment: its HOME, a plain
  // PATH, and the CLAWKER_* and proxy variables of `env`; nothing else of root's.
  const [file, argv] = o.asUser
    ? [
        'runuser',
        [
          '-u',
          o.asUser,
          '--',
          '/usr/bin/env',
          '-i',
          'PATH=/usr/bin:/bin',
          ...Object.entries(o.env)
            .filter(([k, v]) => v !== undefined && (k === 'HOME' || k.startsWith('CLAWKER_') || /^(https?|no)_proxy$/i.test(k) || k === 'NODE_EXTRA_CA_CERTS'))
            .map(([k, v]) => `${k}=${v}`),
          process.execPath,
          CLI_BUNDLE,
          ...args,
        ],
      ]
    : [process.execPath, [CLI_BUNDLE, ...args]];
  return new Promise((resolve) => {
    execFile(file, argv, { env: o.env, ...(o.cwd ? { cwd: o.cwd } : {}), timeout: o.timeoutMs ?? 180_000, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

/** Run and require exit code 0; the error names the command and carries its stderr. */
export async function runOk(file: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await run(file, args, timeoutMs);
  if (r.code !== 0) {
    throw new Error(`\`${file} ${args.join(' ')}\` exited ${r.code}\n${r.stderr.trim()}\n${r.stdout.trim()}`.trim());
  }
  return r.stdout;
}

/** Absolute path of an executable, looking in PATH and in the sbin dirs (bpftool is /usr/sbin/bpftool). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function mounts(): { mountPoint: string; fsType: string }[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [, mountPoint = '', fsType = ''] = line.split(' ');
      return { mountPoint, fsType };
    });
}

/** Mount point of the cgroup v2 hierarchy: /sys/fs/cgroup/unified (hybrid) or /sys/fs/cgroup (unified). */
export function cgroup2MountPoint(): string | undefined {
  const v2 = mounts().filter((m) => m.fsType === 'cgroup2').map((m) => m.mountPoint);
  return v2.find((m) => m === '/sys/fs/cgroup/unified') ?? v2.find((m) => m === '/sys/fs/cgroup');
}

export function bpffsMounted(): boolean {
  return mounts().some((m) => m.mountPoint === BPFFS_DIR && m.fsType === 'bpf');
}

export function bpftool(): string {
  const path = findExecutable('bpftool');
  if (!path) throw new Error('bpftool not found (Debian package bpftool; run bash test/testbed/provision.sh)');
  return path;
}

// ---------------------------------------------------------------------------------------------
// preflight
// ---------------------------------------------------------------------------------------------

export type Component = 'docker daemon' | 'cgroup v2 mount' | 'bpffs' | 'bpftool' | 'clang' | 'make' | 'base image';

/** Checks one component; resolves with nothing when it is live, or with what is wrong. */
export const CHECKS: Record<Component, () => Promise<string | undefined>> = {
  'docker daemon': async () => {
    if (!findExecutable('docker')) return 'docker CLI not found (Debian package docker.io)';
    const r = await run('docker', ['version', '--format', '{{.Server.Version}}'], 15_000);
    return r.code === 0 ? undefined : `dockerd does not answer on /var/run/docker.sock: ${r.stderr.trim()}`;
  },
  'cgroup v2 mount': async () =>
    cgroup2MountPoint() ? undefined : 'no cgroup2 filesystem at /sys/fs/cgroup/unified (hybrid) or /sys/fs/cgroup',
  bpffs: async () => (bpffsMounted() ? undefined : `no bpf filesystem mounted at ${BPFFS_DIR}`),
  bpftool: async () => {
    const path = findExecutable('bpftool');
    if (!path) return 'bpftool not found in PATH or /usr/sbin (Debian package bpftool)';
    const r = await run(path, ['version'], 15_000);
    return r.code === 0 ? undefined : `${path} version failed: ${r.stderr.trim()}`;
  },
  clang: async () => {
    if (!findExecutable('clang')) return 'clang not found (Debian package clang)';
    const r = await run('clang', ['--version'], 15_000);
    return r.code === 0 ? undefined : `clang --version failed: ${r.stderr.trim()}`;
  },
  make: async () => (findExecutable('make') ? undefined : 'make not found (Debian package build-essential)'),
  'base image': async () => {
    if (!findExecutable('docker')) return 'docker CLI not found';
    const r = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', BASE_IMAGE], 15_000);
    if (r.code === 0) return undefined;
    if (/Cannot connect to the Docker daemon/i.test(r.stderr)) return `cannot check for ${BASE_IMAGE}: docker daemon not answering`;
    return `image ${BASE_IMAGE} not present (images/base/import-debian.sh builds it)`;
  },
};

export const ALL_COMPONENTS = Object.keys(CHECKS) as Component[];

/** Throws, naming every missing component, unless all of `components` are live. */
export async function requireTestbed(components: readonly Component[] = ALL_COMPONENTS): Promise<void> {
  const problems: string[] = [];
  for (const c of components) {
    const problem = await CHECKS[c]();
    if (problem) problems.push(`  - ${c}: ${problem}`);
  }
  if (problems.length) {
    throw new Error(
      `test bed incomplete, missing:\n${problems.join('\n')}\n` +
        'Install and start it with: bash test/testbed/provision.sh (as root)',
    );
  }
}

// ---------------------------------------------------------------------------------------------
// containers and cgroups
// ---------------------------------------------------------------------------------------------

export function uniqueName(what: string): string {
  return `${E2E_PREFIX}-${what}-${process.pid}-${Math.random().toString(16).slice(2, 10)}`;
}

/** Start a long-running container from the base image; returns its full id. */
export async function startContainer(name: string, extraArgs: readonly string[] = []): Promise<string> {
  const out = await runOk('docker', [
    'run', '-d', '--name', name, '--label', `${E2E_PID_LABEL}=${process.pid}`, ...extraArgs,
    BASE_IMAGE, 'sleep', 'infinity',
  ]);
  return out.trim();
}

export async function removeContainer(idOrName: string): Promise<void> {
  const r = await run('docker', ['rm', '-f', idOrName]);
  if (r.code !== 0 && !/No such container/i.test(r.stderr)) {
    throw new Error(`docker rm -f ${idOrName}: ${r.stderr.trim()}`);
  }
}

export async function containerPid(id: string): Promise<number> {
  const pid = Number((await runOk('docker', ['inspect', '-f', '{{.State.Pid}}', id])).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`container ${id} has no running process (pid ${pid})`);
  return pid;
}

/** The container's cgroup v2 directory on the host: `0::/docker/<id>` in /proc/<pid>/cgroup, under the v2 mount. */
export function cgroup2DirOfPid(pid: number): string {
  const mount = cgroup2MountPoint();
  if (!mount) throw new Error('cgroup v2 is not mounted');
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`/proc/${pid}/cgroup has no cgroup v2 line (0::...)`);
  return join(mount, line.slice(3));
}

/**
 * The gateway of the container's bridge network: the host's address on that bridge (docker0 for
 * the default one). The default bridge's IPAM config carries no gateway in Docker 20.10, the
 * container's network settings do.
 */
export async function containerGateway(id: string): Promise<string> {
  const gw = (await runOk('docker', ['inspect', '-f', '{{.NetworkSettings.Gateway}}', id])).trim();
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(gw)) throw new Error(`container ${id} has no IPv4 gateway (got "${gw}")`);
  return gw;
}

/** Whether the process that labelled something is still running (EPERM: alive, not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove Docker containers or networks whose `label` names a process that is gone (a killed run). */
export async function removeObjectsOfDeadRuns(kind: 'container' | 'network', label: string): Promise<void> {
  const listing = kind === 'container' ? ['ps', '-a'] : ['network', 'ls'];
  const out = await runOk('docker', [...listing, '--filter', `label=${label}`, '--format', `{{${kind === 'container' ? '.ID' : '.Name'}}} {{.Label "${label}"}}`]);
  for (const line of out.split('\n').filter(Boolean)) {
    const [ref = '', pid = ''] = line.split(' ');
    if (!ref || pidAlive(Number(pid))) continue;
    if (kind === 'container') await removeContainer(ref);
    else await run('docker', ['network', 'rm', ref]);
  }
}

/** Remove a test stack's volumes (after its containers): they outlive `firewall down` by design. */
export async function removeStackVolumes(names: { readonly volumes: { readonly state: string; readonly envoyConfig: string; readonly corednsConfig: string } }): Promise<void> {
  await run('docker', ['volume', 'rm', '--force', names.volumes.state, names.volumes.envoyConfig, names.volumes.corednsConfig]);
}

/**
 * A file of the control plane's data dir (its volume; e.g. `events/egress.jsonl`), read through the
 * Docker API as a user on any engine could; undefined when it does not exist.
 */
export function readControlPlaneFile(container: string, relative: string): Promise<string | undefined> {
  const source = `${container}:/var/lib/clawker/${relative}`;
  return new Promise((resolve, reject) => {
    execFile('docker', ['cp', source, '-'], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: 60_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(untarSingle(stdout));
      if (/Could not find the file|No such container:path/i.test(stderr.toString('utf8'))) return resolve(undefined);
      reject(new Error(`docker cp ${source}: ${stderr.toString('utf8').trim() || err.message}`));
    });
  });
}

/** The content of the one regular file in a tar archive (what `docker cp … -` writes). */
function untarSingle(tar: Buffer): string {
  let offset = 0;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const body = tar.subarray(offset + 512, offset + 512 + size);
    if (type === '0' || type === '\0') return body.toString('utf8');
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error('no file in the archive');
}

/** Remove containers and bpffs pin dirs left by an e2e run whose process no longer exists (killed runs). */
export async function sweepStale(): Promise<void> {
  await removeObjectsOfDeadRuns('container', E2E_PID_LABEL);
  if (!existsSync(BPFFS_DIR)) return;
  for (const entry of readdirSync(BPFFS_DIR)) {
    const m = new RegExp(`^${E2E_PREFIX}-[a-z0-9]+-(\\d+)-[0-9a-f]+$`).exec(entry);
    if (m && !pidAlive(Number(m[1]))) rmSync(join(BPFFS_DIR, entry), { recursive: true, force: true });
  }
}

/**
 * Polls `probe` until it returns a value (not undefined), every `everyMs`; after `timeoutMs` fails
 * with `what` and the probe's last error. The suites' one way of waiting for the real stack.
 */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Every mounted cgroup hierarchy (the v2 mount and v1 controllers; their names differ between machines). */
export function cgroupHierarchies(): string[] {
  return existsSync(CGROUP_ROOT) ? readdirSync(CGROUP_ROOT).map((h) => join(CGROUP_ROOT, h)) : [];
}

/**
 * Removes the cgroup directory `cgroup` (e.g. a stack's agents cgroup) from every hierarchy it was
 * made in; returns the ones still there afterwards, each with why.
 */
export async function removeCgroupDirs(cgroup: string): Promise<string[]> {
  const left: string[] = [];
  for (const h of cgroupHierarchies()) {
    const dir = join(h, cgroup);
    if (!existsSync(dir)) continue;
    const r = await run('rmdir', [dir]);
    if (r.code !== 0 && existsSync(dir)) left.push(`rmdir ${dir}: ${r.stderr.trim()}`);
  }
  return left;
}

/** The environment that points the CLI (and the control plane it starts) at a test's own stack. */
export function testStackEnv(o: {
  readonly dataDir: string;
  readonly stack: string;
  readonly pinDir: string;
  readonly settings: string;
  readonly images: { readonly envoy: string; readonly coredns: string; readonly controlplane: string };
}): Record<string, string> {
  return {
    CLAWKER_DATA_DIR: o.dataDir,
    CLAWKER_STACK: o.stack,
    CLAWKER_PIN_DIR: o.pinDir,
    CLAWKER_SETTINGS: o.settings,
    CLAWKER_ENVOY_IMAGE: o.images.envoy,
    CLAWKER_COREDNS_IMAGE: o.images.coredns,
    CLAWKER_CONTROLPLANE_IMAGE: o.images.controlplane,
  };
}
