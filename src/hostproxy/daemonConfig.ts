/**
 * The host proxy daemon's settings, from its argv and environment. Pure: throws on anything invalid.
 *
 *   --data-dir DIR --listen GATEWAY_IP [--port 18374] [--stack-prefix clawker] [--docker-host ADDRESS]
 *
 * Each option may instead come from the environment (an option wins): CLAWKER_HOSTPROXY_DATA_DIR,
 * CLAWKER_HOSTPROXY_LISTEN, CLAWKER_HOSTPROXY_PORT, CLAWKER_HOSTPROXY_STACK_PREFIX, DOCKER_HOST
 * (the engine the CLI resolved; TLS files from DOCKER_CERT_PATH; without one, the platform default).
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { HOST_PROXY_PORT } from '../core/agents/agentContract';
import { parseEngineAddress } from '../core/engine/engineAddress';
import { DEFAULT_STACK_PREFIX, stackNames } from '../core/stack/stackNames';

export interface HostProxyConfig {
  readonly dataDir: string;
  readonly listenAddress: string;
  readonly port: number;
  readonly stackPrefix: string;
  /** The Docker engine's address (`unix:///…`, `tcp://…`, `ssh://…`); undefined: the platform default. */
  readonly dockerHost: string | undefined;
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
  return { dataDir, listenAddress, port, stackPrefix, dockerHost };
}
