/**
 * Per-domain certificates: Envoy terminates TLS for every https/wss destination with a certificate
 * for that destination, signed by the firewall CA. All of them certify ONE leaf key, generated with
 * the CA (createLeafKey below), so issuing a certificate costs a signature, not a key generation.
 */
import { createHash } from 'node:crypto';
import { checkDestination, type Destination, formatDestination } from '../firewall/destination';
import { BACKDATE_MS, type CertificateAuthority, wholeSeconds } from './authority';
import { generateP256KeyPair, type KeyPair } from './keys';
import { certificatePem, type ExtensionSpec, encodeName, keyIdentifier, octetString, randomSerialNumber, signCertificate } from './x509';

/** A year: well inside the 398 days that browsers and TLS libraries accept for a server certificate. */
export const LEAF_VALIDITY_DAYS = 365;
const DAY_MS = 24 * 60 * 60 * 1000;

/** ub-common-name (RFC 5280 appendix A): a longer name goes in the subjectAltName only. */
const MAX_COMMON_NAME = 64;

/**
 * The key every domain certificate certifies. Sharing it is safe here: it lives next to the CA key
 * and goes only to Envoy, which holds all the certificates anyway; it is replaced with the CA.
 */
export const createLeafKey = (): KeyPair => generateP256KeyPair();

/** The names a destination's certificate must carry. */
export interface CertificateNames {
  /** The destination in rule form (`.example.com`, `api.example.com`, `10.0.0.1`): the key of an issued set. */
  readonly destination: string;
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
}

function parseDestination(destination: string): Destination {
  const checked = checkDestination(destination);
  if (!checked.value) {
    throw new Error(`Cannot issue a certificate for '${destination}': ${checked.findings[0]?.message ?? 'it is not a destination.'}`);
  }
  return checked.value;
}

/** `.example.com` means the domain and its subdomains: SANs `example.com` and `*.example.com`. */
export function certificateNames(destination: string): CertificateNames {
  const dst = parseDestination(destination);
  const key = formatDestination(dst);
  if (dst.kind === 'ipv4') return { destination: key, commonName: dst.address, dnsNames: [], ipAddresses: [dst.address] };
  return { destination: key, commonName: dst.name, dnsNames: dst.wildcard ? [dst.name, `*.${dst.name}`] : [dst.name], ipAddresses: [] };
}

/**
 * A file name for a destination's certificate, unique per destination and safe on any file system.
 * `+` never occurs in a domain name, so `.example.com` → `wildcard+example.com.pem` cannot collide
 * with a real `wildcard.example.com`; an IPv4 address never collides with a domain (all-digit names are refused).
 */
export function certificateFileName(destination: string): string {
  const dst = parseDestination(destination);
  const base = dst.kind === 'ipv4' ? dst.address : dst.wildcard ? `wildcard+${dst.name}` : dst.name;
  // 253-character names would pass the usual 255-byte limit on a file name: shorten them, keeping them unique.
  if (base.length <= 200) return `${base}.pem`;
  return `${base.slice(0, 180)}~${createHash('sha256').update(base).digest('hex').slice(0, 16)}.pem`;
}

/** Signs certificates for names; what is common to all of them is computed once. */
function prepareIssuer(ca: CertificateAuthority, leafKey: KeyPair): (names: CertificateNames, now: Date) => string {
  const subjectPublicKeyInfo = leafKey.publicKey.export({ type: 'spki', format: 'der' });
  const subjectKeyIdentifier = octetString(keyIdentifier(subjectPublicKeyInfo));
  const authorityKeyIdentifier = ca.keyIdentifier?.toString('binary');
  return (names, now) => {
    const notBefore = wholeSeconds(new Date(now.getTime() - BACKDATE_MS));
    // Never valid after the CA itself: a client would reject the chain then anyway, and say so less clearly.
    const notAfter = wholeSeconds(new Date(Math.min(now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS, ca.notAfter.getTime())));
    const withCommonName = names.commonName.length <= MAX_COMMON_NAME;
    const altNames = [...names.dnsNames.map((value) => ({ type: 2, value })), ...names.ipAddresses.map((ip) => ({ type: 7, ip }))];
    const extensions: ExtensionSpec[] = [
      { name: 'basicConstraints', critical: true, cA: false },
      { name: 'keyUsage', critical: true, digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      // With no subject, the names live only here and the extension must be critical (RFC 5280 4.2.1.6).
      { name: 'subjectAltName', critical: !withCommonName, altNames },
      { name: 'subjectKeyIdentifier', value: subjectKeyIdentifier },
      ...(authorityKeyIdentifier ? [{ name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyIdentifier }] : []),
    ];
    const der = signCertificate(
      {
        serialNumber: randomSerialNumber(),
        issuer: ca.subject,
        subject: encodeName(withCommonName ? { commonName: names.commonName } : {}),
        notBefore,
        notAfter,
        subjectPublicKeyInfo,
        extensions,
      },
      ca.privateKey,
    );
    return certificatePem(der);
  };
}

/** PEM certificate for one destination (`api.example.com`, `.example.com`, `10.0.0.1`), certifying the leaf key. */
export const issueDomainCertificate = (ca: CertificateAuthority, leafKey: KeyPair, destination: string, now: Date = new Date()): string =>
  prepareIssuer(ca, leafKey)(certificateNames(destination), now);

/**
 * Certificates for every destination, keyed by the destination in rule form (so `API.example.com`
 * and `api.example.com` share one). Throws, naming the destination, if one is not a domain or IPv4 address.
 */
export function issueDomainCertificates(
  ca: CertificateAuthority,
  leafKey: KeyPair,
  destinations: Iterable<string>,
  now: Date = new Date(),
): Map<string, string> {
  const issue = prepareIssuer(ca, leafKey);
  const certificates = new Map<string, string>();
  for (const destination of destinations) {
    const names = certificateNames(destination);
    if (!certificates.has(names.destination)) certificates.set(names.destination, issue(names, now));
  }
  return certificates;
}
