/**
 * The running stack's control plane, for CLI verbs: the engine found as every verb finds it
 * (DOCKER_HOST, settings.yaml docker.host, the docker context, the default) and the stack's
 * control-plane container (CLAWKER_STACK), reached through docker exec.
 */
import { existsSync, readFileSync } from 'node:fs';
import { loadSettings } from '../core/config/load';
import { EngineConfigError, type ResolvedEngine } from '../core/engine/engineResolution';
import { DEFAULT_STACK_PREFIX, stackNames } from '../core/stack/stackNames';
import { ControlPlaneClient } from '../platform/controlPlaneClient';
import { UnixSocketTransport } from '../platform/controlPlaneTransport';
import { controlPlaneOf } from '../platform/docker/controlPlaneAccess';
import { dockerClientFor, resolveEngineFor } from '../platform/docker/engineClient';
import { settingsFile } from './settingsFile';

/** settings.yaml's `docker` section; a broken file is an error here too (the engine could be wrong). */
export function dockerSettings(env: NodeJS.ProcessEnv = process.env): { host?: string; socket?: string } | undefined {
  const file = settingsFile(env);
  if (!existsSync(file)) return undefined;
  const loaded = loadSettings(readFileSync(file, 'utf8'));
  if (loaded.failed || !loaded.config) throw new EngineConfigError(`${file} has errors, so the Docker engine it names is unknown`, `clawker validate ${file}`);
  return loaded.config.docker;
}

export function cliEngine(env: NodeJS.ProcessEnv = process.env): ResolvedEngine {
  return resolveEngineFor(env, dockerSettings(env));
}

/**
 * The control plane's client. CLAWKER_API_SOCKET names its socket directly instead (a control plane
 * run outside Docker: tests, development), as the daemon reads the same variable.
 */
export function cliControlPlane(env: NodeJS.ProcessEnv = process.env, timeoutMs?: number, engine?: ResolvedEngine): ControlPlaneClient {
  if (env.CLAWKER_API_SOCKET) return new ControlPlaneClient(new UnixSocketTransport(env.CLAWKER_API_SOCKET), timeoutMs);
  const docker = dockerClientFor(engine ?? cliEngine(env), env);
  return controlPlaneOf(docker, stackNames(env.CLAWKER_STACK ?? DEFAULT_STACK_PREFIX), timeoutMs);
}
