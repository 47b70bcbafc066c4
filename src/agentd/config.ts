/**
 * agentd's settings, from its argv and environment. Pure.
 *
 * In the image everything comes from the contract (agentContract.ts). The CLAWKER_AGENTD_* variables
 * exist for tests and development runs outside a container; they never reach the command.
 */
import { basename } from 'node:path';
import {
  AGENT_GID,
  AGENT_HOME,
  AGENT_UID,
  AGENT_USER,
  AGENTD_SESSION_PORT,
  ENV_FIREWALL_ENABLED,
  SESSION_FILES,
  WORKSPACE_DIR,
} from '../core/agents/agentContract';

/** Prefix of agentd's own variables: removed from the command's environment. */
export const AGENTD_ENV_PREFIX = 'CLAWKER_AGENTD_';
/** Folder holding ca.pem, agentd.pem, agentd-key.pem (default: the contract's SESSION_FILES). */
export const ENV_SESSION_DIR = `${AGENTD_ENV_PREFIX}SESSION_DIR`;
/** Session port; 0 picks a free one, announced on stderr (default: AGENTD_SESSION_PORT). */
export const ENV_SESSION_PORT = `${AGENTD_ENV_PREFIX}PORT`;
/** Address the session server binds (default 0.0.0.0: the container's clawker-net address). */
export const ENV_SESSION_HOST = `${AGENTD_ENV_PREFIX}HOST`;
/** The command's working directory (default WORKSPACE_DIR, or AGENT_HOME when that is missing). */
export const ENV_WORKDIR = `${AGENTD_ENV_PREFIX}WORKDIR`;
/** The agent user's ids, baked into the image with the user (the host user's on a local Linux engine); default AGENT_UID/AGENT_GID. */
export const ENV_UID = `${AGENTD_ENV_PREFIX}UID`;
export const ENV_GID = `${AGENTD_ENV_PREFIX}GID`;

/** Where PATH lookups go when the environment has no PATH (Debian's default for a login shell, plus sbin). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface SessionFiles {
  readonly ca: string;
  readonly certificate: string;
  readonly key: string;
}

export interface AgentdConfig {
  readonly command: readonly string[];
  /** Wait for the control plane's `start` before forking (fail closed: anything but `false` means yes). */
  readonly waitForStart: boolean;
  readonly sessionFiles: SessionFiles;
  readonly sessionHost: string;
  readonly sessionPort: number;
  /** Preferred working directory, and where to go when it does not exist. */
  readonly workdir: string;
  readonly fallbackWorkdir: string;
  readonly uid: number;
  readonly gid: number;
  /** What the command (and every exec) gets: ours, without agentd's own variables, as the agent user. */
  readonly commandEnv: Readonly<Record<string, string>>;
}

export type ConfigResult = { readonly config: AgentdConfig } | { readonly error: string };

/** `agentd.js -- claude --flag`: everything after the first `--` (or all of it, when there is none). */
export function commandFromArgv(args: readonly string[]): string[] {
  // Without a `--`, indexOf is -1 and the slice starts at 0: all of it.
  return args.slice(args.indexOf('--') + 1);
}

/** Only an explicit `false` turns the gate off: unset, empty or a typo keeps the command waiting. */
export const firewallEnabled = (value: string | undefined): boolean => value?.trim().toLowerCase() !== 'false';

export function commandEnvironment(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || key.startsWith(AGENTD_ENV_PREFIX)) continue;
    out[key] = value;
  }
  out.HOME = AGENT_HOME;
  out.USER = AGENT_USER;
  out.LOGNAME = AGENT_USER;
  out.PATH ??= DEFAULT_PATH;
  return out;
}

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return AGENTD_SESSION_PORT;
  if (!/^\d{1,5}$/.test(value)) return undefined;
  const port = Number(value);
  return port <= 65535 ? port : undefined;
}

function parseId(value: string | undefined, fallback: number): number | undefined {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,10}$/.test(value)) return undefined;
  const id = Number(value);
  return id >= 1 && id <= 4294967294 ? id : undefined;
}

export function readConfig(args: readonly string[], env: Readonly<Record<string, string | undefined>>): ConfigResult {
  const command = commandFromArgv(args);
  if (command.length === 0 || command[0] === '') return { error: 'no command given: usage: agentd.js -- <command> [args...]' };
  const sessionPort = parsePort(env[ENV_SESSION_PORT]);
  if (sessionPort === undefined) return { error: `${ENV_SESSION_PORT} must be a port number (0-65535)` };
  const uid = parseId(env[ENV_UID], AGENT_UID);
  const gid = parseId(env[ENV_GID], AGENT_GID);
  // Never root: a wrong value must not hand the command agentd's own privileges.
  if (uid === undefined) return { error: `${ENV_UID} must be a user id from 1 to 4294967294` };
  if (gid === undefined) return { error: `${ENV_GID} must be a group id from 1 to 4294967294` };
  const sessionDir = env[ENV_SESSION_DIR];
  const sessionFiles: SessionFiles = sessionDir
    ? {
        ca: `${sessionDir}/${basename(SESSION_FILES.ca)}`,
        certificate: `${sessionDir}/${basename(SESSION_FILES.certificate)}`,
        key: `${sessionDir}/${basename(SESSION_FILES.key)}`,
      }
    : SESSION_FILES;
  return {
    config: {
      command,
      waitForStart: firewallEnabled(env[ENV_FIREWALL_ENABLED]),
      sessionFiles,
      sessionHost: env[ENV_SESSION_HOST] || '0.0.0.0',
      sessionPort,
      workdir: env[ENV_WORKDIR] || WORKSPACE_DIR,
      fallbackWorkdir: AGENT_HOME,
      uid,
      gid,
      commandEnv: commandEnvironment(env),
    },
  };
}
