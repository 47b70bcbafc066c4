/**
 * The per-container token of the host proxy: HMAC-SHA256 of the container's name (without Docker's
 * leading '/') keyed with the host proxy's secret (<dataDir>/hostproxy/secret), in lower-case hex.
 * The lifecycle code computes it and puts it into the container (HOST_PROXY_TOKEN_FILE); the
 * daemon recomputes it for the container a request comes from. Pure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function hostProxyToken(secret: Buffer, containerName: string): string {
  if (secret.length < 16) throw new Error('host proxy secret too short');
  const name = containerName.startsWith('/') ? containerName.slice(1) : containerName;
  return createHmac('sha256', secret).update(name, 'utf8').digest('hex');
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
