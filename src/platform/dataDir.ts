import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * Where clawker keeps its data: `$CLAWKER_DATA_DIR`, else `$XDG_DATA_HOME/clawker`, else
 * `~/.local/share/clawker` (a relative `XDG_DATA_HOME` is ignored, as the XDG spec says).
 * Its own module so the editor can find the control plane without loading the rule store.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  if (env.CLAWKER_DATA_DIR) return resolve(env.CLAWKER_DATA_DIR);
  const xdg = env.XDG_DATA_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(home, '.local', 'share'), 'clawker');
}
