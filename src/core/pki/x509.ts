/**
 * Builds and signs X.509 v3 certificates for ECDSA P-256 keys.
 *
 * Why two libraries: node-forge encodes X.509 structures well (names, times, extension values,
 * OIDs, PEM), but its certificate code is RSA-only: it can neither encode an EC public key nor sign
 * with ECDSA. So Node's crypto (OpenSSL) generates the keys, exports the SubjectPublicKeyInfo and
 * makes the ECDSA-SHA256 signature, and forge encodes the rest. Parsing and verification use Node's
 * `X509Certificate` (see inspect.ts), not forge.
 */
import { createHash, type KeyObject, randomBytes, sign } from 'node:crypto';
import forge from 'node-forge';

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

/** An extension as forge describes it (`{ name: 'keyUsage', critical: true, digitalSignature: true }`). */
export type ExtensionSpec = { readonly name: string; readonly critical?: boolean } & Record<string, unknown>;

export interface CertificateTemplate {
  readonly serialNumber: Buffer;
  /** The issuer's Name, DER-encoded: copied from the issuing certificate so the bytes match exactly. */
  readonly issuer: Buffer;
  /** DER Name; an empty one needs a critical subjectAltName (RFC 5280 4.1.2.6). */
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** DER SubjectPublicKeyInfo of the certified key (`publicKey.export({ type: 'spki', format: 'der' })`). */
  readonly subjectPublicKeyInfo: Buffer;
  readonly extensions: readonly ExtensionSpec[];
}

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const OID = { commonName: '2.5.4.3', organizationName: '2.5.4.10' } as const;
// @types/node-forge declares valueTagClass as a tag class; forge reads it as the value's universal type.
const UTF8_STRING = asn1.Type.UTF8 as unknown as forge.asn1.Class;

const binary = (bytes: Buffer): string => bytes.toString('binary');
const toBuffer = (asn: Asn1): Buffer => Buffer.from(asn1.toDer(asn).getBytes(), 'binary');
const sequence = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (id: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());

// Parts that arrive as DER (issuer Name, public key, signature) are spliced in and read back as raw
// bytes, never parsed and re-encoded by forge, so they reach the certificate exactly as they were.
function tlv(tag: number, contents: Buffer): Buffer {
  const n = contents.length;
  if (n > 0xffff) throw new Error('a certificate field longer than 64 KiB is not expected here');
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, contents]);
}
const derSequence = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));

/** Splits DER into its top-level elements (whole tag-length-value slices, no copies). */
function elements(der: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < der.length; ) {
    let length = der[at + 1]!;
    let header = 2;
    if (length & 0x80) {
      const octets = length & 0x7f;
      if (octets < 1 || octets > 3) throw new Error('unsupported DER length in certificate');
      length = der.readUIntBE(at + 2, octets);
      header += octets;
    }
    if (at + header + length > der.length) throw new Error('truncated DER in certificate');
    out.push(der.subarray(at, at + header + length));
    at += header + length;
  }
  return out;
}

/** The value octets of one DER element (for a constructed one: its children, still encoded). */
function contents(element: Buffer): Buffer {
  const header = element[1]! & 0x80 ? 2 + (element[1]! & 0x7f) : 2;
  return element.subarray(header);
}

/** Fresh DER for a Name with the given attributes, as UTF8Strings (RFC 5280 4.1.2.4). */
export function encodeName(name: { readonly commonName?: string; readonly organization?: string }): Buffer {
  const attributes: forge.pki.CertificateField[] = [];
  if (name.commonName !== undefined) attributes.push({ type: OID.commonName, value: name.commonName, valueTagClass: UTF8_STRING });
  if (name.organization !== undefined) attributes.push({ type: OID.organizationName, value: name.organization, valueTagClass: UTF8_STRING });
  return toBuffer(forge.pki.distinguishedNameToAsn1({ attributes }));
}

/** A positive serial of 16 octets (126 random bits): top bit clear, next bit set, so the DER INTEGER is always minimal. */
export function randomSerialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return serial;
}

/** A DER OCTET STRING, as the binary string forge takes for a pre-encoded extension value (subjectKeyIdentifier). */
export const octetString = (bytes: Buffer): string => asn1.toDer(asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, binary(bytes))).getBytes();

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function keyIdentifier(subjectPublicKeyInfo: Buffer): Buffer {
  const subjectPublicKey = elements(contents(subjectPublicKeyInfo))[1]!;
  return createHash('sha1').update(contents(subjectPublicKey).subarray(1)).digest(); // first octet: count of unused bits
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

// RFC 5758 3.2: the ecdsa-with-SHA256 AlgorithmIdentifier has no parameters.
const SIGNATURE_ALGORITHM = toBuffer(sequence([oid(ECDSA_WITH_SHA256)]));
const VERSION_3 = tlv(0xa0, tlv(0x02, Buffer.from([2])));

/** DER of the certificate described by `template`, signed with ECDSA-SHA256 by `issuerKey`. */
export function signCertificate(template: CertificateTemplate, issuerKey: KeyObject): Buffer {
  const tbs = derSequence(
    VERSION_3,
    tlv(0x02, template.serialNumber),
    SIGNATURE_ALGORITHM,
    template.issuer,
    toBuffer(sequence([encodeTime(template.notBefore), encodeTime(template.notAfter)])),
    template.subject,
    template.subjectPublicKeyInfo,
    toBuffer(encodeExtensions(template.extensions)),
  );
  const signature = sign('sha256', tbs, issuerKey); // OpenSSL's DER ECDSA-Sig-Value, as X.509 wants it
  return derSequence(tbs, SIGNATURE_ALGORITHM, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
}

export const certificatePem = (der: Buffer): string => forge.pem.encode({ type: 'CERTIFICATE', body: binary(der) });

const SUBJECT_KEY_IDENTIFIER = toBuffer(oid('2.5.29.14'));

/** The issuer-relevant parts of a certificate: its subject Name (DER, byte for byte) and subjectKeyIdentifier, if any. */
export function readIssuerFields(certificateDer: Buffer): { readonly subject: Buffer; readonly keyIdentifier?: Buffer } {
  const tbs = elements(contents(elements(certificateDer)[0]!))[0]!;
  const fields = elements(contents(tbs));
  const hasVersion = fields[0]![0] === 0xa0; // [0] EXPLICIT version, absent in v1 certificates
  const subject = Buffer.from(fields[hasVersion ? 5 : 4]!);
  const extensionsField = fields.find((field) => field[0] === 0xa3); // [3] EXPLICIT extensions
  const extensions = extensionsField ? elements(contents(elements(contents(extensionsField))[0]!)) : [];
  for (const extension of extensions) {
    const parts = elements(contents(extension)); // extnID, critical?, extnValue
    if (!parts[0]!.equals(SUBJECT_KEY_IDENTIFIER)) continue;
    const identifier = contents(contents(parts[parts.length - 1]!)); // extnValue holds the DER of an OCTET STRING
    return { subject, keyIdentifier: Buffer.from(identifier) };
  }
  return { subject };
}
