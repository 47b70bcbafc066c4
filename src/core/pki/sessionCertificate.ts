/**
 * Certificates for the supervisor's mutual-TLS session: agentd's server certificate and the control
 * plane's client certificate (CN `CONTROLPLANE_SESSION_CN` from agents/agentContract.ts, pinned by
 * agentd). Unlike the domain certificates, each one certifies its own fresh P-256 key: a session key
 * belongs to exactly one party. Pure: PEM text out.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { CONTROLPLANE_SESSION_CN } from '../agents/agentContract';
import { BACKDATE_MS, type CertificateAuthority, wholeSeconds } from './authority';
import { generateP256KeyPair, privateKeyPem } from './keys';
import { certificatePem, type ExtensionSpec, encodeName, keyIdentifier, octetString, randomSerialNumber, signCertificate } from './x509';

/** A year at most, and never past the CA's own notAfter. */
export const SESSION_VALIDITY_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;
/** ub-common-name (RFC 5280 appendix A). */
const MAX_COMMON_NAME = 64;

export type SessionCertificateUsage = 'client' | 'server';

export interface SessionCertificateRequest {
  readonly commonName: string;
  /** clientAuth for the control plane's side, serverAuth for agentd's. */
  readonly usage: SessionCertificateUsage;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface SessionCertificate {
  readonly certificatePem: string;
  /** PKCS#8 PEM, unencrypted: the caller writes it to a file only its owner can read. */
  readonly privateKeyPem: string;
}

function checkRequest(request: SessionCertificateRequest): void {
  if (request.commonName.length === 0 || request.commonName.length > MAX_COMMON_NAME) {
    throw new Error(`A session certificate's common name must be 1 to ${MAX_COMMON_NAME} characters, not ${request.commonName.length}.`);
  }
  for (const ip of request.ipAddresses ?? []) {
    if (!isIPv4(ip) && !isIPv6(ip)) throw new Error(`'${ip}' is not an IP address, so it cannot be a session certificate's subjectAltName.`);
  }
  for (const name of request.dnsNames ?? []) {
    // Host-name characters, plus `_` (Docker allows it in container names) and `*` for a wildcard.
    if (!/^[A-Za-z0-9_*]([A-Za-z0-9_.*-]{0,251}[A-Za-z0-9_])?$/.test(name)) {
      throw new Error(`'${name}' is not a DNS name, so it cannot be a session certificate's subjectAltName.`);
    }
  }
}

/** A fresh key and a certificate for it, signed by the clawker CA, for one end of a session. */
export function issueSessionCertificate(ca: CertificateAuthority, request: SessionCertificateRequest, now: Date = new Date()): SessionCertificate {
  checkRequest(request);
  const keyPair = generateP256KeyPair();
  const subjectPublicKeyInfo = keyPair.publicKey.export({ type: 'spki', format: 'der' });
  const notBefore = wholeSeconds(new Date(now.getTime() - BACKDATE_MS));
  const notAfter = wholeSeconds(new Date(Math.min(now.getTime() + SESSION_VALIDITY_DAYS * DAY_MS, ca.notAfter.getTime())));
  const altNames = [...(request.dnsNames ?? []).map((value) => ({ type: 2, value })), ...(request.ipAddresses ?? []).map((ip) => ({ type: 7, ip }))];
  const authorityKeyIdentifier = ca.keyIdentifier?.toString('binary');
  const extensions: ExtensionSpec[] = [
    { name: 'basicConstraints', critical: true, cA: false },
    { name: 'keyUsage', critical: true, digitalSignature: true },
    // One purpose per certificate: a stolen agentd server certificate cannot act as the control plane.
    request.usage === 'client' ? { name: 'extKeyUsage', clientAuth: true } : { name: 'extKeyUsage', serverAuth: true },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    { name: 'subjectKeyIdentifier', value: octetString(keyIdentifier(subjectPublicKeyInfo)) },
    ...(authorityKeyIdentifier ? [{ name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyIdentifier }] : []),
  ];
  const der = signCertificate(
    {
      serialNumber: randomSerialNumber(),
      issuer: ca.subject,
      subject: encodeName({ commonName: request.commonName }),
      notBefore,
      notAfter,
      subjectPublicKeyInfo,
      extensions,
    },
    ca.privateKey,
  );
  return { certificatePem: certificatePem(der), privateKeyPem: privateKeyPem(keyPair.privateKey) };
}

/** The control plane's client certificate: the one CN agentd accepts (the contract's, not a copy). */
export const issueControlPlaneSessionCertificate = (ca: CertificateAuthority, now: Date = new Date()): SessionCertificate =>
  issueSessionCertificate(ca, { commonName: CONTROLPLANE_SESSION_CN, usage: 'client' }, now);
