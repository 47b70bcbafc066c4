/**
 * Builds and signs X.509 v3 certificates for ECDSA P-256 keys.
 *
 * Why two libraries: node-forge encodes X.509 structures well (ASN.1/DER, names, extension values,
 * PEM), but its certificate code is RSA-only — it can neither encode an EC public key nor sign with
 * ECDSA. So Node's crypto (OpenSSL) generates the keys, exports the SubjectPublicKeyInfo and makes
 * the ECDSA-SHA256 signature; forge assembles the TBSCertificate around them and the final DER.
 * Parsing and verification use Node's `X509Certificate` (see inspect.ts), not forge.
 */
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

/** An EC key pair as Node's crypto holds it. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export const P256 = 'prime256v1';

export const generateP256KeyPair = (): KeyPair => generateKeyPairSync('ec', { namedCurve: P256 });

/** An extension as forge describes it (`{ name: 'keyUsage', critical: true, digitalSignature: true }`). */
export type ExtensionSpec = { readonly name: string; readonly critical?: boolean } & Record<string, unknown>;

export interface CertificateTemplate {
  readonly serialNumber: Buffer;
  /** The issuer's Name, DER-encoded: copied from the issuing certificate so the bytes match exactly. */
  readonly issuer: Buffer;
  /** Omitted attributes are left out; an empty subject needs a critical subjectAltName (RFC 5280 4.1.2.6). */
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key (`publicKey.export({ type: 'spki', format: 'der' })`). */
  readonly subjectPublicKeyInfo: Buffer;
  readonly extensions: readonly ExtensionSpec[];
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID = { commonName: '2.5.4.3', organizationName: '2.5.4.10' } as const;

const fromBuffer = (bytes: Buffer): string => bytes.toString('binary');
const toBuffer = (asn: Asn1): Buffer => Buffer.from(asn1.toDer(asn).getBytes(), 'binary');
const sequence = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (id: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
const parsed = (der: Buffer): Asn1 => asn1.fromDer(fromBuffer(der));

/** Fresh DER for a Name with the given attributes, as UTF8Strings (RFC 5280 4.1.2.4). */
export function encodeName(name: { readonly commonName?: string; readonly organization?: string }): Buffer {
  const attributes: forge.pki.CertificateField[] = [];
  if (name.commonName !== undefined) attributes.push({ type: OID.commonName, value: name.commonName, valueTagClass: asn1.Type.UTF8 as never });
  if (name.organization !== undefined) attributes.push({ type: OID.organizationName, value: name.organization, valueTagClass: asn1.Type.UTF8 as never });
  return toBuffer(forge.pki.distinguishedNameToAsn1({ attributes }));
}

/** A positive serial of 16 octets (126 random bits): top bit clear, next bit set, so the DER INTEGER is always minimal. */
export function randomSerialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return serial;
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(subjectPublicKeyInfo: Buffer): Buffer {
  const subjectPublicKey = parsed(subjectPublicKeyInfo).value[1] as Asn1;
  const bits = (subjectPublicKey.value as string).slice(1); // first octet: count of unused bits
  return createHash('sha1').update(bits, 'binary').digest();
}

// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
function encodeTime(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function encodeExtensions(specs: readonly ExtensionSpec[]): Asn1 {
  // forge fills in each extension's OID and DER value (bit strings, SANs, ...); it needs nothing else from the holder.
  const holder = forge.pki.createCertificate();
  holder.setExtensions(specs.map((spec) => ({ ...spec })));
  const extensions = (holder.extensions as { id: string; critical?: boolean; value: Asn1 | string }[]).map((ext) =>
    sequence([
      oid(ext.id),
      ...(ext.critical ? [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, '\xff')] : []),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, typeof ext.value === 'string' ? ext.value : asn1.toDer(ext.value).getBytes()),
    ]),
  );
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, 3, true, [sequence(extensions)]);
}

/** DER of the certificate described by `template`, signed with ECDSA-SHA256 by `issuerKey`. */
export function signCertificate(template: CertificateTemplate, issuerKey: KeyObject): Buffer {
  // RFC 5758 3.2: the ecdsa-with-SHA256 AlgorithmIdentifier has no parameters.
  const algorithm = sequence([oid(ECDSA_WITH_SHA256)]);
  const tbs = sequence([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes())]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, fromBuffer(template.serialNumber)),
    algorithm,
    parsed(template.issuer),
    sequence([encodeTime(template.notBefore), encodeTime(template.notAfter)]),
    parsed(template.subject),
    parsed(template.subjectPublicKeyInfo),
    encodeExtensions(template.extensions),
  ]);
  const tbsDer = asn1.toDer(tbs).getBytes();
  const signature = sign('sha256', Buffer.from(tbsDer, 'binary'), issuerKey); // DER ECDSA-Sig-Value
  const certificate = sequence([
    asn1.fromDer(tbsDer),
    algorithm,
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\x00${fromBuffer(signature)}`),
  ]);
  return toBuffer(certificate);
}

export const certificatePem = (der: Buffer): string => forge.pem.encode({ type: 'CERTIFICATE', body: fromBuffer(der) });

/** The issuer-relevant parts of a certificate: its subject Name (DER) and subjectKeyIdentifier, if any. */
export function readIssuerFields(certificateDer: Buffer): { readonly subject: Buffer; readonly keyIdentifier?: Buffer } {
  const tbs = parsed(certificateDer).value[0] as Asn1;
  const fields = tbs.value as Asn1[];
  const hasVersion = fields[0]!.tagClass === asn1.Class.CONTEXT_SPECIFIC;
  const subject = toBuffer(fields[hasVersion ? 5 : 4]!);
  const extensionsField = fields.find((f) => f.tagClass === asn1.Class.CONTEXT_SPECIFIC && f.type === 3);
  const extensions = extensionsField ? (((extensionsField.value as Asn1[])[0]!.value as Asn1[]) ?? []) : [];
  for (const ext of extensions) {
    const parts = ext.value as Asn1[];
    if (asn1.derToOid(parts[0]!.value as string) !== '2.5.29.14') continue;
    const octets = parts[parts.length - 1]!.value as string; // extnValue wraps an OCTET STRING with the identifier
    return { subject, keyIdentifier: Buffer.from(asn1.fromDer(octets).value as string, 'binary') };
  }
  return { subject };
}
