/**
 * Runs the bundled `clawker` CLI (dist/cli.js) for the palette, the trees and the quick fixes: one
 * implementation of every verb, the same the terminal gets. A child process per verb gives real
 * cancellation (the CLI stops its Docker requests when it dies) and keeps dockerode out of the
 * extension host. Arguments are an argv array, never a shell string.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type * as vscode from 'vscode';
import type { ClawkerCli, CliResult, CliRunOptions, FollowedCli } from './contracts';

/** Extra environment for the CLI, from the extension's settings (e.g. CLAWKER_DATA_DIR). */
export type CliEnvironment = () => Record<string, string>;

/** The CLI failed: names the command, its exit code and what it said on stderr. */
export class CliError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: CliResult,
  ) {
    super(`clawker ${args.join(' ')} exited ${result.code}: ${lastMeaningfulLine(result.stderr) ?? 'no message'}`);
    this.name = 'CliError';
  }
}

/** The last non-empty stderr line: the CLI puts its verdict ("… (next: …)") there. */
export function lastMeaningfulLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .pop();
}

/**
 * What the CLI concluded, from its stderr: the error line, with its `next:` line when it has one
 * ("clawker: docker: … unreachable — next: start the Docker engine …").
 */
export function cliVerdict(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.pop();
  if (last === undefined) return undefined;
  const error = /^next:/.test(last) ? lines.pop() : undefined;
  return (error ? `${error.replace(/^clawker: /, '')} — ${last}` : last.replace(/^clawker: /, ''));
}

/** How long a cancelled CLI gets to stop after SIGINT before it is killed. */
const KILL_AFTER_MS = 3_000;

export class BundledCli implements ClawkerCli {
  constructor(
    private readonly extensionPath: string,
    private readonly environment: CliEnvironment,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  private get script(): string {
    return join(this.extensionPath, 'dist', 'cli.js');
  }

  /** VS Code's own runtime runs the CLI: Electron as Node on the desktop, Node in code-server. */
  private childEnv(): NodeJS.ProcessEnv {
    return { ...process.env, ...this.environment(), ELECTRON_RUN_AS_NODE: '1', NO_COLOR: '1' };
  }

  run(args: readonly string[], options: CliRunOptions = {}): Promise<CliResult> {
    this.log.info(`clawker ${args.join(' ')}${options.cwd ? ` (in ${options.cwd})` : ''}`);
    return new Promise((resolve, reject) => {
      if (options.token?.isCancellationRequested) return resolve({ code: 130, stdout: '', stderr: 'cancelled' });
      const child = spawn(process.execPath, [this.script, ...args], {
        cwd: options.cwd,
        env: this.childEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      createInterface({ input: child.stderr }).on('line', (line) => {
        stderr += `${line}\n`;
        this.log.debug(`  ${line}`);
        options.onProgress?.(line);
      });
      let killTimer: NodeJS.Timeout | undefined;
      const cancel = options.token?.onCancellationRequested(() => {
        this.log.info(`cancelling clawker ${args.join(' ')}`);
        child.kill('SIGINT');
        killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      });
      child.on('error', (e) => {
        cancel?.dispose();
        reject(new Error(`could not run the clawker CLI (${this.script}): ${e.message}`));
      });
      child.on('close', (code, signal) => {
        cancel?.dispose();
        if (killTimer) clearTimeout(killTimer);
        const result = { code: code ?? (signal ? 128 + 2 : 1), stdout, stderr };
        if (result.code !== 0) this.log.warn(`clawker ${args.join(' ')} exited ${result.code}`);
        resolve(result);
      });
    });
  }

  async json<T>(args: readonly string[], options?: CliRunOptions): Promise<T> {
    const result = await this.run(args, options);
    if (result.code !== 0) throw new CliError(args, result);
    try {
      return JSON.parse(result.stdout) as T;
    } catch {
      throw new CliError(args, { ...result, stderr: `${result.stderr}\nits output is not JSON` });
    }
  }

  follow(args: readonly string[], onLine: (line: string) => void): FollowedCli {
    this.log.debug(`clawker ${args.join(' ')} (followed)`);
    const child = spawn(process.execPath, [this.script, ...args], { env: this.childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: child.stdout }).on('line', onLine);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-4096)));
    child.stdin.on('error', () => undefined); // it may end before we write
    const exited = new Promise<number>((resolve) => {
      child.on('error', (e) => {
        this.log.warn(`could not run the clawker CLI (${this.script}): ${e.message}`);
        resolve(127);
      });
      child.on('close', (code, signal) => {
        const result = code ?? 128 + (signal === 'SIGKILL' ? 9 : 15);
        if (result !== 0 && stderr.trim()) this.log.debug(`clawker ${args.join(' ')} exited ${result}: ${lastMeaningfulLine(stderr) ?? ''}`);
        resolve(result);
      });
    });
    let killTimer: NodeJS.Timeout | undefined;
    void exited.then(() => killTimer && clearTimeout(killTimer));
    return {
      send: (line) => void (child.stdin.writable && child.stdin.write(`${line}\n`)),
      exited,
      dispose: () => {
        child.stdin.end();
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
      },
    };
  }

  terminalCommand(args: readonly string[]): { shellPath: string; shellArgs: string[]; env: Record<string, string> } {
    return { shellPath: process.execPath, shellArgs: [this.script, ...args], env: { ...this.environment(), ELECTRON_RUN_AS_NODE: '1' } };
  }
}
