/**
 * Runs `git credential fill|approve|reject` on the host for an agent: argv only, the validated
 * request on stdin in git's format, never a prompt (GIT_TERMINAL_PROMPT=0, no askpass programs),
 * bounded by a timeout. Git's stderr is never logged or returned (it can quote URLs).
 */
import { execFile } from 'node:child_process';
import { parse as parsePath } from 'node:path';
import { type CredentialFields, type GitOperation, formatCredential, parseCredential } from './validate';

export const GIT_TIMEOUT_MS = 30_000;

const SUBCOMMAND: Record<GitOperation, string> = { get: 'fill', store: 'approve', erase: 'reject' };

export type GitCredentialResult =
  | { readonly kind: 'found'; readonly username: string; readonly password: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'done' }
  | { readonly kind: 'error'; readonly reason: string };

export type GitCredentialRunner = (operation: GitOperation, fields: CredentialFields) => Promise<GitCredentialResult>;

/** The environment git runs with: the daemon's, without prompts, askpass programs or tracing (which could write credentials out). */
export function gitEnvironment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined) continue;
    if (k === 'GIT_ASKPASS' || k === 'SSH_ASKPASS' || k.startsWith('GIT_TRACE') || k === 'GIT_DIR' || k === 'GIT_WORK_TREE') continue;
    env[k] = v;
  }
  env.GIT_TERMINAL_PROMPT = '0';
  env.GCM_INTERACTIVE = 'never';
  return env;
}

/** git's argv: `-c core.askPass=` so a configured askpass program is not used either. */
export const gitArgv = (operation: GitOperation): string[] => ['-c', 'core.askPass=', 'credential', SUBCOMMAND[operation]];

export interface GitRunnerOptions {
  readonly git?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
}

export function gitCredentialRunner(options: GitRunnerOptions = {}): GitCredentialRunner {
  const git = options.git ?? 'git';
  const env = gitEnvironment(options.env ?? process.env);
  const timeout = options.timeoutMs ?? GIT_TIMEOUT_MS;
  // Outside any repository, so no repository's config takes part.
  const cwd = parsePath(process.cwd()).root;
  return (operation, fields) =>
    new Promise((resolve) => {
      let input: string;
      try {
        input = formatCredential(fields);
      } catch {
        resolve({ kind: 'error', reason: 'invalid credential' });
        return;
      }
      const child = execFile(
        git,
        gitArgv(operation),
        {
          env,
          cwd,
          timeout,
          killSignal: 'SIGKILL',
          maxBuffer: 64 * 1024,
          // Stryker disable next-line BooleanLiteral: windowsHide only has an effect on Windows
          windowsHide: true,
          encoding: 'utf8',
        },
        (err, stdout, stderr) => {
          if (err) {
            const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: unknown };
            if (e.code === 'ENOENT') return resolve({ kind: 'error', reason: 'git not found' });
            if (e.killed) return resolve({ kind: 'error', reason: 'git timed out' });
            // fill with nothing to give: git wants to prompt and may not.
            if (operation === 'get' && /terminal prompts disabled|could not read (username|password)/i.test(stderr)) {
              return resolve({ kind: 'none' });
            }
            return resolve({ kind: 'error', reason: `git exited with ${typeof e.code === 'number' ? `code ${e.code}` : 'an error'}` });
          }
          if (operation !== 'get') return resolve({ kind: 'done' });
          const answer = parseCredential(stdout);
          if (answer.username === undefined || answer.password === undefined) return resolve({ kind: 'none' });
          return resolve({ kind: 'found', username: answer.username, password: answer.password });
        },
      );
      child.stdin?.on('error', () => undefined); // git may exit before reading everything
      child.stdin?.end(input);
    });
}
