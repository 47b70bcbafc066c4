/**
 * `firewall up` and `firewall down` from the host: the firewall network, the stack's volumes, the
 * control-plane container (which brings up everything else), and waiting for it with progress.
 * Nothing of the host's file system is mounted: the host's rule store and CA are put into the
 * control plane's volume through the Docker API before it starts (stackInputs.ts).
 */
import type Docker from 'dockerode';
import type { DnsGuardSettings } from '../../core/config/settingsSchema';
import { setTimeout as sleep } from 'node:timers/promises';
import { engineCapabilities, stackContainerSpecs } from '../../core/stack/containerSpecs';
import type { DownResult, Status } from '../../core/stack/controlPlaneApi';
import { LABEL_DATA_DIR, LABEL_STACK } from '../../core/stack/labels';
import { CONTROL_PLANE_DATA_DIR } from '../../core/stack/stackLayout';
import { RuleStoreError } from '../ruleStore';
import { dataDirId, readStackInputs, stackInputEntries } from '../stackInputs';
import { packArchive } from './archive';
import { ensureStackVolumes } from './stackVolumes';
import type { StackNames } from '../../core/stack/stackNames';
import { type ControlPlaneClient, ControlPlaneNotRunning } from '../controlPlaneClient';
import { controlPlaneOf } from './controlPlaneAccess';
import { engineSocketPath, type ResolvedEngine } from '../../core/engine/engineResolution';
import { demuxLogFrames, inspectContainer, isNotFound } from './containers';
import { ensureStackImages, StackImageError } from './stackImages';
import { checkEngine, type EngineReport, EngineUnsupportedError } from './engineCheck';
import { ensureFirewallNetwork } from './firewallNetwork';

export interface StackOptions {
  readonly dataDir: string;
  readonly names: StackNames;
  readonly images: { readonly envoy: string; readonly coredns: string; readonly controlplane: string };
  /**
   * Which images the environment named (stackImagesFromEnv): run as they are when present, built
   * from this installation only when missing. Default: all of them (callers that pass tags own them).
   */
  readonly named?: Readonly<Record<'envoy' | 'coredns' | 'controlplane', boolean>>;
  readonly upstreams: readonly string[];
  /** settings.yaml `firewall.dns`; the control plane's defaults (on) when not given. */
  readonly dns?: DnsGuardSettings;
  readonly pinDir: string;
  /** The engine as the CLI resolved it: checked before anything starts; its socket is mounted into the control plane. */
  readonly engine?: ResolvedEngine;
  /** What checkEngine found, when the caller already asked (`run`): not asked again. */
  readonly engineReport?: EngineReport;
  /** The control plane's client to use (a caller's kept session); default a new one. */
  readonly client?: ControlPlaneClient;
  /** Extra CLAWKER_* variables for the control plane (tests: timings). */
  readonly env?: Readonly<Record<string, string>>;
  readonly progress: (message: string) => void;
  /** How long to wait for the stack to be ready; default 120 s. */
  readonly timeoutMs?: number;
}

export class StackError extends Error {
  constructor(
    message: string,
    readonly next: string,
  ) {
    super(message);
    this.name = 'StackError';
  }
}

async function lastLogLines(docker: Docker, name: string, n = 15): Promise<string> {
  try {
    const buffer = (await docker.getContainer(name).logs({ stdout: true, stderr: true, tail: n, follow: false })) as unknown as Buffer;
    return demuxLogFrames(buffer).text.trimEnd();
  } catch {
    return '';
  }
}

/** Starts the control plane (idempotent) and waits until it reports ready; returns its status. */
export async function stackUp(docker: Docker, o: StackOptions): Promise<Status> {
  const client = o.client ?? controlPlaneOf(docker, o.names, 5000);
  let report;
  try {
    report = o.engineReport ?? (await checkEngine(docker, o.engine));
  } catch (e) {
    if (e instanceof EngineUnsupportedError) throw new StackError(e.message, e.next);
    throw e;
  }
  o.progress(`network ${o.names.network}`);
  const network = await ensureFirewallNetwork(docker, o.names.network);
  o.progress(`network ${network.name}: ${network.subnet}${network.created ? ' (created)' : ''}; Envoy ${network.envoy}, CoreDNS ${network.coredns}, control plane ${network.controlplane}`);
  const existing = await inspectContainer(docker, o.names.controlplane);
  if (existing?.State.Running) {
    try {
      const status = await client.status();
      o.progress(`control plane already running (${status.phase})`);
      return await waitReady(docker, client, o);
    } catch (e) {
      if (!(e instanceof ControlPlaneNotRunning)) throw e;
    }
  }
  // Only when the control plane has to be (re)started: a running stack's images are not hashed again.
  try {
    const images = await ensureStackImages(docker, { images: o.images, named: o.named ?? { envoy: true, coredns: true, controlplane: true }, progress: o.progress });
    if (images.envoyMissing !== undefined) o.progress(`warning: ${o.images.envoy} is not on the engine and could not be pulled (${images.envoyMissing}); TCP egress fails closed until it is there (docker pull ${o.images.envoy})`);
  } catch (e) {
    if (e instanceof StackImageError) throw new StackError(e.message, e.next);
    throw e;
  }

  if (existing) await docker.getContainer(o.names.controlplane).remove({ force: true });

  // The host's rule store (checked here, so a damaged one is named by its host path) and CA.
  let inputs;
  try {
    inputs = await readStackInputs(o.dataDir);
  } catch (e) {
    if (e instanceof RuleStoreError) throw new StackError(e.message, 'clawker firewall list');
    throw new StackError(`the firewall CA in ${o.dataDir} cannot be used: ${e instanceof Error ? e.message : String(e)}`, 'clawker firewall rotate-ca');
  }
  const owner = dataDirId(o.dataDir);
  await ensureStackVolumes(docker, o.names, owner, o.progress);

  const specs = stackContainerSpecs(o.names.network, network, o.images, { volumes: o.names.volumes, ...(o.engine ? { engineSocket: engineSocketPath(o.engine) } : {}) }, engineCapabilities(report.apiVersion));
  const base = specs.find((s) => s.name === 'clawker-controlplane')!;
  const env = {
    CLAWKER_DATA_DIR: CONTROL_PLANE_DATA_DIR,
    CLAWKER_STACK: o.names.prefix,
    CLAWKER_PIN_DIR: o.pinDir,
    CLAWKER_ENVOY_IMAGE: o.images.envoy,
    CLAWKER_COREDNS_IMAGE: o.images.coredns,
    CLAWKER_CONTROLPLANE_IMAGE: o.images.controlplane,
    CLAWKER_UPSTREAM_DNS: o.upstreams.join(','),
    ...(o.dns ? { CLAWKER_DNS_GUARD: JSON.stringify(o.dns) } : {}),
    ...(o.env ?? {}),
  };
  o.progress(`starting ${o.names.controlplane} (${o.images.controlplane})`);
  const container = await docker.createContainer({
    name: o.names.controlplane,
    Image: base.Image,
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...base.Labels, [LABEL_STACK]: o.names.prefix, [LABEL_DATA_DIR]: owner },
    HostConfig: {
      ...base.HostConfig,
      CapDrop: [...base.HostConfig.CapDrop],
      CapAdd: [...base.HostConfig.CapAdd],
      SecurityOpt: [...base.HostConfig.SecurityOpt],
      Binds: [...base.HostConfig.Binds],
      // A crashed control plane comes back by itself; `firewall down` removes it.
      RestartPolicy: { Name: 'unless-stopped' },
    },
    NetworkingConfig: base.NetworkingConfig,
  });
  try {
    // Before it starts: nothing reads these files while they are being written.
    await container.putArchive(await packArchive(stackInputEntries(inputs)), { path: CONTROL_PLANE_DATA_DIR });
  } catch (e) {
    await container.remove({ force: true }).catch(() => undefined);
    throw new StackError(`the rule store and CA could not be put into ${o.names.controlplane}: ${e instanceof Error ? e.message : String(e)}`, `docker volume inspect ${o.names.volumes.state}`);
  }
  await container.start();
  return waitReady(docker, client, o);
}

async function waitReady(docker: Docker, client: ControlPlaneClient, o: StackOptions): Promise<Status> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  let lastPhase = '';
  let restartsAtStart: number | undefined;
  while (Date.now() < deadline) {
    const state = await inspectContainer(docker, o.names.controlplane);
    restartsAtStart ??= state?.RestartCount ?? 0;
    // Exited, or exiting at start and restarted by Docker (e.g. a damaged rule store): say why, with its log.
    if (!state?.State.Running || state.State.Restarting || (state.RestartCount ?? 0) > restartsAtStart) {
      const logs = await lastLogLines(docker, o.names.controlplane);
      throw new StackError(`the control plane stopped (${state ? `exit ${state.State.ExitCode}` : 'container gone'})${logs ? `:\n${logs}` : ''}`, `docker logs ${o.names.controlplane}`);
    }
    try {
      const status = await client.status();
      if (status.phase !== lastPhase) o.progress(`control plane: ${(lastPhase = status.phase)}`);
      if (status.phase === 'ready' || status.phase === 'idle') return await waitHealthy(client, o, status);
    } catch (e) {
      // It died mid-request: the next round's inspect reports it with its log.
      const code = (e as NodeJS.ErrnoException).code;
      if (!(e instanceof ControlPlaneNotRunning) && code !== 'ECONNRESET' && code !== 'EPIPE') throw e;
    }
    await sleep(100);
  }
  throw new StackError(`the control plane was not ready within ${(o.timeoutMs ?? 120_000) / 1000} s (last: ${lastPhase || 'no answer'})`, `docker logs ${o.names.controlplane}`);
}

/** After start: the first probes may not have run yet; give the components a moment to answer. */
async function waitHealthy(client: ControlPlaneClient, o: StackOptions, status: Status): Promise<Status> {
  const deadline = Date.now() + HEALTH_WAIT_MS;
  let current = status;
  while (!current.components.every((c) => c.healthy) && Date.now() < deadline) {
    await sleep(200);
    current = await client.status();
  }
  for (const c of current.components) if (!c.healthy) o.progress(`${c.name} is not healthy: ${c.detail}${c.next ? ` (next: ${c.next})` : ''}`);
  return current;
}

const HEALTH_WAIT_MS = 20_000;

/**
 * Locks running agents down and stops the stack. With no control plane running, one is started first
 * (it is what can write the kernel's maps), so `down` never leaves an agent with open egress.
 */
export async function stackDown(docker: Docker, o: StackOptions): Promise<DownResult & { removed: string[] }> {
  const client = controlPlaneOf(docker, o.names);
  let result: DownResult;
  try {
    result = await client.down();
  } catch (e) {
    if (!(e instanceof ControlPlaneNotRunning)) throw e;
    if (await inspectContainer(docker, o.names.controlplane)) await docker.getContainer(o.names.controlplane).remove({ force: true });
    o.progress('control plane not running: starting it to lock agents down');
    await stackUp(docker, o);
    result = await client.down();
  }
  const removed: string[] = [];
  for (const name of [o.names.controlplane, o.names.envoy, o.names.coredns]) {
    try {
      await docker.getContainer(name).remove({ force: true });
      removed.push(name);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
  return { ...result, removed };
}
