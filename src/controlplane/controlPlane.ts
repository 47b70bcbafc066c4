/**
 * The control plane: brings the firewall stack up in the spec's order (BPF state first, then CoreDNS,
 * then Envoy), keeps it healthy, enrolls every agent container, applies rule changes to all running
 * agents at once, and takes everything down without ever opening egress.
 *
 * Every operation that changes kernel or container state runs through one queue, so a reload, an
 * agent starting and a `down` never interleave.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { AgentStatus, ComponentHealth, ComponentName, DownResult, ReloadResult, Status } from '../core/stack/controlPlaneApi';
import { stackAddresses, type StackAddresses } from '../core/stack/addresses';
import { agentsCgroupDir, agentsCgroupParent, type CgroupDriver, cgroupDriverOf, containerCgroupDir } from '../core/stack/cgroupPaths';
import { engineCapabilities, stackContainerSpecs } from '../core/stack/containerSpecs';
import { LABEL_AGENT, LABEL_COMPONENT, LABEL_STACK } from '../core/stack/labels';
import type { Bpfman, ContainerConfig } from '../platform/bpf/bpfman';
import { formatDestination } from '../core/firewall/destination';
import { domainKey, formatDomainKey } from '../core/firewall/domainKey';
import type { ControlPlaneConfig } from './config';
import { probeDatapath, probeHttp } from './health';
import { type PersistedState, readState, writeState } from './persistedState';
import { COREFILE, renderStack } from './ruleRenderer';
import { inspectContainer } from '../platform/docker/containers';
import { ensureService, primeAgentsCgroup, removeService, type ServiceSpec, signalService } from './stackContainers';
import { LABEL_SUPERVISOR, SUPERVISOR_AGENTD } from '../core/agents/agentContract';
import { issueControlPlaneSessionCertificate } from '../core/pki/sessionCertificate';
import { loadOrCreateCa } from '../platform/caStore';
import { type SessionCredentials, startAgentCommand } from './agentSession';

/** Where the control plane reports what happens (progress lines, and audit events for the event stream). */
export interface ControlPlaneReporter {
  progress(message: string): void;
  warn(message: string): void;
  /** A control-plane decision for the egress event stream (bypass opened/closed, agent enrolled, …). */
  audit(message: string, fields: { agent?: string; container?: string; cgroupId?: number; verdict?: 'allowed' | 'denied' | 'bypassed' }): void;
}

interface AgentRecord {
  readonly agent: string;
  readonly container: string;
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
  ) {
    super(message);
  }
}

const HEALTH_PORTS = { envoy: { port: 9902, path: '/' }, coredns: { port: 18902, path: '/health' } } as const;

export class ControlPlane {
  phase = 'starting';
  private queue: Promise<unknown> = Promise.resolve();
  private readonly agents = new Map<string, AgentRecord>();
  private readonly health = new Map<ComponentName, ComponentHealth>();
  private readonly downSince = new Map<'envoy' | 'coredns', number>();
  private readonly bypassTimers = new Map<string, NodeJS.Timeout>();
  private state: PersistedState;
  private addresses!: StackAddresses;
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
    this.state = readState(config.stateFile, (m) => report.warn(m));
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

  private containerConfig(flags: ContainerConfig['flags'] = []): ContainerConfig {
    const a = this.addresses;
    return { envoy: a.envoy, coredns: a.coredns, gateway: a.gateway, network: a.subnet, flags, hostProxyPort: this.config.hostProxyPort };
  }

  /**
   * The agents' cgroup parent exists, carries the datapath, and is enrolled locked down: an agent
   * container is offline from its first instruction until enrollAgent gives it its own entry.
   */
  private async guardAgentsCgroup(): Promise<void> {
    this.guardDir = join(this.cgroupRoot, agentsCgroupDir(this.driver, this.config.names.agentsCgroup));
    if (!existsSync(this.guardDir)) {
      await primeAgentsCgroup(this.docker, this.config.images.controlplane, agentsCgroupParent(this.driver, this.config.names.agentsCgroup), this.config.names.prefix);
      for (let i = 0; i < 50 && !existsSync(this.guardDir); i++) await sleep(20);
      if (!existsSync(this.guardDir)) throw new ControlPlaneError(`the agents cgroup ${this.guardDir} did not appear`, 500, 'datapath', 'check that Docker uses cgroup v2 (or the hybrid unified mount) for containers');
    }
    await this.bpf.attach(this.guardDir);
    await this.bpf.enroll({ cgroupDir: this.guardDir }, this.containerConfig(['lockdown']));
  }

  // ---- rules -----------------------------------------------------------------------------

  /** Render from the rule store, sync the route table (one atomic swap), have CoreDNS reload its Corefile. */
  private async applyRules(): Promise<{ corednsReloaded: boolean }> {
    const rendered = await renderStack(this.config.dataDir, this.config.stackDir, this.config.caDir, this.config.upstreams);
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

  reload(): Promise<ReloadResult> {
    return this.serial(async () => {
      const started = performance.now();
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
      { envoyConfigDir: join(this.config.stackDir, 'envoy'), corednsConfigDir: join(this.config.stackDir, 'coredns') },
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
          : 'build it: npm run images'
        : `docker logs ${spec.name}`;
      this.health.set(component, { name: component, healthy: false, detail: message, next });
      this.report.warn(`${component}: ${message}; next: ${next}`);
    }
  }

  private async probe(): Promise<void> {
    if (this.stopped) return;
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
    for (const c of running) await this.enrollAgent(c.Id).catch((e) => this.report.warn(`agent ${c.Names[0] ?? c.Id}: ${String(e)}`));
    // Entries of agents that are gone (the control plane was down when they exited).
    const known = new Set([...this.agents.values()].map((a) => String(a.cgroupId)));
    const guardId = String(cgroupIdOf(this.guardDir));
    for (const id of Object.keys((await this.bpf.show()).containers ?? {})) {
      if (!known.has(id) && id !== guardId) await this.bpf.unenroll({ cgroupId: id }).catch(() => undefined);
    }
    if (this.agents.size === 0) this.scheduleDrain();
  }

  private async enrollAgent(containerId: string): Promise<AgentRecord | undefined> {
    const info = await inspectContainer(this.docker, containerId);
    if (!info?.State.Running) return undefined;
    const agent = info.Config.Labels?.[LABEL_AGENT] ?? info.Name.replace(/^\//, '');
    const parent = info.HostConfig.CgroupParent ?? '';
    const guarded = parent === agentsCgroupParent(this.driver, this.config.names.agentsCgroup);
    const cgroupDir = join(this.cgroupRoot, containerCgroupDir(this.driver, info.Id, parent));
    for (let i = 0; i < 100 && !existsSync(cgroupDir); i++) await sleep(20);
    if (!existsSync(cgroupDir)) throw new Error(`its cgroup ${cgroupDir} does not exist`);
    if (this.drainTimer) clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    if (!this.servicesWanted) await this.resume();
    if (!guarded) {
      // Not created under the agents' cgroup: enforced from now on only; say so.
      this.report.warn(`agent ${agent} was not created under ${this.config.names.agentsCgroup}: its datapath is attached now, after its command started`);
      await this.bpf.attach(cgroupDir);
    }
    const disabled = this.state.disabled.includes(agent);
    const { cgroupId } = await this.bpf.enroll({ cgroupDir }, this.containerConfig(disabled ? ['disabled'] : []));
    const ip = info.NetworkSettings.Networks?.[this.config.names.network]?.IPAddress ?? '';
    const record: AgentRecord = { agent, container: info.Id, cgroupId, cgroupDir, guarded, ip, lockedDown: false };
    this.agents.set(info.Id, record);
    const window = this.state.bypass[agent];
    if (window && (window.cgroupId !== cgroupId || Date.parse(window.until) <= Date.now())) this.endBypass(agent, 'expired');
    else if (window) this.armBypassTimer(agent, Date.parse(window.until));
    this.report.audit(`agent ${agent} enrolled${disabled ? ' (disabled: egress unrestricted)' : ''}`, { agent, container: info.Id, cgroupId, verdict: disabled ? 'bypassed' : 'allowed' });
    // Only now, with its egress enforced, may the agent's command run. Outside the queue: the
    // supervisor may still be booting, and nothing else should wait for it.
    if (info.Config.Labels?.[LABEL_SUPERVISOR] === SUPERVISOR_AGENTD) void this.startCommand(record, info.Name.replace(/^\//, ''));
    return record;
  }

  private async sessionCredentials(): Promise<SessionCredentials> {
    const { ca } = await loadOrCreateCa(this.config.caDir);
    const caFingerprint = ca.certificate.fingerprint256;
    if (this.session?.caFingerprint !== caFingerprint) {
      const issued = issueControlPlaneSessionCertificate(ca);
      this.session = { caFingerprint, credentials: { caPem: ca.certificatePem, certificatePem: issued.certificatePem, privateKeyPem: issued.privateKeyPem } };
    }
    return this.session.credentials;
  }

  /** Tells the agent's supervisor to start its command (idempotent: a running command is left alone). */
  private async startCommand(record: AgentRecord, containerName: string): Promise<void> {
    try {
      const response = await startAgentCommand(await this.sessionCredentials(), { ip: record.ip, containerName }, {
        isCancelled: () => this.stopped || this.agents.get(record.container) !== record,
      });
      this.report.audit(`agent ${record.agent}: command ${response.state === 'running' ? `running (pid ${response.pid ?? '?'})` : response.state ?? 'started'}`, {
        agent: record.agent,
        container: record.container,
      });
    } catch (e) {
      if (this.agents.get(record.container) !== record) return; // it exited meanwhile
      this.report.warn(`agent ${record.agent}: its command was not started: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async unenrollAgent(containerId: string): Promise<void> {
    const record = this.agents.get(containerId);
    if (!record) return;
    this.agents.delete(containerId);
    await this.bpf.unenroll({ cgroupId: record.cgroupId }).catch(() => undefined);
    if (!record.guarded) await this.bpf.detach({ cgroupId: record.cgroupId }).catch(() => undefined);
    if (this.state.bypass[record.agent]) this.endBypass(record.agent, 'agent exited');
    this.report.audit(`agent ${record.agent} exited; unenrolled`, { agent: record.agent, container: containerId, cgroupId: record.cgroupId });
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

  private recordByName(agent: string): AgentRecord {
    const record = [...this.agents.values()].find((a) => a.agent === agent);
    if (!record) {
      const names = [...this.agents.values()].map((a) => a.agent);
      throw new ControlPlaneError(`no running agent named ${agent}${names.length ? ` (running: ${names.join(', ')})` : ' (no agent is running)'}`, 404);
    }
    return record;
  }

  private agentStatus(record: AgentRecord): AgentStatus {
    const window = this.state.bypass[record.agent];
    const open = window && Date.parse(window.until) > Date.now();
    const state = record.lockedDown ? 'locked-down' : this.state.disabled.includes(record.agent) ? 'disabled' : open ? 'bypassed' : 'enrolled';
    return { agent: record.agent, container: record.container, cgroupId: record.cgroupId, state, guarded: record.guarded, ...(open ? { bypassUntil: window.until } : {}) };
  }

  setEnabled(agent: string, enabled: boolean): Promise<{ agent: AgentStatus; message: string }> {
    return this.serial(async () => {
      const record = this.recordByName(agent);
      this.state.disabled = this.state.disabled.filter((a) => a !== agent);
      if (!enabled) this.state.disabled.push(agent);
      writeState(this.config.stateFile, this.state);
      await this.bpf.enroll({ cgroupId: record.cgroupId }, this.containerConfig(enabled ? [] : ['disabled']));
      record.lockedDown = false;
      const message = enabled ? `firewall enabled for ${agent}: egress follows the rules again` : `firewall disabled for ${agent}: its egress is unrestricted (every connection is still recorded) until clawker firewall enable --agent ${agent}`;
      this.report.audit(message, { agent, container: record.container, cgroupId: record.cgroupId, verdict: enabled ? 'allowed' : 'bypassed' });
      return { agent: this.agentStatus(record), message };
    });
  }

  bypass(agent: string, seconds: number): Promise<{ agent: AgentStatus; message: string }> {
    return this.serial(async () => {
      const record = this.recordByName(agent);
      if (seconds <= 0) {
        await this.bpf.bypass({ cgroupId: record.cgroupId }, 0);
        const had = !!this.state.bypass[agent];
        this.endBypass(agent, 'stopped');
        return { agent: this.agentStatus(record), message: had ? `bypass for ${agent} stopped: firewall re-enabled` : `${agent} had no bypass open` };
      }
      const until = Date.now() + seconds * 1000;
      await this.bpf.bypass({ cgroupId: record.cgroupId }, seconds);
      this.state.bypass[agent] = { cgroupId: record.cgroupId, until: new Date(until).toISOString() };
      writeState(this.config.stateFile, this.state);
      this.armBypassTimer(agent, until);
      const message = `bypass open for ${agent} until ${new Date(until).toISOString()} (${seconds} s): egress unrestricted, every connection recorded`;
      this.report.audit(message, { agent, container: record.container, cgroupId: record.cgroupId, verdict: 'bypassed' });
      return { agent: this.agentStatus(record), message };
    });
  }

  private armBypassTimer(agent: string, until: number): void {
    clearTimeout(this.bypassTimers.get(agent));
    this.bypassTimers.set(
      agent,
      setTimeout(() => {
        void this.serial(async () => {
          const window = this.state.bypass[agent];
          if (!window || Date.parse(window.until) > Date.now() + 50) return;
          // The kernel already refuses at the deadline; removing the entry is housekeeping.
          await this.bpf.bypass({ cgroupId: window.cgroupId }, 0).catch(() => undefined);
          this.endBypass(agent, 'expired');
        });
      }, Math.max(0, until - Date.now())),
    );
  }

  private endBypass(agent: string, why: string): void {
    clearTimeout(this.bypassTimers.get(agent));
    this.bypassTimers.delete(agent);
    const window = this.state.bypass[agent];
    if (!window) return;
    delete this.state.bypass[agent];
    writeState(this.config.stateFile, this.state);
    this.report.audit(`bypass for ${agent} ended (${why}): firewall re-enabled`, { agent, cgroupId: window.cgroupId, verdict: 'allowed' });
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
        lockedDown.push(record.agent);
      }
      await this.bpf.flush();
      for (const agent of Object.keys(this.state.bypass)) this.endBypass(agent, 'firewall down');
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
      network: a ? { name: this.config.names.network, subnet: a.subnet, envoy: a.envoy, coredns: a.coredns, controlplane: a.controlplane } : { name: this.config.names.network, subnet: '', envoy: '', coredns: '', controlplane: '' },
      pinDir: this.config.pinDir,
    };
  }

  domainOfKey(key: string): string | undefined {
    return this.domains.get(key);
  }

  agentOfIp(ip: string): { agent: string; container: string } | undefined {
    for (const r of this.agents.values()) if (r.ip === ip) return { agent: r.agent, container: r.container };
    return undefined;
  }

  /** Agent attribution for the event stream. */
  agentOfCgroup(cgroupId: number): { agent: string; container: string } | undefined {
    for (const r of this.agents.values()) if (r.cgroupId === cgroupId) return { agent: r.agent, container: r.container };
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
