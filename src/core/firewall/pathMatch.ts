import { RE2JS } from 're2js';
import { type Checked, error, warning } from './finding';

/**
 * How a path rule matches a request path: a literal prefix, or (`~…`) an RE2 regular expression that
 * must match the whole path, which is how Envoy's `safe_regex` route matcher behaves.
 */
export type PathMatch = { readonly kind: 'prefix'; readonly prefix: string } | { readonly kind: 'regex'; readonly pattern: string };

// RFC 3986 path characters: unreserved, sub-delims, ':', '@', '/', and percent-encoded octets.
const URL_PATH_CHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;
const PERCENT_ENCODED = /^%[0-9A-Fa-f]{2}/;
// Constructs that are legal in a URL path but almost always mean a pattern was intended.
const REGEX_HINT = /\.\*|\.\+|\*|\([^)]*\|/;

/** Characters of `path` that cannot appear in a URL path, in order of first appearance. */
function invalidPathChars(path: string): string[] {
  const bad: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const ch = path[i]!;
    if (ch === '%') {
      if (PERCENT_ENCODED.test(path.slice(i))) {
        i += 2;
        continue;
      }
    } else if (URL_PATH_CHAR.test(ch)) continue;
    if (!bad.includes(ch)) bad.push(ch);
  }
  return bad;
}

const show = (chars: string[]): string => chars.map((c) => (c === ' ' ? "' ' (space)" : `'${c}'`)).join(', ');

type Compiled = { ok: true; regex: RE2JS } | { ok: false; message: string };

// Compiling is the costliest check (tens of µs a pattern); the language server re-validates on every
// keystroke, so results are kept per pattern. Bounded: cleared when it grows past this size.
const compiled = new Map<string, Compiled>();
const MAX_CACHED_PATTERNS = 10_000;

/** Compiles an RE2 pattern; returns RE2's own message when it does not compile. */
export function compileRe2(pattern: string): Compiled {
  let result = compiled.get(pattern);
  if (!result) {
    try {
      result = { ok: true, regex: RE2JS.compile(pattern) };
    } catch (e) {
      // Stryker disable next-line Regex: every RE2JS syntax error begins with this phrase, and replace() without /g removes only its first occurrence, so the anchor changes nothing
      result = { ok: false, message: e instanceof Error ? e.message.replace(/^error parsing regexp: /, '') : String(e) };
    }
    // Stryker disable next-line ConditionalExpression,EqualityOperator: performance only: the bound on the cache's memory; a cleared or over-full cache compiles the same results
    if (compiled.size >= MAX_CACHED_PATTERNS) compiled.clear();
    compiled.set(pattern, result);
  }
  return result;
}

function checkRegex(path: string): Checked<PathMatch> {
  const pattern = path.slice(1);
  if (!(pattern.startsWith('/') || pattern.startsWith('^/'))) {
    const fixed = pattern.startsWith('^') ? `~^/${pattern.slice(1)}` : `~/${pattern}`;
    return {
      findings: [
        error('path-regex-anchor', `the regex '${path}' must start with '/' or '^/' so that it is anchored at the start of the path: '${fixed}'.`, {
          title: `Anchor it: '${fixed}'`,
          value: fixed,
        }),
      ],
    };
  }
  const compiled = compileRe2(pattern);
  if (!compiled.ok) {
    return { findings: [error('path-regex-invalid', `the regex '${path}' does not compile as RE2: ${compiled.message}. See https://github.com/google/re2/wiki/Syntax.`)] };
  }
  return { value: { kind: 'regex', pattern }, findings: [] };
}

/** Validates a `path_rules[].path`: `/prefix` or `~regex`. Never guesses: an invalid path is an error. */
export function checkPath(raw: string): Checked<PathMatch> {
  const path = raw;
  if (path.startsWith('~')) return checkRegex(path);
  if (path === '') return { findings: [error('path-missing-slash', "'path' is empty: use '/' to match every path.", { title: "Use '/'", value: '/' })] };

  const bad = invalidPathChars(path);
  if (!path.startsWith('/')) {
    // A leading '^' is among `bad` ('^' is not a URL path character).
    const looksRegex = bad.length > 0 || REGEX_HINT.test(path);
    if (looksRegex) {
      const body = path.startsWith('^') ? path.slice(1) : path;
      const fixed = `~/${body.replace(/^\/+/, '')}`;
      // Stryker disable next-line MethodExpression: fixed is '~/' + body and '~' is a literal character in RE2, so '~/…' compiles exactly when '/…' does
      const compiles = compileRe2(fixed.slice(1)).ok;
      return {
        findings: [
          error(
            'path-missing-slash',
            `path '${path}' must start with '/'. It looks like a regular expression: regexes are written with a leading '~' and anchored at '/', e.g. '${fixed}'.`,
            compiles ? { title: `Make it the regex '${fixed}'`, value: fixed } : undefined,
          ),
        ],
      };
    }
    return {
      findings: [
        error('path-missing-slash', `path '${path}' must start with '/': a literal path is a prefix of the URL path, e.g. '/${path}'.`, {
          title: `Add the leading '/': '/${path}'`,
          value: `/${path}`,
        }),
      ],
    };
  }
  if (bad.length > 0) {
    const fixed = `~${path}`;
    const compiles = compileRe2(path).ok;
    return {
      findings: [
        error(
          'path-invalid-char',
          `path '${path}' contains ${show(bad)}, which cannot appear in a URL path, so this prefix could never match. If it is a regular expression, write it with a leading '~': '${fixed}'.`,
          compiles ? { title: `Make it the regex '${fixed}'`, value: fixed } : undefined,
        ),
      ],
    };
  }
  if (REGEX_HINT.test(path)) {
    const fixed = `~${path}`;
    return {
      value: { kind: 'prefix', prefix: path },
      findings: [
        warning(
          'path-looks-like-regex',
          `path '${path}' is matched literally as a prefix, character for character. If you meant a regular expression, write it with a leading '~': '${fixed}'.`,
          compileRe2(path).ok ? { title: `Make it the regex '${fixed}'`, value: fixed } : undefined,
        ),
      ],
    };
  }
  return { value: { kind: 'prefix', prefix: path }, findings: [] };
}

// RFC 9110 token characters.
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const KNOWN_METHODS = new Set([
  'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE',
  'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'REPORT', 'SEARCH', 'QUERY',
]);

/** Normalises an HTTP method to upper case; HTTP matches methods case-sensitively. */
export function checkMethod(raw: string): Checked<string> {
  const method = raw.trim();
  if (!METHOD_TOKEN.test(method)) return { findings: [error('method-invalid', `'${raw}' is not an HTTP method.`)] };
  const upper = method.toUpperCase();
  const findings = [];
  if (upper !== method) {
    findings.push(warning('method-invalid', `HTTP methods are case-sensitive: '${method}' is read as '${upper}'.`, { title: `Write '${upper}'`, value: upper }));
  }
  if (!KNOWN_METHODS.has(upper)) {
    findings.push(warning('method-unusual', `'${upper}' is not a standard HTTP method; check the spelling (e.g. GET, HEAD, POST, PUT, PATCH, DELETE).`));
  }
  return { value: upper, findings };
}
