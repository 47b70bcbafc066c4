/** The CA kept on disk: created once with private permissions, loaded as is, refused when unsafe or broken, rotated on request. */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createCertificateAuthority } from '../../src/core/pki/authority';
import { issueDomainCertificate } from '../../src/core/pki/domainCertificate';
import { isIssuedBy, readCertificate } from '../../src/core/pki/inspect';
import { privateKeyPem } from '../../src/core/pki/keys';
import { CA_CERTIFICATE_FILE, CA_KEY_FILE, caFiles, LEAF_KEY_FILE, loadOrCreateCa, rotateCa } from '../../src/platform/caStore';

const made: string[] = [];
/** A directory that does not exist yet, inside a fresh temporary one. */
const storeDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-pki-store-'));
  made.push(dir);
  return join(dir, 'firewall', 'ca');
};
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

const mode = (path: string) => statSync(path).mode & 0o777;
const checksModes = process.platform !== 'win32';

/** Asserts that `promise` rejects with a message matching every pattern and revealing no key material. */
async function rejectsWith(promise: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  let message = '';
  await assert.rejects(promise, (e: Error) => {
    message = e.message;
    return true;
  });
  for (const pattern of patterns) assert.match(message, pattern);
  assert.doesNotMatch(message, /BEGIN|PRIVATE KEY|[A-Za-z0-9+/]{40}/, 'no PEM text in an error message');
  return message;
}

test('creates the CA once: key files 0600, directory 0700, certificate 0644', async () => {
  const dir = storeDir();
  const first = await loadOrCreateCa(dir);
  assert.equal(first.created, true);
  assert.ok(first.ca.certificate.ca);
  const files = caFiles(dir);
  assert.deepEqual(readdirSync(dir).sort(), [CA_CERTIFICATE_FILE, CA_KEY_FILE, LEAF_KEY_FILE].sort(), 'no temporary files left behind');
  if (checksModes) {
    assert.equal(mode(files.key), 0o600);
    assert.equal(mode(files.leafKey), 0o600);
    assert.equal(mode(files.certificate), 0o644);
    assert.equal(mode(dir), 0o700);
  }
  assert.equal(readFileSync(files.certificate, 'utf8'), first.ca.certificatePem);
  assert.ok(first.ca.certificate.checkPrivateKey(first.ca.privateKey));
});

test('loading again returns the same CA and leaf key, and never rewrites the files', async () => {
  const dir = storeDir();
  const first = await loadOrCreateCa(dir);
  const files = caFiles(dir);
  const before = [files.certificate, files.key, files.leafKey].map((f) => [readFileSync(f, 'utf8'), statSync(f).mtimeMs, statSync(f).ino]);
  const second = await loadOrCreateCa(dir);
  assert.equal(second.created, false);
  assert.equal(second.ca.certificate.fingerprint256, first.ca.certificate.fingerprint256);
  assert.equal(privateKeyPem(second.leafKey.privateKey), privateKeyPem(first.leafKey.privateKey));
  assert.deepEqual([files.certificate, files.key, files.leafKey].map((f) => [readFileSync(f, 'utf8'), statSync(f).mtimeMs, statSync(f).ino]), before);
  // The reloaded CA signs certificates the first one's certificate verifies.
  const leaf = readCertificate(issueDomainCertificate(second.ca, second.leafKey, 'api.example.com'));
  assert.ok(isIssuedBy(leaf, first.ca.certificate));
});

test('processes starting together end up with one CA', async () => {
  const dir = storeDir();
  const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateCa(dir)));
  assert.equal(new Set(results.map((r) => r.ca.certificate.fingerprint256)).size, 1);
  assert.equal(results.filter((r) => r.created).length, 1);
  assert.equal(new Set(results.map((r) => privateKeyPem(r.leafKey.privateKey))).size, 1);
  assert.equal(readdirSync(dir).length, 3, 'no temporary files left behind');
});

test('rotating makes a new CA and leaf key; old certificates no longer verify; images must be rebuilt', async () => {
  const dir = storeDir();
  const old = await loadOrCreateCa(dir);
  const oldLeaf = readCertificate(issueDomainCertificate(old.ca, old.leafKey, '.example.com'));
  const rotated = await rotateCa(dir);
  assert.equal(rotated.rebuildAgentImages, true);
  assert.equal(rotated.previousFingerprint, old.ca.certificate.fingerprint256);
  assert.notEqual(rotated.ca.certificate.fingerprint256, old.ca.certificate.fingerprint256);
  assert.notEqual(privateKeyPem(rotated.leafKey.privateKey), privateKeyPem(old.leafKey.privateKey));
  assert.ok(!oldLeaf.verify(rotated.ca.certificate.publicKey));
  assert.ok(!isIssuedBy(oldLeaf, rotated.ca.certificate));
  assert.ok(isIssuedBy(readCertificate(issueDomainCertificate(rotated.ca, rotated.leafKey, '.example.com')), rotated.ca.certificate));

  const loaded = await loadOrCreateCa(dir);
  assert.equal(loaded.created, false);
  assert.equal(loaded.ca.certificate.fingerprint256, rotated.ca.certificate.fingerprint256);
  if (checksModes) {
    const files = caFiles(dir);
    assert.equal(mode(files.key), 0o600);
    assert.equal(mode(files.leafKey), 0o600);
  }
  assert.equal(readdirSync(dir).length, 3, 'no temporary files left behind');
});

test('rotating where there is no CA yet creates one', async () => {
  const rotated = await rotateCa(storeDir());
  assert.equal(rotated.previousFingerprint, undefined);
  assert.ok(rotated.ca.certificate.ca);
});

test('a CA key readable by others is refused, naming the file and what to do', { skip: !checksModes && 'no permission bits on Windows' }, async () => {
  const dir = storeDir();
  await loadOrCreateCa(dir);
  const files = caFiles(dir);
  chmodSync(files.key, 0o644);
  await rejectsWith(loadOrCreateCa(dir), new RegExp(files.key.replace(/[/\\.]/g, '\\$&')), /0644/, /chmod 600/, /rotate-ca/);
  chmodSync(files.key, 0o640);
  await rejectsWith(loadOrCreateCa(dir), /0640/);
  chmodSync(files.key, 0o700);
  await rejectsWith(loadOrCreateCa(dir), /0700/, /wider than 0600/);
  chmodSync(files.key, 0o400);
  assert.equal((await loadOrCreateCa(dir)).created, false, 'narrower than 0600 is fine');
  chmodSync(files.leafKey, 0o644);
  await rejectsWith(loadOrCreateCa(dir), new RegExp(LEAF_KEY_FILE), /0644/);
});

test('a truncated CA key gives a clear error, and rotating repairs the store', async () => {
  const dir = storeDir();
  const old = await loadOrCreateCa(dir);
  const files = caFiles(dir);
  const key = readFileSync(files.key, 'utf8');
  writeFileSync(files.key, key.slice(0, Math.floor(key.length / 2)), { mode: 0o600 });
  await rejectsWith(loadOrCreateCa(dir), new RegExp(CA_KEY_FILE), /not a readable PEM private key/, /truncated/, /rotate-ca/);
  writeFileSync(files.key, '', { mode: 0o600 });
  await rejectsWith(loadOrCreateCa(dir), new RegExp(CA_KEY_FILE), /truncated/);

  const rotated = await rotateCa(dir);
  assert.equal(rotated.previousFingerprint, old.ca.certificate.fingerprint256);
  assert.equal((await loadOrCreateCa(dir)).ca.certificate.fingerprint256, rotated.ca.certificate.fingerprint256);
});

test('a certificate and key that do not belong together are refused', async () => {
  const dir = storeDir();
  await loadOrCreateCa(dir);
  const files = caFiles(dir);
  writeFileSync(files.key, privateKeyPem(createCertificateAuthority().privateKey), { mode: 0o600 });
  await rejectsWith(loadOrCreateCa(dir), new RegExp(CA_CERTIFICATE_FILE), new RegExp(CA_KEY_FILE), /do not belong together/, /rotate-ca/);
});

test('a truncated CA certificate, or a certificate that is not a CA, is refused', async () => {
  const dir = storeDir();
  const pki = await loadOrCreateCa(dir);
  const files = caFiles(dir);
  writeFileSync(files.certificate, pki.ca.certificatePem.slice(0, 300));
  await rejectsWith(loadOrCreateCa(dir), new RegExp(CA_CERTIFICATE_FILE), /not a readable PEM certificate/);
  writeFileSync(files.certificate, issueDomainCertificate(pki.ca, pki.leafKey, 'api.example.com'));
  await rejectsWith(loadOrCreateCa(dir), /not a CA certificate/);
});

test('a CA with one of its two files missing is reported, never silently replaced', async () => {
  const dir = storeDir();
  const pki = await loadOrCreateCa(dir);
  const files = caFiles(dir);
  unlinkSync(files.certificate);
  await rejectsWith(loadOrCreateCa(dir), new RegExp(`${CA_CERTIFICATE_FILE} is missing`), /rotate-ca/);
  assert.deepEqual(readdirSync(dir).sort(), [CA_KEY_FILE, LEAF_KEY_FILE].sort());
  writeFileSync(files.certificate, pki.ca.certificatePem);
  unlinkSync(files.key);
  await rejectsWith(loadOrCreateCa(dir), new RegExp(`${CA_KEY_FILE} is missing`));
});

test('a missing leaf key is replaced without touching the CA', async () => {
  const dir = storeDir();
  const old = await loadOrCreateCa(dir);
  const files = caFiles(dir);
  unlinkSync(files.leafKey);
  const loaded = await loadOrCreateCa(dir);
  assert.equal(loaded.created, false);
  assert.equal(loaded.ca.certificate.fingerprint256, old.ca.certificate.fingerprint256);
  assert.notEqual(privateKeyPem(loaded.leafKey.privateKey), privateKeyPem(old.leafKey.privateKey));
  if (checksModes) assert.equal(mode(files.leafKey), 0o600);
  assert.equal(privateKeyPem((await loadOrCreateCa(dir)).leafKey.privateKey), privateKeyPem(loaded.leafKey.privateKey));
});

test('an expired CA is refused with the date and the way out', async () => {
  const dir = storeDir();
  const pki = await loadOrCreateCa(dir);
  const later = new Date(pki.ca.notAfter.getTime() + 24 * 60 * 60 * 1000);
  await rejectsWith(loadOrCreateCa(dir, { now: later }), /expired on/, new RegExp(pki.ca.notAfter.toISOString().slice(0, 10)), /rotate-ca/);
});
