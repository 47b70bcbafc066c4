/**
 * The supervisor's native helper (native/agentd_proc.c), loaded with process.dlopen so esbuild leaves
 * it alone, behind a typed interface. Node's child_process cannot be used in agentd: libuv would
 * race our waitpid(-1) for the same children, and it cannot make a child its own process group
 * that owns the terminal.
 */
import { constants } from 'node:os';
import { AGENTD_NATIVE } from '../core/agents/agentContract';

/** Overrides where the addon is (tests, a development build); the image uses AGENTD_NATIVE. */
export const ENV_AGENTD_NATIVE = 'CLAWKER_AGENTD_NATIVE';

export interface SpawnRequest {
  /** What to exec: a path, or a name looked up in the PATH of `env`. */
  readonly file: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly cwd: string;
  /** Never 0: the addon refuses to start anything as root. */
  readonly uid: number;
  readonly gid: number;
  /** Make the child's process group the terminal's foreground group (when its stdin is a terminal). */
  readonly foreground: boolean;
  /** Descriptors to become the child's 0, 1, 2; undefined inherits agentd's. */
  readonly stdin?: number;
  readonly stdout?: number;
  readonly stderr?: number;
}

export interface ReapedChild {
  readonly pid: number;
  readonly exitCode: number | null;
  /** The signal number that ended it, if one did. */
  readonly signal: number | null;
}

/** What the supervisor needs from the system to run processes; a fake in unit tests. */
export interface ProcessControl {
  /** Forks and execs; throws (with `code` like 'ENOENT' and a message like "exec claude: No such file or directory") if it could not. */
  spawn(request: SpawnRequest): number;
  /** Collects every exited child: the ones we started and orphans that were reparented to us. */
  reap(): ReapedChild[];
  /** Both ends close-on-exec. */
  pipe(): [readFd: number, writeFd: number];
  /** Sends a signal; a negative pid is a process group. False if there was no such process. */
  kill(pid: number, signal: number): boolean;
}

interface AddonExports {
  spawn(options: {
    file: string;
    argv: string[];
    env: string[];
    cwd: string;
    uid: number;
    gid: number;
    foreground: boolean;
    stdin: number;
    stdout: number;
    stderr: number;
  }): number;
  reap(): ReapedChild[];
  pipe(): [number, number];
  becomeSubreaper(): void;
}

/** `KEY=value` strings in a stable order; a key with `=` or NUL would corrupt the block, so it is refused. */
export function environmentBlock(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([key, value]) => {
    if (key.length === 0 || key.includes('=') || key.includes('\0') || value.includes('\0')) {
      throw new Error(`invalid environment variable name or value for '${key.replace(/[^\x20-\x7e]/g, '?')}'`);
    }
    return `${key}=${value}`;
  });
}

export interface NativeProcessControl extends ProcessControl {
  /** Orphans of our descendants are reparented to us even when we are not PID 1 (tests). */
  becomeSubreaper(): void;
}

export function loadNativeProcessControl(path: string = process.env[ENV_AGENTD_NATIVE] ?? AGENTD_NATIVE): NativeProcessControl {
  const module = { exports: {} as AddonExports };
  process.dlopen(module, path, constants.dlopen.RTLD_NOW);
  const addon = module.exports;
  for (const name of ['spawn', 'reap', 'pipe', 'becomeSubreaper'] as const) {
    if (typeof addon[name] !== 'function') throw new Error(`${path} is not agentd's native helper: it has no ${name}()`);
  }
  return {
    spawn: (request) =>
      addon.spawn({
        file: request.file,
        argv: [...request.argv],
        env: environmentBlock(request.env),
        cwd: request.cwd,
        uid: request.uid,
        gid: request.gid,
        foreground: request.foreground,
        stdin: request.stdin ?? -1,
        stdout: request.stdout ?? -1,
        stderr: request.stderr ?? -1,
      }),
    reap: () => addon.reap(),
    pipe: () => addon.pipe(),
    kill: (pid, signal) => {
      try {
        process.kill(pid, signal);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
        throw error;
      }
    },
    becomeSubreaper: () => addon.becomeSubreaper(),
  };
}
