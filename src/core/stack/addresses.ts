/**
 * Where the firewall stack lives on its network: from the bridge's gateway, replace the last octet —
 * Envoy at .200, CoreDNS at .201, the control plane at .202 (the spec's deterministic addresses).
 */
import { isIPv4 } from 'node:net';

export const ENVOY_HOST_OCTET = 200;
export const COREDNS_HOST_OCTET = 201;
export const CONTROLPLANE_HOST_OCTET = 202;

export interface StackAddresses {
  /** The network, CIDR notation. */
  readonly subnet: string;
  readonly gateway: string;
  readonly envoy: string;
  readonly coredns: string;
  readonly controlplane: string;
}

const toInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);

export function parseSubnet(cidr: string): { address: number; prefix: number } | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(cidr);
  if (!m || !isIPv4(m[1]!) || Number(m[2]) > 32) return undefined;
  return { address: toInt(m[1]!), prefix: Number(m[2]) };
}

/** The stack's addresses on `subnet`, or an error saying why that network cannot host it. */
export function stackAddresses(subnet: string, gateway: string): StackAddresses | { error: string } {
  const net = parseSubnet(subnet);
  if (!net || !isIPv4(gateway)) return { error: `the network ${subnet} with gateway ${gateway} is not an IPv4 network` };
  const size = 2 ** (32 - net.prefix);
  const base = net.address - (net.address % size);
  const withOctet = (octet: number) => gateway.replace(/\.\d+$/, `.${octet}`);
  const addresses = { envoy: withOctet(ENVOY_HOST_OCTET), coredns: withOctet(COREDNS_HOST_OCTET), controlplane: withOctet(CONTROLPLANE_HOST_OCTET) };
  for (const [name, ip] of Object.entries(addresses)) {
    const n = toInt(ip);
    if (n <= base || n >= base + size - 1 || ip === gateway) {
      return { error: `${name}'s address ${ip} (the gateway's last octet replaced) is not a host address of ${subnet}: the network needs to be a /24 or larger` };
    }
  }
  return { subnet, gateway, ...addresses };
}

/** Subnets tried for the firewall network, in order (the first is the spec's example). */
export const CANDIDATE_SUBNETS: readonly string[] = [
  ...Array.from({ length: 40 }, (_, i) => `192.168.${215 + i}.0/24`),
  ...Array.from({ length: 40 }, (_, i) => `10.215.${i}.0/24`),
];

function overlaps(a: string, b: string): boolean {
  const x = parseSubnet(a);
  const y = parseSubnet(b);
  if (!x || !y) return false;
  const prefix = Math.min(x.prefix, y.prefix);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((x.address & mask) >>> 0) === ((y.address & mask) >>> 0);
}

/**
 * The first candidate /24 that overlaps no subnet in use (Docker networks, the host's own
 * addresses as `/32`s or their networks), with its gateway at .1; undefined when all are taken.
 */
export function chooseSubnet(inUse: readonly string[]): { subnet: string; gateway: string } | undefined {
  const subnet = CANDIDATE_SUBNETS.find((candidate) => !inUse.some((used) => overlaps(candidate, used)));
  return subnet ? { subnet, gateway: subnet.replace(/\.0\/24$/, '.1') } : undefined;
}
