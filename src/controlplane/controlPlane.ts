/**
 * The control plane: brings the firewall stack up in the spec's order (BPF state first, then CoreDNS,
 * then Envoy), keeps it healthy, enrolls every agent container, applies rule changes to all running
 * agents at once, and takes everything down without ever opening egress.
 *
 * Every operation that changes kernel or container state runs through one queue, so a reload, an
 * agent starting and a `down` never interleave.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { AgentStatus, ComponentHealth, ComponentName, DownResult, ReloadResult, StackInputs, Status } from '../core/stack/controlPlaneApi';
import { stackAddresses, type StackAddresses } from '../core/stack/addresses';
import { hostGatewayFromHosts } from '../core/engine/hostGateway';
import { agentsCgroupDir, agentsCgroupParent, type CgroupDriver, cgroupDriverOf, containerCgroupDir } from '../core/stack/cgroupPaths';
import { engineCapabilities, stackContainerSpecs } from '../core/stack/containerSpecs';
import { LABEL_AGENT, LABEL_COMPONENT, LABEL_STACK } from '../core/stack/labels';
import type { Bpfman, ContainerConfig } from '../platform/bpf/bpfman';
import { formatDestination } from '../core/firewall/destination';
import { domainKey, formatDomainKey } from '../core/firewall/domainKey';
import type { ControlPlaneConfig } from './config';
import { probeDatapath, probeHttp } from './health';
import { isDisabled, type LegacyState, migrateLegacy, openBypass, type PersistedState, readState, type RunningAgent, staleEntries, writeState } from './persistedState';
import { type AgentIdentity, resolveAgent, shownName } from './agentIdentity';
import { COREFILE, renderStack } from './ruleRenderer';
import { inspectContainer } from '../platform/docker/containers';
import { ensureService, primeAgentsCgroup, removeService, type ServiceSpec, signalService } from './stackContainers';
import { LABEL_SUPERVISOR, SUPERVISOR_AGENTD } from '../core/agents/agentContract';
import { type DropCounters, dropCountersOf, dropNews, NO_DROPS, totalRateLimited } from './eventDrops';
import { issueControlPlaneSessionCertificate } from '../core/pki/sessionCertificate';
import { loadCa } from '../platform/caStore';
import { adoptStackInputs } from './stackInputs';
import { type SessionCredentials, startAgentCommand } from './agentSession';

/** Where the control plane reports what happens (progress lines, and audit events for the event stream). */
export interface ControlPlaneReporter {
  progress(message: string): void;
  warn(message: string): void;
  /** A control-plane decision for the egress event stream (bypass opened/closed, agent enrolled, …). */
  audit(message: string, fields: { agent?: string; container?: string; cgroupId?: number; verdict?: 'allowed' | 'denied' | 'bypassed'; since?: string }): void;
}

/** A running, enrolled agent. `name` (the container's) and `id` identify it; `agent` may be shared. */
interface AgentRecord extends AgentIdentity {
  readonly cgroupId: number;
  readonly cgroupDir: string;
  readonly guarded: boolean;
  /** Its address on the firewall network: names DNS and proxy events. */
  readonly ip: string;
  lockedDown: boolean;
}

export class ControlPlaneError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly component?: ComponentName,
    readonly next?: string,
    /** The container names a caller may choose from (an ambiguous agent name). */
    readonly candidates?: readonly string[],
  ) {
    super(message);
  }
}

const HEALTH_PORTS = { envoy: { port: 9902, path: '/' }, coredns: { port: 18902, path: '/health' } } as const;

export class ControlPlane {
  phase = 'starting';
  private queue: Promise<unknown> = Promise.resolve();
  private readonly agents = new Map<string, AgentRecord>();
  private drops: DropCounters = NO_DROPS;
  private readonly health = new Map<ComponentName, ComponentHealth>();
  private readonly downSince = new Map<'envoy' | 'coredns', number>();
  private readonly bypassTimers = new Map<string, NodeJS.Timeout>();
  private state: PersistedState;
  /** A version 1 state file, migrated against the running agents at the first reconcile. */
  private legacy: LegacyState | undefined;
  private addresses!: StackAddresses;
  /** host.docker.internal in this container: where agents reach the host proxy (undefined: they cannot). */
  private hostGateway: string | undefined;
  private driver: CgroupDriver = 'cgroupfs';
  private cgroupRoot = '';
  private guardDir = '';
  private rules = 0;
  private routes = 0;
  private servicesWanted = true;
  private drainTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private knowsCapBpf = true;
  /** The session client certificate, for the CA it was issued by (re-issued after a CA rotation). */
  private session: { caFingerprint: string; credentials: SessionCredentials } | undefined;
  /** Domain key (0x…) → rule destination, from the last render: names kernel events. */
  private domains = new Map<string, string>();

  constructor(
    private readonly config: ControlPlaneConfig,
    private readonly docker: Docker,
    private readonly bpf: Bpfman,
    private readonly report: ControlPlaneReporter,
  ) {
    const read = readState(config.stateFile, (m) => report.warn(m));
    this.state = read.state;
    this.legacy = read.legacy;
  }

  /** Runs fn after every operation queued before it; failures do not stop the queue. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private step(phase: string): void {
    this.phase = `starting: ${phase}`;
    this.report.progress(phase);
  }

  start(): Promise<void> {
    return this.serial(async () => {
      this.step('loading the eBPF datapath');
      const loaded = await this.bpf.load();
      const cacheReplaced = (loaded.maps['dns_cache'] ?? '').startsWith('replaced');
      for (const w of loaded.warnings ?? []) this.report.warn(`datapath: ${w}`);

      this.step(`reading network ${this.config.names.network}`);
      this.addresses = await this.networkAddresses();
      this.hostGateway = this.readHostGateway();
      const info = await this.docker.info();
      this.driver = cgroupDriverOf(info.CgroupDriver);
      this.knowsCapBpf = engineCapabilities((await this.docker.version()).ApiVersion).knowsCapBpf;
      this.cgroupRoot = this.config.cgroup2Root ?? findCgroup2Root();

      this.step('guarding the agents cgroup (agents start locked down)');
      await this.guardAgentsCgroup();

      this.step('rendering rules and syncing routes');
      await this.applyRules();

      this.step('starting CoreDNS');
      if (cacheReplaced && (await inspectContainer(this.docker, this.config.names.coredns))?.State.Running) {
        // CoreDNS holds the replaced dns_cache open; it must reopen the new one.
        await removeService(this.docker, this.config.names.coredns);
      }
      await this.ensureComponent('coredns');
      this.step('starting Envoy');
      await this.ensureComponent('envoy');

      this.step('enrolling running agents');
      await this.reconcileAgents();
      this.phase = 'ready';
      this.report.progress('ready');
    }).then(() => {
      void this.watchDocker();
      this.probeTimer = setInterval(() => void this.probe(), this.config.probeIntervalMs);
      void this.probe();
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    for (const t of this.bypassTimers.values()) clearTimeout(t);
  }

  // ---- network, cgroups -------------------------------------------------------------------

  private async networkAddresses(): Promise<StackAddresses> {
    const info = await this.docker.getNetwork(this.config.names.network).inspect();
    const ipam = (info.IPAM?.Config ?? []).find((c: { Subnet?: string }) => c.Subnet && !c.Subnet.includes(':')) as { Subnet: string; Gateway: string } | undefined;
    if (!ipam) throw new ControlPlaneError(`network ${this.config.names.network} has no IPv4 subnet`, 500, 'controlplane', 'clawker firewall down && clawker firewall up');
    const addresses = stackAddresses(ipam.Subnet, ipam.Gateway);
    if ('error' in addresses) throw new ControlPlaneError(addresses.error, 500, 'controlplane');
    return addresses;
  }

  /** The engine's host-gateway as its containers see it (this one was created with it, like the agents). */
  private readHostGateway(): string | undefined {
    let text = '';
    try {
      text = readFileSync(this.config.hostsFile, 'utf8');
    } catch (e) {
      this.report.warn(`host proxy: ${this.config.hostsFile} unreadable (${(e as Error).message}): agents get no host proxy`);
    }
    const address = hostGatewayFromHosts(text);
    if (address === undefined && text) this.report.warn(`host proxy: ${this.config.hostsFile} has no IPv4 host.docker.internal: agents get no host proxy`);
    if (address !== undefined && address === this.addresses.gateway) {
      this.report.warn(`host proxy: host.docker.internal is the firewall network's gateway (${address}), which agents may never reach: agents get no host proxy`);
      return undefined;
    }
    return address;
  }

  private containerConfig(flags: ContainerConfig['flags'] = []): ContainerConfig {
    const a = this.addresses;
    const hostProxy = this.hostGateway !== undefined && this.config.hostProxyPort > 0 ? { hostProxyAddress: this.hostGateway, hostProxyPort: this.config.hostProxyPort } : {};
    return { envoy: a.envoy, coredns: a.coredns, gateway: a.gateway, network: a.subnet, flags, ...hostProxy };
  }

  /**
   * The agents' cgroup parent exists, carries the datapath, and is enrolled locked down: an agent
   * container is offline from its first instruction until enrollAgent gives it its own entry.
   */
  private async guardAgentsCgroup(): Promise<void> {
    this.guardDir = join(this.cgroupRoot, agentsCgroupDir(this.driver, this.config.names.agentsCgroup));
    if (!existsSync(this.guardDir)) {
      await primeAgentsCgroup(this.docker, this.config.images.controlplane, agentsCgroupParent(this.driver, this.config.names.agentsCgroup), this.config.names.prefix);
      // Stryker disable next-line EqualityOperator: one poll more or less (20 ms) in a wait of a second
      for (let i = 0; i < 50 && !existsSync(this.guardDir); i++) await sleep(20);
      if (!existsSync(this.guardDir)) throw new ControlPlaneError(`the agents cgroup ${this.guardDir} did not appear`, 500, 'datapath', 'check that Docker uses cgroup v2 (or the hybrid unified mount) for containers');
    }
    await this.bpf.attach(this.guardDir);
    await this.bpf.enroll({ cgroupDir: this.guardDir }, this.containerConfig(['lockdown']));
  }

  // ---- rules -----------------------------------------------------------------------------

  /** Render from the rule store, sync the route table (one atomic swap), have CoreDNS reload its Corefile. */
  private async applyRules(): Promise<{ corednsReloaded: boolean }> {
    const rendered = await renderStack(this.config.dataDir, this.config.stackDir, this.config.caDir, this.config.upstreams, this.config.dns);
    await this.bpf.routes(rendered.entriesFile);
    this.rules = rendered.policy.rules.length;
    this.routes = rendered.routes;
    this.domains = new Map(rendered.policy.rules.map((r) => [formatDomainKey(domainKey(formatDestination(r.dst))), formatDestination(r.dst)]));
    let corednsReloaded = false;
    if (rendered.changed.includes(COREFILE) && (await inspectContainer(this.docker, this.config.names.coredns))?.State.Running) {
      // SIGUSR1: CoreDNS re-reads its Corefile in place (no restart, no lost queries).
      await signalService(this.docker, this.config.names.coredns, 'SIGUSR1');
      corednsReloaded = true;
    }
    return { corednsReloaded };
  }

  /** With inputs: the host's rule store and CA replace this copy first (refused whole if damaged). */
  reload(inputs?: StackInputs): Promise<ReloadResult> {
    return this.serial(async () => {
      const started = performance.now();
      if (inputs) adoptStackInputs(this.config.dataDir, inputs);
      if (!this.servicesWanted) await this.resume();
      const { corednsReloaded } = await this.applyRules();
      return { rules: this.rules, routes: this.routes, corednsReloaded, millis: Math.round((performance.now() - started) * 10) / 10 };
    });
  }

  // ---- CoreDNS and Envoy ---------------------------------------------------------------------

  private serviceSpec(component: 'envoy' | 'coredns'): ServiceSpec {
    const specs = stackContainerSpecs(
      this.config.names.network,
      this.addresses,
      this.config.images,
      { volumes: this.config.names.volumes },
      { knowsCapBpf: this.knowsCapBpf },
    );
    const base = specs.find((s) => s.name === `clawker-${component}`)!;
    const renamed = { ...base, name: component === 'envoy' ? this.config.names.envoy : this.config.names.coredns };
    if (component === 'coredns') {
      // The whole bpffs is mounted (a pin directory cannot be a mount target inside sysfs); the
      // plugin is told which map to open.
      return { ...renamed, Env: [`CLAWKER_DNS_CACHE_MAP=${join(this.config.pinDir, 'dns_cache')}`] };
    }
    // The official image's entrypoint switches to uid 101 with su-exec, which needs capabilities the
    // container does not have; Envoy runs as root without capabilities instead.
    return { ...renamed, Env: ['ENVOY_UID=0', 'ENVOY_GID=0'] };
  }

  private async ensureComponent(component: 'envoy' | 'coredns'): Promise<void> {
    const spec = this.serviceSpec(component);
    try {
      const what = await ensureService(this.docker, spec, this.config.names.prefix);
      if (what !== 'running') this.report.progress(`${component}: ${what} ${spec.name} at ${spec.NetworkingConfig.EndpointsConfig[this.config.names.network]?.IPAMConfig.IPv4Address}`);
      this.downSince.delete(component);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const next = message.includes('is not on this machine')
        ? component === 'envoy'
          ? `pull or load ${spec.Image} (docker pull ${spec.Image}); until then TCP egress has nowhere to go (fail closed)`
          : 'build it: clawker firewall build'
        : `docker logs ${spec.name}`;
      this.health.set(component, { name: component, healthy: false, detail: message, next });
      this.report.warn(`${component}: ${message}; next: ${next}`);
    }
  }

  /** Kernel events the datapath could not report: each increase becomes one audit line. */
  private async checkEventDrops(): Promise<void> {
    let now: DropCounters;
    try {
      now = dropCountersOf(await this.bpf.stats());
    } catch {
      return; // the datapath's health says why
    }
    const news = dropNews(this.drops, now);
    this.drops = now;
    if (news.ringLost > 0) this.report.audit(`${news.ringLost} kernel events were lost: the event ring was full`, { verdict: 'denied' });
    for (const { cgroupId, dropped } of news.rateLimited) {
      const record = [...this.agents.values()].find((r) => String(r.cgroupId) === cgroupId);
      const who = record ? `agent ${this.shown(record)}` : `cgroup ${cgroupId}`;
      this.report.audit(`${who}: ${dropped} kernel events not reported (per-agent rate limit; its decisions still applied)`, {
        ...(record ? { agent: record.agent, container: record.id, cgroupId: record.cgroupId } : {}),
        verdict: 'denied',
      });
    }
  }

  private async probe(): Promise<void> {
    if (this.stopped) return;
    await this.checkEventDrops();
    const datapath = probeDatapath(this.config.pinDir);
    this.health.set('datapath', { name: 'datapath', ...datapath, ...(datapath.healthy ? {} : { next: 'clawker firewall down && clawker firewall up' }) });
    for (const component of ['coredns', 'envoy'] as const) {
      if (!this.servicesWanted) {
        this.health.set(component, { name: component, healthy: false, detail: 'stopped: no agent is running', next: 'starts with the next agent' });
        continue;
      }
      const ip = component === 'envoy' ? this.addresses.envoy : this.addresses.coredns;
      const { port, path } = HEALTH_PORTS[component];
      const result = await probeHttp(ip, port, path);
      const name = component === 'envoy' ? this.config.names.envoy : this.config.names.coredns;
      const info = await inspectContainer(this.docker, name).catch(() => undefined);
      const running = info?.State.Running === true;
      if (running) this.downSince.delete(component);
      else if (!this.downSince.has(component)) this.downSince.set(component, Date.now());
      this.health.set(component, {
        name: component,
        healthy: result.healthy && running,
        detail: running ? result.detail : `container ${name} is ${info ? `${info.State.Status} (exit ${info.State.ExitCode})` : 'missing'}`,
        ...(result.healthy && running ? {} : { next: running ? `docker logs ${name}` : `the control plane starts it again within ${this.config.healAfterMs / 1000} s` }),
      });
      const since = this.downSince.get(component);
      if (since !== undefined && Date.now() - since >= this.config.healAfterMs && this.phase === 'ready') {
        this.report.audit(`${component} was not running for ${Math.round((Date.now() - since) / 100) / 10} s; starting it again`, {});
        await this.serial(() => this.ensureComponent(component)).catch((e) => this.report.warn(`${component}: ${String(e)}`));
      }
    }
  }

  // ---- agents ----------------------------------------------------------------------------------

  private agentFilters(): Record<string, string[]> {
    return { label: [`${LABEL_COMPONENT}=agent`, `${LABEL_STACK}=${this.config.names.prefix}`] };
  }

  private async reconcileAgents(): Promise<void> {
    const running = await this.docker.listContainers({ filters: this.agentFilters() });
    if (this.legacy) await this.migrateLegacyState(running.map((c) => c.Id));
    for (const c of running) await this.enrollAgent(c.Id).catch((e) => this.report.warn(`agent ${c.Names[0] ?? c.Id}: ${String(e)}`));
    await this.forgetStaleEntries();
    // Entries of agents that are gone (the control plane was down when they exited).
    const known = new Set([...this.agents.values()].map((a) => String(a.cgroupId)));
    const guardId = String(cgroupIdOf(this.guardDir));
    for (const id of Object.keys((await this.bpf.show()).containers ?? {})) {
      if (!known.has(id) && id !== guardId) await this.bpf.unenroll({ cgroupId: id }).catch(() => undefined);
    }
    if (this.agents.size === 0) this.scheduleDrain();
  }

  /** Who a container is, and where its cgroup is. */
  private identify(info: Docker.ContainerInspectInfo): AgentIdentity & { readonly guarded: boolean; readonly cgroupDir: string } {
    const name = info.Name.replace(/^\//, '');
    const parent = info.HostConfig.CgroupParent ?? '';
    return {
      agent: info.Config.Labels?.[LABEL_AGENT] ?? name,
      name,
      id: info.Id,
      guarded: parent === agentsCgroupParent(this.driver, this.config.names.agentsCgroup),
      cgroupDir: join(this.cgroupRoot, containerCgroupDir(this.driver, info.Id, parent)),
    };
  }

  /**
   * A version 1 state file (keyed by agent name) becomes version 2 (keyed by container) against the
   * agents running now; what cannot be attributed to one container is dropped, and a dropped bypass is
   * closed in the kernel before the new file is written (a crash in between retries the migration).
   */
  private async migrateLegacyState(runningIds: readonly string[]): Promise<void> {
    const running: RunningAgent[] = [];
    for (const id of runningIds) {
      const info = await inspectContainer(this.docker, id).catch(() => undefined);
      if (!info?.State.Running) continue;
      const who = this.identify(info);
      let cgroupId: number | undefined;
      try {
        cgroupId = Number(cgroupIdOf(who.cgroupDir));
      } catch {
        cgroupId = undefined; // not there yet: no window can be attributed to it
      }
      running.push({ agent: who.agent, name: who.name, id: who.id, cgroupId });
    }
    const migration = migrateLegacy(this.legacy!, running, Date.now());
    for (const cgroupId of migration.closeBypass) {
      await this.bpf.bypass({ cgroupId }, 0).catch((e) => this.report.warn(`closing the bypass of cgroup ${cgroupId}: ${String(e)}`));
    }
    this.state = migration.state;
    writeState(this.config.stateFile, this.state);
    this.legacy = undefined;
    for (const note of migration.notes) this.report.audit(`state file migrated: ${note}`, {});
  }

  /** Entries of containers that were removed (or replaced by a new one of the same name) are forgotten. */
  private async forgetStaleEntries(): Promise<void> {
    if (Object.keys(this.state.disabled).length === 0 && Object.keys(this.state.bypass).length === 0) return;
    const all = await this.docker.listContainers({ all: true, filters: this.agentFilters() });
    const stale = staleEntries(
      this.state,
      all.map((c) => ({ name: (c.Names[0] ?? '').replace(/^\//, ''), id: c.Id })),
    );
    for (const name of stale.bypass) await this.closeBypass(name, 'its container is gone');
    for (const name of stale.disabled) {
      delete this.state.disabled[name];
      this.report.audit(`firewall disable for ${name} forgotten: its container is gone (a new container of that name starts enforced)`, {});
    }
    if (stale.disabled.length) writeState(this.config.stateFile, this.state);
    // Windows of containers that exist but are not running (they ended while no control plane ran).
    for (const name of Object.keys(this.state.bypass)) if (![...this.agents.values()].some((r) => r.name === name)) await this.closeBypass(name, 'agent not running');
  }

  private async enrollAgent(containerId: string): Promise<AgentRecord | undefined> {
    const info = await inspectContainer(this.docker, containerId);
    if (!info?.State.Running) return undefined;
    const who = this.identify(info);
    const { agent, name, cgroupDir, guarded } = who;
    // Stryker disable next-line EqualityOperator: one poll more or less (20 ms) in a wait of two seconds
    for (let i = 0; i < 100 && !existsSync(cgroupDir); i++) await sleep(20);
    if (!existsSync(cgroupDir)) throw new Error(`its cgroup ${cgroupDir} does not exist`);
    // Stryker disable next-line ConditionalExpression: tidiness only; a drain that fires re-checks that no agent runs
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    if (!this.servicesWanted) await this.resume();
    if (!guarded) {
      // Not created under the agents' cgroup: enforced from now on only; say so.
      this.report.warn(`agent ${name} was not created under ${this.config.names.agentsCgroup}: its datapath is attached now, after its command started`);
      await this.bpf.attach(cgroupDir);
    }
    const earlier = this.state.disabled[name];
    if (earlier && earlier.containerId !== info.Id) {
      // `disable` was for the container that had this name before: a new container starts enforced.
      delete this.state.disabled[name];
      writeState(this.config.stateFile, this.state);
      this.report.audit(`firewall disable for ${name} was for an earlier container of that name (${earlier.containerId.slice(0, 12)}); this one is enforced`, { agent, container: info.Id });
    }
    const disabled = isDisabled(this.state, who);
    // The kernel's entry is written somewhere in this call: the event says from when to when.
    const since = new Date().toISOString();
    const { cgroupId } = await this.bpf.enroll({ cgroupDir }, this.containerConfig(disabled ? ['disabled'] : []));
    const ip = info.NetworkSettings.Networks?.[this.config.names.network]?.IPAddress ?? '';
    const record: AgentRecord = { agent, name, id: info.Id, cgroupId, cgroupDir, guarded, ip, lockedDown: false };
    this.agents.set(info.Id, record);
    const window = this.state.bypass[name];
    if (window) {
      const open = openBypass(this.state, record, Date.now());
      if (open) this.armBypassTimer(name, Date.parse(open.until));
      else {
        const sameCgroup = window.containerId === info.Id && window.cgroupId === cgroupId;
        // The kernel's entry is keyed by the old cgroup: close it there too (a no-op when it is gone).
        if (!sameCgroup) await this.bpf.bypass({ cgroupId: window.cgroupId }, 0).catch(() => undefined);
        this.endBypass(name, sameCgroup ? 'expired' : 'it was for an earlier run of the container');
      }
    }
    const shown = this.shown(record);
    this.report.audit(`agent ${shown} enrolled${disabled ? ' (disabled: egress unrestricted)' : ''}`, { agent, container: info.Id, cgroupId, verdict: disabled ? 'bypassed' : 'allowed', since });
    // Only now, with its egress enforced, may the agent's command run. Outside the queue: the
    // supervisor may still be booting, and nothing else should wait for it.
    if (info.Config.Labels?.[LABEL_SUPERVISOR] === SUPERVISOR_AGENTD) void this.startCommand(record);
    return record;
  }

  private async sessionCredentials(): Promise<SessionCredentials> {
    const { ca } = await loadCa(this.config.caDir);
    const caFingerprint = ca.certificate.fingerprint256;
    if (this.session?.caFingerprint !== caFingerprint) {
      const issued = issueControlPlaneSessionCertificate(ca);
      this.session = { caFingerprint, credentials: { caPem: ca.certificatePem, certificatePem: issued.certificatePem, privateKeyPem: issued.privateKeyPem } };
    }
    return this.session.credentials;
  }

  /** Tells the agent's supervisor to start its command (idempotent: a running command is left alone). */
  private async startCommand(record: AgentRecord): Promise<void> {
    try {
      const response = await startAgentCommand(await this.sessionCredentials(), { ip: record.ip, containerName: record.name }, {
        isCancelled: () => this.stopped || this.agents.get(record.id) !== record,
      });
      this.report.audit(`agent ${this.shown(record)}: command ${response.state === 'running' ? `running (pid ${response.pid ?? '?'})` : response.state ?? 'started'}`, {
        agent: record.agent,
        container: record.id,
      });
    } catch (e) {
      if (this.agents.get(record.id) !== record) return; // it exited meanwhile
      this.report.warn(`agent ${this.shown(record)}: its command was not started: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async unenrollAgent(containerId: string): Promise<void> {
    const record = this.agents.get(containerId);
    if (!record) return;
    const shown = this.shown(record);
    this.agents.delete(containerId);
    // Unenrolling forgets the cgroup's kernel bypass entry too.
    await this.bpf.unenroll({ cgroupId: record.cgroupId }).catch(() => undefined);
    if (!record.guarded) await this.bpf.detach({ cgroupId: record.cgroupId }).catch(() => undefined);
    this.endBypass(record.name, 'agent exited', shown); // a no-op without a window
    this.report.audit(`agent ${shown} exited; unenrolled`, { agent: record.agent, container: containerId, cgroupId: record.cgroupId });
    if (this.agents.size === 0) this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainTimer || !this.servicesWanted) return;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      void this.serial(async () => {
        if (this.agents.size > 0 || this.stopped) return;
        this.phase = 'draining';
        await this.bpf.flush();
        await removeService(this.docker, this.config.names.envoy);
        await removeService(this.docker, this.config.names.coredns);
        this.servicesWanted = false;
        this.phase = 'idle';
        this.report.audit('last agent exited: stack drained (routes, DNS cache and bypass windows flushed; CoreDNS and Envoy stopped)', {});
      });
    }, this.config.drainAfterMs);
  }

  /** From idle: rules, CoreDNS and Envoy back before the next agent is enrolled. */
  private async resume(): Promise<void> {
    this.servicesWanted = true;
    await this.applyRules();
    await this.ensureComponent('coredns');
    await this.ensureComponent('envoy');
    this.phase = 'ready';
  }

  private async watchDocker(): Promise<void> {
    while (!this.stopped) {
      try {
        const stream = (await this.docker.getEvents({ filters: { type: ['container'], event: ['start', 'die'], ...this.agentFilters() } })) as NodeJS.ReadableStream;
        let buffer = '';
        for await (const chunk of stream) {
          buffer += chunk.toString();
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            const ev = JSON.parse(line) as { status?: string; Action?: string; id: string };
            const action = ev.Action ?? ev.status;
            if (action === 'start') void this.serial(() => this.enrollAgent(ev.id)).catch((e) => this.report.warn(`enrolling ${ev.id.slice(0, 12)}: ${String(e)}`));
            if (action === 'die') void this.serial(() => this.unenrollAgent(ev.id));
          }
        }
      } catch (e) {
        if (!this.stopped) this.report.warn(`docker events: ${String(e)}; reconnecting`);
      }
      if (!this.stopped) {
        await sleep(1000);
        await this.serial(() => this.reconcileAgents()).catch(() => undefined);
      }
    }
  }

  /** The running agent a caller names (container name, id or unique prefix, or an unshared agent name). */
  private recordFor(query: string): AgentRecord {
    const resolved = resolveAgent(query, [...this.agents.values()]);
    if ('found' in resolved) return resolved.found;
    throw new ControlPlaneError(resolved.error, resolved.status, undefined, resolved.next, resolved.candidates);
  }

  /** The agent name while no other running agent shares it, else the container name. */
  private shown(record: AgentRecord): string {
    return shownName(record, [...this.agents.values()]);
  }

  private agentStatus(record: AgentRecord): AgentStatus {
    const window = openBypass(this.state, record, Date.now());
    const state = record.lockedDown ? 'locked-down' : isDisabled(this.state, record) ? 'disabled' : window ? 'bypassed' : 'enrolled';
    return {
      agent: record.agent,
      container: record.id,
      containerName: record.name,
      cgroupId: record.cgroupId,
      state,
      guarded: record.guarded,
      ...(window ? { bypassUntil: window.until } : {}),
    };
  }

  setEnabled(query: string, enabled: boolean): Promise<{ agent: AgentStatus; message: string }> {
    return this.serial(async () => {
      const record = this.recordFor(query);
      const shown = this.shown(record);
      delete this.state.disabled[record.name];
      if (!enabled) this.state.disabled[record.name] = { containerId: record.id };
      writeState(this.config.stateFile, this.state);
      await this.bpf.enroll({ cgroupId: record.cgroupId }, this.containerConfig(enabled ? [] : ['disabled']));
      record.lockedDown = false;
      const message = enabled
        ? `firewall enabled for ${shown}: egress follows the rules again`
        : `firewall disabled for ${shown}: its egress is unrestricted (every connection is still recorded) until clawker firewall enable --agent ${shown}`;
      this.report.audit(message, { agent: record.agent, container: record.id, cgroupId: record.cgroupId, verdict: enabled ? 'allowed' : 'bypassed' });
      return { agent: this.agentStatus(record), message };
    });
  }

  bypass(query: string, seconds: number): Promise<{ agent: AgentStatus; message: string }> {
    return this.serial(async () => {
      const record = this.recordFor(query);
      const shown = this.shown(record);
      if (seconds <= 0) {
        await this.bpf.bypass({ cgroupId: record.cgroupId }, 0);
        const had = !!this.state.bypass[record.name];
        this.endBypass(record.name, 'stopped', shown);
        return { agent: this.agentStatus(record), message: had ? `bypass for ${shown} stopped: firewall re-enabled` : `${shown} had no bypass open` };
      }
      const until = Date.now() + seconds * 1000;
      // The kernel's bypass_map is keyed by this container's cgroup id: no other agent is touched.
      await this.bpf.bypass({ cgroupId: record.cgroupId }, seconds);
      this.state.bypass[record.name] = { containerId: record.id, cgroupId: record.cgroupId, until: new Date(until).toISOString() };
      writeState(this.config.stateFile, this.state);
      this.armBypassTimer(record.name, until);
      const message = `bypass open for ${shown} until ${new Date(until).toISOString()} (${seconds} s): egress unrestricted, every connection recorded`;
      this.report.audit(message, { agent: record.agent, container: record.id, cgroupId: record.cgroupId, verdict: 'bypassed' });
      return { agent: this.agentStatus(record), message };
    });
  }

  /** Timers by container name, like the windows. */
  private armBypassTimer(name: string, until: number): void {
    clearTimeout(this.bypassTimers.get(name));
    this.bypassTimers.set(
      name,
      setTimeout(() => {
        void this.serial(async () => {
          const window = this.state.bypass[name];
          if (!window || Date.parse(window.until) > Date.now() + 50) return;
          // The kernel already refuses at the deadline; removing the entry is housekeeping.
          await this.bpf.bypass({ cgroupId: window.cgroupId }, 0).catch(() => undefined);
          this.endBypass(name, 'expired');
        });
      }, Math.max(0, until - Date.now())),
    );
  }

  /** Closes the window in the kernel (its own cgroup only), then forgets it. */
  private async closeBypass(name: string, why: string): Promise<void> {
    const window = this.state.bypass[name];
    if (window) await this.bpf.bypass({ cgroupId: window.cgroupId }, 0).catch(() => undefined);
    this.endBypass(name, why);
  }

  /** Forgets the window of the container `name` and audits its end; `shown` names it in the message. */
  private endBypass(name: string, why: string, shown?: string): void {
    clearTimeout(this.bypassTimers.get(name));
    this.bypassTimers.delete(name);
    const window = this.state.bypass[name];
    if (!window) return;
    delete this.state.bypass[name];
    writeState(this.config.stateFile, this.state);
    const record = [...this.agents.values()].find((r) => r.name === name);
    this.report.audit(`bypass for ${shown ?? (record ? this.shown(record) : name)} ended (${why}): firewall re-enabled`, {
      ...(record ? { agent: record.agent } : {}),
      container: window.containerId,
      cgroupId: window.cgroupId,
      verdict: 'allowed',
    });
  }

  /**
   * `firewall down`: every running agent is locked down (loopback only) before anything is stopped,
   * then routes, DNS cache and bypass windows are flushed and CoreDNS and Envoy removed. The
   * datapath and the agents' cgroup guard stay: an agent started while the stack is down is offline.
   */
  down(): Promise<DownResult> {
    return this.serial(async () => {
      this.phase = 'down';
      this.servicesWanted = false;
      const lockedDown: string[] = [];
      for (const record of this.agents.values()) {
        await this.bpf.enroll({ cgroupId: record.cgroupId }, this.containerConfig(['lockdown']));
        record.lockedDown = true;
        lockedDown.push(this.shown(record));
      }
      await this.bpf.flush();
      for (const name of Object.keys(this.state.bypass)) this.endBypass(name, 'firewall down');
      const stopped: string[] = [];
      for (const name of [this.config.names.envoy, this.config.names.coredns]) if (await removeService(this.docker, name)) stopped.push(name);
      this.report.audit(`firewall down: ${lockedDown.length} agent(s) locked down (no egress), ${stopped.join(', ') || 'nothing'} stopped`, { verdict: 'denied' });
      this.stop();
      return { lockedDown, stopped };
    });
  }

  status(): Status {
    const components: ComponentHealth[] = [
      this.health.get('datapath') ?? { name: 'datapath', ...probeDatapath(this.config.pinDir) },
      this.health.get('coredns') ?? { name: 'coredns', healthy: false, detail: 'not probed yet' },
      this.health.get('envoy') ?? { name: 'envoy', healthy: false, detail: 'not probed yet' },
      { name: 'controlplane', healthy: this.phase === 'ready' || this.phase === 'idle', detail: this.phase },
    ];
    const a = this.addresses;
    return {
      phase: this.phase,
      components,
      agents: [...this.agents.values()].map((r) => this.agentStatus(r)),
      rules: this.rules,
      routes: this.routes,
      network: {
        ...(a ? { name: this.config.names.network, subnet: a.subnet, envoy: a.envoy, coredns: a.coredns, controlplane: a.controlplane } : { name: this.config.names.network, subnet: '', envoy: '', coredns: '', controlplane: '' }),
        ...(this.hostGateway !== undefined ? { hostGateway: this.hostGateway } : {}),
      },
      pinDir: this.config.pinDir,
      eventDrops: { ring: this.drops.ring, rateLimited: totalRateLimited(this.drops) },
    };
  }

  domainOfKey(key: string): string | undefined {
    return this.domains.get(key);
  }

  agentOfIp(ip: string): { agent: string; container: string } | undefined {
    // An agent with no address on the network ('') is nobody's address.
    for (const r of this.agents.values()) if (r.ip !== '' && r.ip === ip) return { agent: r.agent, container: r.id };
    return undefined;
  }

  /** Agent attribution for the event stream. */
  agentOfCgroup(cgroupId: number): { agent: string; container: string } | undefined {
    for (const r of this.agents.values()) if (r.cgroupId === cgroupId) return { agent: r.agent, container: r.id };
    return undefined;
  }
}

/** The cgroup v2 mount: the hybrid mount when there is one, else /sys/fs/cgroup. */
export function findCgroup2Root(): string {
  for (const candidate of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup']) if (existsSync(join(candidate, 'cgroup.controllers'))) return candidate;
  throw new ControlPlaneError('no cgroup v2 hierarchy under /sys/fs/cgroup', 500, 'datapath', 'mount cgroup2 (see the test bed notes) and restart Docker');
}

/** A cgroup v2 directory's id is its inode number. */
const cgroupIdOf = (dir: string): bigint => statSync(dir, { bigint: true }).ino;
