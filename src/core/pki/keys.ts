import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** An EC key pair as Node's crypto holds it. */
export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

const P256 = 'prime256v1';

// Node's crypto (OpenSSL) rather than forge: native speed, and forge's certificate code cannot use EC keys anyway.
export const generateP256KeyPair = (): KeyPair => generateKeyPairSync('ec', { namedCurve: P256 });

/** PKCS#8 PEM, unencrypted: the files holding it are protected by their permissions instead. */
export const privateKeyPem = (key: KeyObject): string => key.export({ type: 'pkcs8', format: 'pem' }) as string;

export const isP256 = (key: KeyObject): boolean => key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === P256;

/** What is wrong with a private key file's contents; deliberately says nothing about the contents themselves. */
export type KeyProblem = 'unreadable' | 'not-p256';

export function readP256PrivateKey(pem: string): { readonly key: KeyPair } | { readonly problem: KeyProblem } {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    // OpenSSL's message adds nothing a user can act on; the caller names the file and the remedy.
    return { problem: 'unreadable' };
  }
  if (!isP256(privateKey)) return { problem: 'not-p256' };
  return { key: { privateKey, publicKey: createPublicKey(privateKey) } };
}
