/**
 * The firewall network (`clawker-net`): a bridge that Clawker creates and labels, on which the stack
 * sits at fixed addresses and agents join. A network of that name that Clawker did not create is
 * never used or changed: the error says so and what to do.
 */
import type Docker from 'dockerode';
import { networkInterfaces } from 'node:os';
import { CANDIDATE_SUBNETS, chooseSubnet, stackAddresses, type StackAddresses } from '../../core/stack/addresses';
import { isManaged, managedLabels } from '../../core/stack/labels';

export const FIREWALL_NETWORK = 'clawker-net';

export class FirewallNetworkError extends Error {
  override readonly name = 'FirewallNetworkError';
}

export interface FirewallNetwork extends StackAddresses {
  readonly name: string;
  readonly id: string;
  readonly created: boolean;
}

async function inspectIfExists(docker: Docker, name: string): Promise<Docker.NetworkInspectInfo | undefined> {
  try {
    return await docker.getNetwork(name).inspect();
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return undefined;
    throw e;
  }
}

function addressesOf(info: Docker.NetworkInspectInfo): StackAddresses {
  const config = info.IPAM?.Config?.find((c) => c.Subnet && !c.Subnet.includes(':'));
  if (!config?.Subnet || !config.Gateway) throw new FirewallNetworkError(`network ${info.Name} has no IPv4 subnet and gateway; remove it (docker network rm ${info.Name}) and let Clawker create it again`);
  const addresses = stackAddresses(config.Subnet, config.Gateway);
  if ('error' in addresses) throw new FirewallNetworkError(`network ${info.Name}: ${addresses.error}`);
  return addresses;
}

/** Subnets Docker networks use, and the host's own addresses (so the network never shadows a LAN). */
async function subnetsInUse(docker: Docker): Promise<string[]> {
  const networks = await docker.listNetworks();
  const docker4 = networks.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => !!s && !s.includes(':')));
  const host = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a?.family === 'IPv4' && a.cidr)
    .map((a) => a!.cidr!);
  return [...docker4, ...host];
}

/** Returns the firewall network, creating it when it does not exist. */
export async function ensureFirewallNetwork(docker: Docker, name: string = FIREWALL_NETWORK): Promise<FirewallNetwork> {
  let info = await inspectIfExists(docker, name);
  let created = false;
  if (info && !isManaged(info.Labels)) {
    throw new FirewallNetworkError(`a Docker network named ${name} exists that Clawker did not create; Clawker will not use or change it. Rename or remove it (docker network rm ${name}).`);
  }
  if (!info) {
    // Static addresses need a subnet we configure: pick one no Docker network or host interface uses.
    const chosen = chooseSubnet(await subnetsInUse(docker));
    if (!chosen) throw new FirewallNetworkError(`no free subnet for ${name} among ${CANDIDATE_SUBNETS[0]} … ${CANDIDATE_SUBNETS[CANDIDATE_SUBNETS.length - 1]}: remove unused Docker networks (docker network prune)`);
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: managedLabels('network'),
        EnableIPv6: false,
        IPAM: { Driver: 'default', Config: [{ Subnet: chosen.subnet, Gateway: chosen.gateway }] },
      });
      created = true;
    } catch (e) {
      // Another process may have created it meanwhile; inspect again below either way.
      if ((e as { statusCode?: number }).statusCode !== 409) throw e;
    }
    info = await inspectIfExists(docker, name);
    if (!info) throw new FirewallNetworkError(`network ${name} could not be created`);
  }
  return { name, id: info.Id, created, ...addressesOf(info) };
}
