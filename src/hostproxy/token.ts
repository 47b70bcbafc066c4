/**
 * The per-container token of the host proxy. Its proof is HMAC-SHA256 of the container's name
 * (without Docker's leading '/') keyed with the host proxy's secret (<dataDir>/hostproxy/secret), in
 * lower-case hex. What the lifecycle code puts into the container (HOST_PROXY_TOKEN_FILE) is
 * `<name>:<proof>` (agentToken): the token names its container, so the daemon knows who asks
 * without trusting the source address, which a NATed engine (Docker Desktop, a remote engine)
 * rewrites. Only the holder of the secret can make a proof for a name. Pure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function hostProxyToken(secret: Buffer, containerName: string): string {
  if (secret.length < 16) throw new Error('host proxy secret too short');
  const name = containerName.startsWith('/') ? containerName.slice(1) : containerName;
  return createHmac('sha256', secret).update(name, 'utf8').digest('hex');
}

/** What an agent container is given: its name and the proof for it. */
export function agentToken(secret: Buffer, containerName: string): string {
  const name = containerName.startsWith('/') ? containerName.slice(1) : containerName;
  return `${name}:${hostProxyToken(secret, name)}`;
}

/**
 * A presented token that names its container: `<name>:<64 hex digits>`. Undefined for anything else,
 * such as the bare proof given to containers created before tokens named them.
 */
export function parseAgentToken(presented: unknown): { readonly name: string; readonly proof: string } | undefined {
  if (typeof presented !== 'string') return undefined;
  const m = /^([a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}):([0-9a-f]{64})$/.exec(presented);
  return m ? { name: m[1]!, proof: m[2]! } : undefined;
}

/** Constant-time comparison of a presented token with the expected one (false for any other length or type). */
export function tokensEqual(presented: unknown, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  // Compare against the expected token's length either way, so the time does not depend on where they differ.
  if (a.length !== b.length) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}
