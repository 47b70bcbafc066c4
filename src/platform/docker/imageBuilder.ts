/**
 * Building and pulling images through the engine's API, shared by the agent image and the stack's
 * images: a build context assembled in memory (nothing on disk to clean up, whatever happens), the
 * engine's classic builder (every engine has it, BuildKit is not needed by our Dockerfiles), and
 * pulls reported as progress lines. Every failure says which image and why.
 */
import type Docker from 'dockerode';
import { Readable } from 'node:stream';
import { type BuildEvent, buildFailureMessage, BuildTranscript, type ContextFile, tarArchive } from '../../core/agents/agentImageInputs';
import { type PullEvent, PullProgress } from '../../core/engine/pullProgress';
import { inspectImage } from './containers';

export type Progress = (line: string) => void;

export class ImageBuildError extends Error {
  override readonly name: string = 'ImageBuildError';
}

export async function imageId(docker: Docker, reference: string): Promise<string | undefined> {
  return (await inspectImage(docker, reference))?.Id;
}

export function abortError(signal: AbortSignal | undefined, what: string): Error {
  const reason = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const error = new Error(`${what} was cancelled`);
  error.name = 'AbortError';
  return error;
}

/**
 * Pulls `reference`, reporting bytes and layers as it goes; resolves with the registry's digest
 * when it said one. Rejects with `fail(reason)` when the engine refuses or the pull breaks.
 */
export function pullImage(
  docker: Docker,
  reference: string,
  progress: Progress,
  signal: AbortSignal | undefined,
  fail: (reason: string) => Error = (reason) => new ImageBuildError(`Pulling ${reference} failed: ${reason}`),
): Promise<string | undefined> {
  progress(`Pulling ${reference}`);
  const tracker = new PullProgress(reference);
  return new Promise((resolvePull, reject) => {
    docker.pull(reference, signal ? { abortSignal: signal } : {}, (err: Error | null, stream?: NodeJS.ReadableStream) => {
      if (err || !stream) {
        reject(signal?.aborted ? abortError(signal, `pulling ${reference}`) : fail(err?.message ?? 'no answer'));
        return;
      }
      docker.modem.followProgress(
        stream,
        (error: Error | null) => {
          const failure = error?.message ?? tracker.error;
          if (signal?.aborted) reject(abortError(signal, `pulling ${reference}`));
          else if (failure !== undefined) reject(fail(failure));
          else resolvePull(tracker.digest);
        },
        (event: PullEvent) => {
          for (const line of tracker.push(event)) if (!line.startsWith('error: ')) progress(line);
        },
      );
    });
  });
}

export interface BuildFromFilesOptions {
  readonly tag: string;
  readonly files: readonly ContextFile[];
  readonly buildArgs: Record<string, string>;
  readonly labels: Record<string, string>;
  readonly progress: Progress;
  readonly signal?: AbortSignal;
  readonly noCache?: boolean;
  readonly fail?: (message: string) => Error;
}

/** Builds the context of `files` under `tag`; resolves with the new image's id. */
export function buildFromFiles(docker: Docker, o: BuildFromFilesOptions): Promise<string> {
  const fail = o.fail ?? ((message: string) => new ImageBuildError(message));
  const signal = o.signal;
  // A few megabytes to a few tens (bundles, static binaries): built in memory.
  const context = Readable.from([tarArchive(o.files)]);
  const transcript = new BuildTranscript();
  return new Promise((resolveBuild, reject) => {
    let settled = false;
    const settle = (error: Error): void => {
      if (settled) return;
      settled = true;
      reject(error);
    };
    const onAbort = (): void => settle(abortError(signal, `building ${o.tag}`));
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);

    docker
      .buildImage(context, {
        t: o.tag,
        buildargs: o.buildArgs,
        labels: o.labels,
        rm: true,
        forcerm: true,
        nocache: o.noCache === true,
        // The classic builder: our Dockerfiles need nothing else, and engines before 23 have no other here.
        version: '1',
        ...(signal ? { abortSignal: signal } : {}),
      })
      .then((stream) => {
        docker.modem.followProgress(
          stream,
          (error: Error | null) => {
            done();
            if (signal?.aborted) return settle(abortError(signal, `building ${o.tag}`));
            if (error && !transcript.error) transcript.error = error.message;
            if (transcript.error || !transcript.imageId) return settle(fail(buildFailureMessage(o.tag, transcript)));
            if (!settled) {
              settled = true;
              resolveBuild(transcript.imageId);
            }
          },
          (event: BuildEvent) => {
            for (const line of transcript.push(event)) o.progress(line);
          },
        );
      })
      .catch((error: Error) => {
        done();
        if (signal?.aborted) return settle(abortError(signal, `building ${o.tag}`));
        settle(fail(`Building ${o.tag} could not start: ${error.message}`));
      });
  });
}

/** After a rebuild the replaced image is untagged: removed unless a container still uses it (then the engine refuses; fine). */
export async function removeReplaced(docker: Docker, previousId: string | undefined, newId: string): Promise<void> {
  if (previousId === undefined || previousId === newId) return;
  await docker
    .getImage(previousId)
    .remove({ noprune: false })
    .catch(() => undefined);
}
