/**
 * The session's `exec` op: a setup step run as the agent user (never root), stdout and stderr into
 * one pipe of which the last EXEC_OUTPUT_LIMIT bytes are kept, killed (its whole process group)
 * when it outlives its timeout.
 */
import { closeSync, openSync } from 'node:fs';
import { Socket } from 'node:net';
import type { ExitStatus, Supervisor } from './supervisor';
import { exitCodeOf, signalName } from './supervisor';

export const EXEC_OUTPUT_LIMIT = 8 * 1024;
export const EXEC_DEFAULT_TIMEOUT_MS = 60_000;
/** After the step exits, how long to wait for the rest of its output (a background child may hold the pipe forever). */
const OUTPUT_DRAIN_MS = 250;
const SIGKILL = 9;

/** Keeps the last `limit` bytes written to it. Pure. */
export class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number = EXEC_OUTPUT_LIMIT) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: memory only: text() keeps the last `limit` bytes whatever is kept here (a lone chunk gives 0 >= limit, false; dropping at exactly `limit` or not keeps the same tail)
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= this.limit) {
      this.size -= this.chunks.shift()!.length;
    }
  }

  /** The kept bytes as UTF-8; a character cut at the start becomes U+FFFD. */
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

export interface ExecStepRequest {
  readonly argv: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

export type ExecStepResult =
  | { readonly ok: true; readonly exitCode: number; readonly signal?: string; readonly output: string }
  | { readonly ok: false; readonly error: string; readonly exitCode?: number; readonly signal?: string; readonly output?: string };

export interface ExecStepContext {
  readonly supervisor: Supervisor;
  readonly pipe: () => [number, number];
  /** The environment every agent process gets; the request's variables are laid over it. */
  readonly baseEnv: Readonly<Record<string, string>>;
}

function statusFields(status: ExitStatus): { exitCode: number; signal?: string } {
  return { exitCode: exitCodeOf(status), ...(status.signal !== null ? { signal: signalName(status.signal) } : {}) };
}

export async function runExecStep(context: ExecStepContext, request: ExecStepRequest): Promise<ExecStepResult> {
  const [readEnd, writeEnd] = context.pipe();
  let devNull: number | undefined;
  let started: ReturnType<Supervisor['spawnAgentProcess']>;
  try {
    devNull = openSync('/dev/null', 'r');
    started = context.supervisor.spawnAgentProcess({
      argv: request.argv,
      env: { ...context.baseEnv, ...(request.env ?? {}) },
      cwd: request.cwd ?? context.supervisor.workdir(),
      stdin: devNull,
      stdout: writeEnd,
      stderr: writeEnd,
    });
  } catch (error) {
    closeSync(readEnd);
    return { ok: false, error: (error as Error).message };
  } finally {
    // The child has its copies; ours would keep the pipe open and the read below would never end.
    closeSync(writeEnd);
    if (devNull !== undefined) closeSync(devNull);
  }

  const tail = new OutputTail();
  const output = new Socket({ fd: readEnd, readable: true, writable: false });
  const drained = new Promise<void>((resolve) => {
    output.on('data', (chunk: Buffer) => tail.push(chunk));
    // Stryker disable next-line StringLiteral: 'close' always follows 'end' (allowHalfOpen is off, autoDestroy on), so either listener alone resolves; the 250 ms drain bound covers the rest
    output.on('end', resolve);
    // Stryker disable next-line StringLiteral: 'end' resolves before 'close' on every normal end, and a destroy by error goes through the 'error' listener
    output.on('close', resolve);
    // Stryker disable next-line ArrowFunction: a read error destroys the socket, whose 'close' resolves; this listener must exist (an unhandled 'error' would crash agentd), not resolve
    output.on('error', () => resolve());
  });

  const timeoutMs = request.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      context.supervisor.killGroup(started.pid, SIGKILL);
    } catch {
      // gone already, or not ours to kill: the reaper still reports its end
    }
  }, timeoutMs);
  const status = await started.exited;
  clearTimeout(timer);
  await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, OUTPUT_DRAIN_MS))]);
  output.destroy();

  if (timedOut) return { ok: false, error: `${request.argv[0]} timed out after ${timeoutMs} ms and was killed`, ...statusFields(status), output: tail.text() };
  return { ok: true, ...statusFields(status), output: tail.text() };
}
