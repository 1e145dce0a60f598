/**
 * Encryption at rest for the manager's store (issue 16 §4, swarm's "raft encrypted at rest"):
 * values that must never sit in the store in plain text — secret and config payloads, the
 * gossip keyring, the root CA key — are sealed with the cluster data key before they are
 * written and opened after they are read.
 *
 * Sealing: AES-256-GCM, a fresh random 96-bit nonce per value (a 2^-32 collision bound is
 * reached only after ~2^32 seals with one key: far beyond a cluster's writes), and the store
 * key as additional authenticated data, so a sealed value copied under another key (e.g. one
 * secret's payload moved to another secret's record) fails to open instead of leaking.
 * Any failure to open (tampered nonce, ciphertext or tag, wrong key, moved value) is
 * MESHD_UNSEAL_FAILED; a value that is not a sealed record at all is MESHD_STORE_CORRUPT.
 *
 * The record format is versioned (`v: 1`) so another algorithm can follow without guessing.
 * Nothing here logs: neither the key nor the plaintext ever reaches a logger.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { MeshError } from '../../core/errors.js';

/** Data key length (bytes): AES-256. */
export const DATA_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A sealed value as it sits in the store (JSON). `ct` is ciphertext followed by the 16-byte tag. */
export interface SealedValue {
  sealed: 1;
  alg: 'A256GCM';
  /** base64, 12 bytes. */
  nonce: string;
  /** base64: ciphertext || tag. */
  ct: string;
}

/** Whether `v` has the shape of a sealed record (it may still fail to open). */
export function isSealed(v: unknown): v is SealedValue {
  return typeof v === 'object' && v !== null && (v as { sealed?: unknown }).sealed === 1;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== DATA_KEY_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `a data key is ${DATA_KEY_BYTES} bytes, got ${key.length}`);
}

/** Seals `plain` for the store key `aad` (pure but for the random nonce; `nonce` is a test seam). */
export function seal(key: Uint8Array, aad: string, plain: Uint8Array, nonce: Uint8Array = randomBytes(NONCE_BYTES)): SealedValue {
  checkKey(key);
  if (nonce.length !== NONCE_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `a nonce is ${NONCE_BYTES} bytes`);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  return { sealed: 1, alg: 'A256GCM', nonce: Buffer.from(nonce).toString('base64'), ct: ct.toString('base64') };
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Opens a sealed record written under store key `aad`; see the file comment for the error codes. */
export function open(key: Uint8Array, aad: string, v: unknown): Buffer {
  checkKey(key);
  if (!isSealed(v)) throw new MeshError('MESHD_STORE_CORRUPT', `store value ${aad} is not a sealed record`, { key: aad });
  if (v.alg !== 'A256GCM' || typeof v.nonce !== 'string' || typeof v.ct !== 'string' || !B64.test(v.nonce) || !B64.test(v.ct)) {
    throw new MeshError('MESHD_STORE_CORRUPT', `store value ${aad} is a sealed record of an unknown format`, { key: aad });
  }
  const nonce = Buffer.from(v.nonce, 'base64');
  const all = Buffer.from(v.ct, 'base64');
  if (nonce.length !== NONCE_BYTES || all.length < TAG_BYTES) {
    throw new MeshError('MESHD_UNSEAL_FAILED', `store value ${aad} cannot be opened (truncated)`, { key: aad });
  }
  try {
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(all.subarray(all.length - TAG_BYTES));
    return Buffer.concat([d.update(all.subarray(0, all.length - TAG_BYTES)), d.final()]);
  } catch {
    throw new MeshError('MESHD_UNSEAL_FAILED', `store value ${aad} cannot be opened: tampered, moved, or sealed with another data key`, { key: aad });
  }
}

/** Seals a JSON value (the keyring record, the CA key). */
export function sealJson(key: Uint8Array, aad: string, value: unknown): SealedValue {
  return seal(key, aad, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** Opens a sealed JSON value. */
export function openJson<T = unknown>(key: Uint8Array, aad: string, v: unknown): T {
  const plain = open(key, aad, v);
  try {
    return JSON.parse(plain.toString('utf8')) as T;
  } catch {
    throw new MeshError('MESHD_STORE_CORRUPT', `sealed store value ${aad} does not hold JSON`, { key: aad });
  }
}

/** A fresh data key. */
export function newDataKey(): Buffer {
  return randomBytes(DATA_KEY_BYTES);
}

/** The one object the manager seals with: holds the key, never shows it (toJSON / inspect hide it). */
export class Sealer {
  readonly #key: Buffer;
  constructor(key: Uint8Array) {
    checkKey(key);
    this.#key = Buffer.from(key);
  }
  seal(aad: string, plain: Uint8Array): SealedValue {
    return seal(this.#key, aad, plain);
  }
  open(aad: string, v: unknown): Buffer {
    return open(this.#key, aad, v);
  }
  sealJson(aad: string, value: unknown): SealedValue {
    return sealJson(this.#key, aad, value);
  }
  openJson<T = unknown>(aad: string, v: unknown): T {
    return openJson<T>(this.#key, aad, v);
  }
  /** base64 of the key, for the join answer of a manager (over mTLS) only. */
  exportForManager(): string {
    return this.#key.toString('base64');
  }
  toJSON(): string {
    return '[data key]';
  }
}
