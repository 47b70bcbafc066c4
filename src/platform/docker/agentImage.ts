/**
 * Builds the agent image (images/agent/Dockerfile) with the engine's classic builder, through
 * dockerode: the build context is assembled in memory (nothing to clean up on disk, whatever
 * happens), hashed, and built only when no image with the same inputs hash exists.
 *
 * The firewall CA is baked into the image. When the CA in the data directory no longer is the one
 * the image trusts (it was rotated), the image is rebuilt only on request: running agents keep the
 * old CA until they are restarted, so rebuilding is the user's decision (`clawker build`, or
 * `clawker run --rebuild`).
 *
 * Environment (defaults for the options of the same meaning):
 *   CLAWKER_BASE_IMAGE      the base image (any Debian bookworm based image; default: the Dockerfile's
 *                           pinned node:22-bookworm-slim). The test bed: clawker-testbed/debian:bookworm.
 *   CLAWKER_BUILD_CA_FILE   PEM file of extra CAs to trust while Claude Code is downloaded during the
 *                           build (networks that intercept TLS); not kept in the image. Unset: the
 *                           NODE_EXTRA_CA_CERTS of this process, if any (the CAs the user's own Node
 *                           and npm already trust, usually set for exactly such a network).
 */
import type Docker from 'dockerode';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type AgentUser, DEFAULT_AGENT_USER, isDefaultAgentUser } from '../../core/agents/agentUser';
import {
  agentImageBuildArgs,
  agentImageInputsHash,
  BUILD_INPUTS_LABEL,
  CA_FINGERPRINT_LABEL,
  CHECKOUT_NAPI_HEADERS_DIR,
  CONTEXT,
  type ContextFile,
  dockerfileDefaultBase,
  INSTALLED_SOURCES,
  isDigestPinned,
  isImageReference,
  toolCommandScript,
} from '../../core/agents/agentImageInputs';
import { fingerprint, readCertificate } from '../../core/pki/inspect';
import { loadOrCreateCa } from '../caStore';
import { inspectImage } from './containers';
import { abortError, buildFromFiles, ImageBuildError, imageId, pullImage, removeReplaced } from './imageBuilder';

export const AGENT_IMAGE_TAG = 'clawker-agent:latest';
export const ENV_BASE_IMAGE = 'CLAWKER_BASE_IMAGE';
export const ENV_BUILD_CA_FILE = 'CLAWKER_BUILD_CA_FILE';
/** The command that rebuilds the image, named in messages. */
export const REBUILD_COMMANDS = '`clawker build` (or `clawker run --rebuild`)';

export interface AgentImageProgress {
  (line: string): void;
}

export interface AgentImageStatusOptions {
  dataDir: string;
  /** Default: $CLAWKER_BASE_IMAGE, else the Dockerfile's pinned default. */
  baseImage?: string;
  /** Default AGENT_IMAGE_TAG, with `-uid<UID>` for an agent user other than the contract's (tests use their own). */
  tag?: string;
  /** The agent user's ids (agentUser.ts); default the contract's 1001. */
  user?: AgentUser;
  /** Where the files of INSTALLED_SOURCES are (a checkout or an installed extension); default: the installation this code runs from. */
  installationRoot?: string;
}

export interface EnsureAgentImageOptions extends AgentImageStatusOptions {
  onProgress?: AgentImageProgress;
  signal?: AbortSignal;
  /** Build even when up to date, and also when the CA was rotated (staleCa). */
  rebuild?: boolean;
  /** Extra CAs for the download of Claude Code during the build. Default: $CLAWKER_BUILD_CA_FILE, else $NODE_EXTRA_CA_CERTS. */
  buildCaFile?: string;
  /** When building, use no cached layer (fresh Debian packages and Claude Code download). */
  noCache?: boolean;
}

export interface AgentImageStatus {
  image: string;
  exists: boolean;
  /** The image exists and was built from exactly the current inputs (CA included). */
  upToDate: boolean;
  /** Fingerprint (SHA-256) of the CA the image trusts, from its label; when it exists. */
  caFingerprint?: string;
  /** Fingerprint of the firewall CA in the data directory now. */
  currentCaFingerprint?: string;
  /** The image trusts another CA than the data directory's (the CA was rotated): rebuild it, restart agents. */
  staleCa?: boolean;
}

export class AgentImageStaleCaError extends Error {
  override readonly name = 'AgentImageStaleCaError';
  constructor(
    readonly image: string,
    readonly imageCaFingerprint: string,
    readonly currentCaFingerprint: string,
  ) {
    super(
      `The firewall CA was rotated: ${image} still trusts the previous CA (${shortFingerprint(imageCaFingerprint)}, now ${shortFingerprint(currentCaFingerprint)}), ` +
        `so its agents could not reach anything through the firewall. Rebuild the image with ${REBUILD_COMMANDS}, then restart running agents.`,
    );
  }
}

export class AgentImageBuildError extends ImageBuildError {
  override readonly name = 'AgentImageBuildError';
}

/** The files needed from this installation (not from the data directory) are missing. */
export class AgentImageSourcesError extends Error {
  override readonly name = 'AgentImageSourcesError';
}

const shortFingerprint = (fp: string): string => `${fp.slice(0, 23)}…`;

// ---- where the build's files are ------------------------------------------------------------

export interface AgentImageSources {
  readonly root: string;
  readonly dockerfile: string;
  readonly prompt: string;
  readonly bundles: { readonly agentd: string; readonly credentialHelper: string; readonly opener: string };
  readonly nativeSource: string;
  readonly nativeBuildScript: string;
  /** The directory of node_api.h and the headers it includes. */
  readonly napiHeaders: string;
}

/**
 * The checkout or installed extension this code runs from: the directory above ours holding
 * images/agent/Dockerfile. The CLI runs from dist/cli.js and the extension from dist/extension.js
 * (one level below it, in a checkout and in <extension>/ alike); under tsx this file is
 * src/platform/docker/agentImage.ts (three levels).
 */
export function findInstallationRoot(start: string = __dirname): string | undefined {
  let dir = resolve(start);
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, ...INSTALLED_SOURCES.dockerfile.split('/')))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return undefined;
}

export function locateAgentImageSources(root: string | undefined): AgentImageSources {
  if (root === undefined) {
    throw new AgentImageSourcesError(`${INSTALLED_SOURCES.dockerfile} not found above ${__dirname}: this installation of clawker cannot build the agent image.`);
  }
  const at = (relative: string): string => join(root, ...relative.split('/'));
  // The copy in dist/ (what an installed extension has); a checkout built before the copy existed: node_modules.
  const headerDirs = [INSTALLED_SOURCES.napiHeadersDir, CHECKOUT_NAPI_HEADERS_DIR].map(at);
  const sources: AgentImageSources = {
    root,
    dockerfile: at(INSTALLED_SOURCES.dockerfile),
    prompt: at(INSTALLED_SOURCES.prompt),
    bundles: {
      agentd: at(INSTALLED_SOURCES.agentd),
      credentialHelper: at(INSTALLED_SOURCES.credentialHelper),
      opener: at(INSTALLED_SOURCES.opener),
    },
    nativeSource: at(INSTALLED_SOURCES.nativeSource),
    nativeBuildScript: at(INSTALLED_SOURCES.nativeBuildScript),
    napiHeaders: headerDirs.find((dir) => existsSync(join(dir, 'node_api.h'))) ?? headerDirs[0]!,
  };
  const missingBundles = Object.values(sources.bundles).filter((file) => !existsSync(file));
  if (missingBundles.length) {
    throw new AgentImageSourcesError(`${missingBundles.join(', ')} missing: run \`npm run build\` in ${root} first (it bundles agentd and the agent tools).`);
  }
  for (const file of [sources.dockerfile, sources.prompt, sources.nativeSource, sources.nativeBuildScript]) {
    if (!existsSync(file)) throw new AgentImageSourcesError(`${file} missing: the agent image cannot be built from ${root}.`);
  }
  if (!existsSync(join(sources.napiHeaders, 'node_api.h'))) {
    throw new AgentImageSourcesError(
      `${sources.napiHeaders}/node_api.h missing: run \`npm ci && npm run build\` in ${root} (the build copies the headers of the node-api-headers development dependency there).`,
    );
  }
  return sources;
}

// ---- the inputs -----------------------------------------------------------------------------

interface CollectedInputs {
  readonly tag: string;
  readonly files: readonly ContextFile[];
  readonly buildArgs: Record<string, string>;
  readonly baseImage: string | undefined;
  readonly caFingerprint: string;
}

/** The tag to build and run: the one given, else AGENT_IMAGE_TAG, suffixed for an agent user other than the contract's. */
export function chooseTag(tag: string | undefined, user: AgentUser = DEFAULT_AGENT_USER): string {
  // One image per agent user, so two users of one engine do not rebuild each other's.
  const chosen = tag ?? (isDefaultAgentUser(user) ? AGENT_IMAGE_TAG : `${AGENT_IMAGE_TAG}-uid${user.uid}-gid${user.gid}`);
  if (!isImageReference(chosen) || chosen.includes('@')) throw new Error(`not an image tag: ${JSON.stringify(chosen)}`);
  return chosen;
}

function chooseBaseImage(baseImage: string | undefined): string | undefined {
  const chosen = baseImage ?? (process.env[ENV_BASE_IMAGE] || undefined);
  if (chosen !== undefined && !isImageReference(chosen)) {
    throw new Error(`${baseImage !== undefined ? 'the base image' : ENV_BASE_IMAGE} is not an image reference: ${JSON.stringify(chosen)}`);
  }
  return chosen;
}

/** The extra build-time CAs: certificates only (a private key never goes into a build context). */
function readBuildCa(file: string | undefined): Buffer {
  const fromNode = file === undefined && !process.env[ENV_BUILD_CA_FILE];
  const path = file ?? (process.env[ENV_BUILD_CA_FILE] || process.env.NODE_EXTRA_CA_CERTS || undefined);
  if (path === undefined) return Buffer.alloc(0);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS: so does the build (by not using it).
    if (fromNode) return Buffer.alloc(0);
    throw new Error(`cannot read the build CA file ${path} (${ENV_BUILD_CA_FILE}): ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (fromNode && !/-----BEGIN CERTIFICATE-----/.test(text)) return Buffer.alloc(0);
  if (/PRIVATE KEY/.test(text)) throw new Error(`the build CA file ${path} contains a private key: give it certificates only`);
  const certificates = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (certificates.length === 0) throw new Error(`the build CA file ${path} holds no PEM certificate`);
  return Buffer.from(`${certificates.join('\n')}\n`, 'utf8');
}

function listFiles(dir: string, prefix: string): ContextFile[] {
  const files: ContextFile[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listFiles(path, `${prefix}/${entry.name}`));
    else if (entry.isFile()) files.push({ name: `${prefix}/${entry.name}`, content: readFileSync(path) });
  }
  return files;
}

async function collectInputs(o: AgentImageStatusOptions & { buildCaFile?: string }, withBuildCa: boolean): Promise<CollectedInputs> {
  const tag = chooseTag(o.tag, o.user);
  const baseImage = chooseBaseImage(o.baseImage);
  const sources = locateAgentImageSources(o.installationRoot ?? findInstallationRoot());
  const pki = await loadOrCreateCa(join(o.dataDir, 'firewall', 'ca'));
  const caPem = pki.ca.certificatePem;
  const files: ContextFile[] = [
    { name: CONTEXT.dockerfile, content: readFileSync(sources.dockerfile) },
    { name: CONTEXT.prompt, content: readFileSync(sources.prompt) },
    { name: CONTEXT.agentd, content: readFileSync(sources.bundles.agentd) },
    { name: CONTEXT.credentialHelper, content: readFileSync(sources.bundles.credentialHelper) },
    { name: CONTEXT.opener, content: readFileSync(sources.bundles.opener) },
    { name: CONTEXT.credentialHelperCommand, content: Buffer.from(toolCommandScript(CONTEXT.credentialHelper)), mode: 0o755 },
    { name: CONTEXT.openerCommand, content: Buffer.from(toolCommandScript(CONTEXT.opener)), mode: 0o755 },
    { name: CONTEXT.nativeSource, content: readFileSync(sources.nativeSource) },
    { name: CONTEXT.nativeBuildScript, content: readFileSync(sources.nativeBuildScript), mode: 0o755 },
    ...listFiles(sources.napiHeaders, CONTEXT.napiHeadersDir),
    { name: CONTEXT.ca, content: Buffer.from(caPem, 'utf8') },
    { name: CONTEXT.buildCa, content: withBuildCa ? readBuildCa(o.buildCaFile) : Buffer.alloc(0), hashed: false },
  ];
  return { tag, files, buildArgs: agentImageBuildArgs(baseImage, o.user), baseImage, caFingerprint: fingerprint(readCertificate(caPem)) };
}

/** The inputs hash; a base image not pinned by digest contributes its local id ('absent' when missing). */
async function inputsHash(docker: Docker, inputs: CollectedInputs): Promise<string> {
  const baseImageId =
    inputs.baseImage !== undefined && !isDigestPinned(inputs.baseImage) ? ((await imageId(docker, inputs.baseImage)) ?? 'absent') : undefined;
  return agentImageInputsHash({
    files: inputs.files,
    buildArgs: inputs.buildArgs,
    ...(inputs.baseImage !== undefined ? { baseImage: inputs.baseImage } : {}),
    ...(baseImageId !== undefined ? { baseImageId } : {}),
  });
}

function statusOf(image: string, info: Docker.ImageInspectInfo | undefined, hash: string, currentCa: string): AgentImageStatus {
  if (!info) return { image, exists: false, upToDate: false, currentCaFingerprint: currentCa };
  const labels = info.Config?.Labels ?? {};
  const imageCa = labels[CA_FINGERPRINT_LABEL];
  return {
    image,
    exists: true,
    upToDate: labels[BUILD_INPUTS_LABEL] === hash,
    ...(imageCa ? { caFingerprint: imageCa } : {}),
    currentCaFingerprint: currentCa,
    // An image without the label was not built by this code: it cannot be known to trust the CA.
    staleCa: imageCa !== currentCa,
  };
}

/** Whether the agent image exists, is built from the current inputs, and trusts the current CA. Creates the CA if there is none yet. */
export async function agentImageStatus(docker: Docker, o: AgentImageStatusOptions): Promise<AgentImageStatus> {
  const inputs = await collectInputs(o, false);
  const hash = await inputsHash(docker, inputs);
  return statusOf(inputs.tag, await inspectImage(docker, inputs.tag), hash, inputs.caFingerprint);
}

// ---- building -------------------------------------------------------------------------------

/** Per tag: the latest call, settled either way (calls for one tag run one after the other). */
const inFlight = new Map<string, Promise<unknown>>();

/**
 * Builds when missing or inputs changed (or rebuild); returns the tag. Throws AgentImageStaleCaError
 * when the image trusts a CA other than the data directory's (it was rotated) and `rebuild` is not
 * set; AgentImageBuildError naming the failing step and the last lines of output when the build
 * fails; an AbortError when `signal` aborts it. Calls for the same tag in one process share one build.
 */
export function ensureAgentImage(docker: Docker, o: EnsureAgentImageOptions): Promise<{ image: string; built: boolean }> {
  const tag = chooseTag(o.tag, o.user);
  const previous = inFlight.get(tag) ?? Promise.resolve();
  const next = previous.then(
    () => ensureOnce(docker, o),
    () => ensureOnce(docker, o),
  );
  const tracked: Promise<unknown> = next
    .catch(() => undefined) // the caller handles the outcome; this copy only orders the next call
    .finally(() => {
      if (inFlight.get(tag) === tracked) inFlight.delete(tag);
    });
  inFlight.set(tag, tracked);
  return next;
}

async function ensureOnce(docker: Docker, o: EnsureAgentImageOptions): Promise<{ image: string; built: boolean }> {
  const progress = o.onProgress ?? (() => undefined);
  if (o.signal?.aborted) throw abortError(o.signal, 'building the agent image');
  const inputs = await collectInputs(o, true);
  const tag = inputs.tag;
  let hash = await inputsHash(docker, inputs);
  const existing = await inspectImage(docker, tag);
  const status = statusOf(tag, existing, hash, inputs.caFingerprint);
  if (status.exists && !o.rebuild) {
    if (status.staleCa && status.caFingerprint !== undefined) throw new AgentImageStaleCaError(tag, status.caFingerprint, inputs.caFingerprint);
    if (status.upToDate) return { image: tag, built: false };
  }

  // The base, chosen or the Dockerfile's pinned default, is pulled here when missing: with progress,
  // rather than silently by the builder.
  const base = inputs.baseImage ?? dockerfileDefaultBase(inputs.files.find((f) => f.name === CONTEXT.dockerfile)!.content.toString('utf8'));
  if (base !== undefined && (await imageId(docker, base)) === undefined) {
    await pullBaseImage(docker, base, progress, o.signal);
    hash = await inputsHash(docker, inputs);
  }

  const started = Date.now();
  const why = existing ? (o.rebuild ? 'rebuild requested' : 'its inputs changed') : 'no image yet: the first build downloads Debian packages and Claude Code, minutes';
  progress(`Building ${tag} on ${inputs.baseImage ?? 'the default base image'} (${why})`);
  const imageIdBuilt = await buildFromFiles(docker, {
    tag,
    files: inputs.files,
    buildArgs: inputs.buildArgs,
    labels: { [BUILD_INPUTS_LABEL]: hash, [CA_FINGERPRINT_LABEL]: inputs.caFingerprint },
    progress,
    ...(o.signal ? { signal: o.signal } : {}),
    noCache: o.noCache === true,
    fail: (message) => new AgentImageBuildError(message),
  });
  progress(`Built ${tag} (${imageIdBuilt.replace(/^sha256:/, '').slice(0, 12)}) in ${Math.round((Date.now() - started) / 1000)} s`);

  await removeReplaced(docker, existing?.Id, imageIdBuilt);
  return { image: tag, built: true };
}

async function pullBaseImage(docker: Docker, reference: string, progress: AgentImageProgress, signal: AbortSignal | undefined): Promise<void> {
  await pullImage(
    docker,
    reference,
    progress,
    signal,
    (reason) =>
      new AgentImageBuildError(
        `The base image ${reference} is not present and cannot be pulled (${reason}). ` +
          `Choose a local Debian bookworm based image with ${ENV_BASE_IMAGE}, or check the network.`,
      ),
  );
}
