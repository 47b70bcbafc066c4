/**
 * The firewall stack's own images (the control plane and CoreDNS): what each is built from, for
 * which engine architecture, which images a user's stack runs, and when an image is built, used as
 * it is, or pulled. Pure: the engine is asked in src/platform/docker/stackImages.ts.
 *
 * They are built on the user's engine, the way the agent image is, from files the extension ships:
 * the Dockerfiles, the control-plane bundle and static Linux binaries of bpfman and CoreDNS for the
 * engine's architecture (dist/engine/linux-<arch>/, filled by scripts/build-images.sh in a checkout
 * and by scripts/package.mjs in a .vsix). The engine is Linux wherever the editor runs, so a macOS
 * package carries Linux binaries.
 */
import type { StackImages } from './containerSpecs';
import { DEFAULT_STACK_IMAGES } from './containerSpecs';

export type StackImageName = 'controlplane' | 'coredns';
export const BUILT_STACK_IMAGES: readonly StackImageName[] = ['controlplane', 'coredns'];

/** The engine architectures the binaries are built for (GOARCH names). */
export type EngineArch = 'amd64' | 'arm64';
export const ENGINE_ARCHES: readonly EngineArch[] = ['amd64', 'arm64'];

/** The engine's `Arch` (GET /version, Go's GOARCH; some engines say uname's name) as a binary directory's. */
export function engineArchOf(reported: string | undefined): EngineArch | undefined {
  switch ((reported ?? '').toLowerCase()) {
    case 'amd64':
    case 'x86_64':
      return 'amd64';
    case 'arm64':
    case 'aarch64':
      return 'arm64';
    default:
      return undefined;
  }
}

/** Where the Linux binaries for one engine architecture are, relative to the installation root. */
export const engineBinaryDir = (arch: EngineArch): string => `dist/engine/linux-${arch}`;

export interface StackImageSource {
  /** The name in the build context (what the Dockerfile COPYs). */
  readonly context: string;
  /** Relative to the installation root. */
  readonly source: string;
  readonly mode: number;
}

/** Every file of one image's build context, Dockerfile first. */
export function stackImageSources(image: StackImageName, arch: EngineArch): readonly StackImageSource[] {
  const bin = engineBinaryDir(arch);
  switch (image) {
    case 'controlplane':
      return [
        { context: 'Dockerfile', source: 'images/controlplane/Dockerfile', mode: 0o644 },
        { context: 'controlplane.js', source: 'dist/controlplane.js', mode: 0o644 },
        { context: 'bpfman', source: `${bin}/bpfman`, mode: 0o755 },
      ];
    case 'coredns':
      return [
        { context: 'Dockerfile', source: 'images/coredns/Dockerfile', mode: 0o644 },
        { context: 'coredns', source: `${bin}/coredns`, mode: 0o755 },
      ];
  }
}

/** Each image hashes its inputs under its own scheme, so two images never share a hash. */
export const stackImageHashScheme = (image: StackImageName): string => `clawker ${image} image inputs v1`;

/** The variables that name the images a stack runs (the control plane reads the same ones). */
export const STACK_IMAGE_ENV = {
  envoy: 'CLAWKER_ENVOY_IMAGE',
  coredns: 'CLAWKER_COREDNS_IMAGE',
  controlplane: 'CLAWKER_CONTROLPLANE_IMAGE',
} as const;

export interface StackImageChoice {
  readonly images: StackImages;
  /** Named by the environment rather than the default: such an image is the user's, run as it is when present. */
  readonly named: Readonly<Record<keyof StackImages, boolean>>;
}

/** The images to run: each from its variable when set (and not empty), else the default. */
export function stackImagesFromEnv(env: Readonly<Record<string, string | undefined>>): StackImageChoice {
  const pick = (key: keyof StackImages): [string, boolean] => {
    const value = env[STACK_IMAGE_ENV[key]];
    return value ? [value, true] : [DEFAULT_STACK_IMAGES[key], false];
  };
  const [envoy, envoyNamed] = pick('envoy');
  const [coredns, corednsNamed] = pick('coredns');
  const [controlplane, controlplaneNamed] = pick('controlplane');
  return { images: { envoy, coredns, controlplane }, named: { envoy: envoyNamed, coredns: corednsNamed, controlplane: controlplaneNamed } };
}

export type StackImageAction = 'build' | 'up-to-date' | 'as-named';

/**
 * What to do with one of the stack's built images. A default tag is the extension's: rebuilt
 * whenever the inputs (this installation's files, the base image) change. An image named through
 * its variable is the user's (a test bed's, a mirror's): `firewall up` runs it as it is when
 * present and builds it from this installation only when missing, while `firewall build` (asked to
 * build) treats it like a default tag. `force` builds either.
 */
export function stackImageAction(o: {
  named: boolean;
  exists: boolean;
  labelledHash: string | undefined;
  hash: string;
  force: boolean;
  /** `firewall build`: the user asked for this installation's images under these tags. */
  building: boolean;
}): StackImageAction {
  if (o.force || !o.exists) return 'build';
  if (o.named && !o.building) return 'as-named';
  return o.labelledHash === o.hash ? 'up-to-date' : 'build';
}
