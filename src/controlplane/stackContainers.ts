/**
 * The stack's two service containers (CoreDNS, Envoy) as Docker sees them: created from the pure
 * specs (exact privileges), recreated when their spec changes, started, signalled, stopped. Also the
 * one-off container that makes the agents' cgroup exist (see primeAgentsCgroup).
 */
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import type { ContainerSpec } from '../core/stack/containerSpecs';
import { LABEL_STACK, managedLabels } from '../core/stack/labels';
import { imageExists, inspectContainer, isNotFound } from '../platform/docker/containers';

const LABEL_SPEC_HASH = 'dev.clawker.spec-hash';

export interface ServiceSpec extends ContainerSpec {
  readonly Env?: readonly string[];
}

const specHash = (spec: ServiceSpec): string => createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16);

/**
 * Makes the container run with exactly this spec: kept if it already has it (started if stopped),
 * replaced otherwise. Returns what was done.
 */
export async function ensureService(docker: Docker, spec: ServiceSpec, stack: string): Promise<'running' | 'started' | 'created'> {
  const hash = specHash(spec);
  const existing = await inspectContainer(docker, spec.name);
  if (existing && existing.Config.Labels?.[LABEL_SPEC_HASH] === hash) {
    if (existing.State.Running) return 'running';
    await docker.getContainer(spec.name).start();
    return 'started';
  }
  if (existing) await docker.getContainer(spec.name).remove({ force: true });
  if (!(await imageExists(docker, spec.Image))) throw new Error(`image ${spec.Image} is not on this machine`);
  const { name, NetworkingConfig, ...rest } = spec;
  const container = await docker.createContainer({
    name,
    ...rest,
    Env: [...(spec.Env ?? [])],
    Labels: { ...spec.Labels, [LABEL_SPEC_HASH]: hash, [LABEL_STACK]: stack },
    HostConfig: { ...spec.HostConfig, CapDrop: [...spec.HostConfig.CapDrop], CapAdd: [...spec.HostConfig.CapAdd], SecurityOpt: [...spec.HostConfig.SecurityOpt], Binds: [...spec.HostConfig.Binds] },
    NetworkingConfig,
  } as Docker.ContainerCreateOptions);
  await container.start();
  return 'created';
}

export async function signalService(docker: Docker, name: string, signal: string): Promise<void> {
  await docker.getContainer(name).kill({ signal });
}

/** Stops and removes the container; absent is fine. */
export async function removeService(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getContainer(name).remove({ force: true });
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/**
 * Docker (runc) creates a container's cgroup parent when the first container under it starts, and
 * leaves it when that container goes. The control plane may only read /sys/fs/cgroup, so it has one
 * short-lived container created under the parent — from its own image, with no network and no
 * capabilities — and the parent exists from then on, ready for the datapath to be attached.
 */
export async function primeAgentsCgroup(docker: Docker, image: string, cgroupParent: string, stack: string): Promise<void> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ['node', '-e', ''],
    Labels: managedLabels('cgroup-primer', { [LABEL_STACK]: stack }),
    NetworkDisabled: true,
    HostConfig: { CgroupParent: cgroupParent, NetworkMode: 'none', CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges:true'], ReadonlyRootfs: true },
  });
  try {
    await container.start();
    await container.wait();
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}
