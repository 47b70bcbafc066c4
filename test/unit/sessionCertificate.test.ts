/**
 * Session certificates (agentd ⇄ control plane mutual TLS): fields read back by OpenSSL through
 * X509Certificate, and a real in-process TLS handshake that succeeds with the right chain and fails
 * with a certificate from another CA.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { CONTROLPLANE_SESSION_CN } from '../../src/core/agents/agentContract';
import { BACKDATE_MS, createCertificateAuthority } from '../../src/core/pki/authority';
import { isIssuedBy, subjectAltNames } from '../../src/core/pki/inspect';
import { readP256PrivateKey } from '../../src/core/pki/keys';
import {
  issueControlPlaneSessionCertificate,
  issueSessionCertificate,
  SESSION_VALIDITY_DAYS,
  type SessionCertificate,
} from '../../src/core/pki/sessionCertificate';

const DAY_MS = 24 * 60 * 60 * 1000;
const ca = createCertificateAuthority();
const otherCa = createCertificateAuthority();

test('a session certificate names its CN and SANs, has one purpose, and is signed by the CA', () => {
  const now = new Date('2030-01-02T03:04:05.678Z');
  const issued = issueSessionCertificate(ca, { commonName: 'agentd', usage: 'server', dnsNames: ['agent-1'], ipAddresses: ['10.213.0.5'] }, now);
  const cert = new X509Certificate(issued.certificatePem);
  assert.match(cert.subject, /^CN=agentd$/m);
  assert.deepEqual(subjectAltNames(cert), ['DNS:agent-1', 'IP Address:10.213.0.5']);
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1']); // serverAuth only
  assert.equal(cert.ca, false);
  assert.ok(isIssuedBy(cert, ca.certificate));
  assert.ok(!isIssuedBy(cert, otherCa.certificate));
  assert.equal(new Date(cert.validFrom).getTime(), Math.floor((now.getTime() - BACKDATE_MS) / 1000) * 1000);
  assert.equal(new Date(cert.validTo).getTime(), Math.floor((now.getTime() + SESSION_VALIDITY_DAYS * DAY_MS) / 1000) * 1000);
  const key = readP256PrivateKey(issued.privateKeyPem);
  assert.ok('key' in key);
  assert.ok(cert.checkPrivateKey(key.key.privateKey));
});

test('the control plane certificate carries the contract CN and clientAuth only', () => {
  const cert = new X509Certificate(issueControlPlaneSessionCertificate(ca).certificatePem);
  assert.match(cert.subject, new RegExp(`^CN=${CONTROLPLANE_SESSION_CN}$`, 'm'));
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  assert.equal(cert.subjectAltName, undefined);
});

test('every certificate gets its own key', () => {
  const a = issueSessionCertificate(ca, { commonName: 'x', usage: 'client' });
  const b = issueSessionCertificate(ca, { commonName: 'x', usage: 'client' });
  assert.notEqual(a.privateKeyPem, b.privateKeyPem);
  assert.notEqual(new X509Certificate(a.certificatePem).publicKey.export({ type: 'spki', format: 'pem' }), new X509Certificate(b.certificatePem).publicKey.export({ type: 'spki', format: 'pem' }));
});

test('validity is capped at the CA notAfter', () => {
  const now = new Date(ca.notAfter.getTime() - 10 * DAY_MS);
  const cert = new X509Certificate(issueSessionCertificate(ca, { commonName: 'late', usage: 'client' }, now).certificatePem);
  assert.equal(new Date(cert.validTo).getTime(), ca.notAfter.getTime());
});

test('bad names are refused', () => {
  assert.throws(() => issueSessionCertificate(ca, { commonName: '', usage: 'client' }), /common name/);
  assert.throws(() => issueSessionCertificate(ca, { commonName: 'x'.repeat(65), usage: 'client' }), /common name/);
  assert.throws(() => issueSessionCertificate(ca, { commonName: 'x', usage: 'server', ipAddresses: ['not-an-ip'] }), /not an IP address/);
  assert.throws(() => issueSessionCertificate(ca, { commonName: 'x', usage: 'server', dnsNames: ['bad name'] }), /not a DNS name/);
});

/** A mutual-TLS handshake between an in-process server and client; resolves with who saw what. */
async function handshake(server: SessionCertificate, client: SessionCertificate, trustedByServer = ca.certificatePem) {
  const tlsServer = createServer({
    key: server.privateKeyPem,
    cert: server.certificatePem,
    ca: trustedByServer,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  const serverSaw = new Promise<string | undefined>((resolve) => {
    tlsServer.on('secureConnection', (socket: TLSSocket) => {
      const cn = socket.getPeerCertificate().subject?.CN;
      resolve(Array.isArray(cn) ? cn.join(',') : cn);
      socket.end('hello\n');
    });
    tlsServer.on('tlsClientError', () => resolve(undefined));
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  const { port } = tlsServer.address() as AddressInfo;
  try {
    const clientResult = await new Promise<{ ok: boolean; data?: string; error?: string }>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', key: client.privateKeyPem, cert: client.certificatePem, ca: ca.certificatePem, minVersion: 'TLSv1.3' });
      let data = '';
      socket.on('data', (chunk) => (data += chunk));
      socket.on('end', () => resolve({ ok: data === 'hello\n', data }));
      socket.on('error', (error) => resolve({ ok: false, error: error.message }));
    });
    return { clientResult, serverSawCn: await serverSaw };
  } finally {
    tlsServer.close();
  }
}

test('a TLS handshake succeeds when both certificates chain to the clawker CA', async () => {
  const server = issueSessionCertificate(ca, { commonName: 'agentd', usage: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  const client = issueControlPlaneSessionCertificate(ca);
  const { clientResult, serverSawCn } = await handshake(server, client);
  assert.equal(clientResult.ok, true, clientResult.error);
  assert.equal(serverSawCn, CONTROLPLANE_SESSION_CN);
});

test('a client certificate from another CA is refused', async () => {
  const server = issueSessionCertificate(ca, { commonName: 'agentd', usage: 'server', dnsNames: ['localhost'] });
  const intruder = issueSessionCertificate(otherCa, { commonName: CONTROLPLANE_SESSION_CN, usage: 'client' });
  const { clientResult, serverSawCn } = await handshake(server, intruder);
  assert.equal(clientResult.ok, false);
  assert.equal(serverSawCn, undefined);
});

test('a server certificate from another CA is refused by the client', async () => {
  const server = issueSessionCertificate(otherCa, { commonName: 'agentd', usage: 'server', dnsNames: ['localhost'] });
  const { clientResult } = await handshake(server, issueControlPlaneSessionCertificate(ca));
  assert.equal(clientResult.ok, false);
});

test('a server certificate cannot be used as a client certificate (EKU)', async () => {
  const server = issueSessionCertificate(ca, { commonName: 'agentd', usage: 'server', dnsNames: ['localhost'] });
  const wrongPurpose = issueSessionCertificate(ca, { commonName: CONTROLPLANE_SESSION_CN, usage: 'server' });
  const { clientResult, serverSawCn } = await handshake(server, wrongPurpose);
  assert.equal(clientResult.ok, false);
  assert.equal(serverSawCn, undefined);
});
