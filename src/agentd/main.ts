/**
 * agentd: PID 1 of every agent container (`node /opt/clawker/agentd.js -- <command>`).
 *
 * Runs as root with only SETUID, SETGID and KILL, and never runs user-controlled code itself: the
 * command is forked by the native helper as the agent user, in its own process group (owning the
 * terminal when there is one). With the firewall on, the command starts only when the control plane
 * says `start` over the mutual-TLS session (after it has enrolled the container); without a session
 * it never starts. agentd forwards termination signals to the command, reaps every zombie, and exits
 * with the command's status. See config.ts for the CLAWKER_AGENTD_* variables (tests only).
 */
import { statSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { readConfig } from './config';
import { runExecStep } from './execStep';
import { loadNativeProcessControl, type NativeProcessControl } from './nativeProc';
import { readSessionMaterial, type SessionServer, startSessionServer } from './session';
import type { SessionHandlers } from './sessionProtocol';
import { exitCodeOf, FORWARDED_SIGNALS, type ExitStatus, signalName, Supervisor } from './supervisor';

/** A second poll behind SIGCHLD: a lost signal must not leave a zombie or miss the command's exit. */
const REAP_POLL_MS = 2_000;
/** Exec steps running at once, across all connections. */
const MAX_CONCURRENT_EXEC = 4;
const SIGKILL = 9;
/** Shell conventions for a command that could not be started. */
const EXIT_NOT_FOUND = 127;
const EXIT_CANNOT_EXECUTE = 126;
const EXIT_USAGE = 2;
const EXIT_INTERNAL = 70;

/**
 * Synchronous and never throwing: agentd's stderr may be a terminal another process group now owns,
 * and a failed log line must not take PID 1 down.
 */
function log(message: string): void {
  try {
    writeSync(2, `[agentd] ${message}\n`);
  } catch {
    // nowhere left to say it
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function describeExit(name: string, status: ExitStatus): string {
  return status.signal !== null
    ? `${name} was ended by ${signalName(status.signal)} (exit code ${exitCodeOf(status)})`
    : `${name} exited with code ${status.exitCode}`;
}

async function main(): Promise<void> {
  const result = readConfig(process.argv.slice(2), process.env);
  if ('error' in result) {
    log(result.error);
    process.exit(EXIT_USAGE);
  }
  const { config } = result;
  const commandName = config.command[0]!;

  let processes: NativeProcessControl;
  try {
    processes = loadNativeProcessControl();
  } catch (error) {
    log(`cannot load the native helper, so nothing can be started: ${(error as Error).message}`);
    process.exit(EXIT_INTERNAL);
  }
  if (process.pid !== 1) {
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
    process.exit(code);
  };

  const supervisor = new Supervisor(
    {
      command: config.command,
      env: config.commandEnv,
      uid: config.uid,
      gid: config.gid,
      workdirs: [config.workdir, config.fallbackWorkdir],
      foreground: isatty(0),
    },
    {
      processes,
      isDirectory,
      onCommandExit: (status) => {
        log(describeExit(commandName, status));
        void finish(exitCodeOf(status));
      },
    },
  );

  // Handlers before anything can start: PID 1 without a handler would ignore these signals.
  for (const signal of FORWARDED_SIGNALS) {
    process.on(signal, () => {
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
  process.on('SIGCHLD', () => supervisor.reapChildren());
  setInterval(() => supervisor.reapChildren(), REAP_POLL_MS);
  process.on('uncaughtException', (error) => {
    log(`internal error: ${error.stack ?? error.message}`);
    supervisor.killAll(SIGKILL);
    process.exit(EXIT_INTERNAL);
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
      // A moment for the session to deliver the error to the control plane before agentd goes.
      setTimeout(() => void finish(code), 200);
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
        return await runExecStep({ supervisor, pipe: () => processes.pipe(), baseEnv: config.commandEnv }, request);
      } finally {
        execRunning -= 1;
      }
    },
  };

  const material = readSessionMaterial(config.sessionFiles);
  if ('problem' in material) {
    log(`NO SESSION: ${material.problem}. The control plane cannot reach this container.`);
  } else {
    try {
      session = await startSessionServer(material.material, { host: config.sessionHost, port: config.sessionPort, handlers, log });
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

main().catch((error: Error) => {
  log(`internal error: ${error.stack ?? error.message}`);
  process.exit(EXIT_INTERNAL);
});
