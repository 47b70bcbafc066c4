/**
 * The host proxy daemon's settings, from its argv and environment. Pure: throws on anything invalid.
 *
 *   --data-dir DIR --listen GATEWAY_IP [--port 18374] [--stack-prefix clawker] [--docker-host ADDRESS]
 *   [--idle-grace-ms 60000] [--idle-poll-ms 30000]
 *
 * Each option may instead come from the environment (an option wins): CLAWKER_HOSTPROXY_DATA_DIR,
 * CLAWKER_HOSTPROXY_LISTEN, CLAWKER_HOSTPROXY_PORT, CLAWKER_HOSTPROXY_STACK_PREFIX, DOCKER_HOST
 * (the engine the CLI resolved; TLS files from DOCKER_CERT_PATH; without one, the platform default),
 * CLAWKER_HOSTPROXY_IDLE_GRACE_MS, CLAWKER_HOSTPROXY_IDLE_POLL_MS (0: never exit when idle).
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { HOST_PROXY_PORT } from '../core/agents/agentContract';
import { parseEngineAddress } from '../core/engine/engineAddress';
import { DEFAULT_STACK_PREFIX, stackNames } from '../core/stack/stackNames';
import { DEFAULT_IDLE_POLICY, DEFAULT_IDLE_POLL_MS } from './idleExit';

export interface HostProxyConfig {
  readonly dataDir: string;
  readonly listenAddress: string;
  readonly port: number;
  readonly stackPrefix: string;
  /** The Docker engine's address (`unix:///…`, `tcp://…`, `ssh://…`); undefined: the platform default. */
  readonly dockerHost: string | undefined;
  /** Exit after this long with no running agent of the stack (see idleExit.ts). */
  readonly idleGraceMs: number;
  /** How often Docker is asked; 0: never (the daemon runs until stopped). */
  readonly idlePollMs: number;
}

/** A whole number of milliseconds, 0 … one day. */
function milliseconds(name: string, text: string): number {
  const ms = Number(text);
  if (!/^[0-9]{1,8}$/.test(text) || ms > 86_400_000) throw new Error(`${name} must be a number of milliseconds (0 to 86400000)`);
  return ms;
}

export function readConfig(argv: string[], env: Readonly<Record<string, string | undefined>>): HostProxyConfig {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      listen: { type: 'string' },
      port: { type: 'string' },
      'stack-prefix': { type: 'string' },
      'docker-host': { type: 'string' },
      'idle-grace-ms': { type: 'string' },
      'idle-poll-ms': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const dataDir = values['data-dir'] ?? env.CLAWKER_HOSTPROXY_DATA_DIR;
  const listenAddress = values.listen ?? env.CLAWKER_HOSTPROXY_LISTEN;
  const portText = values.port ?? env.CLAWKER_HOSTPROXY_PORT ?? String(HOST_PROXY_PORT);
  const stackPrefix = values['stack-prefix'] ?? env.CLAWKER_HOSTPROXY_STACK_PREFIX ?? DEFAULT_STACK_PREFIX;
  const dockerHost = (values['docker-host'] ?? env.DOCKER_HOST) || undefined;
  if (!dataDir) throw new Error('--data-dir is required');
  if (!listenAddress || isIP(listenAddress) === 0) throw new Error('--listen must be an IP address (the firewall network gateway)');
  const port = Number(portText);
  if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) throw new Error('--port must be a TCP port');
  stackNames(stackPrefix); // validates
  if (dockerHost !== undefined) {
    const address = parseEngineAddress(dockerHost, env.DOCKER_TLS_VERIFY === '1');
    if ('error' in address) throw new Error(`--docker-host: ${address.error}`);
  }
  const idleGraceMs = milliseconds('--idle-grace-ms', values['idle-grace-ms'] ?? env.CLAWKER_HOSTPROXY_IDLE_GRACE_MS ?? String(DEFAULT_IDLE_POLICY.graceMs));
  const idlePollMs = milliseconds('--idle-poll-ms', values['idle-poll-ms'] ?? env.CLAWKER_HOSTPROXY_IDLE_POLL_MS ?? String(DEFAULT_IDLE_POLL_MS));
  return { dataDir, listenAddress, port, stackPrefix, dockerHost, idleGraceMs, idlePollMs };
}
