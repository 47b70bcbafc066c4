/**
 * One way to reach the Docker engine, for the CLI, the extension and the host proxy: resolve it
 * (core/engine/engineResolution: DOCKER_HOST, settings.yaml, the docker context, the default), then
 * build the dockerode client for that address. Every option is passed explicitly, because
 * docker-modem otherwise fills missing ones from DOCKER_HOST behind our back.
 */
import Docker from 'dockerode';
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describeEngine, EngineConfigError, resolveEngine, type ResolvedEngine } from '../../core/engine/engineResolution';
import { hostSupport } from '../../core/engine/engineSupport';
import { dockerConfigDir, lookupDockerContext } from './dockerContextStore';

export type Env = Readonly<Record<string, string | undefined>>;

/** The engine this process should use, given settings.yaml's `docker` section (if any). */
export function resolveEngineFor(env: Env, settings?: { host?: string; socket?: string }, platform: NodeJS.Platform = process.platform): ResolvedEngine {
  // Windows without WSL: say so before any Docker call fails somewhere deep.
  const host = hostSupport({ platform, env });
  if (!host.ok) throw new EngineConfigError(host.what, host.next);
  const configDir = dockerConfigDir(env);
  return resolveEngine({ env, ...(settings ? { settings } : {}), platform, context: (name) => lookupDockerContext(configDir, name) });
}

/** dockerode's options for an engine; reads its TLS files. */
export function dockerOptionsFor(engine: ResolvedEngine, env: Env): Docker.DockerOptions {
  const none = { host: undefined, port: undefined, socketPath: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined, username: undefined } as const;
  const a = engine.address;
  switch (a.kind) {
    case 'unix':
    case 'npipe':
      return { ...none, socketPath: a.path };
    case 'ssh':
      // docker-modem runs `docker system dial-stdio` over SSH; keys come from the user's agent.
      return { ...none, protocol: 'ssh', host: a.host, port: a.port, ...(a.user ? { username: a.user } : {}), sshOptions: { ...(env.SSH_AUTH_SOCK ? { agent: env.SSH_AUTH_SOCK } : {}) } };
    case 'tcp': {
      if (!engine.tls) return { ...none, protocol: 'http', host: a.host, port: a.port };
      // DOCKER_TLS_VERIFY without DOCKER_CERT_PATH means ~/.docker, as for the docker CLI.
      const dir = engine.tls.certDir ?? join(env.HOME || homedir(), '.docker');
      const file = (name: string, required: boolean): Buffer | undefined => {
        try {
          return readFileSync(join(dir, name));
        } catch (e) {
          if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw new EngineConfigError(`${describeEngine(engine)}: cannot read ${join(dir, name)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'point DOCKER_CERT_PATH at the folder holding ca.pem, cert.pem and key.pem');
        }
      };
      const ca = file('ca.pem', engine.tls.verify);
      const cert = file('cert.pem', false);
      const key = file('key.pem', false);
      return {
        ...none,
        protocol: 'https',
        host: a.host,
        port: a.port,
        ...(ca ? { ca } : {}),
        ...(cert ? { cert } : {}),
        ...(key ? { key } : {}),
        // The context's SkipTLSVerify: the user's explicit choice, kept as the docker CLI keeps it.
        ...(engine.tls.verify ? {} : { agent: new HttpsAgent({ rejectUnauthorized: false, ...(cert ? { cert } : {}), ...(key ? { key } : {}) }) }),
      };
    }
  }
}

export function dockerClientFor(engine: ResolvedEngine, env: Env = process.env): Docker {
  return new Docker(dockerOptionsFor(engine, env));
}
