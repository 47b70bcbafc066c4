/**
 * The firewall PKI: the CA and the per-domain certificates, read back by OpenSSL through Node's
 * X509Certificate and by the openssl binary (required: a missing binary fails the suite), and used
 * in a real TLS handshake.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  BACKDATE_MS,
  CA_COMMON_NAME,
  type CertificateAuthority,
  createCertificateAuthority,
  readCertificateAuthority,
} from '../../src/core/pki/authority';
import {
  certificateFileName,
  certificateNames,
  createLeafKey,
  issueDomainCertificate,
  issueDomainCertificates,
  LEAF_VALIDITY_DAYS,
} from '../../src/core/pki/domainCertificate';
import { coversHost, isIssuedBy, readCertificate, subjectAltNames } from '../../src/core/pki/inspect';
import { privateKeyPem } from '../../src/core/pki/keys';

const DAY_MS = 24 * 60 * 60 * 1000;
const ca = createCertificateAuthority();
const leafKey = createLeafKey();

const made: string[] = [];
const workdir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'clawker-pki-'));
  made.push(dir);
  return dir;
};
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Runs the openssl binary; its absence is a failure, not a skip: it is the independent check. */
function openssl(args: string[]): { status: number; output: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.error) assert.fail(`the openssl binary is needed by this test and could not be run: ${r.error.message}`);
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

function writePems(pems: Record<string, string>): Record<string, string> {
  const dir = workdir();
  return Object.fromEntries(
    Object.entries(pems).map(([name, pem]) => {
      const path = join(dir, `${name}.pem`);
      writeFileSync(path, pem);
      return [name, path];
    }),
  );
}

const opensslText = (pem: string): string => {
  const { cert } = writePems({ cert: pem });
  const r = openssl(['x509', '-in', cert!, '-noout', '-text']);
  assert.equal(r.status, 0, r.output);
  return r.output;
};

/** `openssl verify` of `leafPem` against `caPem` as the only trust anchor, strict X.509 checks on. */
function opensslVerify(caPem: string, leafPem: string, hostname?: string): { ok: boolean; output: string } {
  const files = writePems({ ca: caPem, leaf: leafPem });
  const r = openssl([
    'verify',
    '-x509_strict',
    '-purpose',
    'sslserver',
    ...(hostname ? ['-verify_hostname', hostname] : []),
    '-CAfile',
    files.ca!,
    files.leaf!,
  ]);
  return { ok: r.status === 0 && /: OK\s*$/.test(r.output), output: r.output };
}

/** The lines of `openssl x509 -text` output for one extension: its header (with "critical") and value. */
function extension(text: string, title: string): string {
  const match = new RegExp(`X509v3 ${title}:( critical)?\\s*\\n\\s*(.*)`).exec(text);
  assert.ok(match, `no '${title}' extension in:\n${text}`);
  return `${match[1] ? 'critical: ' : ''}${match[2]!.trim()}`;
}

test('the CA is an ECDSA P-256 CA named Clawker Firewall CA, with critical basicConstraints (pathlen 0) and keyUsage', () => {
  const cert = ca.certificate;
  assert.equal(cert.ca, true);
  assert.match(cert.subject, new RegExp(`^CN=${CA_COMMON_NAME}$`, 'm'));
  assert.match(cert.subject, /^O=Clawker$/m);
  assert.equal(cert.issuer, cert.subject);
  assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(cert.verify(cert.publicKey), 'self-signed: verifies with its own key');
  assert.ok(cert.checkPrivateKey(ca.privateKey));

  const text = opensslText(ca.certificatePem);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Version: 3 \(0x2\)/);
  assert.equal(extension(text, 'Basic Constraints'), 'critical: CA:TRUE, pathlen:0');
  assert.equal(extension(text, 'Key Usage'), 'critical: Certificate Sign, CRL Sign');
  assert.equal(extension(text, 'Subject Key Identifier'), ca.keyIdentifier!.toString('hex').toUpperCase().match(/../g)!.join(':'));
  // RFC 5280 method 1, computed independently: SHA-1 of the uncompressed point 04 || x || y.
  const { x, y } = cert.publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(x!, 'base64url'), Buffer.from(y!, 'base64url')]);
  assert.deepEqual(ca.keyIdentifier, createHash('sha1').update(point).digest());
});

test('the CA is valid for 10 years from an hour ago, with a random positive 128-bit serial', () => {
  const now = new Date('2030-06-15T12:34:56.789Z');
  const dated = createCertificateAuthority(now);
  assert.equal(new Date(dated.certificate.validFrom).getTime(), Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  assert.equal(new Date(dated.certificate.validTo).toISOString(), '2040-06-15T12:34:56.000Z');
  assert.deepEqual(dated.notAfter, new Date(dated.certificate.validTo));

  const serials = new Set(Array.from({ length: 20 }, () => createCertificateAuthority().certificate.serialNumber));
  assert.equal(serials.size, 20);
  for (const serial of serials) {
    assert.match(serial, /^[0-9A-F]{32}$/, '16 octets');
    assert.ok(parseInt(serial[0]!, 16) < 8, 'top bit clear: positive');
  }
});

test('a CA created after 2049 encodes its end date as GeneralizedTime, and OpenSSL reads it', () => {
  const late = createCertificateAuthority(new Date('2045-01-01T00:00:00Z'));
  assert.equal(new Date(late.certificate.validTo).toISOString(), '2055-01-01T00:00:00.000Z');
  const leaf = readCertificate(issueDomainCertificate(late, leafKey, 'api.example.com', new Date('2049-06-01T00:00:00Z')));
  assert.equal(new Date(leaf.validTo).toISOString(), new Date(Date.parse('2049-06-01T00:00:00Z') + LEAF_VALIDITY_DAYS * DAY_MS).toISOString());
  assert.ok(isIssuedBy(leaf, late.certificate));
});

test('a domain certificate verifies against the CA (Node and openssl verify, strict, as a TLS server certificate)', () => {
  const pem = issueDomainCertificate(ca, leafKey, 'api.example.com');
  const leaf = readCertificate(pem);
  assert.ok(leaf.verify(ca.certificate.publicKey));
  assert.ok(leaf.checkIssued(ca.certificate));
  assert.ok(isIssuedBy(leaf, ca.certificate));
  assert.ok(leaf.checkPrivateKey(leafKey.privateKey), 'certifies the shared leaf key');
  const verified = opensslVerify(ca.certificatePem, pem, 'api.example.com');
  assert.ok(verified.ok, verified.output);
});

test('a domain certificate is an end-entity server certificate: CA:FALSE, digitalSignature (critical), serverAuth, AKI = CA SKI', () => {
  const pem = issueDomainCertificate(ca, leafKey, 'api.example.com');
  const leaf = readCertificate(pem);
  assert.equal(leaf.ca, false);
  assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'Node reports extendedKeyUsage here');
  assert.match(leaf.subject, /^CN=api\.example\.com$/);
  assert.equal(leaf.issuer, ca.certificate.subject);

  const text = opensslText(pem);
  assert.equal(extension(text, 'Basic Constraints'), 'critical: CA:FALSE');
  assert.equal(extension(text, 'Key Usage'), 'critical: Digital Signature');
  assert.equal(extension(text, 'Extended Key Usage'), 'TLS Web Server Authentication');
  assert.equal(extension(text, 'Subject Alternative Name'), 'DNS:api.example.com');
  const caKeyId = ca.keyIdentifier!.toString('hex').toUpperCase().match(/../g)!.join(':');
  assert.match(extension(text, 'Authority Key Identifier'), new RegExp(caKeyId));
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
});

test('a wildcard destination covers the apex and its subdomains, and nothing else', () => {
  const pem = issueDomainCertificate(ca, leafKey, '.example.com');
  const leaf = readCertificate(pem);
  assert.deepEqual(subjectAltNames(leaf), ['DNS:example.com', 'DNS:*.example.com']);
  for (const host of ['example.com', 'api.example.com', 'API.Example.COM']) assert.ok(coversHost(leaf, host), host);
  for (const host of ['example.com.evil.com', 'evil.com', 'notexample.com', 'example.org', 'api.example.com.evil.com']) {
    assert.ok(!coversHost(leaf, host), host);
  }
  // One wildcard label only, as every TLS client reads `*.`: deeper names need their own rule.
  assert.ok(!coversHost(leaf, 'a.b.example.com'));

  // openssl agrees, independently of Node's checkHost.
  assert.ok(opensslVerify(ca.certificatePem, pem, 'example.com').ok);
  assert.ok(opensslVerify(ca.certificatePem, pem, 'deep.example.com').ok);
  assert.ok(!opensslVerify(ca.certificatePem, pem, 'example.com.evil.com').ok);
  assert.ok(!opensslVerify(ca.certificatePem, pem, 'evil.com').ok);
});

test('an exact domain covers only itself', () => {
  const leaf = readCertificate(issueDomainCertificate(ca, leafKey, 'api.example.com'));
  assert.deepEqual(subjectAltNames(leaf), ['DNS:api.example.com']);
  assert.ok(coversHost(leaf, 'api.example.com'));
  for (const host of ['example.com', 'x.api.example.com', 'api.example.com.evil.com', 'evil.com']) assert.ok(!coversHost(leaf, host), host);
});

test('an IPv4 destination gets an iPAddress SAN', () => {
  const pem = issueDomainCertificate(ca, leafKey, '10.1.2.3');
  const leaf = readCertificate(pem);
  assert.deepEqual(subjectAltNames(leaf), ['IP Address:10.1.2.3']);
  assert.ok(coversHost(leaf, '10.1.2.3'));
  assert.ok(!coversHost(leaf, '10.1.2.4'));
  const files = writePems({ ca: ca.certificatePem, leaf: pem });
  const r = openssl(['verify', '-x509_strict', '-CAfile', files.ca!, '-verify_ip', '10.1.2.3', files.leaf!]);
  assert.equal(r.status, 0, r.output);
  assert.notEqual(openssl(['verify', '-CAfile', files.ca!, '-verify_ip', '10.9.9.9', files.leaf!]).status, 0);
});

test('a name longer than a common name may be goes in a critical subjectAltName, with an empty subject', () => {
  const long = `${'a'.repeat(60)}.${'b'.repeat(30)}.example.com`;
  const pem = issueDomainCertificate(ca, leafKey, long);
  const leaf = readCertificate(pem);
  assert.ok(!leaf.subject, 'no subject (Node reports an empty one as undefined)');
  assert.ok(coversHost(leaf, long));
  assert.match(extension(opensslText(pem), 'Subject Alternative Name'), /^critical: DNS:a{60}\./);
  const verified = opensslVerify(ca.certificatePem, pem, long);
  assert.ok(verified.ok, verified.output);
});

test('a domain certificate lasts a year, at most 398 days, and never beyond the CA', () => {
  const now = new Date();
  const leaf = readCertificate(issueDomainCertificate(ca, leafKey, 'api.example.com', now));
  const from = new Date(leaf.validFrom).getTime();
  const to = new Date(leaf.validTo).getTime();
  assert.ok(from <= now.getTime() - BACKDATE_MS + 1000 && from > now.getTime() - BACKDATE_MS - 1000, 'starts an hour early');
  assert.ok(Math.abs(to - (now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS)) < 1000);
  assert.ok(to - from <= 398 * DAY_MS);

  const old = createCertificateAuthority(new Date(Date.now() - (10 * 365 - 30) * DAY_MS)); // expires in about a month
  const clamped = readCertificate(issueDomainCertificate(old, leafKey, 'api.example.com', now));
  assert.equal(new Date(clamped.validTo).getTime(), old.notAfter.getTime());
  assert.ok(isIssuedBy(clamped, old.certificate));
});

test('a certificate from another CA does not verify, and is not taken for one of ours', () => {
  const other = createCertificateAuthority();
  const foreign = readCertificate(issueDomainCertificate(other, leafKey, 'api.example.com'));
  assert.ok(!foreign.verify(ca.certificate.publicKey));
  assert.ok(!isIssuedBy(foreign, ca.certificate));
  assert.ok(!opensslVerify(ca.certificatePem, foreign.toString()).ok);
});

test('issuing a set: one certificate per destination, keyed in rule form, all for the one leaf key', () => {
  const destinations = ['api.example.com', '.example.com', 'API.example.com', 'example.com', '10.0.0.1', 'github.com', '.githubusercontent.com'];
  const set = issueDomainCertificates(ca, leafKey, destinations);
  assert.deepEqual([...set.keys()], ['api.example.com', '.example.com', 'example.com', '10.0.0.1', 'github.com', '.githubusercontent.com']);
  const serials = new Set<string>();
  for (const [destination, pem] of set) {
    const leaf = readCertificate(pem);
    assert.ok(isIssuedBy(leaf, ca.certificate), destination);
    assert.ok(leaf.checkPrivateKey(leafKey.privateKey), destination);
    const host = destination.startsWith('.') ? `www${destination}` : destination;
    assert.ok(coversHost(leaf, host), `${destination} covers ${host}`);
    serials.add(leaf.serialNumber);
  }
  assert.equal(serials.size, set.size, 'every certificate has its own serial');
  assert.equal(issueDomainCertificates(ca, leafKey, []).size, 0);
});

test('issuing for something that is not a domain or IPv4 address fails, naming it', () => {
  for (const bad of ['https://api.example.com/v1', '*.example.com', '', '2001:db8::1', 'a..b', '.com']) {
    assert.throws(() => issueDomainCertificates(ca, leafKey, ['ok.example.com', bad]), (e: Error) => e.message.includes(`'${bad}'`), bad);
  }
});

test('certificate names and file names', () => {
  assert.deepEqual(certificateNames('.Example.COM'), { destination: '.example.com', commonName: 'example.com', dnsNames: ['example.com', '*.example.com'], ipAddresses: [] });
  assert.deepEqual(certificateNames('10.0.0.1'), { destination: '10.0.0.1', commonName: '10.0.0.1', dnsNames: [], ipAddresses: ['10.0.0.1'] });
  assert.equal(certificateFileName('.example.com'), 'wildcard+example.com.pem');
  assert.equal(certificateFileName('example.com'), 'example.com.pem');
  assert.equal(certificateFileName('10.0.0.1'), '10.0.0.1.pem');

  const tricky = ['example.com', '.example.com', 'wildcard.example.com', '.wildcard.example.com', 'wildcard-example.com', 'Example.com.', '10.0.0.1', '_dmarc.example.com'];
  const long = (suffix: string) => `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(50)}${suffix}.com`;
  const names = [...tricky, long('x'), long('y'), `.${long('x')}`].map(certificateFileName);
  assert.equal(new Set(names).size, names.length - 1, "only 'Example.com.' and 'example.com' share a file: they are one destination");
  for (const name of names) {
    assert.match(name, /^[a-z0-9._+~-]+\.pem$/, name);
    assert.ok(Buffer.byteLength(name) <= 255, `${name.length} bytes`);
  }
});

test('a stored CA reads back, and a wrong pair, a non-CA, an expired CA or a broken key is reported', () => {
  const keyPem = privateKeyPem(ca.privateKey);
  const read = readCertificateAuthority(ca.certificatePem, keyPem);
  assert.ok('ca' in read);
  assert.equal(read.ca.certificate.fingerprint256, ca.certificate.fingerprint256);
  assert.deepEqual(read.ca.subject, ca.subject);
  assert.deepEqual(read.ca.keyIdentifier, ca.keyIdentifier);
  const leaf = readCertificate(issueDomainCertificate(read.ca, leafKey, 'api.example.com'));
  assert.ok(isIssuedBy(leaf, ca.certificate), 'a reloaded CA issues certificates the original verifies');

  const problem = (certificatePem: string, privateKey: string, now?: Date) => {
    const r = readCertificateAuthority(certificatePem, privateKey, now);
    return 'problem' in r ? r.problem.kind : 'ok';
  };
  const other = createCertificateAuthority();
  assert.equal(problem(ca.certificatePem, privateKeyPem(other.privateKey)), 'key-mismatch');
  assert.equal(problem(leaf.toString(), privateKeyPem(leafKey.privateKey)), 'not-a-ca');
  assert.equal(problem(ca.certificatePem, keyPem, new Date(ca.notAfter.getTime() + 1000)), 'expired');
  assert.equal(problem(ca.certificatePem, keyPem.slice(0, keyPem.length / 2)), 'key-unreadable');
  assert.equal(problem(ca.certificatePem.slice(0, 200), keyPem), 'certificate-unreadable');
});

test('a CA made elsewhere (openssl req) is read as is: its subject bytes and key identifier carry into what it signs', () => {
  const dir = workdir();
  const [cert, key] = [join(dir, 'ca.pem'), join(dir, 'ca-key.pem')];
  const generated = openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '30',
    '-subj', '/C=DE/O=Elsewhere/CN=Other Firewall CA', '-keyout', key, '-out', cert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign',
  ]);
  assert.equal(generated.status, 0, generated.output);
  const read = readCertificateAuthority(readFileSync(cert, 'utf8'), readFileSync(key, 'utf8'));
  assert.ok('ca' in read, JSON.stringify(read));
  const pem = issueDomainCertificate(read.ca, leafKey, 'api.example.com');
  assert.ok(isIssuedBy(readCertificate(pem), read.ca.certificate));
  const verified = opensslVerify(read.ca.certificatePem, pem, 'api.example.com');
  assert.ok(verified.ok, verified.output);
  assert.equal(readCertificate(pem).issuer, read.ca.certificate.subject);
});

test('a TLS client trusting only the CA connects to a server using the certificate, and refuses a sibling name', async () => {
  const set = issueDomainCertificates(ca, leafKey, ['.example.com']);
  const server = createServer({ cert: set.get('.example.com'), key: privateKeyPem(leafKey.privateKey), minVersion: 'TLSv1.3' }, (socket) => socket.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const hello = (servername: string, trusted: CertificateAuthority = ca) =>
    new Promise<string>((resolve, reject) => {
      const socket: TLSSocket = connect({ host: '127.0.0.1', port, servername, ca: trusted.certificatePem }, () => {
        let data = '';
        socket.on('data', (chunk) => (data += chunk));
        socket.on('end', () => resolve(data));
      });
      socket.on('error', reject);
    });
  try {
    assert.equal(await hello('api.example.com'), 'hello');
    assert.equal(await hello('example.com'), 'hello');
    await assert.rejects(hello('example.com.evil.com'), /ERR_TLS_CERT_ALTNAME_INVALID|does not match/);
    await assert.rejects(hello('api.example.com', createCertificateAuthority()), /unable to get local issuer|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|self.signed|verify/i);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('the CA certificate PEM is one PEM block that Node and openssl read', () => {
  assert.match(ca.certificatePem, /^-----BEGIN CERTIFICATE-----\r?\n[\s\S]+-----END CERTIFICATE-----\r?\n$/);
  assert.equal(new X509Certificate(ca.certificatePem).fingerprint256, ca.certificate.fingerprint256);
});
