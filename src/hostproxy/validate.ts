/**
 * Validation of the host proxy's request bodies, and git's credential format. Pure: no I/O.
 *
 * Every rejection reason is a fixed phrase (with at most a key name): never a value from the request,
 * so a reason can be logged and returned without echoing a password or a URL's secrets.
 */

export const GIT_OPERATIONS = ['get', 'store', 'erase'] as const;
export type GitOperation = (typeof GIT_OPERATIONS)[number];

/** The keys an agent may send (and that git's answer is reduced to). */
export const CREDENTIAL_KEYS = ['protocol', 'host', 'path', 'username', 'password'] as const;
export type CredentialKey = (typeof CREDENTIAL_KEYS)[number];

export interface CredentialFields {
  readonly protocol: 'https';
  readonly host: string;
  readonly path?: string;
  readonly username?: string;
  readonly password?: string;
}

export interface CredentialRequest {
  readonly operation: GitOperation;
  readonly fields: CredentialFields;
}

export interface BrowserRequest {
  /** The URL as it is handed to the opener (WHATWG-normalised). */
  readonly url: string;
  /** Its host, the only part that is logged. */
  readonly host: string;
}

export type Validated<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const fail = <T>(reason: string): Validated<T> => ({ ok: false, reason });

const MAX_LENGTH: Record<CredentialKey, number> = { protocol: 16, host: 260, path: 4096, username: 1024, password: 16384 };
/** A host name or an IP literal, with an optional port: what git puts into `host=`. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
/** Git's key=value format cannot carry these; CR is refused too (git would strip or keep it inconsistently). */
const FORBIDDEN_IN_VALUE = /[\n\r\0]/;

export const MAX_URL_LENGTH = 8192;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/** Checks one credential value; returns a reason or undefined. */
function checkValue(key: CredentialKey, value: unknown): string | undefined {
  if (typeof value !== 'string') return `${key} must be a string`;
  if (value.length === 0) return `${key} is empty`;
  if (value.length > MAX_LENGTH[key]) return `${key} is too long`;
  if (FORBIDDEN_IN_VALUE.test(value)) return `${key} contains a newline or NUL`;
  return undefined;
}

/** Validates the fields of a credential (from an agent, or from git's answer when `fromGit`). */
export function validateCredentialFields(input: unknown): Validated<CredentialFields> {
  if (!isPlainObject(input)) return fail('fields must be an object');
  for (const key of Object.keys(input)) {
    if (!(CREDENTIAL_KEYS as readonly string[]).includes(key)) return fail(`unknown field ${JSON.stringify(key.slice(0, 32))}`);
  }
  for (const key of CREDENTIAL_KEYS) {
    if (input[key] === undefined) continue;
    const reason = checkValue(key, input[key]);
    if (reason) return fail(reason);
  }
  if (input.protocol === undefined) return fail('protocol is required');
  if (input.protocol !== 'https') return fail('only protocol https is forwarded');
  if (typeof input.host !== 'string') return fail('host is required');
  if (!HOST.test(input.host)) return fail('host is not a host name');
  const port = Number(/:([0-9]+)$/.exec(input.host)?.[1] ?? 443); // without one, https' own
  if (port < 1 || port > 65535) return fail('host has an invalid port');
  const fields: CredentialFields = {
    protocol: 'https',
    host: input.host,
    ...(input.path !== undefined ? { path: input.path as string } : {}),
    ...(input.username !== undefined ? { username: input.username as string } : {}),
    ...(input.password !== undefined ? { password: input.password as string } : {}),
  };
  return { ok: true, value: fields };
}

/** Validates the body of POST /v1/git/credential. */
export function validateCredentialRequest(body: unknown): Validated<CredentialRequest> {
  if (!isPlainObject(body)) return fail('body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (key !== 'operation' && key !== 'fields') return fail(`unknown key ${JSON.stringify(key.slice(0, 32))}`);
  }
  const operation = body.operation;
  if (typeof operation !== 'string' || !(GIT_OPERATIONS as readonly string[]).includes(operation)) {
    return fail('operation must be get, store or erase');
  }
  const fields = validateCredentialFields(body.fields);
  if (!fields.ok) return fields;
  if (operation === 'store' && (fields.value.username === undefined || fields.value.password === undefined)) {
    return fail('store needs username and password');
  }
  return { ok: true, value: { operation: operation as GitOperation, fields: fields.value } };
}

/** Validates the body of POST /v1/browser/open: one http(s) URL, length-capped, without whitespace or control characters. */
export function validateBrowserRequest(body: unknown): Validated<BrowserRequest> {
  if (!isPlainObject(body)) return fail('body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (key !== 'url') return fail(`unknown key ${JSON.stringify(key.slice(0, 32))}`);
  }
  const raw = body.url;
  if (typeof raw !== 'string' || raw.length === 0) return fail('url must be a non-empty string');
  if (raw.length > MAX_URL_LENGTH) return fail('url is too long');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f]/.test(raw)) return fail('url contains whitespace or control characters');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail('url is not a valid URL');
  }
  // Checked on the parsed URL, the one that is opened; the parser refuses http and https without a host.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return fail('only http and https URLs are opened');
  if (url.href.length > MAX_URL_LENGTH) return fail('url is too long');
  return { ok: true, value: { url: url.href, host: url.hostname } };
}

/** Git's credential format (git-credential(1)): `key=value` lines, ended by a blank line. Values must be validated. */
export function formatCredential(fields: CredentialFields): string {
  let text = '';
  for (const key of CREDENTIAL_KEYS) {
    const value = fields[key];
    if (value === undefined) continue;
    if (FORBIDDEN_IN_VALUE.test(value)) throw new Error(`credential ${key} contains a newline or NUL`);
    text += `${key}=${value}\n`;
  }
  return `${text}\n`;
}

/**
 * Parses git's answer (`key=value` lines), keeping only the keys we know; the first blank line ends
 * it. A key given twice keeps its last value, as git does.
 */
export function parseCredential(text: string): Partial<Record<CredentialKey, string>> {
  const out: Partial<Record<CredentialKey, string>> = {};
  for (const line of text.split('\n')) {
    if (line === '') break;
    const eq = line.indexOf('=');
    // Stryker disable next-line EqualityOperator: with eq 0 the key is '', which is not a credential key and is dropped below as well
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    if ((CREDENTIAL_KEYS as readonly string[]).includes(key)) out[key as CredentialKey] = line.slice(eq + 1);
  }
  return out;
}
