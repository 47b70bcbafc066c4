/**
 * What the agent image, its PID 1 supervisor (agentd), the control plane, the host proxy and the
 * lifecycle code agree on: users, paths inside the container, the session port and its protocol.
 * One place, so no two of them can disagree. Pure.
 */
import { z } from 'zod';

/** The unprivileged user every agent command runs as (container-security.md: UID 1001). */
export const AGENT_USER = 'claude';
export const AGENT_UID = 1001;
export const AGENT_GID = 1001;
export const AGENT_HOME = '/home/claude';

/** Where the project's folder is bind-mounted, and the command's working directory. */
export const WORKSPACE_DIR = '/workspace';

/** Where the supervisor, its native helper and the credential helper live in the image. */
export const AGENTD_DIR = '/opt/clawker';
export const AGENTD_BUNDLE = `${AGENTD_DIR}/agentd.js`;
export const AGENTD_NATIVE = `${AGENTD_DIR}/agentd_proc.node`;

/** The agent awareness prompt Claude Code loads (container-security.md). */
export const AGENT_PROMPT_FILE = '/etc/claude-code/CLAUDE.md';

/** The firewall CA, trusted system-wide in the image. */
export const IMAGE_CA_FILE = '/usr/local/share/ca-certificates/clawker-firewall-ca.crt';
export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * Files the lifecycle code puts into a created container before its first start (putArchive).
 * `session/` is root's alone (0700, files 0600): the agent user cannot read the supervisor's key.
 * `hostproxy/token` belongs to the agent user (0400): its credential helper presents it.
 */
export const RUN_DIR = '/run/clawker';
export const SESSION_DIR = `${RUN_DIR}/session`;
export const SESSION_FILES = {
  ca: `${SESSION_DIR}/ca.pem`,
  certificate: `${SESSION_DIR}/agentd.pem`,
  key: `${SESSION_DIR}/agentd-key.pem`,
} as const;
export const HOST_PROXY_DIR = `${RUN_DIR}/hostproxy`;
export const HOST_PROXY_TOKEN_FILE = `${HOST_PROXY_DIR}/token`;

/**
 * Label on agent containers whose PID 1 is agentd: the control plane starts their command over the
 * session once it has enrolled them. (Containers without it are enrolled, never sessioned.)
 */
export const LABEL_SUPERVISOR = 'dev.clawker.supervisor';
export const SUPERVISOR_AGENTD = 'agentd';

/** The supervisor's mutual-TLS session: the port it listens on inside the container (on clawker-net). */
export const AGENTD_SESSION_PORT = 17443;
/** The only peer the supervisor accepts: a client certificate with this CN, chained to the clawker CA. */
export const CONTROLPLANE_SESSION_CN = 'clawker-controlplane';

/** The host proxy's port, at host.docker.internal (the engine's host-gateway; core/engine/hostGateway.ts). */
export const HOST_PROXY_PORT = 18374;
/** What agents are given as CLAWKER_HOST_PROXY: the name resolves from their /etc/hosts (ExtraHosts). */
export const HOST_PROXY_AGENT_URL = `http://host.docker.internal:${HOST_PROXY_PORT}`;
/** The header an agent's requests to the host proxy carry its token in. */
export const HOST_PROXY_TOKEN_HEADER = 'x-clawker-token';

/**
 * Capabilities the supervisor keeps (everything else is dropped): it changes to the agent user
 * (SETUID, SETGID) and signals the command, which runs under another uid (KILL). Never NET_RAW.
 * They vanish from the command itself at setuid: its effective set is empty.
 */
export const AGENTD_CAPABILITIES = ['SETUID', 'SETGID', 'KILL'] as const;

/**
 * Variables that would make root's Node or the dynamic loader run code before agentd's own (a
 * `--require` of a workspace file, a preloaded library): the image's ENTRYPOINT removes them with
 * `env -u` before PID 1 starts (a Dockerfile cannot interpolate into it: the image's tests hold it to
 * this list), so they reach neither agentd nor the command; agent.env may not set them.
 */
export const SUPERVISOR_STRIPPED_ENV = ['NODE_OPTIONS', 'NODE_PATH', 'LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT'] as const;

/** Environment the lifecycle sets in every agent container (container-security.md). */
export const ENV_PROJECT = 'CLAWKER_PROJECT';
export const ENV_AGENT = 'CLAWKER_AGENT';
export const ENV_FIREWALL_ENABLED = 'CLAWKER_FIREWALL_ENABLED';
/** The host proxy's URL as the agent reaches it (`http://<gateway>:18374`); unset when the host proxy is off. */
export const ENV_HOST_PROXY = 'CLAWKER_HOST_PROXY';

// ---- the session protocol: one JSON object per line each way, over TLS --------------------------

/**
 * status: where the command is. start: fork the command (idempotent). exec: run a setup step as the
 * agent user and return its exit status and the end of its output (only before or beside the command;
 * never as root).
 */
export const sessionRequestSchema = z.discriminatedUnion('op', [
  z.object({ id: z.number().int().nonnegative(), op: z.literal('status') }),
  z.object({ id: z.number().int().nonnegative(), op: z.literal('start') }),
  z.object({
    id: z.number().int().nonnegative(),
    op: z.literal('exec'),
    argv: z.array(z.string()).min(1).max(256),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().optional(),
    timeoutMs: z.number().int().positive().max(600_000).optional(),
  }),
]);
export type SessionRequest = z.infer<typeof sessionRequestSchema>;

export const commandStateSchema = z.enum(['waiting', 'running', 'exited']);
export type CommandState = z.infer<typeof commandStateSchema>;

export const sessionResponseSchema = z.object({
  id: z.number().int().nonnegative(),
  ok: z.boolean(),
  error: z.string().optional(),
  state: commandStateSchema.optional(),
  pid: z.number().int().positive().optional(),
  command: z.array(z.string()).optional(),
  exitCode: z.number().int().optional(),
  signal: z.string().optional(),
  output: z.string().optional(),
});
export type SessionResponse = z.infer<typeof sessionResponseSchema>;

/** The longest line either side accepts: anything longer ends the session. */
export const SESSION_MAX_LINE = 64 * 1024;
