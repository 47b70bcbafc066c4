/**
 * The agent lifecycle against the Docker engine: create, start, stop, restart, remove, logs, attach
 * and list. The decisions are core's (src/core/agents/): this module looks things up, checks them,
 * and acts.
 *
 * Every container is found by name, then inspected, and its labels checked (ours, an agent, this
 * stack, this project, this agent) before anything is done to it; the action then addresses the id
 * that was inspected, never the name. A container of that name without our labels is reported and
 * left alone.
 *
 * Creating an agent, in order: the project's firewall rules into the rule store; the firewall stack
 * up (when the firewall is on); the agent image (built when missing or out of date); the host proxy
 * (when the project enables it) where host.docker.internal leads (the engine's host-gateway, or
 * loopback on Docker Desktop, OrbStack and Colima); the container; then, before
 * its first start, agentd's session files and the host proxy token put into it (putArchive). A
 * failure after the container exists removes it again: there is never a half-made agent.
 */
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { HOST_PROXY_AGENT_URL, HOST_PROXY_PORT } from '../../core/agents/agentContract';
import { type AgentFirewall, type AgentProjectSettings, agentContainerSpec, AgentSpecError } from '../../core/agents/agentContainerSpec';
import { AgentNameError, agentContainerName } from '../../core/agents/agentNames';
import {
  type AgentSummary,
  type ControlPlaneAgents,
  agentLabelFilter,
  agentSummary,
  DEFAULT_STOP_TIMEOUT_SECONDS,
  DETACH_KEYS,
  firewallModeProblem,
  hostProxyUrlOf,
  ownershipProblem,
  sessionArchiveEntries,
} from '../../core/agents/lifecycle';
import type { NormalizedRule } from '../../core/firewall/rule';
import { agentUserFor } from '../../core/agents/agentUser';
import { describeEngine, engineSocketPath, type ResolvedEngine } from '../../core/engine/engineResolution';
import { unreachableAdvice, workspaceUnreachable } from '../../core/engine/engineSupport';
import { HOST_GATEWAY_NAME, hostProxyListenAddress } from '../../core/engine/hostGateway';
import { refreshFromProject } from '../../core/firewall/runtimeRules';
import { issueSessionCertificate } from '../../core/pki/sessionCertificate';
import { agentsCgroupParent, cgroupDriverOf } from '../../core/stack/cgroupPaths';
import type { StackNames } from '../../core/stack/stackNames';
import { agentToken } from '../../hostproxy/token';
import { loadOrCreateCa } from '../caStore';
import { packArchive } from './archive';
import { reloadFromHost } from '../stackInputs';
import { ensureHostProxy, loadOrCreateHostProxySecret } from '../hostProxyLauncher';
import { RuleStore } from '../ruleStore';
import { AgentImageStaleCaError, ensureAgentImage } from './agentImage';
import { demuxLogFrames, inspectContainer, isNotFound } from './containers';
import { controlPlaneOf } from './controlPlaneAccess';
import type { ControlPlaneClient } from '../controlPlaneClient';
import type { Status } from '../../core/stack/controlPlaneApi';
import { checkEngine, type EngineReport, EngineUnsupportedError } from './engineCheck';
import { isLocalAddress, probeHostGateway } from './hostGatewayProbe';
import { type StackOptions, StackError, stackUp } from './stackLauncher';

// ---- what every call gets ------------------------------------------------------------------------

/** How to bring the firewall stack up, as `clawker firewall up` does. */
export type AgentStackConfig = Pick<StackOptions, 'images' | 'named' | 'upstreams' | 'dns' | 'pinDir' | 'env' | 'timeoutMs'>;

export interface AgentRuntime {
  readonly docker: Docker;
  /** Clawker's data directory (defaultDataDir()): the CA, the rule store, the host proxy's secret. */
  readonly dataDir: string;
  /** The stack: `stackNames()` for users, `stackNames('clawker-e2e-<pid>')` in tests. */
  readonly names: StackNames;
  /** settings.yaml `firewall.enable`. */
  readonly firewallEnabled: boolean;
  readonly stack: AgentStackConfig;
  /** The engine (as resolved for this CLI): its socket is what security.docker_socket mounts; the host proxy uses it too. */
  readonly engine?: ResolvedEngine;
  /** This process's user (tests pass one); default process.getuid()/getgid() where they exist. */
  readonly hostUser?: { readonly uid: number; readonly gid: number };
  /** One line per step (stack start, image build steps, host proxy): the CLI prints them on stderr. */
  readonly onProgress?: (line: string) => void;
  readonly signal?: AbortSignal;
}

export interface AgentRef {
  /** The project name (resolveProjectName in core/agents/agentNames.ts). */
  readonly project: string;
  readonly agent: string;
}

export type AgentComponent = 'docker' | 'agent' | 'agent image' | 'firewall' | 'host proxy' | 'configuration' | 'session certificates';
export type AgentErrorCode = 'not-found' | 'exists' | 'not-ours' | 'running' | 'not-running' | 'stale-ca' | 'firewall-mode' | 'invalid' | 'failed';

/** A lifecycle step failed: which component, and the next thing to do. */
export class AgentLifecycleError extends Error {
  override readonly name = 'AgentLifecycleError';
  constructor(
    message: string,
    readonly component: AgentComponent,
    readonly next: string,
    readonly code: AgentErrorCode = 'failed',
  ) {
    super(message);
  }
}

/** What an action did, for the CLI's one line and the editor's notification. */
export interface AgentActionResult {
  readonly agent: AgentSummary;
  /** False when there was nothing to do (already running, already stopped). */
  readonly changed: boolean;
  readonly message: string;
  readonly warnings: readonly string[];
}

export interface CreateAgentOptions extends AgentRef {
  /** The project folder, mounted read-write at /workspace. Absolute. */
  readonly workspace: string;
  /** From .clawker.yaml (projectSettingsOf); DEFAULT_PROJECT_SETTINGS without one. */
  readonly settings: AgentProjectSettings;
  /** The project's firewall rules (loadProject().rules), synced into the rule store first, as `firewall refresh` does. */
  readonly projectRules?: readonly NormalizedRule[];
  /** The command; default the image's (`claude`). */
  readonly cmd?: readonly string[];
  /** Build the agent image again even when it is up to date (after `firewall rotate-ca`). */
  readonly rebuild?: boolean;
  readonly baseImage?: string;
  /** The agent image's tag; default agentImage.ts's AGENT_IMAGE_TAG (tests use their own). */
  readonly imageTag?: string;
  /** Refused as a workspace (it holds the user's keys). */
  readonly homeDir?: string;
  readonly extraLabels?: Readonly<Record<string, string>>;
}

export interface CreatedAgent {
  readonly id: string;
  readonly name: string;
  readonly image: string;
  readonly imageBuilt: boolean;
  readonly firewall: boolean;
  readonly hostProxyUrl?: string;
  readonly warnings: readonly string[];
}

const progressOf = (rt: AgentRuntime): ((line: string) => void) => rt.onProgress ?? (() => undefined);

// ---- looking agents up ---------------------------------------------------------------------------

function containerNameOf(rt: AgentRuntime, ref: AgentRef): string {
  try {
    return agentContainerName(rt.names.prefix, ref.project, ref.agent);
  } catch (e) {
    if (e instanceof AgentNameError) throw new AgentLifecycleError(e.message, 'configuration', 'pick another name (--agent NAME, or name: in .clawker.yaml)', 'invalid');
    throw e;
  }
}

/** The agent's container, inspected and checked to be ours; throws not-found or not-ours. */
async function inspectOwned(rt: AgentRuntime, ref: AgentRef): Promise<Docker.ContainerInspectInfo> {
  const name = containerNameOf(rt, ref);
  const info = await inspectContainer(rt.docker, name);
  if (!info) {
    throw new AgentLifecycleError(`the project ${ref.project} has no agent ${ref.agent} (no container ${name})`, 'agent', `create it: clawker run --agent ${ref.agent} (clawker ps -a lists the project's agents)`, 'not-found');
  }
  const problem = ownershipProblem(name, info.Config.Labels, { stack: rt.names.prefix, project: ref.project, agent: ref.agent });
  if (problem) throw new AgentLifecycleError(problem, 'agent', `clawker ps -a lists the agents Clawker manages`, 'not-ours');
  return info;
}

/**
 * One client per runtime (one CLI command): its kept-alive exec session carries every call of the
 * operation, instead of a new exec (create, start, relay) for each status poll.
 */
const clients = new WeakMap<AgentRuntime, ControlPlaneClient>();
function controlPlane(rt: AgentRuntime): ControlPlaneClient {
  let client = clients.get(rt);
  if (!client) clients.set(rt, (client = controlPlaneOf(rt.docker, rt.names, 3000)));
  return client;
}

/** The control plane's agents, or undefined when it does not answer (quickly). */
async function controlPlaneAgents(rt: AgentRuntime): Promise<ControlPlaneAgents | undefined> {
  try {
    return await controlPlane(rt).status();
  } catch {
    return undefined;
  }
}

async function summaryOf(rt: AgentRuntime, id: string, statusText?: string, controlPlane?: ControlPlaneAgents | null): Promise<AgentSummary> {
  const info = await rt.docker.getContainer(id).inspect();
  return agentSummary(info, statusText, controlPlane === null ? undefined : (controlPlane ?? (await controlPlaneAgents(rt))));
}

/** The agent, or undefined when the project has none of that name. Throws not-ours for a foreign container of its name. */
export async function findAgent(rt: AgentRuntime, ref: AgentRef): Promise<AgentSummary | undefined> {
  try {
    const info = await inspectOwned(rt, ref);
    return agentSummary(info, undefined, await controlPlaneAgents(rt));
  } catch (e) {
    if (e instanceof AgentLifecycleError && e.code === 'not-found') return undefined;
    throw e;
  }
}

/**
 * Our agents of this stack (of one project, when given), running ones only unless `all`, sorted by
 * project and agent, each with the control plane's view of its firewall state when it runs.
 */
export async function listAgents(rt: AgentRuntime, o: { readonly project?: string; readonly all?: boolean } = {}): Promise<AgentSummary[]> {
  const scope = { stack: rt.names.prefix, ...(o.project !== undefined ? { project: o.project } : {}) };
  const listed = await rt.docker.listContainers({ all: o.all ?? false, filters: { label: agentLabelFilter(scope) } });
  const controlPlane = await controlPlaneAgents(rt);
  const summaries: AgentSummary[] = [];
  for (const c of listed) {
    if (ownershipProblem(c.Names[0] ?? c.Id, c.Labels, scope)) continue;
    const info = await inspectContainer(rt.docker, c.Id);
    if (!info || ownershipProblem(info.Name, info.Config.Labels, scope)) continue; // gone, or relabelled meanwhile
    summaries.push(agentSummary(info, c.Status, controlPlane));
  }
  return summaries.sort((a, b) => a.project.localeCompare(b.project) || a.agent.localeCompare(b.agent));
}

// ---- create --------------------------------------------------------------------------------------

/** The project's rules into the rule store (add and update, never remove); true when it changed. */
async function syncProjectRules(rt: AgentRuntime, rules: readonly NormalizedRule[]): Promise<boolean> {
  if (rules.length === 0) return false;
  const outcome = await new RuleStore(rt.dataDir).update((state) => refreshFromProject(state, rules));
  if (!outcome.ok) {
    throw new AgentLifecycleError(`the project's firewall rules could not be stored: ${outcome.errors.join('; ')}`, 'firewall', 'clawker firewall refresh shows the problem; fix .clawker.yaml (clawker validate)');
  }
  return outcome.changed;
}

/** What the engine is, once per operation (a refusal says what to do instead). */
async function checkedEngine(rt: AgentRuntime): Promise<EngineReport> {
  try {
    return await checkEngine(rt.docker, rt.engine);
  } catch (e) {
    if (e instanceof EngineUnsupportedError) throw new AgentLifecycleError(e.message, 'docker', e.next);
    throw e;
  }
}

/**
 * The stack as this runtime (one CLI command) brought it up: `run` creates, then starts, and the
 * second needs no second round of checks.
 */
const stacksUp = new WeakMap<AgentRuntime, Promise<Status>>();

/** Brings the firewall stack up (idempotent, once per runtime); failures name the stack's own next step. */
function firewallUp(rt: AgentRuntime, projectRules: readonly NormalizedRule[] | undefined, engineReport?: EngineReport): Promise<Status> {
  let up = stacksUp.get(rt);
  if (!up) {
    up = bringFirewallUp(rt, projectRules, engineReport);
    stacksUp.set(rt, up);
    up.catch(() => stacksUp.delete(rt)); // a failure is not remembered
  }
  return up;
}

async function bringFirewallUp(rt: AgentRuntime, projectRules: readonly NormalizedRule[] | undefined, engineReport?: EngineReport): Promise<Status> {
  const progress = progressOf(rt);
  const changed = projectRules ? await syncProjectRules(rt, projectRules) : false;
  let status;
  try {
    status = await stackUp(rt.docker, { ...rt.stack, dataDir: rt.dataDir, names: rt.names, progress, client: controlPlane(rt), ...(engineReport ? { engineReport } : {}), ...(rt.engine ? { engine: rt.engine } : {}) });
  } catch (e) {
    if (e instanceof StackError) throw new AgentLifecycleError(`the firewall stack did not come up: ${e.message}`, 'firewall', e.next);
    throw e;
  }
  if (changed) {
    // A stack that was already running renders the store on reload; a new one has just read it.
    await reloadFromHost(controlPlane(rt), rt.dataDir)
      .then((r) => progress(`firewall rules: ${r.rules} rules, ${r.routes} routes`))
      .catch((e: unknown) => progress(`warning: the firewall did not reload the project's rules (${e instanceof Error ? e.message : String(e)}); run clawker firewall reload`));
  }
  return status; // stackUp has reported unhealthy components
}

/**
 * Where the host proxy listens for agents that reach it at host.docker.internal: from the engine's
 * host-gateway (the control plane's, or a probe's when the firewall is off) and the engine's kind.
 */
async function hostProxyListen(kind: EngineReport['kind'], hostGateway: string | undefined): Promise<string> {
  const hostGatewayIsLocal = hostGateway !== undefined && (await isLocalAddress(hostGateway));
  const listen = hostProxyListenAddress({ kind, hostGateway, hostGatewayIsLocal });
  if ('what' in listen) throw new AgentLifecycleError(listen.what, 'host proxy', listen.next);
  return listen.address;
}

const HOST_PROXY_NEXT = 'see the host proxy log in <data dir>/hostproxy/hostproxy.log, or set security.enable_host_proxy: false in .clawker.yaml';

/**
 * Creates the agent's container (not started). The firewall stack is brought up first when the
 * firewall is on, the image built when needed, the host proxy started when the project enables
 * it; agentd's session certificate (CN = the container name), the CA and the host proxy token are
 * in the container before this returns. Throws AgentLifecycleError `exists` when it already does.
 */
export async function createAgent(rt: AgentRuntime, o: CreateAgentOptions): Promise<CreatedAgent> {
  const progress = progressOf(rt);
  const name = containerNameOf(rt, o);
  const existing = await inspectContainer(rt.docker, name);
  if (existing) {
    const problem = ownershipProblem(name, existing.Config.Labels, { stack: rt.names.prefix, project: o.project, agent: o.agent });
    if (problem) throw new AgentLifecycleError(problem, 'agent', 'pick another agent name (--agent NAME)', 'not-ours');
    throw new AgentLifecycleError(
      `the agent ${o.agent} of project ${o.project} exists already (${name}, ${existing.State.Status})`,
      'agent',
      `start it: clawker start --agent ${o.agent}; or remove it first: clawker rm --agent ${o.agent}`,
      'exists',
    );
  }
  // The project's choices are checked before anything slow happens (a refused cap_add, a bad env name).
  const specOf = (image: string, firewall: AgentFirewall, hostProxyUrl: string | undefined, imageEnv: readonly string[]) => {
    try {
      return agentContainerSpec({
        stack: rt.names,
        project: o.project,
        agent: o.agent,
        image,
        workspace: o.workspace,
        settings: o.settings,
        firewall,
        imageEnv,
        ...(hostProxyUrl ? { hostProxyUrl } : {}),
        ...(o.cmd ? { cmd: o.cmd } : {}),
        ...(rt.engine ? { hostDockerSocket: engineSocketPath(rt.engine) } : {}),
        ...(o.homeDir ? { homeDir: o.homeDir } : {}),
        ...(o.extraLabels ? { extraLabels: o.extraLabels } : {}),
      });
    } catch (e) {
      if (e instanceof AgentSpecError || e instanceof AgentNameError) throw new AgentLifecycleError(e.message, 'configuration', 'change .clawker.yaml (clawker validate checks it) or the command line', 'invalid');
      throw e;
    }
  };
  specOf('check', { enabled: true, corednsIp: '0.0.0.0', cgroupParent: '/' }, 'http://0.0.0.0', []);
  const unreachable = rt.engine ? workspaceUnreachable(rt.engine.address, describeEngine(rt.engine), o.workspace) : undefined;
  if (unreachable) throw new AgentLifecycleError(unreachable.what, 'docker', unreachable.next, 'invalid');
  // What the engine is decides the agent user's ids (the host user's on a local Linux engine).
  const engine = await checkedEngine(rt);
  const user = agentUserFor(engine.kind, rt.hostUser ?? hostUserIds());

  let firewall: AgentFirewall;
  let stackHostGateway: string | undefined;
  if (rt.firewallEnabled) {
    const status = await firewallUp(rt, o.projectRules, engine);
    stackHostGateway = status.network.hostGateway;
    const driver = cgroupDriverOf(engine.cgroupDriver);
    firewall = { enabled: true, corednsIp: status.network.coredns, cgroupParent: agentsCgroupParent(driver, rt.names.agentsCgroup) };
  } else {
    progress('warning: the firewall is off (settings.yaml firewall.enable: false): this agent can reach any destination');
    firewall = { enabled: false };
  }

  let image: string;
  let imageBuilt: boolean;
  try {
    ({ image, built: imageBuilt } = await ensureAgentImage(rt.docker, {
      dataDir: rt.dataDir,
      onProgress: (line) => progress(`agent image: ${line}`),
      ...(o.baseImage ? { baseImage: o.baseImage } : {}),
      ...(o.imageTag ? { tag: o.imageTag } : {}),
      user,
      ...(rt.signal ? { signal: rt.signal } : {}),
      ...(o.rebuild ? { rebuild: true } : {}),
    }));
  } catch (e) {
    if (e instanceof AgentImageStaleCaError) {
      throw new AgentLifecycleError(e.message, 'agent image', `rebuild it: clawker run --rebuild --agent ${o.agent}`, 'stale-ca');
    }
    if (e instanceof AgentLifecycleError || rt.signal?.aborted) throw e;
    throw new AgentLifecycleError(`the agent image could not be built: ${e instanceof Error ? e.message : String(e)}`, 'agent image', 'fix what the build log above says, then try again (clawker run --rebuild builds from scratch)');
  }
  const imageEnv = (await rt.docker.getImage(image).inspect()).Config?.Env ?? [];

  let hostProxyUrl: string | undefined;
  let token: string | undefined;
  if (o.settings.enableHostProxy) {
    const listenAddress = await hostProxyListen(engine.kind, rt.firewallEnabled ? stackHostGateway : await probeHostGateway(rt.docker, image));
    try {
      await ensureHostProxy({ dataDir: rt.dataDir, listenAddress, port: HOST_PROXY_PORT, stackPrefix: rt.names.prefix, onProgress: progress, ...(rt.engine ? { engine: rt.engine } : {}) });
      hostProxyUrl = HOST_PROXY_AGENT_URL;
      token = agentToken(await loadOrCreateHostProxySecret(rt.dataDir), name);
    } catch (e) {
      throw new AgentLifecycleError(e instanceof Error ? e.message : String(e), 'host proxy', HOST_PROXY_NEXT);
    }
  }

  const spec = specOf(image, firewall, hostProxyUrl, imageEnv);
  for (const w of spec.warnings) progress(`warning: ${w}`);
  let container: Docker.Container;
  try {
    container = await rt.docker.createContainer({ name: spec.name, ...spec.create, HostConfig: { ...spec.create.HostConfig, Mounts: [...spec.create.HostConfig.Mounts] } });
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 409) throw new AgentLifecycleError(`a container named ${spec.name} was created meanwhile`, 'agent', 'clawker ps -a', 'exists');
    throw new AgentLifecycleError(`Docker refused to create ${spec.name}: ${e instanceof Error ? e.message : String(e)}`, 'docker', 'check the workspace folder exists and Docker can share it');
  }
  try {
    const pki = await loadOrCreateCa(join(rt.dataDir, 'firewall', 'ca'));
    const session = issueSessionCertificate(pki.ca, { commonName: spec.name, usage: 'server', dnsNames: [spec.name] });
    const archive = await packArchive(
      sessionArchiveEntries({ caPem: pki.ca.certificatePem, certificatePem: session.certificatePem, privateKeyPem: session.privateKeyPem, ...(token !== undefined ? { hostProxyToken: token } : {}) }, user),
    );
    await container.putArchive(archive, { path: '/', noOverwriteDirNonDir: true });
  } catch (e) {
    await container.remove({ force: true }).catch(() => undefined);
    throw new AgentLifecycleError(`the session files could not be put into ${spec.name}: ${e instanceof Error ? e.message : String(e)}`, 'session certificates', 'the container was removed again; fix the CA (clawker firewall rotate-ca, then clawker run --rebuild) and retry');
  }
  progress(`created ${spec.name}`);
  return { id: container.id, name: spec.name, image, imageBuilt, firewall: firewall.enabled, ...(hostProxyUrl ? { hostProxyUrl } : {}), warnings: spec.warnings };
}

// ---- start, stop, restart, remove -----------------------------------------------------------------

/** Waits (up to `ms`) for the control plane to report the container enrolled; its state then. */
async function waitEnrolled(rt: AgentRuntime, id: string, ms = 5000): Promise<ControlPlaneAgents | undefined> {
  const deadline = Date.now() + ms;
  let last: ControlPlaneAgents | undefined;
  while (Date.now() < deadline) {
    last = await controlPlaneAgents(rt);
    if (last?.agents.some((a) => a.container === id)) return last;
    // Enrolment follows Docker's start event within tens of ms; a poll is one request on a kept session.
    await sleep(20);
  }
  return last;
}

/**
 * Starts the agent (idempotent). Behind the firewall, the stack is brought up first: an agent under
 * the agents' cgroup has no network until the control plane enrolls it. The host proxy it was
 * created with is started again when it is not running.
 */
export async function startAgent(rt: AgentRuntime, ref: AgentRef, o: { readonly projectRules?: readonly NormalizedRule[] } = {}): Promise<AgentActionResult> {
  const progress = progressOf(rt);
  const info = await inspectOwned(rt, ref);
  const name = info.Name.replace(/^\//, '');
  if (info.State.Running && !info.State.Paused) return { agent: await summaryOf(rt, info.Id), changed: false, message: `${name} is already running`, warnings: [] };
  const modeProblem = firewallModeProblem(name, info.Config.Labels, rt.firewallEnabled);
  if (modeProblem) throw new AgentLifecycleError(modeProblem, 'firewall', `clawker rm --agent ${ref.agent}, then clawker run --agent ${ref.agent}`, 'firewall-mode');
  // Asked at most once: the stack's start and the host proxy's listen address both depend on it.
  let engineReport: EngineReport | undefined;
  const engineOf = async (): Promise<EngineReport> => (engineReport ??= await checkedEngine(rt));
  const stack = rt.firewallEnabled ? await firewallUp(rt, o.projectRules, await engineOf()) : undefined;

  const warnings: string[] = [];
  const url = hostProxyUrlOf(info.Config.Env);
  if (url) {
    try {
      const { hostname, port } = new URL(url);
      let listenAddress: string;
      if (hostname === HOST_GATEWAY_NAME) {
        const engine = await engineOf();
        listenAddress = await hostProxyListen(engine.kind, stack ? stack.network.hostGateway : await probeHostGateway(rt.docker, info.Config.Image));
      } else {
        // Created by an earlier Clawker, with the host proxy at the network's gateway.
        listenAddress = hostname.replace(/^\[|\]$/g, '');
        if (stack) warnings.push(`${name} was created by an earlier Clawker with the host proxy at the network's gateway, which the firewall now refuses: recreate it for git credentials and browser sign-in (clawker rm --agent ${ref.agent}, then clawker run --agent ${ref.agent})`);
      }
      await ensureHostProxy({ dataDir: rt.dataDir, listenAddress, port: Number(port) || HOST_PROXY_PORT, stackPrefix: rt.names.prefix, onProgress: progress, ...(rt.engine ? { engine: rt.engine } : {}) });
    } catch (e) {
      warnings.push(`the host proxy is not running (${e instanceof Error ? e.message : String(e)}): git HTTPS credentials and browser sign-in will fail in ${name} until it does (clawker restart --agent ${ref.agent})`);
    }
  }

  const container = rt.docker.getContainer(info.Id);
  try {
    if (info.State.Paused) await container.unpause();
    else await container.start();
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 304) {
      throw new AgentLifecycleError(`Docker could not start ${name}: ${e instanceof Error ? e.message : String(e)}`, 'docker', `docker logs ${name}; or recreate it: clawker rm --agent ${ref.agent} && clawker run --agent ${ref.agent}`);
    }
  }
  let controlPlane: ControlPlaneAgents | undefined;
  if (rt.firewallEnabled) {
    controlPlane = await waitEnrolled(rt, info.Id);
    if (!controlPlane?.agents.some((a) => a.container === info.Id)) {
      warnings.push(`${name} is not enrolled in the firewall yet: it has no egress until it is (clawker firewall status)`);
    }
  }
  for (const w of warnings) progress(`warning: ${w}`);
  return { agent: await summaryOf(rt, info.Id, undefined, controlPlane ?? null), changed: true, message: `started ${name}`, warnings };
}

/** Stops the agent: SIGTERM, then SIGKILL after `timeoutSeconds` (default 10). Idempotent. */
export async function stopAgent(rt: AgentRuntime, ref: AgentRef, o: { readonly timeoutSeconds?: number } = {}): Promise<AgentActionResult> {
  const info = await inspectOwned(rt, ref);
  const name = info.Name.replace(/^\//, '');
  if (!info.State.Running) return { agent: await summaryOf(rt, info.Id), changed: false, message: `${name} is not running`, warnings: [] };
  try {
    await rt.docker.getContainer(info.Id).stop({ t: o.timeoutSeconds ?? DEFAULT_STOP_TIMEOUT_SECONDS });
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 304) throw new AgentLifecycleError(`Docker could not stop ${name}: ${e instanceof Error ? e.message : String(e)}`, 'docker', `docker logs ${name}`);
  }
  return { agent: await summaryOf(rt, info.Id), changed: true, message: `stopped ${name}`, warnings: [] };
}

/** Stop (when running), then start as startAgent does (stack and host proxy first). */
export async function restartAgent(rt: AgentRuntime, ref: AgentRef, o: { readonly timeoutSeconds?: number; readonly projectRules?: readonly NormalizedRule[] } = {}): Promise<AgentActionResult> {
  await stopAgent(rt, ref, o.timeoutSeconds !== undefined ? { timeoutSeconds: o.timeoutSeconds } : {});
  const started = await startAgent(rt, ref, o.projectRules ? { projectRules: o.projectRules } : {});
  return { ...started, message: started.message.replace(/^started/, 'restarted') };
}

/** Removes the agent's container. A running one only with `force` (it is killed). Its workspace is untouched. */
export async function removeAgent(rt: AgentRuntime, ref: AgentRef, o: { readonly force?: boolean } = {}): Promise<{ readonly id: string; readonly name: string; readonly message: string }> {
  const info = await inspectOwned(rt, ref);
  const name = info.Name.replace(/^\//, '');
  if (info.State.Running && !o.force) {
    throw new AgentLifecycleError(`${name} is running`, 'agent', `stop it first (clawker stop --agent ${ref.agent}), or remove it anyway: clawker rm --force --agent ${ref.agent}`, 'running');
  }
  try {
    // v: false — anonymous volumes are Docker's, not labelled ours: left alone.
    await rt.docker.getContainer(info.Id).remove({ force: !!o.force, v: false });
  } catch (e) {
    if (!isNotFound(e)) throw new AgentLifecycleError(`Docker could not remove ${name}: ${e instanceof Error ? e.message : String(e)}`, 'docker', `docker inspect ${name}`);
  }
  return { id: info.Id, name, message: `removed ${name}` };
}

// ---- logs and attach -----------------------------------------------------------------------------

export interface AgentLogsOptions {
  readonly follow?: boolean;
  /** Only the last N lines. */
  readonly tail?: number;
  readonly timestamps?: boolean;
  /** Receives the output (stdout and stderr together, as the terminal showed them). */
  readonly write: (text: string) => void;
  /** Ends a followed stream. */
  readonly signal?: AbortSignal;
}

/** The agent's output; with `follow`, until the container stops or the signal aborts. */
export async function agentLogs(rt: AgentRuntime, ref: AgentRef, o: AgentLogsOptions): Promise<void> {
  const info = await inspectOwned(rt, ref);
  const container = rt.docker.getContainer(info.Id);
  const tty = info.Config.Tty === true;
  const base = { stdout: true, stderr: true, timestamps: !!o.timestamps, ...(o.tail !== undefined ? { tail: o.tail } : {}) };
  if (!o.follow) {
    const buffer = (await container.logs({ ...base, follow: false })) as unknown as Buffer;
    o.write(tty ? buffer.toString('utf8') : demuxLogFrames(buffer).text);
    return;
  }
  const stream = await container.logs({ ...base, follow: true, ...(o.signal ? { abortSignal: o.signal } : {}) });
  const decoder = new StringDecoder('utf8');
  let rest: Buffer = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const finish = () => resolve();
    o.signal?.addEventListener('abort', () => {
      (stream as unknown as { destroy?: () => void }).destroy?.();
      finish();
    });
    stream.on('data', (chunk: Buffer) => {
      if (tty) o.write(decoder.write(chunk));
      else {
        const framed = demuxLogFrames(Buffer.concat([rest, chunk]));
        rest = framed.rest;
        if (framed.text) o.write(framed.text);
      }
    });
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', (e: Error) => (o.signal?.aborted ? finish() : reject(e)));
  });
}

export interface AttachOptions {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean; rows?: number; columns?: number; on(event: 'resize', listener: () => void): unknown };
  /** Start the agent once attached (`run`): nothing it prints first is missed. */
  readonly start?: boolean;
  readonly projectRules?: readonly NormalizedRule[];
  /** Default ctrl-p,ctrl-q. */
  readonly detachKeys?: string;
}

export interface AttachResult {
  /** True when the user detached (the agent runs on); false when the agent's command ended. */
  readonly detached: boolean;
  readonly agent: AgentSummary;
  readonly warnings: readonly string[];
}

/**
 * Connects the terminal to the agent's TTY: raw input passthrough, the window size followed, until
 * the detach keys (ctrl-p ctrl-q) or the command's end. The terminal is restored either way.
 */
export async function attachAgent(rt: AgentRuntime, ref: AgentRef, o: AttachOptions): Promise<AttachResult> {
  const info = await inspectOwned(rt, ref);
  const name = info.Name.replace(/^\//, '');
  if (!o.start && !info.State.Running) {
    throw new AgentLifecycleError(`${name} is not running (${info.State.Status})`, 'agent', `start it: clawker start --agent ${ref.agent}, or clawker run --agent ${ref.agent} to start and attach`, 'not-running');
  }
  const container = rt.docker.getContainer(info.Id);
  const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true, detachKeys: o.detachKeys ?? DETACH_KEYS })) as NodeJS.ReadWriteStream & { destroy?: () => void };
  let warnings: readonly string[] = [];
  if (o.start) {
    try {
      warnings = (await startAgent(rt, ref, o.projectRules ? { projectRules: o.projectRules } : {})).warnings;
    } catch (e) {
      stream.destroy?.();
      throw e;
    }
  }

  const resize = () => {
    if (o.stdout.rows && o.stdout.columns) container.resize({ h: o.stdout.rows, w: o.stdout.columns }).catch(() => undefined);
  };
  const raw = o.stdin.isTTY === true && typeof o.stdin.setRawMode === 'function';
  const ended = new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.on('close', () => resolve());
    stream.on('error', () => resolve());
  });
  if (raw) o.stdin.setRawMode!(true);
  try {
    o.stdin.pipe(stream);
    o.stdin.resume();
    stream.pipe(o.stdout, { end: false });
    if (o.stdout.isTTY) {
      resize();
      o.stdout.on('resize', resize);
    }
    await ended;
  } finally {
    o.stdin.unpipe(stream);
    stream.unpipe(o.stdout);
    (o.stdout as NodeJS.EventEmitter).removeListener('resize', resize);
    if (raw) o.stdin.setRawMode!(false);
    o.stdin.pause();
  }
  const after = await summaryOf(rt, info.Id, undefined, null);
  return { detached: after.state === 'running' || after.state === 'paused', agent: after, warnings };
}

/** This process's user, where the platform has one (not on Windows). */
const hostUserIds = (): { uid: number; gid: number } | undefined => (process.getuid && process.getgid ? { uid: process.getuid(), gid: process.getgid() } : undefined);

/** Docker cannot be reached: what to do, naming the engine tried, or undefined for any other error. */
export function dockerUnreachable(e: unknown, engine: ResolvedEngine, env: NodeJS.ProcessEnv = process.env): AgentLifecycleError | undefined {
  if (e instanceof EngineUnsupportedError) return new AgentLifecycleError(e.message, 'docker', e.next);
  const advice = unreachableAdvice(e, describeEngine(engine), { env });
  return advice && new AgentLifecycleError(advice.what, 'docker', advice.next);
}
