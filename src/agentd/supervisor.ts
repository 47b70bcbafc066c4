/**
 * The supervisor's logic: when the command starts, where signals go, what a reaped child means.
 * The system is behind ProcessControl (the native helper in agentd, a fake in unit tests).
 */
import { constants } from 'node:os';
import type { CommandState } from '../core/agents/agentContract';
import type { ProcessControl, ReapedChild } from './nativeProc';

export interface ExitStatus {
  readonly exitCode: number | null;
  readonly signal: number | null;
}

/** What a shell would report: the exit code, or 128 + the signal that ended the process. */
export const exitCodeOf = (status: ExitStatus): number => status.exitCode ?? 128 + (status.signal ?? 0);

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, number]) => [number, name]));
export const signalName = (signal: number): string => SIGNAL_NAMES.get(signal) ?? `signal ${signal}`;
export const signalNumber = (signal: NodeJS.Signals): number => constants.signals[signal];

/** Signals PID 1 passes on to the command's process group. */
export const FORWARDED_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const satisfies readonly NodeJS.Signals[];
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

/** Before the command exists, these end agentd itself (docker stop, ^C on `docker run -it` while waiting). */
const ENDS_AGENTD_WHILE_WAITING: ReadonlySet<ForwardedSignal> = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']);

export type SignalAction =
  | { readonly kind: 'forward'; readonly processGroup: number }
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'ignore' };

export function decideSignal(signal: ForwardedSignal, state: CommandState, commandPid: number | undefined): SignalAction {
  if (state === 'running' && commandPid !== undefined) return { kind: 'forward', processGroup: commandPid };
  if (state === 'waiting' && ENDS_AGENTD_WHILE_WAITING.has(signal)) return { kind: 'exit', code: 128 + signalNumber(signal) };
  return { kind: 'ignore' };
}

export interface CommandStatus {
  readonly state: CommandState;
  readonly command: readonly string[];
  readonly pid?: number;
  readonly exitCode?: number;
  readonly signal?: string;
}

export interface CommandSettings {
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly uid: number;
  readonly gid: number;
  /** Working directories in order of preference: the first that exists is used. */
  readonly workdirs: readonly string[];
  /** Whether the command gets the terminal (agentd's stdin is one). */
  readonly foreground: boolean;
}

export interface SupervisorDependencies {
  readonly processes: ProcessControl;
  readonly isDirectory: (path: string) => boolean;
  readonly onCommandExit: (status: ExitStatus) => void;
}

/** The command's lifecycle and the registry of everything else agentd forked (exec steps). */
export class Supervisor {
  private state: CommandState = 'waiting';
  private commandPid: number | undefined;
  private commandExit: ExitStatus | undefined;
  private readonly waiters = new Map<number, (status: ExitStatus) => void>();

  constructor(
    private readonly settings: CommandSettings,
    private readonly deps: SupervisorDependencies,
  ) {}

  status(): CommandStatus {
    const base = { state: this.state, command: this.settings.command };
    if (this.commandPid === undefined) return base;
    const exit = this.commandExit;
    if (exit === undefined) return { ...base, pid: this.commandPid };
    return {
      ...base,
      pid: this.commandPid,
      exitCode: exitCodeOf(exit),
      ...(exit.signal !== null ? { signal: signalName(exit.signal) } : {}),
    };
  }

  /** The first working directory that exists (the workspace mount, else the agent's home). */
  workdir(): string {
    const found = this.settings.workdirs.find((dir) => this.deps.isDirectory(dir));
    return found ?? this.settings.workdirs[this.settings.workdirs.length - 1] ?? '/';
  }

  /** Forks the command as the agent user; idempotent. Throws the spawn error ("exec claude: …") if it cannot. */
  start(): CommandStatus {
    if (this.state !== 'waiting') return this.status();
    const [file, ...rest] = this.settings.command;
    if (file === undefined) throw new Error('no command to start');
    this.commandPid = this.deps.processes.spawn({
      file,
      argv: [file, ...rest],
      env: this.settings.env,
      cwd: this.workdir(),
      uid: this.settings.uid,
      gid: this.settings.gid,
      foreground: this.settings.foreground,
    });
    this.state = 'running';
    return this.status();
  }

  /** Marks the command as failed to start, so status tells the control plane and signals end agentd. */
  markStartFailed(exitCode: number): void {
    this.state = 'exited';
    this.commandExit = { exitCode, signal: null };
  }

  handleSignal(signal: ForwardedSignal): SignalAction {
    const action = decideSignal(signal, this.state, this.commandPid);
    if (action.kind === 'forward') this.deps.processes.kill(-action.processGroup, signalNumber(signal));
    return action;
  }

  /** Runs another program as the agent user, in its own process group; resolves when it has been reaped. */
  spawnAgentProcess(request: {
    argv: readonly string[];
    env: Readonly<Record<string, string>>;
    cwd: string;
    stdin: number;
    stdout: number;
    stderr: number;
  }): { pid: number; exited: Promise<ExitStatus> } {
    const [file] = request.argv;
    if (file === undefined) throw new Error('empty argv');
    const pid = this.deps.processes.spawn({
      file,
      argv: request.argv,
      env: request.env,
      cwd: request.cwd,
      uid: this.settings.uid,
      gid: this.settings.gid,
      foreground: false,
      stdin: request.stdin,
      stdout: request.stdout,
      stderr: request.stderr,
    });
    // Registered before returning to the event loop, so no reap can come in between.
    const exited = new Promise<ExitStatus>((resolve) => this.waiters.set(pid, resolve));
    return { pid, exited };
  }

  /** Signals a process group agentd started (an exec step past its timeout). */
  killGroup(group: number, signal: number): boolean {
    return this.deps.processes.kill(-group, signal);
  }

  /** Kills the process group of everything still running that agentd started (on the way out). */
  killAll(signal: number): void {
    // The command's group too after it exited: background jobs it left behind (PID 1 exiting would kill them anyway).
    const groups = [...this.waiters.keys(), ...(this.commandPid !== undefined ? [this.commandPid] : [])];
    for (const group of groups) {
      try {
        this.deps.processes.kill(-group, signal);
      } catch {
        // on the way out: whatever cannot be killed now dies with PID 1
      }
    }
  }

  /** Collects every zombie: the command's exit ends the supervision, exec steps resolve, orphans just vanish. */
  reapChildren(): ReapedChild[] {
    const reaped = this.deps.processes.reap();
    for (const child of reaped) {
      const status = { exitCode: child.exitCode, signal: child.signal };
      if (child.pid === this.commandPid && this.state === 'running') {
        this.state = 'exited';
        this.commandExit = status;
        this.deps.onCommandExit(status);
        continue;
      }
      const waiter = this.waiters.get(child.pid);
      if (waiter) {
        this.waiters.delete(child.pid);
        waiter(status);
      }
    }
    return reaped;
  }
}
