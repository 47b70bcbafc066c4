/**
 * agentd's life as PID 1, with the world injected (main.ts passes the real process, the native
 * helper, the session server and the timers; tests pass fakes): read the config (exit 2 if it is
 * wrong), load the native helper (exit 70 if it cannot be), wire the Supervisor, forward signals,
 * serve the session, and start the command at once (firewall off) or only when the session says
 * `start` (firewall on; never without a session). A command that cannot be found exits 127, one
 * that cannot be executed 126; agentd exits with the command's status.
 */
import { statSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { readConfig, type SessionFiles } from './config';
import { type ExecStepContext, type ExecStepRequest, type ExecStepResult, runExecStep } from './execStep';
import { loadNativeProcessControl, type NativeProcessControl } from './nativeProc';
import { readSessionMaterial, type SessionMaterial, type SessionServer, type SessionServerOptions, startSessionServer } from './session';
import type { SessionHandlers } from './sessionProtocol';
import { exitCodeOf, FORWARDED_SIGNALS, type ExitStatus, signalName, Supervisor } from './supervisor';

/** A second poll behind SIGCHLD: a lost signal must not leave a zombie or miss the command's exit. */
export const REAP_POLL_MS = 2_000;
/** Exec steps running at once, across all connections. */
export const MAX_CONCURRENT_EXEC = 4;
const SIGKILL = 9;
/** Shell conventions for a command that could not be started. */
export const EXIT_NOT_FOUND = 127;
export const EXIT_CANNOT_EXECUTE = 126;
export const EXIT_USAGE = 2;
export const EXIT_INTERNAL = 70;
/** After a failed start, a moment for the session to deliver the error to the control plane before agentd goes. */
export const FAILED_START_GRACE_MS = 200;

/** What agentd needs of its process. */
export interface AgentdProcess {
  readonly pid: number;
  on(event: 'SIGCHLD' | (typeof FORWARDED_SIGNALS)[number], listener: () => void): unknown;
  on(event: 'uncaughtException', listener: (error: Error) => void): unknown;
  exit(code: number): void;
}

export interface AgentdDeps {
  readonly process: AgentdProcess;
  /** One line on stderr; never throws. */
  readonly log: (message: string) => void;
  readonly loadNative: () => NativeProcessControl;
  readonly isDirectory: (path: string) => boolean;
  /** Whether agentd's stdin is a terminal (the command then gets it). */
  readonly stdinIsTerminal: () => boolean;
  readonly readSessionMaterial: (files: SessionFiles) => { readonly material: SessionMaterial } | { readonly problem: string };
  readonly startSessionServer: (material: SessionMaterial, options: SessionServerOptions) => Promise<SessionServer>;
  readonly runExecStep: (context: ExecStepContext, request: ExecStepRequest) => Promise<ExecStepResult>;
  readonly setTimeout: (callback: () => void, ms: number) => unknown;
  readonly setInterval: (callback: () => void, ms: number) => unknown;
}

/**
 * Writes `[agentd] message` lines to a descriptor, synchronously and never throwing: agentd's stderr
 * may be a terminal another process group now owns, and a failed log line must not take PID 1 down.
 */
export function fdLog(fd: number): (message: string) => void {
  return (message) => {
    try {
      writeSync(fd, `[agentd] ${message}\n`);
    } catch {
      // nowhere left to say it
    }
  };
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The real world. */
export function nodeAgentdDeps(): AgentdDeps {
  return {
    process,
    log: fdLog(2),
    loadNative: () => loadNativeProcessControl(),
    isDirectory,
    stdinIsTerminal: () => isatty(0),
    readSessionMaterial,
    startSessionServer,
    runExecStep,
    setTimeout,
    setInterval,
  };
}

export function describeExit(name: string, status: ExitStatus): string {
  return status.signal !== null
    ? `${name} was ended by ${signalName(status.signal)} (exit code ${exitCodeOf(status)})`
    : `${name} exited with code ${status.exitCode}`;
}

async function main(args: readonly string[], env: Readonly<Record<string, string | undefined>>, deps: AgentdDeps): Promise<void> {
  const { log } = deps;
  const result = readConfig(args, env);
  if ('error' in result) {
    log(result.error);
    deps.process.exit(EXIT_USAGE);
    return;
  }
  const { config } = result;
  const commandName = config.command[0]!;

  let processes: NativeProcessControl;
  try {
    processes = deps.loadNative();
  } catch (error) {
    log(`cannot load the native helper, so nothing can be started: ${(error as Error).message}`);
    deps.process.exit(EXIT_INTERNAL);
    return;
  }
  if (deps.process.pid !== 1) {
    // Outside a container (tests), orphans would go to the real init instead of being reaped here.
    try {
      processes.becomeSubreaper();
    } catch (error) {
      log(`cannot become a subreaper: ${(error as Error).message}`);
    }
  }

  let session: SessionServer | undefined;
  let finishing = false;
  const finish = async (code: number): Promise<void> => {
    if (finishing) return;
    finishing = true;
    // What PID 1 exiting would do anyway; explicit so a non-PID-1 agentd (tests) leaves nothing behind.
    supervisor.killAll(SIGKILL);
    await session?.close();
    deps.process.exit(code);
  };

  const supervisor = new Supervisor(
    {
      command: config.command,
      env: config.commandEnv,
      uid: config.uid,
      gid: config.gid,
      workdirs: [config.workdir, config.fallbackWorkdir],
      foreground: deps.stdinIsTerminal(),
    },
    {
      processes,
      isDirectory: deps.isDirectory,
      onCommandExit: (status) => {
        log(describeExit(commandName, status));
        void finish(exitCodeOf(status));
      },
    },
  );

  // Handlers before anything can start: PID 1 without a handler would ignore these signals.
  for (const signal of FORWARDED_SIGNALS) {
    deps.process.on(signal, () => {
      let action;
      try {
        action = supervisor.handleSignal(signal);
      } catch (error) {
        // EPERM would mean agentd lacks CAP_KILL: say so rather than die, docker stop still ends in SIGKILL.
        log(`cannot forward ${signal} to ${commandName}: ${(error as Error).message}`);
        return;
      }
      if (action.kind === 'exit') {
        log(`received ${signal} before ${commandName} started; exiting`);
        void finish(action.code);
      }
    });
  }
  deps.process.on('SIGCHLD', () => supervisor.reapChildren());
  deps.setInterval(() => supervisor.reapChildren(), REAP_POLL_MS);
  deps.process.on('uncaughtException', (error) => {
    log(`internal error: ${error.stack ?? error.message}`);
    supervisor.killAll(SIGKILL);
    deps.process.exit(EXIT_INTERNAL);
  });

  const startCommand = () => {
    try {
      const status = supervisor.start();
      if (status.pid !== undefined) log(`started ${commandName} as pid ${status.pid} (uid ${config.uid})`);
      return status;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE;
      log((error as Error).message);
      supervisor.markStartFailed(code);
      deps.setTimeout(() => void finish(code), FAILED_START_GRACE_MS);
      throw error;
    }
  };

  let execRunning = 0;
  const handlers: SessionHandlers = {
    status: () => supervisor.status(),
    start: () => {
      if (finishing) throw new Error('agentd is shutting down');
      return startCommand();
    },
    exec: async (request) => {
      if (finishing || supervisor.status().state === 'exited') return { ok: false, error: `${commandName} has exited; agentd is shutting down` };
      if (execRunning >= MAX_CONCURRENT_EXEC) return { ok: false, error: `too many exec steps at once (at most ${MAX_CONCURRENT_EXEC})` };
      execRunning += 1;
      try {
        return await deps.runExecStep({ supervisor, pipe: () => processes.pipe(), baseEnv: config.commandEnv }, request);
      } finally {
        execRunning -= 1;
      }
    },
  };

  const material = deps.readSessionMaterial(config.sessionFiles);
  if ('problem' in material) {
    log(`NO SESSION: ${material.problem}. The control plane cannot reach this container.`);
  } else {
    try {
      session = await deps.startSessionServer(material.material, { host: config.sessionHost, port: config.sessionPort, handlers, log });
      log(`session listening on ${session.address.address}:${session.address.port}`);
    } catch (error) {
      log(`NO SESSION: cannot listen on ${config.sessionHost}:${config.sessionPort}: ${(error as Error).message}. The control plane cannot reach this container.`);
    }
  }

  if (!config.waitForStart) {
    try {
      startCommand();
    } catch {
      // logged, and agentd is on its way out
    }
  } else if (session === undefined) {
    // Fail closed: without a session the firewall can never enroll us, so the command must not run.
    log(`the firewall is enabled but there is no session, so ${commandName} will not start. Recreate the container.`);
  } else {
    log('waiting for the firewall to enroll this container');
  }
}

/** `node agentd.js -- claude`: agentd's own arguments, after node's and the script's path. */
export const agentdArguments = (argv: readonly string[]): string[] => argv.slice(2);

/** agentd: `agentd.js -- <command> [args...]`; resolves once it is set up (it exits through deps.process.exit). */
export async function runAgentd(args: readonly string[], env: Readonly<Record<string, string | undefined>>, deps: AgentdDeps): Promise<void> {
  try {
    await main(args, env, deps);
  } catch (error) {
    deps.log(`internal error: ${(error as Error).stack ?? (error as Error).message}`);
    deps.process.exit(EXIT_INTERNAL);
  }
}
