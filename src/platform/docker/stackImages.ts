/**
 * The stack's images on the user's engine: the control plane and CoreDNS built there from this
 * installation's files (cached by the hash of their inputs, like the agent image), and Envoy pulled
 * (pinned by digest) when it is missing. Called by `firewall up` and `run` before the control plane
 * starts, and by `clawker firewall build`.
 */
import type Docker from 'dockerode';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentImageInputsHash, BUILD_INPUTS_LABEL, type ContextFile, dockerfileDefaultBase, isDigestPinned, isImageReference } from '../../core/agents/agentImageInputs';
import type { StackImages } from '../../core/stack/containerSpecs';
import {
  BUILT_STACK_IMAGES,
  ENGINE_ARCHES,
  type EngineArch,
  engineArchOf,
  STACK_IMAGE_ENV,
  stackImageAction,
  stackImageHashScheme,
  type StackImageName,
  stackImageSources,
} from '../../core/stack/stackImages';
import { ENV_BASE_IMAGE, findInstallationRoot } from './agentImage';
import { inspectImage } from './containers';
import { buildFromFiles, imageId, type Progress, pullImage, removeReplaced } from './imageBuilder';

/** What to do after a build that failed: its output says why. */
const AFTER_BUILD_FAILURE = 'fix what the build output says, then clawker firewall build --force';

/** Why the stack's images cannot be had (a build or pull failed, files missing), and what to do. */
export class StackImageError extends Error {
  override readonly name = 'StackImageError';
  constructor(
    message: string,
    /** What to do about it. */
    readonly next: string,
  ) {
    super(message);
  }
}

export interface EnsureStackImagesOptions {
  readonly images: StackImages;
  /** Which images the environment named (stackImagesFromEnv): run as they are when present. */
  readonly named: Readonly<Record<keyof StackImages, boolean>>;
  readonly progress: Progress;
  readonly signal?: AbortSignal;
  /** Build even when up to date (and named images too). */
  readonly force?: boolean;
  /** `clawker firewall build`: named images are rebuilt when their inputs changed. */
  readonly building?: boolean;
  /** Default: $CLAWKER_BASE_IMAGE, else each Dockerfile's pinned default. */
  readonly baseImage?: string;
  /** Default: the installation this code runs from. */
  readonly installationRoot?: string;
  /** Only these (default: all three). */
  readonly only?: readonly (StackImageName | 'envoy')[];
}

export interface StackImagesResult {
  readonly built: readonly string[];
  /** Envoy is missing and could not be pulled: the stack runs, TCP egress fails closed until it is there. */
  readonly envoyMissing?: string;
}

/** The engine's architecture, as our binaries name it; refused with what to do when we ship none for it. */
async function engineArch(docker: Docker): Promise<EngineArch> {
  const version = (await docker.version()) as { Arch?: string; Os?: string };
  const arch = engineArchOf(version.Arch);
  if (version.Os !== undefined && version.Os !== 'linux') {
    throw new StackImageError(`the Docker engine runs ${version.Os} containers; the firewall stack needs a Linux engine`, 'switch the engine to Linux containers');
  }
  if (!arch) {
    throw new StackImageError(`the Docker engine's architecture is ${version.Arch ?? 'unknown'}; the firewall stack is built for ${ENGINE_ARCHES.join(' and ')}`, 'use an amd64 or arm64 engine');
  }
  return arch;
}

function contextFiles(root: string, image: StackImageName, arch: EngineArch): ContextFile[] {
  const sources = stackImageSources(image, arch);
  const missing = sources.filter((s) => !existsSync(join(root, ...s.source.split('/'))));
  if (missing.length) {
    const inCheckout = existsSync(join(root, 'scripts', 'build-images.sh'));
    throw new StackImageError(
      `this installation of clawker (${root}) has no ${missing.map((s) => s.source).join(', ')}: the ${image} image cannot be built for a linux/${arch} engine`,
      inCheckout ? 'npm run images (compiles the binaries, then builds the images)' : `install the Clawker package for this machine's platform (its binaries are linux/${arch} for this engine)`,
    );
  }
  return sources.map((s) => ({ name: s.context, content: readFileSync(join(root, ...s.source.split('/'))), mode: s.mode }));
}

async function ensureBuilt(docker: Docker, image: StackImageName, tag: string, named: boolean, arch: EngineArch, root: string, o: EnsureStackImagesOptions): Promise<boolean> {
  const baseImage = o.baseImage ?? (process.env[ENV_BASE_IMAGE] || undefined);
  if (baseImage !== undefined && !isImageReference(baseImage)) throw new StackImageError(`${ENV_BASE_IMAGE} is not an image reference: ${JSON.stringify(baseImage)}`, `unset ${ENV_BASE_IMAGE}`);
  const files = contextFiles(root, image, arch);
  const buildArgs: Record<string, string> = baseImage !== undefined ? { BASE_IMAGE: baseImage } : {};
  const hashOf = async (): Promise<string> => {
    const baseId = baseImage !== undefined && !isDigestPinned(baseImage) ? ((await imageId(docker, baseImage)) ?? 'absent') : undefined;
    return agentImageInputsHash({
      scheme: stackImageHashScheme(image),
      files,
      buildArgs,
      ...(baseImage !== undefined ? { baseImage } : {}),
      ...(baseId !== undefined ? { baseImageId: baseId } : {}),
    });
  };
  let hash = await hashOf();
  const existing = await inspectImage(docker, tag);
  const action = stackImageAction({
    named,
    exists: existing !== undefined,
    labelledHash: existing?.Config?.Labels?.[BUILD_INPUTS_LABEL],
    hash,
    force: o.force === true,
    building: o.building === true,
  });
  if (action === 'as-named') {
    o.progress(`${tag} (named by ${STACK_IMAGE_ENV[image]}): used as it is`);
    return false;
  }
  if (action === 'up-to-date') return false;

  // The base, chosen or the Dockerfile's pinned default, is pulled here when missing: with progress,
  // rather than silently by the builder.
  const base = baseImage ?? dockerfileDefaultBase(files[0]!.content.toString('utf8'));
  if (base !== undefined && (await imageId(docker, base)) === undefined) {
    await pullImage(docker, base, o.progress, o.signal, (reason) => new StackImageError(`the base image ${base} is not on the engine and cannot be pulled: ${reason}`, `load a base image and name it with ${ENV_BASE_IMAGE} (the test bed: clawker-testbed/debian:bookworm), or check the network`));
    hash = await hashOf();
  }
  const started = Date.now();
  o.progress(`Building ${tag} for linux/${arch} (${existing ? 'its inputs changed' : 'first build on this engine'})`);
  const id = await buildFromFiles(docker, {
    tag,
    files,
    buildArgs,
    labels: { [BUILD_INPUTS_LABEL]: hash },
    progress: o.progress,
    ...(o.signal ? { signal: o.signal } : {}),
    fail: (message) => new StackImageError(message, AFTER_BUILD_FAILURE),
  });
  o.progress(`Built ${tag} (${id.replace(/^sha256:/, '').slice(0, 12)}) in ${Math.round((Date.now() - started) / 1000)} s`);
  await removeReplaced(docker, existing?.Id, id);
  return true;
}

/**
 * Builds the control-plane and CoreDNS images as needed and pulls Envoy when missing. Failures to
 * build throw StackImageError (the stack cannot start without them); Envoy that cannot be pulled is
 * reported, not thrown: the stack still starts and fails closed.
 */
export async function ensureStackImages(docker: Docker, o: EnsureStackImagesOptions): Promise<StackImagesResult> {
  const root = o.installationRoot ?? findInstallationRoot();
  if (root === undefined) throw new StackImageError('the files the stack images are built from were not found beside this program', 'reinstall the Clawker extension');
  const arch = await engineArch(docker);
  const built: string[] = [];
  const wanted = (image: StackImageName | 'envoy'): boolean => o.only === undefined || o.only.includes(image);
  for (const image of BUILT_STACK_IMAGES.filter(wanted)) {
    if (await ensureBuilt(docker, image, o.images[image], o.named[image], arch, root, o)) built.push(o.images[image]);
  }
  if (!wanted('envoy') || (await imageId(docker, o.images.envoy)) !== undefined) return { built };
  try {
    await pullImage(docker, o.images.envoy, o.progress, o.signal);
    return { built };
  } catch (e) {
    if (e instanceof Error && e.name === 'AbortError') throw e;
    return { built, envoyMissing: e instanceof Error ? e.message : String(e) };
  }
}
