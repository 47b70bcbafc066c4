/**
 * The firewall's certificate authority: an ECDSA P-256 CA, created once and baked into every agent
 * image, that signs a certificate for each TLS-inspected domain. Pure: keys and PEM text in and out;
 * where they are kept is platform/caStore.ts's business.
 */
import { type KeyObject, X509Certificate } from 'node:crypto';
import { generateP256KeyPair, readP256PrivateKey } from './keys';
import { certificatePem, encodeName, keyIdentifier, octetString, randomSerialNumber, readIssuerFields, signCertificate } from './x509';

export const CA_COMMON_NAME = 'Clawker Firewall CA';
export const CA_ORGANIZATION = 'Clawker';
export const CA_VALIDITY_YEARS = 10;

/** Certificates start an hour early, so a container whose clock is a little behind the host's still accepts them. */
export const BACKDATE_MS = 60 * 60 * 1000;

export interface CertificateAuthority {
  readonly certificatePem: string;
  readonly certificate: X509Certificate;
  readonly privateKey: KeyObject;
  /** DER of the CA's subject Name: the issuer Name of everything it signs, byte for byte. */
  readonly subject: Buffer;
  /** The CA's subjectKeyIdentifier, repeated as authorityKeyIdentifier in what it signs. */
  readonly keyIdentifier?: Buffer;
  readonly notAfter: Date;
}

/** X.509 times have whole seconds; truncating here keeps the dates we hand out equal to the encoded ones. */
export const wholeSeconds = (date: Date): Date => new Date(Math.floor(date.getTime() / 1000) * 1000);

export function createCertificateAuthority(now: Date = new Date()): CertificateAuthority {
  const keyPair = generateP256KeyPair();
  const notBefore = wholeSeconds(new Date(now.getTime() - BACKDATE_MS));
  const notAfter = wholeSeconds(new Date(now));
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + CA_VALIDITY_YEARS);
  const name = encodeName({ commonName: CA_COMMON_NAME, organization: CA_ORGANIZATION });
  const subjectPublicKeyInfo = keyPair.publicKey.export({ type: 'spki', format: 'der' });
  const ski = keyIdentifier(subjectPublicKeyInfo);
  const der = signCertificate(
    {
      serialNumber: randomSerialNumber(),
      issuer: name,
      subject: name,
      notBefore,
      notAfter,
      subjectPublicKeyInfo,
      extensions: [
        // pathLen 0: this CA signs leaf certificates only, never another CA.
        { name: 'basicConstraints', critical: true, cA: true, pathLenConstraint: 0 },
        { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
        { name: 'subjectKeyIdentifier', value: octetString(ski) },
      ],
    },
    keyPair.privateKey,
  );
  return {
    certificatePem: certificatePem(der),
    certificate: new X509Certificate(der),
    privateKey: keyPair.privateKey,
    subject: name,
    keyIdentifier: ski,
    notAfter,
  };
}

/** What can be wrong with a stored CA, so the caller can name the file and say what to do. */
export type CaProblem =
  | { readonly kind: 'certificate-unreadable' }
  | { readonly kind: 'not-a-ca' }
  | { readonly kind: 'key-unreadable' }
  | { readonly kind: 'key-not-p256' }
  | { readonly kind: 'key-mismatch' }
  | { readonly kind: 'expired'; readonly notAfter: Date };

/** Reads a stored CA, checking that it is a CA, that its key is P-256, that the two belong together and that it is still valid. */
export function readCertificateAuthority(
  certificatePemText: string,
  privateKeyPemText: string,
  now: Date = new Date(),
): { readonly ca: CertificateAuthority } | { readonly problem: CaProblem } {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificatePemText);
  } catch {
    return { problem: { kind: 'certificate-unreadable' } };
  }
  if (!certificate.ca) return { problem: { kind: 'not-a-ca' } };
  const key = readP256PrivateKey(privateKeyPemText);
  if ('problem' in key) return { problem: { kind: key.problem === 'unreadable' ? 'key-unreadable' : 'key-not-p256' } };
  if (!certificate.checkPrivateKey(key.key.privateKey)) return { problem: { kind: 'key-mismatch' } };
  const notAfter = new Date(certificate.validTo);
  if (notAfter.getTime() <= now.getTime()) return { problem: { kind: 'expired', notAfter } };
  const { subject, keyIdentifier: id } = readIssuerFields(certificate.raw);
  return {
    ca: {
      certificatePem: certificatePem(certificate.raw), // normalised: just the certificate, whatever else the file held
      certificate,
      privateKey: key.key.privateKey,
      subject,
      ...(id ? { keyIdentifier: id } : {}),
      notAfter,
    },
  };
}
