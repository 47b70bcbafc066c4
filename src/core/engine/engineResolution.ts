/**
 * Which Docker engine to use, found the way the docker CLI and clawker find it, highest first:
 * `DOCKER_HOST`, settings.yaml `docker.host` (or the older `docker.socket`), the docker context
 * (`DOCKER_CONTEXT`, else config.json's `currentContext`), then the platform's default. clawker puts
 * its own setting above the context so an explicit value is never outranked by ambient state.
 * Pure: the caller reads the environment, the settings and the context store.
 */
import { DEFAULT_UNIX_SOCKET, type EngineAddress, formatEngineAddress, parseEngineAddress, platformDefaultAddress } from './engineAddress';

/** TLS for a tcp:// engine: verify the server against `ca`, present `cert`/`key` when given. */
export interface EngineTls {
  /** Files the platform reads: a directory holding ca.pem, cert.pem and key.pem. */
  readonly certDir?: string;
  /** False only when the user turned verification off (a context's SkipTLSVerify). */
  readonly verify: boolean;
}

export interface ResolvedEngine {
  readonly address: EngineAddress;
  /** Where the address came from, for every message that names the engine. */
  readonly source: string;
  readonly tls?: EngineTls;
  /** The docker context, when one chose the engine. */
  readonly context?: string;
}

/** What a docker context store holds for one context, as the platform read it. */
export type ContextLookup =
  | { readonly found: true; readonly name: string; readonly host: string; readonly skipTlsVerify: boolean; readonly tlsDir?: string }
  /** No context chosen (no config.json, no currentContext, or the built-in `default`). */
  | { readonly found: false }
  /** Chosen but unreadable: the docker CLI fails here too, so we do not guess another engine. */
  | { readonly found: false; readonly error: string };

export interface EngineInputs {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly settings?: { readonly host?: string; readonly socket?: string };
  /** Reads the context store; called only when nothing above it chose the engine. */
  readonly context: (name: string | undefined) => ContextLookup;
  readonly platform: NodeJS.Platform;
}

export class EngineConfigError extends Error {
  constructor(
    message: string,
    readonly next: string,
  ) {
    super(message);
    this.name = 'EngineConfigError';
  }
}

export function resolveEngine(inputs: EngineInputs): ResolvedEngine {
  const { env } = inputs;
  const dockerHost = env.DOCKER_HOST?.trim();
  if (dockerHost) {
    const tls = envTls(env);
    return { address: parsed(dockerHost, 'DOCKER_HOST', tls !== undefined), source: 'DOCKER_HOST', ...(tls ? { tls } : {}) };
  }
  const settingHost = inputs.settings?.host?.trim();
  if (settingHost) {
    const address = parsed(settingHost, 'settings.yaml docker.host', false);
    // A tcp engine named in settings takes TLS from the docker CLI's variables, as DOCKER_HOST would.
    const tls = address.kind === 'tcp' ? envTls(env) : undefined;
    return { address, source: 'settings.yaml docker.host', ...(tls ? { tls } : {}) };
  }
  const socket = inputs.settings?.socket?.trim();
  if (socket) return { address: parsed(socket.includes('://') ? socket : `unix://${socket}`, 'settings.yaml docker.socket', false), source: 'settings.yaml docker.socket' };

  const chosen = env.DOCKER_CONTEXT?.trim() || undefined;
  const context = inputs.context(chosen);
  if (context.found) {
    const source = `docker context '${context.name}'`;
    const tls: EngineTls | undefined = context.tlsDir || context.skipTlsVerify ? { verify: !context.skipTlsVerify, ...(context.tlsDir ? { certDir: context.tlsDir } : {}) } : undefined;
    return { address: parsed(context.host, source, tls !== undefined), source, context: context.name, ...(tls ? { tls } : {}) };
  }
  if ('error' in context) throw new EngineConfigError(context.error, 'docker context ls shows the contexts; docker context use NAME picks one (or set DOCKER_HOST)');
  return { address: platformDefaultAddress(inputs.platform), source: 'the default' };
}

/** `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`, as the docker CLI reads them (a cert path alone means TLS). */
function envTls(env: EngineInputs['env']): EngineTls | undefined {
  const verify = env.DOCKER_TLS_VERIFY !== undefined && env.DOCKER_TLS_VERIFY !== '' && env.DOCKER_TLS_VERIFY !== '0';
  const certDir = env.DOCKER_CERT_PATH?.trim() || undefined;
  if (!verify && !certDir) return undefined;
  return { verify, ...(certDir ? { certDir } : {}) };
}

function parsed(text: string, source: string, tls: boolean): EngineAddress {
  const result = parseEngineAddress(text, tls);
  if ('error' in result) throw new EngineConfigError(`${source}: ${result.error}`, `fix ${source}, or unset it to use the docker context or the default engine`);
  return result;
}

/** "the Docker engine at unix:///var/run/docker.sock (DOCKER_HOST)": how every error names it. */
export function describeEngine(engine: ResolvedEngine): string {
  return `the Docker engine at ${formatEngineAddress(engine.address)} (${engine.source})`;
}


/**
 * The engine's socket as its own containers see it (what `security.docker_socket` mounts): a unix
 * address names it; an engine reached over tcp or ssh serves its default socket on its own side.
 */
export function engineSocketPath(engine: ResolvedEngine): string {
  return engine.address.kind === 'unix' ? engine.address.path : DEFAULT_UNIX_SOCKET;
}

/** The docker CLI's TLS variables that make another process reach this engine as we do. */
export function engineTlsEnv(engine: ResolvedEngine): Record<string, string> {
  if (!engine.tls) return {};
  return { ...(engine.tls.verify ? { DOCKER_TLS_VERIFY: '1' } : {}), ...(engine.tls.certDir ? { DOCKER_CERT_PATH: engine.tls.certDir } : {}) };
}
