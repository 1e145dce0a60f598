/**
 * The gossip keyring's persistence and API. Keys arrive in request bodies (read by netctl
 * from stdin or a file — never argv) and are persisted in dataDir with mode 0600, so a
 * restarted agent keeps the keys it was rotated to. The API only ever shows fingerprints.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

export class KeyStore {
  readonly keyring: Keyring | undefined;
  private readonly file: string;

  constructor(dataDir: string, clusterName: string, keyFile?: string) {
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
    this.keyring = keys ? new Keyring(clusterName, keys[0]!, keys.slice(1)) : undefined;
    if (keys) this.persist();
  }

  cipher(onDecryptFail?: () => void): PacketCipher | undefined {
    const kr = this.keyring;
    if (!kr) return undefined;
    return {
      seal: (plain) => kr.encrypt(plain),
      open: (sealed) => {
        const r = kr.decrypt(sealed);
        if (!r.ok) onDecryptFail?.();
        return r.ok ? { ok: true, bytes: r.plain } : { ok: false, reason: 'decrypt' };
      },
    };
  }

  private persist(): void {
    if (!this.keyring) return;
    mkdirSync(join(this.file, '..'), { recursive: true });
    const text = this.keyring.keys().map((k) => Buffer.from(k).toString('base64')).join('\n') + '\n';
    writeFileSync(this.file + '.tmp', text, { mode: 0o600 });
    renameSync(this.file + '.tmp', this.file);
  }

  list(): { encrypted: boolean; keys: Array<{ fingerprint: string; primary: boolean }> } {
    if (!this.keyring) return { encrypted: false, keys: [] };
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
