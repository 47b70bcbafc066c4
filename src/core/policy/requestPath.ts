/**
 * The request path as the proxy matches it. The generated Envoy configuration merges repeated
 * slashes and refuses, with a 403, any path that could mean something else after decoding or
 * normalising: dot segments (`/../`, `/./`) and encoded `.`, `/`, `\` or `%` (`%2e%2e`, `%2f`, `%5c`,
 * `%252e`). Refusing is stricter than normalising, and leaves no gap between what a rule was written
 * against and what the upstream server resolves. Nothing else is decoded.
 */

export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

/** RE2 pattern (whole path) of the paths the proxy refuses; the Envoy renderer uses the same one. */
export const REFUSED_PATH_PATTERN = '.*(%2[eEfF5]|%5[cC]|/\\.\\.?(/.*)?$).*';
const REFUSED_ENCODING = /%(2e|2f|25|5c)/i;
const DOT_SEGMENT = /\/\.\.?(\/|$)/;

/** Normalises the path part of a request target (the query string is not part of the match). */
export function normalizeRequestPath(target: string): NormalizedPath {
  const path = target.split('?')[0]!.split('#')[0]!;
  if (!path.startsWith('/')) return { ok: false, reason: `the path '${path}' does not start with '/'` };
  const encoded = REFUSED_ENCODING.exec(path);
  if (encoded) return { ok: false, reason: `the path contains '${encoded[0]}' (an encoded '.', '/', '\\' or '%'), which the proxy refuses` };
  const merged = path.replace(/\/{2,}/g, '/');
  if (DOT_SEGMENT.test(merged)) return { ok: false, reason: `the path contains a '.' or '..' segment, which the proxy refuses` };
  return { ok: true, path: merged };
}
