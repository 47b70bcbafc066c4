/**
 * The decisions of the agent lifecycle that need no I/O: which containers are ours (by label, never
 * by name), which agent a command means, what `ps` shows, whether a container may start under the
 * current settings, and the files put into a container before its first start. Pure; the platform
 * side is src/platform/docker/agentContainers.ts.
 */
import { ENV_HOST_PROXY, HOST_PROXY_DIR, HOST_PROXY_TOKEN_FILE, RUN_DIR, SESSION_DIR, SESSION_FILES } from './agentContract';
import { type AgentUser, DEFAULT_AGENT_USER } from './agentUser';
import { LABEL_FIREWALL, LABEL_WORKSPACE } from './agentContainerSpec';
import { agentNameProblem, DEFAULT_AGENT_NAME } from './agentNames';
import { LABEL_AGENT, LABEL_COMPONENT, LABEL_MANAGED, LABEL_PROJECT, LABEL_STACK } from '../stack/labels';

/** Docker's detach sequence for `attach` and `run`, as `docker attach` has it. */
export const DETACH_KEYS = 'ctrl-p,ctrl-q';
/** How long `stop` (and `restart`) wait for the agent to exit before Docker kills it. */
export const DEFAULT_STOP_TIMEOUT_SECONDS = 10;

export interface AgentScope {
  readonly stack: string;
  readonly project?: string;
  readonly agent?: string;
}

/** Label filters for Docker's container list: our agents of one stack (and project, and agent). */
export function agentLabelFilter(scope: AgentScope): string[] {
  return [
    `${LABEL_MANAGED}=true`,
    `${LABEL_COMPONENT}=agent`,
    `${LABEL_STACK}=${scope.stack}`,
    ...(scope.project !== undefined ? [`${LABEL_PROJECT}=${scope.project}`] : []),
    ...(scope.agent !== undefined ? [`${LABEL_AGENT}=${scope.agent}`] : []),
  ];
}

/**
 * Why the container `name` with these labels is not an agent of `scope` (undefined when it is).
 * Every lifecycle action checks this on what it inspected before it acts, and then acts on the id.
 */
export function ownershipProblem(name: string, labels: Readonly<Record<string, string>> | null | undefined, scope: AgentScope): string | undefined {
  const l = labels ?? {};
  if (l[LABEL_MANAGED] !== 'true') {
    return `a container named ${name} exists that Clawker did not create; Clawker will not touch it. Rename or remove it yourself if you do not need it (docker rm ${name})`;
  }
  if (l[LABEL_COMPONENT] !== 'agent') return `${name} is Clawker's ${l[LABEL_COMPONENT] ?? 'unlabelled'} container, not an agent; Clawker will not treat it as one`;
  if (l[LABEL_STACK] !== scope.stack) return `${name} belongs to the stack ${JSON.stringify(l[LABEL_STACK] ?? '')}, not ${JSON.stringify(scope.stack)}`;
  if (scope.project !== undefined && l[LABEL_PROJECT] !== scope.project) return `${name} belongs to the project ${JSON.stringify(l[LABEL_PROJECT] ?? '')}, not ${JSON.stringify(scope.project)}`;
  if (scope.agent !== undefined && l[LABEL_AGENT] !== scope.agent) return `${name} is the agent ${JSON.stringify(l[LABEL_AGENT] ?? '')}, not ${JSON.stringify(scope.agent)}`;
  return undefined;
}

/**
 * Which agent a command means. `create` makes a new one: the given name or `dev`. `run` uses the
 * given name, else the project's only agent, else `dev` when it has none. Commands on an existing
 * agent use the given name, else the project's only agent; with several, the name is required.
 */
export function chooseAgent(
  requested: string | undefined,
  existing: readonly string[],
  intent: 'create' | 'run' | 'existing',
  project: string,
): { readonly agent: string } | { readonly error: string; readonly usage: boolean } {
  if (requested !== undefined) {
    const problem = agentNameProblem(requested);
    return problem ? { error: problem, usage: true } : { agent: requested };
  }
  if (intent === 'create') return { agent: DEFAULT_AGENT_NAME };
  const names = [...new Set(existing)].sort();
  if (names.length === 1) return { agent: names[0]! };
  if (names.length === 0) {
    return intent === 'run' ? { agent: DEFAULT_AGENT_NAME } : { error: `the project ${project} has no agent yet; create one with: clawker run (or clawker create)`, usage: false };
  }
  return { error: `the project ${project} has ${names.length} agents (${names.join(', ')}): say which one with --agent NAME`, usage: true };
}

/**
 * Whether a container created under one firewall setting may start under the current one. One
 * created with the firewall off would run unfiltered now that it is on; one created behind it
 * needs the stack, which a disabled firewall does not start (it would start offline). Either
 * way: recreate it.
 */
export function firewallModeProblem(name: string, labels: Readonly<Record<string, string>> | null | undefined, firewallEnabled: boolean): string | undefined {
  const created = labels?.[LABEL_FIREWALL];
  if (firewallEnabled && created === 'disabled') return `${name} was created with the firewall off, and the firewall is now on: it would run without it. Recreate it`;
  if (!firewallEnabled && created !== 'disabled') {
    return `${name} was created behind the firewall, which settings.yaml now turns off (firewall.enable: false), so it would have no network. Turn the firewall back on, or recreate it`;
  }
  return undefined;
}

// ---- what ps shows -------------------------------------------------------------------------------

export type AgentContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'exited' | 'dead' | 'removing';
/** The control plane's view (enrolled, disabled, bypassed, locked-down), else why there is none. */
export type AgentFirewallState = 'enrolled' | 'disabled' | 'bypassed' | 'locked-down' | 'not enrolled' | 'off' | 'unknown';

export interface AgentSummary {
  readonly id: string;
  /** The container name, `<stack>.<project>.<agent>`. */
  readonly name: string;
  readonly agent: string;
  readonly project: string;
  readonly workspace: string;
  readonly state: AgentContainerState;
  /** Docker's words: "Up 5 minutes", "Exited (0) 2 hours ago". */
  readonly status: string;
  readonly exitCode?: number;
  readonly createdAt?: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly image: string;
  readonly firewall: AgentFirewallState;
}

/** The parts of Docker's container inspect an AgentSummary is made of. */
export interface AgentInspect {
  readonly Id: string;
  readonly Name: string;
  readonly Created?: string;
  readonly State: { readonly Status: string; readonly ExitCode?: number; readonly StartedAt?: string; readonly FinishedAt?: string };
  readonly Config: { readonly Image: string; readonly Labels?: Record<string, string> | null };
}

/** The control plane's agents (GET /v1/status), or undefined when it does not run. */
export interface ControlPlaneAgents {
  readonly agents: readonly { readonly container: string; readonly state: 'enrolled' | 'disabled' | 'bypassed' | 'locked-down' }[];
}

const STATES: readonly AgentContainerState[] = ['created', 'running', 'paused', 'restarting', 'exited', 'dead', 'removing'];
/** Docker writes 0001-01-01T00:00:00Z for "never". */
const time = (t: string | undefined): string | undefined => (t && !t.startsWith('0001-') ? t : undefined);

export function firewallStateOf(id: string, labels: Readonly<Record<string, string>> | null | undefined, controlPlane: ControlPlaneAgents | undefined): AgentFirewallState {
  if (labels?.[LABEL_FIREWALL] === 'disabled') return 'off';
  if (!controlPlane) return 'unknown';
  return controlPlane.agents.find((a) => a.container === id)?.state ?? 'not enrolled';
}

export function agentSummary(info: AgentInspect, statusText: string | undefined, controlPlane: ControlPlaneAgents | undefined): AgentSummary {
  const labels = info.Config.Labels ?? {};
  const state = (STATES as readonly string[]).includes(info.State.Status) ? (info.State.Status as AgentContainerState) : 'dead';
  const startedAt = time(info.State.StartedAt);
  const finishedAt = time(info.State.FinishedAt);
  const createdAt = time(info.Created);
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    agent: labels[LABEL_AGENT] ?? '',
    project: labels[LABEL_PROJECT] ?? '',
    workspace: labels[LABEL_WORKSPACE] ?? '',
    state,
    status: statusText ?? state,
    ...(state === 'exited' || state === 'dead' ? { exitCode: info.State.ExitCode ?? 0 } : {}),
    ...(createdAt ? { createdAt } : {}),
    ...(startedAt ? { startedAt } : {}),
    ...(finishedAt && state !== 'running' ? { finishedAt } : {}),
    image: info.Config.Image,
    firewall: firewallStateOf(info.Id, labels, controlPlane),
  };
}

/** The host proxy URL a container was created with (its CLAWKER_HOST_PROXY), if any. */
export function hostProxyUrlOf(env: readonly string[] | null | undefined): string | undefined {
  const line = (env ?? []).find((e) => e.startsWith(`${ENV_HOST_PROXY}=`));
  const value = line?.slice(ENV_HOST_PROXY.length + 1);
  return value ? value : undefined;
}

// ---- the files put into a container before its first start ----------------------------------------

export interface ArchiveEntry {
  /** Relative to the container's root, no leading '/'. Directories end without '/'. */
  readonly path: string;
  readonly type: 'directory' | 'file';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly content?: string;
}

export interface SessionFiles {
  /** The clawker CA, which agentd checks the control plane's client certificate against. */
  readonly caPem: string;
  /** agentd's server certificate (CN = the container name) and its key. */
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** The container's host proxy token; absent when the host proxy is off. */
  readonly hostProxyToken?: string;
}

const rel = (path: string): string => path.replace(/^\/+/, '');

/**
 * The tar entries, parents first: /run/clawker (root, 0755, as in the image), session/ (root,
 * 0700) with the CA, certificate and key (root, 0600): the agent user cannot read agentd's key;
 * hostproxy/ (root, 0755) with token (agent user, 0400): its credential helper presents it.
 */
export function sessionArchiveEntries(files: SessionFiles, user: AgentUser = DEFAULT_AGENT_USER): ArchiveEntry[] {
  const root = { uid: 0, gid: 0 };
  const entries: ArchiveEntry[] = [
    { path: rel(RUN_DIR), type: 'directory', mode: 0o755, ...root },
    { path: rel(SESSION_DIR), type: 'directory', mode: 0o700, ...root },
    { path: rel(SESSION_FILES.ca), type: 'file', mode: 0o600, ...root, content: files.caPem },
    { path: rel(SESSION_FILES.certificate), type: 'file', mode: 0o600, ...root, content: files.certificatePem },
    { path: rel(SESSION_FILES.key), type: 'file', mode: 0o600, ...root, content: files.privateKeyPem },
  ];
  if (files.hostProxyToken !== undefined) {
    entries.push(
      { path: rel(HOST_PROXY_DIR), type: 'directory', mode: 0o755, ...root },
      { path: rel(HOST_PROXY_TOKEN_FILE), type: 'file', mode: 0o400, uid: user.uid, gid: user.gid, content: files.hostProxyToken },
    );
  }
  return entries;
}
