/**
 * The request path as the proxy matches it: the same normalisation the generated Envoy
 * configuration asks for (RFC 3986 dot segments, merged slashes), and refusal of encodings that
 * smuggle traversal or a second meaning past a prefix rule (`%2e%2e`, `%2f`, `%5c`, `%252e`).
 */

export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

// Encoded '.', '/', '\' and '%' (double encoding) are refused outright rather than decoded.
const REFUSED_ENCODINGS = /%(2e|2f|5c|25)/i;
const UNRESERVED_ENCODED = /%(4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]|3[0-9]|2d|5f|7e)/gi;

function removeDotSegments(path: string): string {
  const out: string[] = [];
  for (const segment of path.split('/').slice(1)) {
    if (segment === '..') out.pop();
    else if (segment !== '.') out.push(segment);
  }
  const last = path.split('/').pop();
  const trailing = last === '.' || last === '..';
  return `/${out.join('/')}${trailing && out.length > 0 ? '/' : ''}`;
}

/** Normalises the path part of a request target (the query string is not part of the match). */
export function normalizeRequestPath(target: string): NormalizedPath {
  const path = target.split('?')[0]!.split('#')[0]!;
  if (!path.startsWith('/')) return { ok: false, reason: `the path '${path}' does not start with '/'` };
  const refused = REFUSED_ENCODINGS.exec(path);
  if (refused) return { ok: false, reason: `the path contains the encoded character '${refused[0]}', which the proxy refuses (encoded traversal or double encoding)` };
  const decoded = path.replace(UNRESERVED_ENCODED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
  return { ok: true, path: removeDotSegments(decoded.replace(/\/{2,}/g, '/')) };
}
