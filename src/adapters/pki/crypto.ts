/**
 * Key material helpers on node's WebCrypto (ECDSA P-256, like swarm's node keys):
 * key generation, PKCS#8 PEM import/export, CSR creation, the CA digest, random bytes
 * and the constant-time comparison the token core delegates to the edge.
 *
 * @peculiar/x509 gets the crypto provider passed on every call (never set globally),
 * so nothing here is module-level mutable state.
 */
import { createHash, randomBytes, timingSafeEqual, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { MeshError } from '../../core/errors.js';

/** WebCrypto as @peculiar/x509 types it (node's implementation is complete for ECDSA). */
export const wcrypto = webcrypto as unknown as Crypto;

export const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Upper bound for any PEM we accept from the network (a CSR or cert is ~600-900 bytes). */
export const MAX_PEM_BYTES = 16 * 1024;

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await wcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await wcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/** Imports a PKCS#8 P-256 private key and derives its public key (JWK round trip). */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKeyPair> {
  let der: ArrayBuffer;
  try {
    const all = x509.PemConverter.decode(pem);
    if (all.length !== 1) throw new Error(`expected one PEM block, found ${all.length}`);
    der = all[0]!;
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `private key is not valid PEM: ${(e as Error).message}`);
  }
  const privateKey = await wcrypto.subtle.importKey('pkcs8', der, EC_ALGORITHM, true, ['sign']);
  const jwk = await wcrypto.subtle.exportKey('jwk', privateKey);
  const publicKey = await wcrypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, ext: true }, EC_ALGORITHM, true, ['verify']);
  return { privateKey, publicKey };
}

/** A new node key and a CSR for it (the manager sets subject and SANs itself, like swarm). */
export async function createNodeKeyAndCsr(name: string): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${escapeDnValue(name)}`, keys, signingAlgorithm: SIGNING_ALGORITHM }, wcrypto);
  return { keyPem: await exportPrivateKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/** Escapes RFC 4514 special characters in a DN attribute value. */
export function escapeDnValue(v: string): string {
  return v.replace(/[,+"\\<>;=#]/g, (c) => `\\${c}`);
}

/** sha256 of a certificate's DER, lowercase hex: the CA digest carried in join tokens. */
export function certDigest(cert: x509.X509Certificate): string {
  return createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex');
}

/** Parses exactly one PEM certificate; anything else is MESHD_BAD_ARGUMENT. */
export function parseCertPem(pem: unknown, what = 'certificate'): x509.X509Certificate {
  if (typeof pem !== 'string' || pem.length > MAX_PEM_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} must be a PEM string under ${MAX_PEM_BYTES} bytes`);
  try {
    const blocks = x509.PemConverter.decode(pem);
    if (blocks.length !== 1) throw new Error(`expected one PEM block, found ${blocks.length}`);
    return new x509.X509Certificate(blocks[0]!);
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `${what} is not a valid PEM certificate: ${(e as Error).message}`);
  }
}

export function certDigestOfPem(pem: string): string {
  return certDigest(parseCertPem(pem));
}

export function randomSecretBytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/**
 * Constant-time string equality (crypto.timingSafeEqual). Lengths are compared first;
 * that leaks only the length, which the token format makes public anyway.
 */
export function secretEquals(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab); // same work either way
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** A random positive serial number, 16 bytes hex (RFC 5280: ≤ 20 octets, positive). */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}
