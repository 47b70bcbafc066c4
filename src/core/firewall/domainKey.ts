/**
 * The key that names a rule's destination in the BPF maps (`dns_cache` values, `route_map` keys):
 * 64-bit FNV-1a of the destination exactly as rules write it (`example.com` and `.example.com` are
 * different destinations). The CoreDNS `dnsbpf` plugin (Go) computes the same function; both sides
 * are held to `test/vectors/domain-keys.json`.
 *
 * Only rule destinations get keys, so collisions are checked exhaustively whenever a policy is
 * compiled (`assertDistinctDomainKeys`): two destinations never share a key, or nothing is applied.
 */

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/** FNV-1a, 64 bits, over the ASCII bytes of `destination` (already lower-case and normalised). */
export function domainKey(destination: string): bigint {
  let hash = FNV64_OFFSET;
  for (let i = 0; i < destination.length; i++) {
    const code = destination.charCodeAt(i);
    if (code > 0x7f) throw new Error(`domain keys are computed over ASCII names; '${destination}' is not`);
    hash ^= BigInt(code);
    hash = (hash * FNV64_PRIME) & MASK64;
  }
  return hash;
}

export const formatDomainKey = (key: bigint): string => `0x${key.toString(16).padStart(16, '0')}`;

/** Throws, naming both destinations, if two of them have the same key. */
export function assertDistinctDomainKeys(destinations: Iterable<string>, keyOf: (destination: string) => bigint = domainKey): Map<string, bigint> {
  const byKey = new Map<bigint, string>();
  const keys = new Map<string, bigint>();
  for (const destination of destinations) {
    if (keys.has(destination)) continue;
    const key = keyOf(destination);
    const other = byKey.get(key);
    if (other !== undefined) {
      throw new Error(`the destinations '${other}' and '${destination}' have the same domain key ${formatDomainKey(key)}; refusing to build a policy in which one could use the other's routes`);
    }
    byKey.set(key, destination);
    keys.set(destination, key);
  }
  return keys;
}
