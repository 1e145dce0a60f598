/**
 * The gossip keyring's persistence and API. Keys arrive in request bodies (read by netctl
 * from stdin or a file — never argv) and are persisted in dataDir with mode 0600, so a
 * restarted agent keeps the keys it was rotated to. The API only ever shows fingerprints.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../adapters/fs/atomic.js';
import { MeshError } from '../../core/errors.js';
import type { Router } from '../../adapters/api/server.js';
import { KEY_BYTES, Keyring } from '../../adapters/gossip/keyring.js';
import type { PacketCipher } from '../../adapters/gossip/transport.js';
import { registerGossipKeyRoutes } from './routes.js';

export const fingerprint = (k: Uint8Array): string => createHash('sha256').update(k).digest('hex').slice(0, 16);

export function decodeKey(b64: unknown): Uint8Array {
  if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64.trim())) throw new MeshError('MESHD_BAD_ARGUMENT', 'key must be base64');
  const k = new Uint8Array(Buffer.from(b64.trim(), 'base64'));
  if (k.length !== KEY_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `key must be ${KEY_BYTES} bytes (base64 of 32 random bytes), got ${k.length}`);
  return k;
}

export function parseKeyFile(text: string, file: string): Uint8Array[] {
  const keys = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => decodeKey(l));
  if (!keys.length) throw new MeshError('MESHD_BAD_CONFIG', `key file ${file} holds no key`);
  return keys;
}

/**
 * The node's gossip keyring. It may arrive after start (`cluster init` makes one, `cluster join`
 * receives the cluster's): the cipher reads the current ring on every packet, so gossip switches
 * to it at once. `required` (a node of a cluster without `gossip.insecure`) with no ring yet: an
 * ephemeral random key, never persisted, stands in — the node neither speaks nor accepts plain
 * text, and talks to nobody until the cluster's ring arrives (see adopt()).
 */
export class KeyStore {
  private ring: Keyring | undefined;
  private placeholder: Keyring | undefined;
  private readonly file: string;

  constructor(dataDir: string, private readonly clusterName: string, keyFile?: string) {
    this.file = join(dataDir, 'gossip-keys');
    let keys: Uint8Array[] | undefined;
    if (existsSync(this.file)) keys = parseKeyFile(readFileSync(this.file, 'utf8'), this.file);
    else if (keyFile) {
      let text: string;
      try {
        text = readFileSync(keyFile, 'utf8');
      } catch (e) {
        throw new MeshError('MESHD_BAD_CONFIG', `cannot read gossip key file ${keyFile}: ${(e as Error).message}`);
      }
      keys = parseKeyFile(text, keyFile);
    }
    this.ring = keys ? new Keyring(clusterName, keys[0]!, keys.slice(1)) : undefined;
    if (keys) this.persist();
  }

  /** The ring in use (undefined: plain text, or the placeholder of a node waiting for its cluster's ring). */
  get keyring(): Keyring | undefined {
    return this.ring;
  }

  /** Refuse plain text from now on: until a ring is adopted, an ephemeral key nobody else has is used. */
  requireEncryption(): void {
    if (!this.ring && !this.placeholder) this.placeholder = new Keyring(this.clusterName, new Uint8Array(randomBytes(KEY_BYTES)));
  }

  /** Whether packets are sealed (a real ring, or the placeholder of a node that refuses plain text). */
  get encrypted(): boolean {
    return !!(this.ring ?? this.placeholder);
  }

  /** The ring's keys in base64, primary first (what `cluster init` stores for the cluster); undefined without a ring. */
  exportKeys(): string[] | undefined {
    return this.ring?.keys().map((k) => Buffer.from(k).toString('base64'));
  }

  /**
   * Takes the cluster's ring (base64 keys, primary first) as this node's: keys it lacks are
   * installed, the primary is used, keys the cluster dropped are removed — the install → use →
   * remove order of a manual rotation, so packets in flight under the old primary still open.
   * Persisted (0600) like any key change. Returns whether anything changed.
   */
  adopt(keysB64: readonly string[]): boolean {
    const keys = keysB64.map((k) => decodeKey(k));
    if (!keys.length) throw new MeshError('MESHD_BAD_ARGUMENT', 'the cluster keyring holds no key');
    const b64 = (k: Uint8Array): string => Buffer.from(k).toString('base64');
    if (!this.ring) {
      this.ring = new Keyring(this.clusterName, keys[0]!, keys.slice(1));
      this.placeholder = undefined;
      this.persist();
      return true;
    }
    const before = this.ring.keys().map(b64).join(',');
    const want = new Set(keys.map(b64));
    for (const k of keys) this.ring.install(k);
    this.ring.use(keys[0]!);
    for (const k of this.ring.keys()) if (!want.has(b64(k))) this.ring.remove(k);
    const changed = this.ring.keys().map(b64).join(',') !== before;
    if (changed) this.persist();
    return changed;
  }

  /** A cipher that reads the current ring per packet; plain text only while no ring and not required. */
  cipher(onDecryptFail?: () => void): PacketCipher {
    const passthrough = { ok: true as const };
    return {
      seal: (plain) => {
        const kr = this.ring ?? this.placeholder;
        return kr ? kr.encrypt(plain) : plain;
      },
      open: (sealed) => {
        const kr = this.ring ?? this.placeholder;
        if (!kr) return { ...passthrough, bytes: sealed };
        const r = kr.decrypt(sealed);
        if (!r.ok) onDecryptFail?.();
        return r.ok ? { ok: true, bytes: r.plain } : { ok: false, reason: 'decrypt' };
      },
    };
  }

  private persist(): void {
    if (!this.ring) return;
    mkdirSync(join(this.file, '..'), { recursive: true });
    const text = this.ring.keys().map((k) => Buffer.from(k).toString('base64')).join('\n') + '\n';
    writeFileAtomic(this.file, text, 0o600);
  }

  list(): { encrypted: boolean; keys: Array<{ fingerprint: string; primary: boolean }> } {
    if (!this.keyring) return { encrypted: this.encrypted, keys: [] };
    return { encrypted: true, keys: this.keyring.keys().map((k, i) => ({ fingerprint: fingerprint(k), primary: i === 0 })) };
  }

  /** Installs, switches to or removes a key (`op`); persists the ring; answers the fingerprints. */
  change(op: unknown, keyB64: unknown): ReturnType<KeyStore['list']> {
    const kr = this.keyring;
    if (!kr) throw new MeshError('MESHD_BAD_ARGUMENT', 'gossip is not encrypted on this node (start it with gossip.keyFile)');
    const key = decodeKey(keyB64);
    if (op === 'install') kr.install(key);
    else if (op === 'use') kr.use(key);
    else if (op === 'remove') kr.remove(key);
    else throw new MeshError('MESHD_BAD_ARGUMENT', 'op must be install, use or remove');
    this.persist();
    return this.list();
  }

  routes(router: Router): void {
    registerGossipKeyRoutes(router, this);
  }
}

/**
 * The start-time policy (issue 16 §4): a node of a cluster (`inCluster`) without a ring refuses
 * plain text until the cluster's ring arrives, unless `insecure`, which is warned about at every
 * start; a node outside a cluster without a key gossips in plain text as before.
 */
export function applyKeyPolicy(keys: KeyStore, o: { inCluster: boolean; insecure: boolean }, log: { warn(obj: object | string, msg?: string): void }): void {
  if (o.insecure) {
    log.warn({ encrypted: !!keys.keyring }, 'gossip.insecure is true: this node accepts plain-text gossip from anyone on the underlay');
    return;
  }
  if (keys.keyring) return;
  if (o.inCluster) {
    keys.requireEncryption();
    log.warn('this node belongs to a cluster but holds no gossip key: gossip stays closed (no plain text) until the keyring is fetched from the manager');
  } else {
    log.warn('gossip is NOT encrypted (not in a cluster, no gossip.keyFile): cluster init / join hand out a key');
  }
}
