/**
 * Asks the engine what it is (`docker version` + `docker info`, in parallel) and refuses the ones
 * Clawker does not run on, with what to do instead (core/engine/engineSupport).
 */
import type Docker from 'dockerode';
import { type EngineKind, engineSupport } from '../../core/engine/engineSupport';
import { describeEngine, type ResolvedEngine } from '../../core/engine/engineResolution';

export class EngineUnsupportedError extends Error {
  constructor(
    message: string,
    readonly next: string,
  ) {
    super(message);
    this.name = 'EngineUnsupportedError';
  }
}

export interface EngineReport {
  readonly kind: EngineKind;
  readonly apiVersion: string;
  readonly cgroupDriver: string | undefined;
}

export async function checkEngine(docker: Pick<Docker, 'version' | 'info'>, engine: ResolvedEngine | undefined, hostPlatform: NodeJS.Platform = process.platform): Promise<EngineReport> {
  const [version, info] = await Promise.all([docker.version(), docker.info() as Promise<Record<string, unknown>>]);
  const verdict = engineSupport({
    version: version as { Components?: { Name?: string }[]; Platform?: { Name?: string } },
    info: info as { OperatingSystem?: string; Name?: string; SecurityOptions?: string[]; OSType?: string },
    hostPlatform,
    // Without a resolved engine (tests, the daemons), the platform default: a local socket.
    unixSocket: engine === undefined || engine.address.kind === 'unix',
  });
  if (!verdict.ok) throw new EngineUnsupportedError(`${engine ? describeEngine(engine) : 'the Docker engine'}: ${verdict.what}`, verdict.next);
  return { kind: verdict.kind as EngineKind, apiVersion: version.ApiVersion, cgroupDriver: info.CgroupDriver as string | undefined };
}
