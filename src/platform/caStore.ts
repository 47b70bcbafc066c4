/**
 * Keeps the firewall CA (and the leaf key every domain certificate certifies) in a directory:
 *
 *   ca.pem        the CA certificate: public, baked into agent images (0644)
 *   ca-key.pem    the CA private key (0600)
 *   leaf-key.pem  the key Envoy serves every domain certificate with (0600)
 *
 * The CA is created once and then only ever loaded: a new CA means rebuilding every agent image,
 * so that happens only through rotateCa(). Files are replaced atomically (temporary file in the same
 * directory, fsync, rename), and creation commits by hard-linking the CA key into place, which fails
 * if another process got there first, so two processes starting together still end up with one CA.
 * Error messages name files, never their contents.
 */
import { constants } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type CaProblem, type CertificateAuthority, createCertificateAuthority, readCertificateAuthority } from '../core/pki/authority';
import { createLeafKey } from '../core/pki/domainCertificate';
import { fingerprint, readCertificate } from '../core/pki/inspect';
import { type KeyPair, privateKeyPem, readP256PrivateKey } from '../core/pki/keys';
import { writeFileAtomic, writeFileIfAbsent } from './files';

export const CA_CERTIFICATE_FILE = 'ca.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const LEAF_KEY_FILE = 'leaf-key.pem';

const PRIVATE_FILE_MODE = 0o600;
const PUBLIC_FILE_MODE = 0o644;
const DIRECTORY_MODE = 0o700;

const ROTATE_HINT = '`clawker firewall rotate-ca` creates a new CA (every agent image must then be rebuilt)';

export interface CaFiles {
  readonly directory: string;
  readonly certificate: string;
  readonly key: string;
  readonly leafKey: string;
}

export const caFiles = (directory: string): CaFiles => ({
  directory,
  certificate: join(directory, CA_CERTIFICATE_FILE),
  key: join(directory, CA_KEY_FILE),
  leafKey: join(directory, LEAF_KEY_FILE),
});

export interface FirewallPki {
  readonly ca: CertificateAuthority;
  /** The key pair every domain certificate certifies (issueDomainCertificates). */
  readonly leafKey: KeyPair;
  readonly files: CaFiles;
}

export interface LoadedPki extends FirewallPki {
  /** True when this call created the CA: agent images built before trust a different one, if any exist. */
  readonly created: boolean;
}

export interface RotatedPki extends FirewallPki {
  /** SHA-256 fingerprint of the CA replaced, when there was a readable one. */
  readonly previousFingerprint?: string;
  /**
   * Always true: the CA is baked into agent images, so every image must be rebuilt (and running
   * agents restarted), and every domain certificate re-issued from the new CA and leaf key.
   */
  readonly rebuildAgentImages: true;
}

export interface CaStoreOptions {
  /** The clock certificates are dated by, and expiry is checked against. */
  readonly now?: Date;
}

/** Loads the CA kept in `directory`, creating it (and the directory, 0700) the first time. Never replaces an existing CA. */
export function loadOrCreateCa(directory: string, options: CaStoreOptions = {}): Promise<LoadedPki> {
  return loadPki(directory, options, true);
}

/**
 * Loads the CA kept in `directory` and never creates one: the control plane's copy, which only the
 * host's CA may fill (a CA made here would not be the one agents trust).
 */
export function loadCa(directory: string, options: CaStoreOptions = {}): Promise<LoadedPki> {
  return loadPki(directory, options, false);
}

async function loadPki(directory: string, options: CaStoreOptions, create: boolean): Promise<LoadedPki> {
  const files = caFiles(directory);
  const now = options.now ?? new Date();
  if (create) await mkdir(directory, { recursive: true, mode: DIRECTORY_MODE });
  let previous: StoredFiles | undefined;
  // Another process may be creating or rotating the CA right now: a half-written set is read again
  // until it stops changing, and only a set that stays wrong is reported.
  for (let attempt = 0; attempt < SETTLE_ATTEMPTS; attempt++) {
    const stored = await readStoredFiles(files);
    if (stored.certificate === undefined && stored.key === undefined) {
      if (!create) throw new Error(`${files.directory}: no CA here; the host's CA is copied in when the stack starts (clawker firewall up)`);
      // A leaf key without a CA certifies nothing; creating the CA replaces it.
      const created = await createExclusively(files, now);
      if (created) return { ...created, created: true };
      continue; // someone else's CA is being put in place: read it
    }
    const result = await interpret(files, stored, now);
    if ('pki' in result) return { ...result.pki, created: false };
    if (previous !== undefined && sameFiles(previous, stored)) throw new Error(result.error);
    previous = stored;
    await sleep(SETTLE_DELAY_MS);
  }
  throw new Error(`${files.directory}: the CA files kept changing while being read; is another process rotating the CA in a loop?`);
}

/**
 * Replaces the CA and the leaf key with new ones, whatever state the old ones were in (this is the
 * way out of every error loadOrCreateCa reports).
 */
export async function rotateCa(directory: string, options: CaStoreOptions = {}): Promise<RotatedPki> {
  const files = caFiles(directory);
  await mkdir(directory, { recursive: true, mode: DIRECTORY_MODE });
  const previousFingerprint = await readFingerprint(files.certificate);
  const ca = createCertificateAuthority(options.now ?? new Date());
  const leafKey = createLeafKey();
  // Key files first, certificate last: a reader in between sees a mismatch and reads again.
  writeFileAtomic(files.leafKey, privateKeyPem(leafKey.privateKey), { mode: PRIVATE_FILE_MODE });
  writeFileAtomic(files.key, privateKeyPem(ca.privateKey), { mode: PRIVATE_FILE_MODE });
  writeFileAtomic(files.certificate, ca.certificatePem, { mode: PUBLIC_FILE_MODE });
  return { ca, leafKey, files, ...(previousFingerprint ? { previousFingerprint } : {}), rebuildAgentImages: true };
}

const SETTLE_ATTEMPTS = 20;
const SETTLE_DELAY_MS = 100;

interface StoredFiles {
  readonly certificate?: string;
  readonly key?: string;
  readonly leafKey?: string;
}

const sameFiles = (a: StoredFiles, b: StoredFiles): boolean => a.certificate === b.certificate && a.key === b.key && a.leafKey === b.leafKey;

async function readStoredFiles(files: CaFiles): Promise<StoredFiles> {
  const [certificate, key, leafKey] = await Promise.all([readIfExists(files.certificate), readPrivateIfExists(files.key), readPrivateIfExists(files.leafKey)]);
  return { ...(certificate !== undefined ? { certificate } : {}), ...(key !== undefined ? { key } : {}), ...(leafKey !== undefined ? { leafKey } : {}) };
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/** Reads a private key file, refusing one that others could read or write (as ssh does). */
async function readPrivateIfExists(path: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY);
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${path} is not a regular file: it should hold a private key. Move it aside, then ${ROTATE_HINT}.`);
    // Windows has no permission bits to check; elsewhere, fstat on the handle we read avoids a race with chmod.
    const mode = info.mode & 0o777;
    if (process.platform !== 'win32' && (mode & ~PRIVATE_FILE_MODE) !== 0) {
      throw new Error(
        `${path} has permissions ${octal(mode)}, wider than ${octal(PRIVATE_FILE_MODE)}: this private key must be readable by its owner only. ` +
          `Run \`chmod 600 ${path}\`; if others may have copied it meanwhile, ${ROTATE_HINT}.`,
      );
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function readFingerprint(path: string): Promise<string | undefined> {
  const certificatePemText = await readIfExists(path);
  if (certificatePemText === undefined) return undefined;
  try {
    return fingerprint(readCertificate(certificatePemText));
  } catch {
    return undefined; // unreadable: rotation is how that is repaired
  }
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

const incomplete = (present: string, missing: string): string =>
  `${missing} is missing while ${present} exists, so the firewall CA is incomplete: restore the missing file from a backup, or ${ROTATE_HINT}.`;

/** Turns the stored files into the PKI, or into an error message naming the file and the remedy. */
async function interpret(files: CaFiles, stored: StoredFiles, now: Date): Promise<{ readonly pki: FirewallPki } | { readonly error: string }> {
  if (stored.certificate === undefined) return { error: incomplete(files.key, files.certificate) };
  if (stored.key === undefined) return { error: incomplete(files.certificate, files.key) };
  const read = readCertificateAuthority(stored.certificate, stored.key, now);
  if ('problem' in read) return { error: describeProblem(files, read.problem) };
  if (stored.leafKey === undefined) {
    // The leaf key is not trusted by anything on its own: replacing a missing one needs no image rebuild.
    const leafKey = createLeafKey();
    if (writeFileIfAbsent(files.leafKey, privateKeyPem(leafKey.privateKey), { mode: PRIVATE_FILE_MODE })) return { pki: { ca: read.ca, leafKey, files } };
    const again = await readPrivateIfExists(files.leafKey);
    if (again === undefined) return { error: `${files.leafKey} was replaced and removed again while being created; try again.` };
    return interpret(files, { ...stored, leafKey: again }, now);
  }
  const leafKey = readP256PrivateKey(stored.leafKey);
  if ('problem' in leafKey) {
    return {
      error:
        leafKey.problem === 'unreadable'
          ? `${files.leafKey} is not a readable PEM private key (truncated or corrupted?): delete it and a new one is made on the next start, or ${ROTATE_HINT}.`
          : `${files.leafKey} is not an ECDSA P-256 key: delete it and a new one is made on the next start, or ${ROTATE_HINT}.`,
    };
  }
  return { pki: { ca: read.ca, leafKey: leafKey.key, files } };
}

function describeProblem(files: CaFiles, problem: CaProblem): string {
  switch (problem.kind) {
    case 'certificate-unreadable':
      return `${files.certificate} is not a readable PEM certificate (truncated or corrupted?): restore it from a backup, or ${ROTATE_HINT}.`;
    case 'not-a-ca':
      return `${files.certificate} is not a CA certificate (its basicConstraints do not say CA:TRUE), so it cannot sign domain certificates: ${ROTATE_HINT}.`;
    case 'key-unreadable':
      return `${files.key} is not a readable PEM private key (truncated, corrupted or encrypted?): restore it from a backup, or ${ROTATE_HINT}.`;
    case 'key-not-p256':
      return `${files.key} is not an ECDSA P-256 key, which the firewall CA must be: ${ROTATE_HINT}.`;
    case 'key-mismatch':
      return `${files.certificate} and ${files.key} do not belong together (the certificate is for a different key): restore the matching pair, or ${ROTATE_HINT}.`;
    case 'expired':
      return `The firewall CA in ${files.certificate} expired on ${problem.notAfter.toISOString()}: ${ROTATE_HINT}.`;
  }
}

/** Creates a new CA unless one appears meanwhile; returns undefined if another process's CA won. */
async function createExclusively(files: CaFiles, now: Date): Promise<FirewallPki | undefined> {
  const ca = createCertificateAuthority(now);
  const leafKey = createLeafKey();
  // The CA key is the commit point: whoever links it first owns the CA; the others read theirs.
  if (!writeFileIfAbsent(files.key, privateKeyPem(ca.privateKey), { mode: PRIVATE_FILE_MODE })) return undefined;
  writeFileAtomic(files.leafKey, privateKeyPem(leafKey.privateKey), { mode: PRIVATE_FILE_MODE });
  writeFileAtomic(files.certificate, ca.certificatePem, { mode: PUBLIC_FILE_MODE });
  return { ca, leafKey, files };
}


const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
