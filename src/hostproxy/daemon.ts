/**
 * The host proxy daemon's life, with the world injected (main.ts passes the real process, Docker,
 * git and opener): read the config (exit 2 if it is wrong), read the secret (refused if others can
 * read it), listen, then write <dataDir>/hostproxy/hostproxy.pid (0600). SIGTERM/SIGINT: stop
 * listening, remove the pid file if it still holds our pid, exit 0. Any other failure: exit 1.
 */
import type Docker from 'dockerode';
import { dockerClientFor, resolveEngineFor } from '../platform/docker/engineClient';
import { once } from 'node:events';
import * as fs from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { stackNames } from '../core/stack/stackNames';
import { writeFileAtomic } from '../platform/files';
import { AgentDirectory } from './agents';
import { urlOpener, type UrlOpener } from './browser';
import { HOST_PROXY_LOG_FILE, HOST_PROXY_LOG_MAX_BYTES, HOST_PROXY_PID_FILE, type HostProxyPidFile } from './constants';
import { type HostProxyConfig, readConfig } from './daemonConfig';
import { gitCredentialRunner, type GitCredentialRunner } from './gitCredential';
import { DEFAULT_IDLE_POLICY, idleStart, idleStep } from './idleExit';
import { formatLine, type LogLine, stdoutLog } from './log';
import { hostProxyDir, readHostProxySecret } from './secret';
import { createHostProxyServer } from './server';

/** What the daemon needs of its process. */
export interface DaemonProcess {
  readonly pid: number;
  on(event: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: () => void): unknown;
  exit(code: number): void;
}

export interface HostProxyDaemonDeps {
  readonly process: DaemonProcess;
  /** The log: stdout, rotated at `logPath` when given (before the config is read there is none). */
  readonly openLog: (logPath?: string) => LogLine;
  /** Raw stdout, for the last words of a failure. */
  readonly write: (text: string) => void;
  readonly readSecret: (dataDir: string) => Buffer;
  /** A client for the engine at `dockerHost` (the platform default when undefined). */
  readonly docker: (dockerHost: string | undefined) => Pick<Docker, 'listContainers'>;
  readonly git: GitCredentialRunner;
  readonly openUrl: UrlOpener;
  readonly setTimeout: (callback: () => void, ms: number) => { unref(): unknown };
  readonly now: () => number;
}

/** The daemon's log on `fd` (default stdout), rotated at `logPath` past HOST_PROXY_LOG_MAX_BYTES. */
export const daemonLog = (logPath?: string, fd?: number): LogLine => stdoutLog({ logPath, maxBytes: HOST_PROXY_LOG_MAX_BYTES, fd });

/** The real world. */
export function nodeHostProxyDeps(): HostProxyDaemonDeps {
  return {
    process,
    openLog: daemonLog,
    write: (text) => process.stdout.write(text),
    readSecret: readHostProxySecret,
    docker: (dockerHost) => dockerClientFor(resolveEngineFor(dockerHost ? { ...process.env, DOCKER_HOST: dockerHost } : process.env)),
    git: gitCredentialRunner(),
    openUrl: urlOpener(),
    setTimeout,
    now: Date.now,
  };
}

export interface RunningHostProxy {
  readonly server: Server;
  readonly pidPath: string;
  /** Stops listening, removes the pid file if it is still ours, then exits 0; once. */
  stop(signal: string): void;
}

/** Reads the secret, listens, writes the pid file; resolves once all that is done. */
export async function startHostProxy(config: HostProxyConfig, deps: HostProxyDaemonDeps): Promise<RunningHostProxy> {
  const { pid } = deps.process;
  const dir = hostProxyDir(config.dataDir);
  const log = deps.openLog(join(dir, HOST_PROXY_LOG_FILE));
  const secret = deps.readSecret(config.dataDir);
  const network = stackNames(config.stackPrefix).network;
  const agents = new AgentDirectory(deps.docker(config.dockerHost), { network, stackPrefix: config.stackPrefix });
  const server = createHostProxyServer({
    secret,
    agents,
    git: deps.git,
    openUrl: deps.openUrl,
    log,
  });

  // Stryker disable next-line BooleanLiteral: exclusive only changes how cluster workers share a port, and the daemon is never one
  server.listen({ host: config.listenAddress, port: config.port, exclusive: true });
  await once(server, 'listening'); // rejects with the listen error (EADDRINUSE, …)
  server.on('error', (e: NodeJS.ErrnoException) => log(`server error (${e.code ?? e.name})`));

  const pidPath = join(dir, HOST_PROXY_PID_FILE);
  const record: HostProxyPidFile = { pid, listenAddress: config.listenAddress, port: config.port, stackPrefix: config.stackPrefix };
  // Stryker disable next-line ObjectLiteral: 0o600 is writeFileAtomic's default too (kept explicit; the tests check the file's mode)
  writeFileAtomic(pidPath, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  log(`listening on ${config.listenAddress}:${config.port} for the agents of stack ${config.stackPrefix} (network ${network}), pid ${pid}`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    try {
      const now = JSON.parse(fs.readFileSync(pidPath, 'utf8')) as { pid?: number };
      if (now.pid === pid) fs.rmSync(pidPath); // gone since it was read: the catch below
    } catch {
      /* already gone */
    }
    server.close(() => deps.process.exit(0));
    server.closeAllConnections();
    deps.setTimeout(() => deps.process.exit(0), 2_000).unref();
  };
  if (config.idlePollMs > 0) watchIdle(agents, config, deps, stop);
  return { server, pidPath, stop };
}

/** Asks Docker every idlePollMs how many agents run, and stops the daemon when idleExit says so. */
function watchIdle(agents: AgentDirectory, config: HostProxyConfig, deps: HostProxyDaemonDeps, stop: (why: string) => void): void {
  const policy = { ...DEFAULT_IDLE_POLICY, graceMs: config.idleGraceMs };
  let state = idleStart(deps.now());
  const next = (): void => void deps.setTimeout(() => void tick(), config.idlePollMs).unref();
  const tick = async (): Promise<void> => {
    const seen = await agents.runningCount().then(
      (running) => ({ running }),
      (e: unknown) => ({ error: e instanceof Error ? e.message : String(e) }),
    );
    const step = idleStep(state, seen, deps.now(), policy);
    if ('exit' in step) {
      stop(step.exit);
      return;
    }
    state = step.state;
    next();
  };
  next();
}

/** `node hostproxy.js --data-dir …`: the daemon's own arguments, after node's and the script's path. */
export const daemonArguments = (argv: readonly string[]): string[] => argv.slice(2);

/** The daemon: config from argv and env, start, stop on SIGTERM/SIGINT. */
export async function runHostProxy(argv: string[], env: Readonly<Record<string, string | undefined>>, deps: HostProxyDaemonDeps): Promise<void> {
  try {
    let config: HostProxyConfig;
    try {
      config = readConfig(argv, env);
    } catch (e) {
      deps.openLog()(`failed: ${(e as Error).message}`); // readConfig throws Errors only
      deps.process.exit(2);
      return;
    }
    const running = await startHostProxy(config, deps);
    deps.process.on('SIGTERM', () => running.stop('SIGTERM'));
    deps.process.on('SIGINT', () => running.stop('SIGINT'));
    deps.process.on('SIGHUP', () => undefined); // detached: a closing terminal is not a reason to stop
  } catch (e: unknown) {
    deps.write(formatLine(`failed: ${e instanceof Error ? e.message : String(e)}`));
    deps.process.exit(1);
  }
}
