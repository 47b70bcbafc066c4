/**
 * The agent image's build inputs (images/agent/Dockerfile): the files of its build context, the
 * build arguments taken from the agent contract, the hash that decides whether an image is up to
 * date, the context as a tar archive, and the reading of the engine's build progress. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import {
  AGENT_HOME,
  AGENT_PROMPT_FILE,
  AGENT_USER,
  AGENTD_DIR,
  HOST_PROXY_DIR,
  IMAGE_CA_FILE,
  RUN_DIR,
  SESSION_DIR,
  SYSTEM_CA_BUNDLE,
  WORKSPACE_DIR,
} from './agentContract';
import { type AgentUser, DEFAULT_AGENT_USER } from './agentUser';

/** Label: the hash of everything the image was built from (as scripts/build-images.sh labels the stack's images). */
export const BUILD_INPUTS_LABEL = 'dev.clawker.build.inputs';
/** Label: SHA-256 fingerprint of the firewall CA baked into the image (X509Certificate.fingerprint256 form). */
export const CA_FINGERPRINT_LABEL = 'dev.clawker.ca.fingerprint';

/** The names the Dockerfile COPYs from its build context. */
export const CONTEXT = {
  dockerfile: 'Dockerfile',
  prompt: 'CLAUDE.md',
  agentd: 'agentd.js',
  credentialHelper: 'git-credential-clawker.js',
  opener: 'clawker-open.js',
  credentialHelperCommand: 'git-credential-clawker',
  openerCommand: 'clawker-open',
  nativeSource: 'native/agentd_proc.c',
  nativeBuildScript: 'native/build.sh',
  napiHeadersDir: 'node-api-headers',
  ca: 'ca.crt',
  /** Extra CAs trusted only while Claude Code is downloaded (empty when none); not a hash input. */
  buildCa: 'build-ca.crt',
} as const;

/**
 * Where the context's files are, relative to the installation root: a checkout after `npm run build`,
 * or an installed extension (the .vsix ships exactly these; test/unit/packaging.test.ts holds
 * .vscodeignore to this list). scripts/build.mjs copies the Node-API headers into dist/ because a
 * .vsix carries no node_modules; a checkout built before that has them only in node_modules.
 */
export const INSTALLED_SOURCES = {
  dockerfile: 'images/agent/Dockerfile',
  prompt: 'images/agent/CLAUDE.md',
  agentd: `dist/${CONTEXT.agentd}`,
  credentialHelper: `dist/${CONTEXT.credentialHelper}`,
  opener: `dist/${CONTEXT.opener}`,
  nativeSource: 'src/agentd/native/agentd_proc.c',
  nativeBuildScript: 'src/agentd/native/build.sh',
  /** A directory: every file in it goes into the context under node-api-headers/. */
  napiHeadersDir: 'dist/node-api-headers',
} as const;

/** The headers' other place in a checkout (the node-api-headers development dependency). */
export const CHECKOUT_NAPI_HEADERS_DIR = 'node_modules/node-api-headers/include';

export interface ContextFile {
  /** Path inside the build context, with `/` separators, relative. */
  readonly name: string;
  readonly content: Buffer;
  /** 0o644 unless given. */
  readonly mode?: number;
  /** False for a file that cannot change what is built (the build-time CA): left out of the hash. */
  readonly hashed?: boolean;
}

/**
 * The build arguments: the agent contract's user, ids and paths (the Dockerfile's defaults are the
 * same values; a unit test keeps them so), the agent user's ids (agentUser.ts) and BASE_IMAGE when one is chosen (else the Dockerfile's
 * pinned default).
 */
export function agentImageBuildArgs(baseImage?: string, user: AgentUser = DEFAULT_AGENT_USER): Record<string, string> {
  return {
    AGENT_USER,
    AGENT_UID: String(user.uid),
    AGENT_GID: String(user.gid),
    AGENT_HOME,
    WORKSPACE_DIR,
    AGENTD_DIR,
    RUN_DIR,
    SESSION_DIR,
    HOST_PROXY_DIR,
    AGENT_PROMPT_FILE,
    IMAGE_CA_FILE,
    SYSTEM_CA_BUNDLE,
    ...(baseImage !== undefined ? { BASE_IMAGE: baseImage } : {}),
  };
}

/** The command on PATH that runs one of the tools' bundles with the image's Node. */
export const toolCommandScript = (bundle: string): string => `#!/bin/sh\nexec node ${AGENTD_DIR}/${bundle} "$@"\n`;

/** An image reference (name[:tag][@digest]); nothing that could be read as an option or a second argument. */
export const isImageReference = (text: string): boolean => text.length <= 512 && /^[A-Za-z0-9][A-Za-z0-9._/:@-]*$/.test(text);

/** The base a Dockerfile builds on when no BASE_IMAGE build argument is given (its `ARG BASE_IMAGE=` default). */
export function dockerfileDefaultBase(dockerfile: string): string | undefined {
  const m = /^ARG BASE_IMAGE=(\S+)\s*$/m.exec(dockerfile);
  return m && isImageReference(m[1]!) ? m[1] : undefined;
}

/** A reference pinned by digest names one image forever: its id need not be part of the hash. */
export const isDigestPinned = (reference: string): boolean => /@sha256:[0-9a-f]{64}$/.test(reference);

export interface AgentImageInputs {
  readonly files: readonly ContextFile[];
  readonly buildArgs: Readonly<Record<string, string>>;
  /** The base image chosen, or undefined for the Dockerfile's default. */
  readonly baseImage?: string;
  /** The local id of a base image not pinned by digest ('absent' when it is not there). */
  readonly baseImageId?: string;
  /** Which image the inputs are for (the stack's images hash with their own); default the agent image's. */
  readonly scheme?: string;
}

const HASH_SCHEME = 'clawker agent image inputs v1';

/**
 * SHA-256 (hex) of the inputs: every hashed file (sorted by name: name, length, content), the base
 * image (reference and, when given, id) and the build arguments (sorted). Lengths frame every part,
 * so no two different sets of inputs write the same byte stream.
 */
export function agentImageInputsHash(inputs: AgentImageInputs): string {
  const hash = createHash('sha256');
  const part = (tag: string, value: string | Buffer): void => {
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    hash.update(`${tag} ${bytes.length}\n`);
    hash.update(bytes);
    hash.update('\n');
  };
  part('scheme', inputs.scheme ?? HASH_SCHEME);
  const files = inputs.files.filter((f) => f.hashed !== false).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (let i = 1; i < files.length; i++) {
    if (files[i]!.name === files[i - 1]!.name) throw new Error(`build context file ${files[i]!.name} given twice`);
  }
  for (const file of files) {
    part('file', file.name);
    part('mode', (file.mode ?? 0o644).toString(8));
    part('content', file.content);
  }
  part('base-image', inputs.baseImage ?? '(Dockerfile default)');
  if (inputs.baseImageId !== undefined) part('base-image-id', inputs.baseImageId);
  for (const key of Object.keys(inputs.buildArgs).sort()) part('build-arg', `${key}=${inputs.buildArgs[key]}`);
  return hash.digest('hex');
}

// ---- the build context as a tar archive (ustar) -----------------------------------------------

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 digits and a NUL, as tar writes numbers.
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, size: number, mode: number, type: '0' | '5'): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`build context path too long for a tar header: ${name}`);
  const block = Buffer.alloc(BLOCK, 0);
  block.write(name, 0, 100, 'utf8');
  block.write(octal(mode, 8), 100, 8, 'ascii');
  block.write(octal(0, 8), 108, 8, 'ascii'); // uid
  block.write(octal(0, 8), 116, 8, 'ascii'); // gid
  block.write(octal(size, 12), 124, 12, 'ascii');
  block.write(octal(0, 12), 136, 12, 'ascii'); // mtime: fixed, so the archive depends on contents only
  block.write('        ', 148, 8, 'ascii'); // checksum placeholder: spaces
  block.write(type, 156, 1, 'ascii');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  block.write('root', 265, 32, 'ascii');
  block.write('root', 297, 32, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return block;
}

function checkContextName(name: string): void {
  if (name === '' || name.startsWith('/') || name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new Error(`not a relative build context path: ${JSON.stringify(name)}`);
  }
}

/** A tar archive of the files (and the directories above them), in name order, owned by root. */
export function tarArchive(files: readonly ContextFile[]): Buffer {
  const blocks: Buffer[] = [];
  const directories = new Set<string>();
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const file of sorted) {
    checkContextName(file.name);
    const parts = file.name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = `${parts.slice(0, i).join('/')}/`;
      if (directories.has(dir)) continue;
      directories.add(dir);
      blocks.push(header(dir, 0, 0o755, '5'));
    }
    blocks.push(header(file.name, file.content.length, file.mode ?? 0o644, '0'));
    blocks.push(file.content);
    const padding = (BLOCK - (file.content.length % BLOCK)) % BLOCK;
    if (padding) blocks.push(Buffer.alloc(padding, 0));
  }
  blocks.push(Buffer.alloc(2 * BLOCK, 0));
  return Buffer.concat(blocks);
}

// ---- the engine's build progress (classic builder, JSON lines) ---------------------------------

/** One JSON object of POST /build's answer, as far as it is read here. */
export interface BuildEvent {
  readonly stream?: string;
  readonly error?: string;
  readonly errorDetail?: { readonly message?: string; readonly code?: number };
  readonly aux?: { readonly ID?: string };
  readonly status?: string;
}

export interface BuildStep {
  readonly number: number;
  readonly total: number;
  /** The instruction, as the engine prints it (may be long). */
  readonly instruction: string;
}

const STEP = /^Step (\d+)\/(\d+) : (.*)$/;

/** `Step N/M : INSTRUCTION` lines. */
export function parseStepLine(line: string): BuildStep | undefined {
  const m = STEP.exec(line);
  if (!m) return undefined;
  return { number: Number(m[1]), total: Number(m[2]), instruction: m[3]!.trim() };
}

/** The instruction shortened for a progress line: whitespace runs folded, at most `width` characters. */
export function shortInstruction(instruction: string, width = 100): string {
  const folded = instruction.replace(/\s+/g, ' ').trim();
  return folded.length <= width ? folded : `${folded.slice(0, width - 1)}…`;
}

/**
 * Follows the build's output: the current step, the last lines (for an error message), the image id
 * and the error, if any. `push` takes each event in order; it returns the progress lines to show
 * (step lines and errors), so the caller decides where they go.
 */
export class BuildTranscript {
  step: BuildStep | undefined;
  imageId: string | undefined;
  error: string | undefined;
  private readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly keepLines = 40) {}

  push(event: BuildEvent): string[] {
    const shown: string[] = [];
    if (typeof event.aux?.ID === 'string') this.imageId = event.aux.ID;
    const text = typeof event.stream === 'string' ? event.stream : typeof event.status === 'string' ? `${event.status}\n` : '';
    if (text) {
      const chunk = this.partial + text;
      const parts = chunk.split('\n');
      this.partial = parts.pop() ?? '';
      for (const raw of parts) {
        const line = cleanLine(raw);
        if (line === '') continue;
        this.remember(line);
        const step = parseStepLine(line);
        if (step) {
          this.step = step;
          shown.push(`Step ${step.number}/${step.total} : ${shortInstruction(step.instruction)}`);
        }
      }
    }
    const error = event.errorDetail?.message ?? event.error;
    if (typeof error === 'string' && error.trim() !== '') {
      this.error = error.trim();
      shown.push(`error: ${this.error}`);
    }
    return shown;
  }

  /** The last lines of output (without the error itself), oldest first. */
  tail(): string[] {
    const partial = cleanLine(this.partial);
    return partial ? [...this.lines, partial] : [...this.lines];
  }

  private remember(line: string): void {
    // The builder's own bookkeeping says nothing about a failure.
    if (/^ ---> |^Removing intermediate container |^Successfully (built|tagged) /.test(line)) return;
    this.lines.push(line.length > 500 ? `${line.slice(0, 499)}…` : line);
    if (this.lines.length > this.keepLines) this.lines.shift();
  }
}

/** A line of build output without terminal colour sequences, carriage returns and other control characters. */
function cleanLine(raw: string): string {
  return (
    raw
      // eslint-disable-next-line no-control-regex
      .replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '')
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '')
      .trimEnd()
  );
}

/** Known causes in a failed build's output, each with what to do. */
export function buildFailureHints(output: string): string[] {
  const hints: string[] = [];
  if (/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT|self[- ]signed certificate in certificate chain|unable to get local issuer certificate/i.test(output)) {
    hints.push(
      'A TLS connection during the build met a certificate from an unknown CA: the network seems to intercept TLS. ' +
        'Set CLAWKER_BUILD_CA_FILE (or NODE_EXTRA_CA_CERTS) to a PEM file with that CA (it is trusted only while Claude Code is downloaded, and not kept in the image).',
    );
  }
  if (/Temporary failure resolving|Could not resolve|ENOTFOUND|EAI_AGAIN|getaddrinfo/i.test(output)) {
    hints.push('The build could not resolve a host name: it needs deb.debian.org (Debian packages) and registry.npmjs.org (Claude Code).');
  }
  if (/pull access denied|manifest unknown|repository does not exist|failed to resolve reference|not found: manifest/i.test(output)) {
    hints.push('The base image could not be pulled: choose a local one with CLAWKER_BASE_IMAGE (any Debian bookworm based image).');
  }
  return hints;
}

/** The message of a failed build: tag, failing step, the engine's error, the last lines of output and hints. */
export function buildFailureMessage(tag: string, transcript: BuildTranscript, lastLines = 15): string {
  const step = transcript.step ? ` at step ${transcript.step.number}/${transcript.step.total} (${shortInstruction(transcript.step.instruction, 120)})` : '';
  const tail = transcript.tail();
  const shown = tail.slice(-lastLines);
  const parts = [`Building ${tag} failed${step}: ${transcript.error ?? 'the build ended without an image'}`];
  if (shown.length) parts.push(`Last output:\n${shown.map((l) => `  | ${l}`).join('\n')}`);
  parts.push(...buildFailureHints(`${tail.join('\n')}\n${transcript.error ?? ''}`));
  return parts.join('\n');
}
