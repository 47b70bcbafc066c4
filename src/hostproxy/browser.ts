/**
 * Opens a (validated) URL in the host's browser, argv only, detached, never through a shell.
 *
 * Which program: CLAWKER_HOSTPROXY_OPENER (the path of one executable, given the URL as its only
 * argument; tests use it to record what would be opened), else $BROWSER (its first ':'-separated
 * entry, split on spaces, '%s' replaced by the URL or the URL appended), else xdg-open on Linux and
 * the BSDs, open on macOS. Elsewhere there is none and the request fails.
 */
import { spawn } from 'node:child_process';

export const ENV_OPENER = 'CLAWKER_HOSTPROXY_OPENER';

export interface Opener {
  readonly command: string;
  readonly args: readonly string[];
}

export function resolveOpener(url: string, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): Opener | undefined {
  const injected = env[ENV_OPENER];
  if (injected) return { command: injected, args: [url] };
  const browser = env.BROWSER?.split(':').find((entry) => entry.trim() !== '');
  if (browser) {
    const [command, ...rest] = browser.trim().split(/\s+/);
    let substituted = false;
    const args = rest.map((a) => {
      if (!a.includes('%s')) return a;
      substituted = true;
      return a.split('%s').join(url);
    });
    return { command: command!, args: substituted ? args : [...args, url] };
  }
  if (platform === 'darwin') return { command: 'open', args: [url] };
  if (platform === 'linux' || platform === 'freebsd' || platform === 'openbsd' || platform === 'netbsd' as NodeJS.Platform) {
    return { command: 'xdg-open', args: [url] };
  }
  return undefined;
}

export type UrlOpener = (url: string) => Promise<void>;

/** Starts the opener detached (the browser may run for long) and resolves once it started. */
export function urlOpener(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): UrlOpener {
  return (url) =>
    new Promise((resolve, reject) => {
      const opener = resolveOpener(url, env, platform);
      if (!opener) {
        reject(new Error('no browser opener on this platform'));
        return;
      }
      const child = spawn(opener.command, [...opener.args], {
        detached: true,
        stdio: 'ignore',
        env,
        // Stryker disable next-line BooleanLiteral: windowsHide only has an effect on Windows
        windowsHide: true,
      });
      child.once('error', (e: NodeJS.ErrnoException) => {
        // Stryker disable next-line StringLiteral: a spawn error always has a code (ENOENT, EACCES…); the fallback only keeps the message readable
        const code = e.code ?? 'error';
        reject(new Error(`cannot start the browser opener (${code})`));
      });
      child.once('spawn', () => {
        child.unref();
        resolve();
      });
    });
}
