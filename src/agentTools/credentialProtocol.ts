/**
 * git's credential helper protocol (git-credential(1)) as git-credential-clawker speaks it, and the
 * request it makes of the host proxy (POST /v1/git/credential {operation, fields}). Pure: no I/O.
 *
 * git runs `git-credential-clawker <get|store|erase>` and writes `key=value` lines to its stdin,
 * ended by a blank line or EOF. For `get` the helper answers with `key=value` lines (git merges them
 * into what it has); for `store` and `erase` git ignores the output. An empty answer makes git try
 * its next helper, or ask the user.
 *
 * Only what the host proxy accepts is forwarded: protocol (https only), host, path, username,
 * password. Other keys git sends (capability[], wwwauth[], password_expiry_utc, …) are dropped.
 */
import { CREDENTIAL_KEYS, type CredentialKey, type GitOperation, GIT_OPERATIONS } from '../hostproxy/validate';

export type CredentialInput = Partial<Record<CredentialKey, string>>;

/** git forbids these in values (a value containing them would be a second line). */
const FORBIDDEN_IN_VALUE = /[\n\r\0]/;

export const isGitOperation = (value: string | undefined): value is GitOperation =>
  value !== undefined && (GIT_OPERATIONS as readonly string[]).includes(value);

/**
 * Parses what git writes to a helper's stdin. The first blank line ends it; lines without `=` and
 * unknown keys are ignored; a repeated key keeps its last value (as git does). A `url=` line (git
 * accepts one as input) fills protocol, host and path when they are not given separately.
 */
export function parseCredentialInput(text: string): CredentialInput {
  const fields: CredentialInput = {};
  let url: string | undefined;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') break;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'url') url = value;
    else if ((CREDENTIAL_KEYS as readonly string[]).includes(key)) fields[key as CredentialKey] = value;
  }
  if (url !== undefined && fields.protocol === undefined && fields.host === undefined) {
    Object.assign(fields, fieldsOfUrl(url));
  }
  return fields;
}

/** protocol, host (with a port when there is one) and path of a URL, as git would split it; nothing for a malformed URL. */
function fieldsOfUrl(text: string): CredentialInput {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {};
  }
  const fields: CredentialInput = { protocol: url.protocol.replace(/:$/, ''), host: url.host };
  const path = decodeURIComponentSafe(url.pathname.replace(/^\//, ''));
  if (path) fields.path = path;
  if (url.username) fields.username = decodeURIComponentSafe(url.username);
  return fields;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

export type CredentialRequestPlan =
  | { readonly kind: 'send'; readonly body: { readonly operation: GitOperation; readonly fields: CredentialInput } }
  /** Nothing to ask the host proxy: `reason` (never containing a value) may be shown, `quiet` ones are not worth it. */
  | { readonly kind: 'skip'; readonly reason: string; readonly quiet: boolean };

/**
 * What to send for `operation` and git's input: only https credentials with a host are forwarded,
 * `store` only with a username and a password (the host proxy refuses anything else anyway).
 */
export function planCredentialRequest(operation: GitOperation, input: CredentialInput): CredentialRequestPlan {
  // Not ours: git asks every helper for every protocol; other protocols are for other helpers.
  if (input.protocol !== 'https') return { kind: 'skip', reason: `protocol ${input.protocol === undefined ? '(none)' : 'is not https'}`, quiet: true };
  if (!input.host) return { kind: 'skip', reason: 'no host given', quiet: true };
  for (const key of CREDENTIAL_KEYS) {
    const value = input[key];
    if (value === undefined) continue;
    if (value === '' || FORBIDDEN_IN_VALUE.test(value)) return { kind: 'skip', reason: `${key} is empty or contains a newline`, quiet: false };
  }
  if (operation === 'store' && (input.username === undefined || input.password === undefined)) {
    return { kind: 'skip', reason: 'store needs a username and a password', quiet: true };
  }
  const fields: CredentialInput = {};
  for (const key of CREDENTIAL_KEYS) if (input[key] !== undefined) fields[key] = input[key];
  return { kind: 'send', body: { operation, fields } };
}

/**
 * git's `key=value` lines for the `fields` of a host proxy answer (to `get`). Only known keys with
 * string values git can carry; anything else in the answer is ignored. Empty when there is nothing
 * usable (git then falls back).
 */
export function formatCredentialOutput(answer: unknown): string {
  if (typeof answer !== 'object' || answer === null) return '';
  const fields = (answer as { fields?: unknown }).fields;
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return '';
  let text = '';
  for (const key of CREDENTIAL_KEYS) {
    const value = (fields as Record<string, unknown>)[key];
    if (typeof value !== 'string' || value === '' || FORBIDDEN_IN_VALUE.test(value)) continue;
    text += `${key}=${value}\n`;
  }
  // A username without a password (or the reverse) is no answer to `get`.
  if (!/^password=/m.test(text)) return '';
  return text;
}

/**
 * The short reason a failed answer gives, for stderr: the host proxy's `error` (a fixed phrase by
 * its contract), cut short and stripped of control characters, and never containing `secret`.
 */
export function describeFailure(status: number, answer: unknown, secrets: readonly (string | undefined)[] = []): string {
  let reason = '';
  if (typeof answer === 'object' && answer !== null && typeof (answer as { error?: unknown }).error === 'string') {
    // eslint-disable-next-line no-control-regex
    reason = (answer as { error: string }).error.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ').slice(0, 200);
    for (const secret of secrets) if (secret && secret.length >= 4 && reason.includes(secret)) reason = '(reason withheld: it contained the credential)';
  }
  return reason ? `HTTP ${status}: ${reason}` : `HTTP ${status}`;
}
