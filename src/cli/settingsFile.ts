/** Where clawker's global settings are: CLAWKER_SETTINGS, else $XDG_CONFIG_HOME (absolute) or ~/.config, then clawker/settings.yaml. */
import { homedir } from 'node:os';
import { join } from 'node:path';

export function settingsFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CLAWKER_SETTINGS) return env.CLAWKER_SETTINGS;
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'clawker', 'settings.yaml');
}
