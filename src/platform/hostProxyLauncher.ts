/**
 * Starts, finds and stops the host proxy daemon (src/hostproxy/, bundled to dist/hostproxy.js): one
 * per data directory, listening on the firewall network's gateway (the host side of clawker-net) at
 * HOST_PROXY_PORT. Agents reach it at `http://<gateway>:18374` (ENV_HOST_PROXY).
 *
 *   <dataDir>/hostproxy/            0700
 *     secret                        32 random bytes (0600): the key of every container's token
 *     hostproxy.pid                 written by the daemon once it listens (JSON: pid, address, port, prefix)
 *     hostproxy.log                 the daemon's stdout and stderr (appended; rotated to .1 past 1 MiB)
 *     launch.lock                   serialises launchers
 *
 * The daemon is started detached (it outlives the editor or CLI that started it) with the same
 * Node (VS Code's Electron as Node, ELECTRON_RUN_AS_NODE=1). "Running" means: the pid file names a
 * live process and a health request to the recorded address answers with that pid; anything else
 * is treated as not running. Nothing here reads or logs the secret beyond creating it.
 */
import { randomBytes } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { HOST_PROXY_PORT } from '../core/agents/agentContract';
import { formatEngineAddress } from '../core/engine/engineAddress';
import { engineTlsEnv, type ResolvedEngine } from '../core/engine/engineResolution';
import { stackNames } from '../core/stack/stackNames';
import {
  HOST_PROXY_LOG_FILE,
  HOST_PROXY_LOG_MAX_BYTES,
  HOST_PROXY_PID_FILE,
  HOST_PROXY_SECRET_BYTES,
  HOST_PROXY_SECRET_FILE,
  HOST_PROXY_SERVICE,
  type HostProxyPidFile,
} from '../hostproxy/constants';
import { hostProxyDir, readHostProxySecret } from '../hostproxy/secret';
import { withFileLock, writeFileIfAbsent } from './files';

export {
  HOST_PROXY_LOG_FILE,
  HOST_PROXY_LOG_MAX_BYTES,
  HOST_PROXY_PID_FILE,
  HOST_PROXY_SECRET_FILE,
  HOST_PROXY_SERVICE,
  HOST_PROXY_SUBDIR,
  type HostProxyPidFile,
} from '../hostproxy/constants';

export { hostProxyDir, readHostProxySecret } from '../hostproxy/secret';

const DIRECTORY_MODE = 0o700;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;

/** The URL an agent uses to reach a host proxy listening on `address`:`port`. */
export function hostProxyUrl(listenAddress: string, port: number = HOST_PROXY_PORT): string {
  return `http://${isIP(listenAddress) === 6 ? `[${listenAddress}]` : listenAddress}:${port}`;
}

function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: DIRECTORY_MODE });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a symbolic link is refused)`);
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, DIRECTORY_MODE);
}

/**
 * The host proxy's secret: 32 random bytes in `<dataDir>/hostproxy/secret` (directory 0700, file
 * 0600), created once, atomically (two processes starting together end up with the same secret).
 * Fails (closed) if the file has the wrong size or is readable by others.
 */
export async function loadOrCreateHostProxySecret(dataDir: string): Promise<Buffer> {
  const dir = hostProxyDir(dataDir);
  ensurePrivateDir(dir);
  const path = join(dir, HOST_PROXY_SECRET_FILE);
  if (!fs.existsSync(path)) writeFileIfAbsent(path, randomBytes(HOST_PROXY_SECRET_BYTES), { mode: 0o600 });
  return readHostProxySecret(dataDir);
}

export function readHostProxyPidFile(dataDir: string): HostProxyPidFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(join(hostProxyDir(dataDir), HOST_PROXY_PID_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const v = JSON.parse(text) as Partial<HostProxyPidFile>;
    if (!Number.isInteger(v.pid) || (v.pid ?? 0) <= 0) return undefined;
    if (typeof v.listenAddress !== 'string' || !Number.isInteger(v.port) || typeof v.stackPrefix !== 'string') return undefined;
    return v as HostProxyPidFile;
  } catch {
    return undefined;
  }
}

/** The pid the daemon at `url` reports on its health endpoint, or undefined if nothing of ours answers. */
export function hostProxyHealth(url: string, timeoutMs = 1_500): Promise<number | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (v: number | undefined): void => {
      if (!settled) {
        settled = true;
        resolve(v);
      }
    };
    let req;
    try {
      req = request(`${url}/v1/health`, { method: 'GET', timeout: timeoutMs, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
          if (body.length > 4096) res.destroy();
        });
        res.on('end', () => {
          try {
            const v = JSON.parse(body) as { service?: unknown; pid?: unknown };
            done(res.statusCode === 200 && v.service === HOST_PROXY_SERVICE && typeof v.pid === 'number' ? v.pid : undefined);
          } catch {
            done(undefined);
          }
        });
        res.on('error', () => done(undefined));
        res.on('close', () => done(undefined));
      });
    } catch {
      done(undefined);
      return;
    }
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(undefined));
    req.end();
  });
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The daemon recorded in the pid file, if it is alive and answers health with its pid. */
export async function runningHostProxy(dataDir: string): Promise<HostProxyPidFile | undefined> {
  const rec = readHostProxyPidFile(dataDir);
  if (!rec || !pidAlive(rec.pid)) return undefined;
  return (await hostProxyHealth(hostProxyUrl(rec.listenAddress, rec.port))) === rec.pid ? rec : undefined;
}

/** Whether `pid` is a host proxy of this data directory (its command line), for stopping one that no longer answers. */
function commandLineOf(pid: number): Promise<string | undefined> {
  if (process.platform === 'linux') {
    try {
      return Promise.resolve(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '));
    } catch {
      return Promise.resolve(undefined);
    }
  }
  return new Promise((resolve) => {
    execFile('ps', ['-o', 'command=', '-p', String(pid)], { timeout: 5_000 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

async function isOurDaemon(pid: number, dataDir: string): Promise<boolean> {
  const cmd = await commandLineOf(pid);
  return cmd !== undefined && /hostproxy/.test(cmd) && cmd.includes(`--data-dir ${dataDir}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function terminate(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  while (pidAlive(pid) && Date.now() < deadline + STOP_TIMEOUT_MS) await sleep(50);
}

async function stopUnlocked(dataDir: string): Promise<boolean> {
  const rec = readHostProxyPidFile(dataDir);
  if (!rec || !pidAlive(rec.pid)) {
    fs.rmSync(join(hostProxyDir(dataDir), HOST_PROXY_PID_FILE), { force: true });
    return false;
  }
  const answers = (await hostProxyHealth(hostProxyUrl(rec.listenAddress, rec.port))) === rec.pid;
  // A pid that neither answers nor looks like our daemon may have been reused: leave it alone.
  if (!answers && !(await isOurDaemon(rec.pid, dataDir))) {
    fs.rmSync(join(hostProxyDir(dataDir), HOST_PROXY_PID_FILE), { force: true });
    return false;
  }
  await terminate(rec.pid);
  fs.rmSync(join(hostProxyDir(dataDir), HOST_PROXY_PID_FILE), { force: true });
  return true;
}

/** Stops the data directory's host proxy, if one runs. Returns whether one was stopped. */
export async function stopHostProxy(dataDir: string): Promise<boolean> {
  const dir = hostProxyDir(dataDir);
  if (!fs.existsSync(dir)) return false;
  return withFileLock(join(dir, 'launch.lock'), () => stopUnlocked(dataDir), { timeoutMs: 30_000 });
}

/** How to run the daemon: the bundle beside this one, or (tests, running from src under tsx) the source. */
function daemonCommand(defaultCwd: string): { command: string; args: string[]; cwd: string } {
  const bundled = join(__dirname, 'hostproxy.js');
  if (fs.existsSync(bundled)) return { command: process.execPath, args: [bundled], cwd: defaultCwd };
  const root = join(__dirname, '..', '..');
  const source = join(root, 'src', 'hostproxy', 'main.ts');
  // From the source (tests): tsx is resolved from the repository root, hence that working directory.
  if (fs.existsSync(source)) return { command: process.execPath, args: ['--import', 'tsx', source], cwd: root };
  const dist = join(root, 'dist', 'hostproxy.js');
  if (fs.existsSync(dist)) return { command: process.execPath, args: [dist], cwd: defaultCwd };
  throw new Error(`host proxy: cannot find hostproxy.js beside ${__dirname}; run npm run build`);
}

/** Moves a log past the cap aside (one generation kept). */
export function rotateHostProxyLog(logPath: string, maxBytes = HOST_PROXY_LOG_MAX_BYTES): void {
  try {
    if (fs.statSync(logPath).size > maxBytes) fs.renameSync(logPath, `${logPath}.1`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function logTail(logPath: string, lines = 5): string {
  try {
    const text = fs.readFileSync(logPath, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface EnsureHostProxyOptions {
  readonly dataDir: string;
  /** The firewall network's gateway address (an IP literal). */
  readonly listenAddress: string;
  /** Default HOST_PROXY_PORT (18374). */
  readonly port?: number;
  /** The stack whose agents the daemon serves (their `dev.clawker.stack` label). */
  readonly stackPrefix: string;
  /** The engine the daemon looks agents up on (the CLI's); default: the platform's. */
  readonly engine?: ResolvedEngine;
  readonly onProgress?: (m: string) => void;
}

/**
 * Starts the host proxy detached unless one already runs for this data directory, address, port and
 * stack; one running for another address (the network was recreated) is stopped first. Resolves
 * when the daemon answers its health request, with the URL agents use.
 */
export async function ensureHostProxy(o: EnsureHostProxyOptions): Promise<{ url: string; pid: number; started: boolean }> {
  const port = o.port ?? HOST_PROXY_PORT;
  if (isIP(o.listenAddress) === 0) throw new Error(`host proxy: listen address ${JSON.stringify(o.listenAddress)} is not an IP address`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`host proxy: invalid port ${port}`);
  stackNames(o.stackPrefix); // validates the prefix
  const progress = o.onProgress ?? (() => undefined);
  const url = hostProxyUrl(o.listenAddress, port);
  await loadOrCreateHostProxySecret(o.dataDir);
  const dir = hostProxyDir(o.dataDir);
  return withFileLock(
    join(dir, 'launch.lock'),
    async () => {
      const running = await runningHostProxy(o.dataDir);
      if (running && running.listenAddress === o.listenAddress && running.port === port && running.stackPrefix === o.stackPrefix) {
        return { url, pid: running.pid, started: false };
      }
      if (running) {
        progress(`host proxy: restarting (was on ${hostProxyUrl(running.listenAddress, running.port)})`);
      }
      await stopUnlocked(o.dataDir);
      // Another data dir's host proxy (another user, a stack left running) holds the address: say so
      // instead of a bare EADDRINUSE from the daemon's log.
      const squatter = await hostProxyHealth(url, 1_000);
      if (squatter !== undefined) {
        throw new Error(
          `host proxy: ${url} is already served by another Clawker host proxy (pid ${squatter}), started with another data dir; stop it with \`clawker host-proxy stop\` and that CLAWKER_DATA_DIR, or kill ${squatter}`,
        );
      }

      const logPath = join(dir, HOST_PROXY_LOG_FILE);
      rotateHostProxyLog(logPath);
      const { command, args, cwd } = daemonCommand(dir);
      const argv = [...args, '--data-dir', o.dataDir, '--listen', o.listenAddress, '--port', String(port), '--stack-prefix', o.stackPrefix];
      if (o.engine) argv.push('--docker-host', formatEngineAddress(o.engine.address));
      progress(`host proxy: starting on ${url}`);
      const logFd = fs.openSync(logPath, 'a', 0o600);
      let child;
      try {
        child = spawn(command, argv, {
          detached: true,
          stdio: ['ignore', logFd, logFd],
          cwd,
          env: { ...process.env, ...(o.engine ? engineTlsEnv(o.engine) : {}), ELECTRON_RUN_AS_NODE: '1' },
        });
      } finally {
        fs.closeSync(logFd);
      }
      let exited: string | undefined;
      child.on('exit', (code, signal) => (exited = signal ?? `exit code ${code}`));
      child.on('error', (e) => (exited = e.message));
      const pid = child.pid;
      child.unref();

      const deadline = Date.now() + START_TIMEOUT_MS;
      while (Date.now() < deadline) {
        if (exited !== undefined) break;
        if (pid !== undefined && (await hostProxyHealth(url, 1_000)) === pid) {
          progress(`host proxy: running (pid ${pid})`);
          return { url, pid, started: true };
        }
        await sleep(100);
      }
      if (exited === undefined && pid !== undefined) await terminate(pid);
      const tail = logTail(logPath);
      throw new Error(
        `host proxy did not start on ${url} (${exited ?? 'no answer within 15 s'})${tail ? `; its log (${logPath}) ends:\n${tail}` : `; see ${logPath}`}`,
      );
    },
    { timeoutMs: 30_000 },
  );
}
