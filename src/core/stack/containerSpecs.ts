/**
 * How the firewall stack's containers are created: images, addresses, and exactly the privileges
 * the spec grants each one, nothing more. Pure: returns Docker create options the platform layer
 * passes to the engine. Every container drops all capabilities first, may not gain privileges,
 * and carries our labels.
 */
import { HOST_GATEWAY_EXTRA_HOST } from '../engine/hostGateway';
import type { StackAddresses } from './addresses';
import { CONTROL_PLANE_RUN_DIR } from './controlPlaneApi';
import { CONTROL_PLANE_DATA_DIR, stackLayout } from './stackLayout';
import type { StackVolumes } from './stackNames';

export const PIN_DIR = '/sys/fs/bpf/clawker';

export interface ContainerSpec {
  readonly name: string;
  readonly Image: string;
  readonly Cmd?: string[];
  readonly Labels: Record<string, string>;
  readonly HostConfig: {
    readonly NetworkMode: string;
    readonly CapDrop: string[];
    readonly CapAdd: string[];
    readonly SecurityOpt: string[];
    readonly ReadonlyRootfs: boolean;
    readonly Binds: string[];
    /** In-memory mounts (path → mount options): what a read-only root needs written. */
    readonly Tmpfs?: Record<string, string>;
    /** /etc/hosts lines: the control plane's host.docker.internal, read to know where agents reach the host. */
    readonly ExtraHosts?: string[];
    readonly RestartPolicy: { Name: 'unless-stopped' | 'no' };
  };
  readonly NetworkingConfig: { EndpointsConfig: Record<string, { IPAMConfig: { IPv4Address: string } }> };
}

export interface StackImages {
  readonly envoy: string;
  readonly coredns: string;
  readonly controlplane: string;
}

/**
 * The images a user's stack runs unless CLAWKER_{ENVOY,COREDNS,CONTROLPLANE}_IMAGE say otherwise.
 * Envoy is pulled by digest (the multi-arch index of v1.36.2, as pinned by stacklok/toolhive; this
 * machine has no registry to check it against: `docker buildx imagetools inspect
 * envoyproxy/envoy:v1.36.2` before a release). The other two are built on the engine
 * (src/core/stack/stackImages.ts).
 */
export const DEFAULT_STACK_IMAGES: StackImages = {
  envoy: 'envoyproxy/envoy:v1.36.2@sha256:4972515dd9a069b44beb43cebba7851596e72a8c61cd7a7c33d8f48efc5280ba',
  coredns: 'clawker-coredns:latest',
  controlplane: 'clawker-controlplane:latest',
};

/** What the Docker engine understands; see `engineCapabilities`. */
export interface EngineCapabilities {
  readonly knowsCapBpf: boolean;
}

/** From the engine's API version: the name CAP_BPF is known from API 1.42 (Docker 23) on. */
export function engineCapabilities(apiVersion: string): EngineCapabilities {
  const [major = 0, minor = 0] = apiVersion.split('.').map(Number);
  return { knowsCapBpf: major > 1 || (major === 1 && minor >= 42) };
}

/** What the stack mounts: its own volumes, and from the engine's host only bpffs, cgroupfs and the engine's socket. */
export interface StackMounts {
  readonly volumes: StackVolumes;
  /** The engine's own API socket, on the engine's side (rootless: /run/user/UID/docker.sock); default /var/run/docker.sock. */
  readonly engineSocket?: string;
}

const labels = (component: string): Record<string, string> => ({ 'dev.clawker.managed': 'true', 'dev.clawker.component': component });

function spec(
  component: 'envoy' | 'coredns' | 'controlplane',
  image: string,
  network: string,
  ip: string,
  privileges: { capAdd?: string[]; securityOpt?: string[]; binds?: string[]; tmpfs?: Record<string, string>; extraHosts?: string[]; cmd?: string[] },
): ContainerSpec {
  return {
    name: `clawker-${component}`,
    Image: image,
    ...(privileges.cmd ? { Cmd: privileges.cmd } : {}),
    Labels: labels(component),
    HostConfig: {
      NetworkMode: network,
      CapDrop: ['ALL'],
      CapAdd: privileges.capAdd ?? [],
      SecurityOpt: ['no-new-privileges:true', ...(privileges.securityOpt ?? [])],
      ReadonlyRootfs: true,
      Binds: privileges.binds ?? [],
      ...(privileges.tmpfs ? { Tmpfs: privileges.tmpfs } : {}),
      ...(privileges.extraHosts ? { ExtraHosts: privileges.extraHosts } : {}),
      RestartPolicy: { Name: 'unless-stopped' },
    },
    NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: ip } } } },
  };
}

/**
 * The spec's privileges: Envoy none (it binds ports above 1024); CoreDNS CAP_BPF + CAP_SYS_ADMIN with
 * only /sys/fs/bpf, to update the pinned dns_cache (and NET_BIND_SERVICE for port 53); the control
 * plane CAP_BPF + CAP_SYS_ADMIN, /sys/fs/bpf read-write, /sys/fs/cgroup read-only, the Docker
 * socket, apparmor=unconfined, and a private tmpfs for its API socket.
 */
const inContainer = stackLayout(CONTROL_PLANE_DATA_DIR);

export function stackContainerSpecs(
  network: string,
  addresses: StackAddresses,
  images: StackImages,
  mounts: StackMounts,
  engine: EngineCapabilities = { knowsCapBpf: true },
): ContainerSpec[] {
  // Engines before API 1.42 reject the name CAP_BPF; the kernel (5.8+) still allows bpf() to
  // CAP_SYS_ADMIN, so there the BPF-using containers get CAP_SYS_ADMIN alone — never more.
  const bpf = engine.knowsCapBpf ? ['BPF', 'SYS_ADMIN'] : ['SYS_ADMIN'];
  return [
    spec('envoy', images.envoy, network, addresses.envoy, {
      binds: [`${mounts.volumes.envoyConfig}:/etc/envoy/clawker:ro`],
      cmd: ['envoy', '-c', '/etc/envoy/clawker/envoy.yaml'],
    }),
    spec('coredns', images.coredns, network, addresses.coredns, {
      capAdd: [...bpf, 'NET_BIND_SERVICE'],
      binds: ['/sys/fs/bpf:/sys/fs/bpf', `${mounts.volumes.corednsConfig}:/etc/coredns:ro`],
      cmd: ['-conf', '/etc/coredns/Corefile'],
    }),
    spec('controlplane', images.controlplane, network, addresses.controlplane, {
      capAdd: bpf,
      securityOpt: ['apparmor=unconfined'],
      binds: [
        '/sys/fs/bpf:/sys/fs/bpf:rw',
        '/sys/fs/cgroup:/sys/fs/cgroup:ro',
        `${mounts.engineSocket ?? '/var/run/docker.sock'}:/var/run/docker.sock`,
        // Its state, and the two configurations it renders for Envoy and CoreDNS (nested volumes).
        `${mounts.volumes.state}:${CONTROL_PLANE_DATA_DIR}`,
        `${mounts.volumes.envoyConfig}:${inContainer.envoyDir}`,
        `${mounts.volumes.corednsConfig}:${inContainer.corednsDir}`,
      ],
      // The API's socket lives here, in the container only: the host reaches it through docker exec.
      tmpfs: { [CONTROL_PLANE_RUN_DIR]: 'rw,noexec,nosuid,nodev,size=1m,mode=0700' },
      // The same host-gateway the agents get: the datapath opens exactly that address (host proxy port).
      extraHosts: [HOST_GATEWAY_EXTRA_HOST],
    }),
  ];
}
