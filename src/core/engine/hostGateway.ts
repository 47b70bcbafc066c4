/**
 * Where agents find the host: `host.docker.internal`, which every stack and agent container gets as
 * Docker's `host-gateway` (an /etc/hosts line the engine writes). On a Linux engine it is an address
 * of the engine's host (docker0's, or dockerd's --host-gateway-ip); on Docker Desktop, OrbStack and
 * Colima it is an address the VM forwards to the Mac's loopback. The control plane reads it from its
 * own /etc/hosts (the datapath lets agents reach that address on the host proxy's port, nothing
 * else of it); the launcher decides from it where the host proxy listens. Pure.
 */
import { isIPv4 } from 'node:net';
import type { EngineKind } from './engineSupport';

export const HOST_GATEWAY_NAME = 'host.docker.internal';
/** What a container is given to have the name (`HostConfig.ExtraHosts`). */
export const HOST_GATEWAY_EXTRA_HOST = `${HOST_GATEWAY_NAME}:host-gateway`;

/** The IPv4 address /etc/hosts gives host.docker.internal; undefined when it has none. */
export function hostGatewayFromHosts(hostsText: string): string | undefined {
  for (const raw of hostsText.split('\n')) {
    const [address, ...names] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (address && isIPv4(address) && names.some((n) => n.toLowerCase() === HOST_GATEWAY_NAME)) return address;
  }
  return undefined;
}

/** Engines in a VM whose host-gateway forwards to the host's loopback. */
const LOOPBACK_FORWARDING: ReadonlySet<EngineKind> = new Set(['docker-desktop', 'orbstack', 'colima']);

export type HostProxyListen = { readonly address: string } | { readonly what: string; readonly next: string };

/**
 * Where the host proxy listens so that agents reach it at host.docker.internal: loopback on the
 * engines that forward host-gateway there; else the host-gateway address itself, which must be one
 * of this machine's (a remote engine whose host-gateway is not can reach no host proxy here).
 */
export function hostProxyListenAddress(o: { readonly kind: EngineKind; readonly hostGateway: string | undefined; readonly hostGatewayIsLocal: boolean }): HostProxyListen {
  if (LOOPBACK_FORWARDING.has(o.kind)) return { address: '127.0.0.1' };
  const disable = 'or set security.enable_host_proxy: false in .clawker.yaml (no git credentials or browser sign-in from agents)';
  if (o.hostGateway === undefined) {
    return { what: `the engine gives its containers no IPv4 address for ${HOST_GATEWAY_NAME} (host-gateway), so agents cannot reach the host proxy`, next: `use Docker 20.10 or later, ${disable}` };
  }
  if (!o.hostGatewayIsLocal) {
    return {
      what: `the engine's host-gateway (${o.hostGateway}, what ${HOST_GATEWAY_NAME} is in its containers) is not an address of this machine, so agents cannot reach a host proxy here`,
      next: `start that engine's dockerd with --host-gateway-ip set to an address of this machine that it can route to, ${disable}`,
    };
  }
  return { address: o.hostGateway };
}
