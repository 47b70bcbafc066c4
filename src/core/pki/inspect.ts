/**
 * Reading certificates back, with Node's `X509Certificate` (OpenSSL) rather than the code that
 * wrote them: what a TLS client will see, not what we meant to write.
 */
import { X509Certificate } from 'node:crypto';
import { isIPv4 } from 'node:net';

export const readCertificate = (pem: string | Buffer): X509Certificate => new X509Certificate(pem);

/** Whether `issuer` issued `certificate`: names and key identifiers line up (checkIssued) and the signature verifies. */
export const isIssuedBy = (certificate: X509Certificate, issuer: X509Certificate): boolean =>
  certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey);

/** subjectAltName entries as OpenSSL prints them: `DNS:example.com`, `IP Address:10.0.0.1`. */
export const subjectAltNames = (certificate: X509Certificate): string[] =>
  certificate.subjectAltName === undefined ? [] : certificate.subjectAltName.split(', ');

/** Whether a TLS client connecting to `host` (a name or an IPv4 address) would accept the certificate's names. */
export const coversHost = (certificate: X509Certificate, host: string): boolean =>
  (isIPv4(host) ? certificate.checkIP(host) : certificate.checkHost(host)) !== undefined;

/** SHA-256 fingerprint, `AB:CD:…`: what a user compares to tell one CA from another. */
export const fingerprint = (certificate: X509Certificate): string => certificate.fingerprint256;
