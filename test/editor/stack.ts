/**
 * The real firewall stack behind the editor flow test, started and stopped by test/editor/run.sh:
 *
 *   node --import tsx test/editor/stack.ts serve STATE_DIR WORKSPACE --parent PID [--as-user USER]
 *       sweeps what killed runs left, then brings up: the stack images (scripts/build-images.sh),
 *       the Envoy stand-in, the test internet (its own resolver; allowed.test and blocked.test
 *       answered with TLS origins on 443; learn-a.test and learn-b.test, the learn test's names,
 *       resolve to addresses nobody listens on: only the proxy may ever answer them), settings.yaml
 *       pointing CoreDNS at that resolver,
 *       `clawker firewall up`, the route between the firewall network and the internet, and the
 *       agent `dev` of WORKSPACE (`clawker run -d`, the real agent image, `sleep infinity`).
 *       Then it writes STATE_DIR/stack.env (the CLAWKER_* variables for code-server, hence for
 *       the extension host and the CLI it runs) and STATE_DIR/stack.json (StackInfo, for the
 *       test), and last STATE_DIR/ready. It keeps running, holding the stack, until SIGTERM or
 *       SIGINT or until PID (run.sh) is gone; then it removes everything and exits (non-zero if
 *       something could not be removed). If the stack cannot be brought up it writes
 *       STATE_DIR/failed (the reason), removes what it made and exits 1. With --as-user every CLI
 *       step runs as USER (runuser, a clean environment, HOME=STATE_DIR/home, which run.sh made
 *       the user's): the data dir is the user's, created by the CLI, and the agent takes its UID.
 *   node --import tsx test/editor/stack.ts sweep
 *       only the sweep.
 *
 * Why a process that stays: the test internet and the e2e helpers label what they create with the
 * pid of the process that made it, and every suite sweeps objects whose pid is gone. A stack made by
 * a process that exited would be swept from under the editor test by any concurrent e2e run.
 *
 * Everything this stack owns is named after the serving process: stack prefix clawker-editor-PID
 * (containers `clawker-editor-PID-*` and `clawker-editor-PID.<project>.<agent>`, network, pin dir,
 * agents cgroup), agent image clawker-editor/agent:PID; the sweep removes those of dead pids.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AgentSummary } from '../../src/core/agents/lifecycle';
import type { Status } from '../../src/core/stack/controlPlaneApi';
import { type StackNames, stackNames } from '../../src/core/stack/stackNames';
import { sweepStaleNetworks } from '../e2e/datapath-testbed';
import { ensureEnvoyStandinImage, sweepStaleInternetRoutes, TestInternet } from '../e2e/internet';
import { ensureStackImages } from '../e2e/stackImages';
import { BASE_IMAGE, BPFFS_DIR, cgroupHierarchies, clawker, type ClawkerResult, pidAlive, removeCgroupDirs, requireTestbed, run, runOk, sweepStale, testStackEnv, removeStackVolumes } from '../e2e/testbed';

/** What the flow test needs to know about the stack (STATE_DIR/stack.json). */
export interface StackInfo {
  /** The workspace the agent runs in (the folder code-server opens). */
  readonly workspace: string;
  readonly project: string;
  readonly agent: string;
  /** The agent's container: `docker exec` runs the agent's requests in it. */
  readonly agentContainer: string;
  /** The Envoy stand-in's container: envoyRecords() reads what reached the proxy. */
  readonly envoyContainer: string;
  readonly controlplaneContainer: string;
  /** The origin blocked.test resolves to: it must never see the agent (only ever the proxy answers here). */
  readonly blockedOriginContainer: string;
  /** The test internet's resolver and the addresses its zone gives. */
  readonly dns: string;
  readonly zone: Readonly<Record<string, string>>;
  /** The environment stack.env exports (the CLI needs it too). */
  readonly env: Readonly<Record<string, string>>;
  /** The user the stack, the agent and code-server run as (`--as-user`); root when absent. */
  readonly asUser?: string;
}

const EDITOR_PREFIX = 'clawker-editor';
const AGENT_IMAGE_REPOSITORY = 'clawker-editor/agent';
export const PROJECT = 'editor-flow';
export const AGENT = 'dev';
/** Host numbers on the test internet. */
const HOST = { allowed: 10, blocked: 30, learnA: 40, learnB: 41 } as const;

const say = (line: string): void => void process.stdout.write(`[stack] ${line}\n`);

async function phase<T>(what: string, fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await fn();
  say(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(250);
  }
}

/** `export NAME='value'` lines a shell sources. */
export function envFile(env: Readonly<Record<string, string>>): string {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}='${v.replace(/'/g, `'\\''`)}'\n`)
    .join('');
}

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

// ---------------------------------------------------------------------------------------------
// The stack
// ---------------------------------------------------------------------------------------------

export class EditorStack {
  readonly names: StackNames = stackNames(`${EDITOR_PREFIX}-${process.pid}`);
  readonly pinDir = join(BPFFS_DIR, this.names.prefix);
  readonly agentImage = `${AGENT_IMAGE_REPOSITORY}:${process.pid}`;
  readonly inet = new TestInternet();
  readonly dataDir: string;
  readonly settings: string;
  private env: Record<string, string> = {};
  private agentContainer = '';

  constructor(
    readonly stateDir: string,
    readonly workspace: string,
    /** Run every CLI step as this user (its data dir made by the CLI, its HOME in STATE_DIR/home). */
    readonly asUser?: string,
  ) {
    this.dataDir = join(stateDir, 'clawker-data');
    // As a user, the data dir is the CLI's to create (the user's, 0700): the settings live beside it.
    this.settings = asUser ? join(stateDir, 'settings.yaml') : join(this.dataDir, 'settings.yaml');
  }

  /** Runs the CLI bundle with the stack's environment, in the workspace (it finds .clawker.yaml there). */
  cli(...args: string[]): Promise<ClawkerResult> {
    return clawker(args, { env: { ...process.env, ...this.env }, cwd: this.workspace, timeoutMs: 900_000, ...(this.asUser ? { asUser: this.asUser } : {}) });
  }

  private async cliOk(...args: string[]): Promise<string> {
    const r = await this.cli(...args);
    if (r.code !== 0) throw new Error(`clawker ${args.join(' ')} exited ${r.code}:\n${r.stderr.trim()}\n${r.stdout.trim()}`);
    return r.stdout;
  }

  async up(): Promise<StackInfo> {
    await phase('test bed check', () => requireTestbed(['docker daemon', 'cgroup v2 mount', 'bpffs', 'base image']));
    if (!this.asUser) mkdirSync(this.dataDir, { recursive: true });
    const [images, envoy] = await phase('stack images + Envoy stand-in', () => Promise.all([ensureStackImages(), ensureEnvoyStandinImage()]));
    this.env = {
      ...testStackEnv({ dataDir: this.dataDir, stack: this.names.prefix, pinDir: this.pinDir, settings: this.settings, images: { ...images, envoy } }),
      CLAWKER_BASE_IMAGE: BASE_IMAGE,
      CLAWKER_AGENT_IMAGE: this.agentImage,
      // The stack stays up between the test's steps even when no agent runs for a while.
      CLAWKER_DRAIN_AFTER_MS: '600000',
      // The user's own home (run.sh made it, the user's): code-server and the CLI write there.
      ...(this.asUser ? { HOME: join(this.stateDir, 'home') } : {}),
    };
    const zone = { 'allowed.test': HOST.allowed, 'blocked.test': HOST.blocked, 'learn-a.test': HOST.learnA, 'learn-b.test': HOST.learnB };
    const [, blockedOrigin] = await phase('test internet (resolver, origins)', async () => {
      await this.inet.start(zone);
      return Promise.all([
        this.inet.startOrigin('allowed', this.inet.address(HOST.allowed), [443], { tls: true }),
        this.inet.startOrigin('blocked', this.inet.address(HOST.blocked), [443], { tls: true }),
      ]);
    });
    writeFileSync(this.settings, `firewall:\n  upstream_dns:\n    - ${this.inet.dnsIp}\n`);
    const status = await phase('clawker firewall up', async () => JSON.parse(await this.cliOk('firewall', 'up', '--json')) as Status);
    await this.inet.routeFrom(status.network.subnet);
    const created = await phase(`clawker run -d --agent ${AGENT} (agent image ${this.agentImage})`, async () =>
      JSON.parse(await this.cliOk('run', '-d', '--json', '--agent', AGENT, '--', 'sleep', 'infinity')) as { created?: { name?: string } },
    );
    this.agentContainer = created.created?.name ?? `${this.names.prefix}.${PROJECT}.${AGENT}`;
    await phase('agent running and enrolled', () =>
      waitFor(
        `agent ${AGENT} running and enrolled in the firewall`,
        async () => {
          const agents = JSON.parse(await this.cliOk('ps', '-a', '--json')) as AgentSummary[];
          const mine = agents.find((a) => a.agent === AGENT && a.project === PROJECT);
          return mine?.state === 'running' && mine.firewall === 'enrolled' ? mine : undefined;
        },
        60_000,
      ),
    );
    return {
      workspace: this.workspace,
      project: PROJECT,
      agent: AGENT,
      agentContainer: this.agentContainer,
      envoyContainer: this.names.envoy,
      controlplaneContainer: this.names.controlplane,
      blockedOriginContainer: blockedOrigin.container,
      dns: this.inet.dnsIp,
      zone: Object.fromEntries(Object.entries(zone).map(([name, host]) => [name, this.inet.address(host)])),
      env: this.env,
      ...(this.asUser ? { asUser: this.asUser } : {}),
    };
  }

  /** Removes everything up() made (whatever got made); returns what could not be removed. */
  async down(): Promise<string[]> {
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    // The agents first (any the test created too), then the stack, the internet, the kernel side.
    await attempt('agent containers', () => removeContainersNamed((n) => n.startsWith(`${this.names.prefix}.`)));
    if (Object.keys(this.env).length) await this.cli('firewall', 'down'); // best effort: the containers go next anyway
    await attempt('stack containers', () => removeContainersNamed((n) => n.startsWith(`${this.names.prefix}-`)));
    await attempt('stack network', async () => {
      const r = await run('docker', ['network', 'rm', this.names.network]);
      await removeStackVolumes(this.names);
      if (r.code !== 0 && !/not found/i.test(r.stderr)) throw new Error(r.stderr.trim());
    });
    errors.push(...(await this.inet.stop()));
    await attempt('pin dir', async () => rmSync(this.pinDir, { recursive: true, force: true }));
    await attempt('agents cgroup', () => removeCgroupDirsOrFail(this.names.agentsCgroup));
    await attempt('agent image', async () => {
      const r = await run('docker', ['image', 'rm', this.agentImage]);
      if (r.code !== 0 && !/No such image/i.test(r.stderr)) throw new Error(r.stderr.trim());
    });
    await attempt('data dir', async () => rmSync(this.dataDir, { recursive: true, force: true }));
    return errors;
  }
}

async function removeContainersNamed(match: (name: string) => boolean): Promise<void> {
  const names = (await runOk('docker', ['ps', '-a', '--format', '{{.Names}}'])).split('\n').filter(Boolean).filter(match);
  for (const name of names) {
    const r = await run('docker', ['rm', '-f', name]);
    if (r.code !== 0 && !/No such container/i.test(r.stderr)) throw new Error(`docker rm -f ${name}: ${r.stderr.trim()}`);
  }
}

/** The stack's teardown must leave no cgroup behind: what could not be removed is an error. */
async function removeCgroupDirsOrFail(cgroup: string): Promise<void> {
  const left = await removeCgroupDirs(cgroup);
  if (left.length) throw new Error(left.join('; '));
}

// ---------------------------------------------------------------------------------------------
// Leftovers of killed runs
// ---------------------------------------------------------------------------------------------

const deadPid = (text: string | undefined): boolean => text !== undefined && /^\d+$/.test(text) && !pidAlive(Number(text));

/**
 * Removes what editor runs whose process is gone left behind (containers, network, pin dir, agents
 * cgroup, agent image, run directories), and what the e2e helpers' own sweeps cover (the test
 * internet's containers, networks and iptables rules of dead pids).
 */
export async function sweepDeadRuns(): Promise<void> {
  const ownerOf = new RegExp(`^${EDITOR_PREFIX}-(\\d+)[-.]`);
  await removeContainersNamed((name) => deadPid(ownerOf.exec(name)?.[1]));
  const networks = (await runOk('docker', ['network', 'ls', '--format', '{{.Name}}'])).split('\n').filter(Boolean);
  for (const n of networks) if (deadPid(ownerOf.exec(n)?.[1])) await run('docker', ['network', 'rm', n]);
  if (existsSync(BPFFS_DIR)) {
    for (const entry of readdirSync(BPFFS_DIR)) {
      const m = new RegExp(`^${EDITOR_PREFIX}-(\\d+)$`).exec(entry);
      if (m && deadPid(m[1])) rmSync(join(BPFFS_DIR, entry), { recursive: true, force: true });
    }
  }
  for (const root of cgroupHierarchies()) {
    let entries: string[];
    try {
      entries = readdirSync(root);
    } catch {
      continue; // not a directory
    }
    for (const entry of entries) {
      const m = new RegExp(`^${EDITOR_PREFIX}-(\\d+)-agents$`).exec(entry);
      if (m && deadPid(m[1])) await run('rmdir', [join(root, entry)]);
    }
  }
  const images = (await runOk('docker', ['image', 'ls', AGENT_IMAGE_REPOSITORY, '--format', '{{.Tag}}'])).split('\n').filter(Boolean);
  for (const tag of images) if (deadPid(tag)) await run('docker', ['image', 'rm', `${AGENT_IMAGE_REPOSITORY}:${tag}`]);
  // run.sh's temp dirs (code-server state, the stack's data dir with its CA key), by run.sh's pid;
  // and the code-server a killed run.sh left running (its own process group, see run.sh).
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith('clawker-editor.')) continue;
    const dir = join(tmpdir(), entry);
    const pidFile = join(dir, 'run.pid');
    if (!existsSync(pidFile) || !deadPid(readFileSync(pidFile, 'utf8').trim())) continue;
    stopOrphanedCodeServer(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  await sweepStale();
  await sweepStaleNetworks();
  await sweepStaleInternetRoutes();
}

/** Kills the process group of the code-server named in DIR/code-server.pid, if that process still serves DIR. */
function stopOrphanedCodeServer(dir: string): void {
  const pidFile = join(dir, 'code-server.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 1 || !pidAlive(pid)) return;
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // gone meanwhile
  }
  if (!cmdline.includes(dir)) return; // the pid was reused by another process
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

async function serve(stateDir: string, workspaceArg: string, parent: number | undefined, asUser?: string): Promise<number> {
  const workspace = realpathSync(workspaceArg);
  await phase('sweep of dead runs', sweepDeadRuns);
  const stack = new EditorStack(stateDir, workspace, asUser);
  const stopRequested = new Promise<string>((resolve) => {
    // `on`, not `once`: a second signal (Ctrl-C reaches the whole process group, then run.sh sends
    // SIGTERM) must not kill the process half-way through the teardown.
    process.on('SIGTERM', () => resolve('SIGTERM'));
    process.on('SIGINT', () => resolve('SIGINT'));
  });
  const parentGone = parent
    ? (async () => {
        while (pidAlive(parent)) await sleep(1000);
        return `parent ${parent} is gone`;
      })()
    : new Promise<string>(() => undefined);

  let code = 0;
  const started = performance.now();
  const starting = stack.up().then(
    (info) => ({ info }),
    (e: unknown) => ({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
  const interrupted = await Promise.race([starting.then(() => undefined), stopRequested, parentGone]);
  // Interrupted while starting: let the start settle (its steps have timeouts), so nothing it is
  // still making appears after the teardown.
  const upOrStop = interrupted ? await starting.then(() => ({ error: `interrupted while starting (${interrupted})` })) : await starting;
  if ('info' in upOrStop) {
    writeAtomic(join(stateDir, 'stack.env'), envFile(upOrStop.info.env));
    writeAtomic(join(stateDir, 'stack.json'), `${JSON.stringify(upOrStop.info, null, 2)}\n`);
    writeAtomic(join(stateDir, 'ready'), `${process.pid}\n`);
    say(`up in ${((performance.now() - started) / 1000).toFixed(1)} s: agent ${upOrStop.info.agentContainer}; waiting for the end of the test`);
    say(`stopping: ${await Promise.race([stopRequested, parentGone])}`);
  } else {
    code = 1;
    writeAtomic(join(stateDir, 'failed'), `${upOrStop.error}\n`);
    say(`FAILED to bring the stack up: ${upOrStop.error}`);
  }
  const errors = await phase('teardown', () => stack.down());
  if (errors.length) {
    say(`teardown left things behind:\n  ${errors.join('\n  ')}`);
    code = 1;
  }
  return code;
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'sweep' && rest.length === 0) {
    await sweepDeadRuns();
    return 0;
  }
  if (verb === 'serve') {
    const options = new Map<string, string>();
    const positional: string[] = [];
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '--parent' || rest[i] === '--as-user') options.set(rest[i]!, rest[++i] ?? '');
      else positional.push(rest[i]!);
    }
    const parent = options.has('--parent') ? Number(options.get('--parent')) : undefined;
    const asUser = options.get('--as-user');
    if (positional.length === 2 && (parent === undefined || Number.isInteger(parent)) && asUser !== '') return serve(positional[0]!, positional[1]!, parent, asUser);
  }
  process.stderr.write('usage: stack.ts serve STATE_DIR WORKSPACE [--parent PID] [--as-user USER] | stack.ts sweep\n');
  return 2;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`[stack] ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
