/**
 * Entry point of the host proxy daemon (bundled to dist/hostproxy.js, target node20). It runs on the
 * user's machine, started detached by src/platform/hostProxyLauncher.ts, which points its stdout and
 * stderr at <dataDir>/hostproxy/hostproxy.log.
 *
 *   node hostproxy.js --data-dir DIR --listen GATEWAY_IP [--port 18374] [--stack-prefix clawker]
 *                     [--docker-socket PATH]
 *
 * Each option may instead come from the environment: CLAWKER_HOSTPROXY_DATA_DIR,
 * CLAWKER_HOSTPROXY_LISTEN, CLAWKER_HOSTPROXY_PORT, CLAWKER_HOSTPROXY_STACK_PREFIX, DOCKER_SOCKET
 * (without a socket, dockerode's default: DOCKER_HOST or /var/run/docker.sock).
 * CLAWKER_HOSTPROXY_OPENER names a program that opens URLs instead of the browser (see browser.ts).
 *
 * It reads the secret (<dataDir>/hostproxy/secret, created by the launcher; refused if others can
 * read it), listens, then writes <dataDir>/hostproxy/hostproxy.pid. SIGTERM/SIGINT: stops listening,
 * removes the pid file (if still ours) and exits 0.
 */
import Docker from 'dockerode';
import * as fs from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { HOST_PROXY_PORT } from '../core/agents/agentContract';
import { DEFAULT_STACK_PREFIX, stackNames } from '../core/stack/stackNames';
import { writeFileAtomic } from '../platform/files';
import { AgentDirectory } from './agents';
import { urlOpener } from './browser';
import { HOST_PROXY_LOG_FILE, HOST_PROXY_LOG_MAX_BYTES, HOST_PROXY_PID_FILE, type HostProxyPidFile } from './constants';
import { gitCredentialRunner } from './gitCredential';
import { hostProxyDir, readHostProxySecret } from './secret';
import { formatLine, stdoutLog } from './log';
import { createHostProxyServer } from './server';

interface Config {
  readonly dataDir: string;
  readonly listenAddress: string;
  readonly port: number;
  readonly stackPrefix: string;
  readonly dockerSocket: string | undefined;
}

function readConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      listen: { type: 'string' },
      port: { type: 'string' },
      'stack-prefix': { type: 'string' },
      'docker-socket': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const dataDir = values['data-dir'] ?? env.CLAWKER_HOSTPROXY_DATA_DIR;
  const listenAddress = values.listen ?? env.CLAWKER_HOSTPROXY_LISTEN;
  const portText = values.port ?? env.CLAWKER_HOSTPROXY_PORT ?? String(HOST_PROXY_PORT);
  const stackPrefix = values['stack-prefix'] ?? env.CLAWKER_HOSTPROXY_STACK_PREFIX ?? DEFAULT_STACK_PREFIX;
  const dockerSocket = values['docker-socket'] ?? env.DOCKER_SOCKET;
  if (!dataDir) throw new Error('--data-dir is required');
  if (!listenAddress || isIP(listenAddress) === 0) throw new Error('--listen must be an IP address (the firewall network gateway)');
  const port = Number(portText);
  if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) throw new Error('--port must be a TCP port');
  stackNames(stackPrefix); // validates
  return { dataDir, listenAddress, port, stackPrefix, dockerSocket: dockerSocket || undefined };
}

async function main(): Promise<void> {
  const early = stdoutLog({ maxBytes: HOST_PROXY_LOG_MAX_BYTES });
  let config: Config;
  try {
    config = readConfig(process.argv.slice(2), process.env);
  } catch (e) {
    early(`failed: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(2);
  }
  const dir = hostProxyDir(config.dataDir);
  const log = stdoutLog({ logPath: join(dir, HOST_PROXY_LOG_FILE), maxBytes: HOST_PROXY_LOG_MAX_BYTES });
  const secret = readHostProxySecret(config.dataDir);
  const docker = config.dockerSocket ? new Docker({ socketPath: config.dockerSocket }) : new Docker();
  const network = stackNames(config.stackPrefix).network;
  const server = createHostProxyServer({
    secret,
    agents: new AgentDirectory(docker, { network, stackPrefix: config.stackPrefix }),
    git: gitCredentialRunner(),
    openUrl: urlOpener(),
    log,
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: config.listenAddress, port: config.port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e: NodeJS.ErrnoException) => log(`server error (${e.code ?? e.name})`));

  const pidPath = join(dir, HOST_PROXY_PID_FILE);
  const record: HostProxyPidFile = { pid: process.pid, listenAddress: config.listenAddress, port: config.port, stackPrefix: config.stackPrefix };
  writeFileAtomic(pidPath, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  log(`listening on ${config.listenAddress}:${config.port} for the agents of stack ${config.stackPrefix} (network ${network}), pid ${process.pid}`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    try {
      const now = JSON.parse(fs.readFileSync(pidPath, 'utf8')) as { pid?: number };
      if (now.pid === process.pid) fs.rmSync(pidPath, { force: true });
    } catch {
      /* already gone */
    }
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => undefined); // detached: a closing terminal is not a reason to stop
}

main().catch((e: unknown) => {
  process.stdout.write(formatLine(`failed: ${e instanceof Error ? e.message : String(e)}`));
  process.exit(1);
});
