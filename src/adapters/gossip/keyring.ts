/**
 * Gossip encryption: AES-256-GCM, 12-byte random nonce, 16-byte tag.
 * Wire: [version u8 = 1][nonce 12][ciphertext][tag 16]; associated data = [version][cluster name utf-8], so a packet
 * of another cluster (or a tampered version byte) fails authentication. The keyring holds one primary key
 * (used to encrypt) and any number of secondaries (still accepted on decrypt), for rotation:
 * install(new) everywhere → use(new) everywhere → remove(old) everywhere (memberlist/serf keyring model).
 */
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from 'node:crypto';
import { MeshError } from '../../core/errors.js';

export const KEYRING_WIRE_VERSION = 1;
export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes encryption adds to every packet. */
export const ENCRYPTION_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES;

export type DecryptResult = { ok: true; plain: Uint8Array } | { ok: false; reason: 'decrypt' };

function checkKey(key: Uint8Array): Buffer {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `gossip keys are ${KEY_BYTES} bytes (AES-256), got ${key?.length ?? 'none'}`);
  }
  return Buffer.from(key);
}

export class Keyring {
  /** keys[0] is the primary. */
  private readonly keyList: Buffer[] = [];
  private readonly aad: Buffer;

  constructor(clusterName: string, primary: Uint8Array, secondaries: readonly Uint8Array[] = []) {
    if (clusterName.length === 0 || Buffer.byteLength(clusterName) > 64) throw new MeshError('MESHD_BAD_ARGUMENT', 'cluster name must be 1..64 bytes');
    this.aad = Buffer.concat([Buffer.of(KEYRING_WIRE_VERSION), Buffer.from(clusterName, 'utf8')]);
    this.keyList.push(checkKey(primary));
    for (const k of secondaries) this.install(k);
  }

  private indexOf(key: Buffer): number {
    return this.keyList.findIndex((k) => timingSafeEqual(k, key));
  }

  /** Adds a key accepted for decryption (no-op if present). */
  install(key: Uint8Array): void {
    const k = checkKey(key);
    if (this.indexOf(k) < 0) this.keyList.push(k);
  }
  /** Makes an installed key the primary (used to encrypt). */
  use(key: Uint8Array): void {
    const i = this.indexOf(checkKey(key));
    if (i < 0) throw new MeshError('MESHD_NOT_FOUND', 'key is not installed; install it first');
    const [k] = this.keyList.splice(i, 1);
    this.keyList.unshift(k!);
  }
  /** Removes a secondary key. Removing the primary is refused: use() another key first. */
  remove(key: Uint8Array): void {
    const i = this.indexOf(checkKey(key));
    if (i < 0) throw new MeshError('MESHD_NOT_FOUND', 'key is not installed');
    if (i === 0) throw new MeshError('MESHD_BAD_ARGUMENT', 'refusing to remove the primary key; use() another key first');
    this.keyList.splice(i, 1);
  }
  /** Copies of the keys, primary first. */
  keys(): Uint8Array[] {
    return this.keyList.map((k) => new Uint8Array(k));
  }
  get primary(): Uint8Array {
    return new Uint8Array(this.keyList[0]!);
  }

  encrypt(plain: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', this.keyList[0]!, nonce, { authTagLength: TAG_BYTES });
    c.setAAD(this.aad);
    const body = Buffer.concat([c.update(plain), c.final()]);
    const out = new Uint8Array(ENCRYPTION_OVERHEAD + body.length);
    out[0] = KEYRING_WIRE_VERSION;
    out.set(nonce, 1);
    out.set(body, 1 + NONCE_BYTES);
    out.set(c.getAuthTag(), 1 + NONCE_BYTES + body.length);
    return out;
  }

  /** Tries the primary, then the other keys. Any failure (short, wrong version, wrong key, tampered) → 'decrypt'. */
  decrypt(wire: Uint8Array): DecryptResult {
    if (!(wire instanceof Uint8Array) || wire.length < ENCRYPTION_OVERHEAD || wire[0] !== KEYRING_WIRE_VERSION) return { ok: false, reason: 'decrypt' };
    const nonce = wire.subarray(1, 1 + NONCE_BYTES);
    const body = wire.subarray(1 + NONCE_BYTES, wire.length - TAG_BYTES);
    const tag = wire.subarray(wire.length - TAG_BYTES);
    for (const k of this.keyList) {
      try {
        const d = createDecipheriv('aes-256-gcm', k, nonce, { authTagLength: TAG_BYTES });
        d.setAAD(this.aad);
        d.setAuthTag(tag);
        const plain = Buffer.concat([d.update(body), d.final()]);
        return { ok: true, plain: new Uint8Array(plain.buffer, plain.byteOffset, plain.length) };
      } catch {
        // wrong key or tampered: try the next key
      }
    }
    return { ok: false, reason: 'decrypt' };
  }
}
