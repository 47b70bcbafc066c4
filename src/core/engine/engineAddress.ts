/**
 * A Docker engine's address as the docker CLI writes it (`DOCKER_HOST`, a context's endpoint,
 * settings.yaml `docker.host`): `unix:///path`, `npipe:////./pipe/name`, `tcp://host[:port]`,
 * `ssh://[user@]host[:port]`. Pure: parsing and printing only; connecting is the platform's.
 */

export type EngineAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'npipe'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'ssh'; readonly host: string; readonly port: number; readonly user?: string };

/** The docker CLI's defaults: 2375 plain, 2376 with TLS; ssh on 22. */
export const DOCKER_TCP_PORT = 2375;
export const DOCKER_TLS_PORT = 2376;
const SSH_PORT = 22;

export const DEFAULT_UNIX_SOCKET = '/var/run/docker.sock';
export const DEFAULT_WINDOWS_PIPE = '//./pipe/docker_engine';

const SCHEMES = ['unix', 'npipe', 'tcp', 'ssh'] as const;

/**
 * Parses an engine address; `tls` picks tcp's default port. Errors say what is wrong and show the
 * expected form, for a message that names where the address came from.
 */
export function parseEngineAddress(text: string, tls = false): EngineAddress | { readonly error: string } {
  const value = text.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (!scheme) {
    return {
      error: value.startsWith('/')
        ? `'${value}' has no scheme: write unix://${value}`
        : `'${value}' is not an engine address: expected unix:///path, tcp://host:port, ssh://user@host or npipe:////./pipe/name`,
    };
  }
  if (!(SCHEMES as readonly string[]).includes(scheme)) return { error: `'${value}': unsupported scheme ${scheme}:// (use ${SCHEMES.map((s) => `${s}://`).join(', ')})` };
  const rest = value.slice(scheme.length + 3);
  if (scheme === 'unix' || scheme === 'npipe') {
    if (rest === '') return { error: `'${value}' names no ${scheme === 'unix' ? 'socket' : 'pipe'} path` };
    if (scheme === 'unix' && !rest.startsWith('/')) return { error: `'${value}': the socket path must be absolute (unix:///path)` };
    return { kind: scheme, path: rest };
  }
  let url: URL;
  try {
    url = new URL(`${scheme === 'tcp' ? 'http' : 'ssh'}://${rest}`);
  } catch {
    return { error: `'${value}' is not a valid ${scheme}:// address` };
  }
  if (!url.hostname) return { error: `'${value}' names no host` };
  if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) return { error: `'${value}': an engine address has no path or query` };
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  // URL drops a scheme's default port (80 for http), so read the written one from the text.
  const written = /:(\d+)\/?$/.exec(rest.replace(/^[^@]*@/, ''))?.[1];
  const port = written !== undefined ? Number(written) : scheme === 'tcp' ? (tls ? DOCKER_TLS_PORT : DOCKER_TCP_PORT) : SSH_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: `'${value}': port ${written} is out of range` };
  if (scheme === 'tcp') {
    if (url.username || url.password) return { error: `'${value}': a tcp:// address has no user (TLS certificates identify you)` };
    return { kind: 'tcp', host, port };
  }
  if (url.password) return { error: `'${value}': never write a password in an engine address (use an SSH key or agent)` };
  return { kind: 'ssh', host, port, ...(url.username ? { user: decodeURIComponent(url.username) } : {}) };
}

/** The address in the docker CLI's form, for messages. */
export function formatEngineAddress(a: EngineAddress): string {
  switch (a.kind) {
    case 'unix':
    case 'npipe':
      return `${a.kind}://${a.path}`;
    case 'tcp':
      return `tcp://${hostPart(a.host)}:${a.port}`;
    case 'ssh':
      return `ssh://${a.user ? `${a.user}@` : ''}${hostPart(a.host)}${a.port === SSH_PORT ? '' : `:${a.port}`}`;
  }
}

const hostPart = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/** The engine every platform falls back to: Docker's own default socket or pipe. */
export function platformDefaultAddress(platform: NodeJS.Platform): EngineAddress {
  return platform === 'win32' ? { kind: 'npipe', path: DEFAULT_WINDOWS_PIPE } : { kind: 'unix', path: DEFAULT_UNIX_SOCKET };
}
