/**
 * Reads the docker CLI's context store: `config.json`'s `currentContext` (in `DOCKER_CONFIG`, else
 * `~/.docker`), and `contexts/meta/<sha256 of the name>/meta.json` for that context's docker
 * endpoint; its TLS files, when it has any, are in `contexts/tls/<sha256>/docker/`. Read only:
 * the store belongs to the docker CLI.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ContextLookup } from '../../core/engine/engineResolution';

/** The docker CLI's configuration directory. */
export function dockerConfigDir(env: Readonly<Record<string, string | undefined>>, home: string = homedir()): string {
  return env.DOCKER_CONFIG?.trim() || join(home, '.docker');
}

interface MetaFile {
  Name?: unknown;
  Endpoints?: Record<string, { Host?: unknown; SkipTLSVerify?: unknown } | undefined>;
}

/** The context `name` (or config.json's current one when undefined), as the engine resolver wants it. */
export function lookupDockerContext(configDir: string, name: string | undefined): ContextLookup {
  let chosen = name;
  if (chosen === undefined) {
    const configFile = join(configDir, 'config.json');
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch {
      return { found: false }; // the docker CLI never ran here: no context chosen
    }
    let current: unknown;
    try {
      current = (JSON.parse(text) as { currentContext?: unknown }).currentContext;
    } catch (e) {
      return { found: false, error: `${configFile} is not valid JSON (${(e as Error).message})` };
    }
    chosen = typeof current === 'string' ? current : undefined;
  }
  if (!chosen || chosen === 'default') return { found: false }; // the built-in context: the platform default
  const digest = createHash('sha256').update(chosen).digest('hex');
  const metaFile = join(configDir, 'contexts', 'meta', digest, 'meta.json');
  let meta: MetaFile;
  try {
    meta = JSON.parse(readFileSync(metaFile, 'utf8')) as MetaFile;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return { found: false, error: missing ? `docker context '${chosen}' does not exist (no ${metaFile})` : `docker context '${chosen}': ${metaFile} is unreadable (${(e as Error).message})` };
  }
  const endpoint = meta.Endpoints?.docker;
  if (!endpoint || typeof endpoint.Host !== 'string' || endpoint.Host === '') return { found: false, error: `docker context '${chosen}' has no docker endpoint (${metaFile})` };
  const tlsDir = join(configDir, 'contexts', 'tls', digest, 'docker');
  return { found: true, name: chosen, host: endpoint.Host, skipTlsVerify: endpoint.SkipTLSVerify === true, ...(existsSync(tlsDir) ? { tlsDir } : {}) };
}
