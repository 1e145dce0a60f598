/**
 * The cluster data key as a manager keeps it: `<dataDir>/data.key` (base64 of 32 bytes, mode
 * 0600, written atomically), never in the store and never logged. `cluster init` makes it; a
 * manager that joins (or a worker promoted to manager) receives it in its mTLS join / renew
 * answer and saves it here; workers never get it.
 *
 * Migration (a cluster made before sealing): a manager that opens a store whose CA record is
 * still unsealed and finds no key file makes a key and re-seals the CA key and the gossip
 * keyring (see Manager.open). A store that is already sealed and a missing key file is a loud
 * refusal (MESHD_DATA_KEY_MISSING) — a new key could never open it.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MeshError } from '../core/errors.js';
import { writeFileAtomic } from '../adapters/fs/atomic.js';
import { DATA_KEY_BYTES, newDataKey, Sealer } from '../adapters/pki/seal.js';

export const DATA_KEY_FILE = 'data.key';

/** Parses a base64 data key (file or join answer); `what` names the source in the error. */
export function parseDataKey(b64: unknown, what: string): Buffer {
  const s = typeof b64 === 'string' ? b64.trim() : '';
  const key = /^[A-Za-z0-9+/]{43}=$/.test(s) ? Buffer.from(s, 'base64') : undefined;
  if (!key || key.length !== DATA_KEY_BYTES) throw new MeshError('MESHD_BAD_CONFIG', `the cluster data key (${what}) is not base64 of ${DATA_KEY_BYTES} bytes`);
  return key;
}

export function hasDataKey(dataDir: string): boolean {
  return existsSync(join(dataDir, DATA_KEY_FILE));
}

/** Saves a data key (0600). */
export function saveDataKey(dataDir: string, b64: string): void {
  parseDataKey(b64, 'to save');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(dataDir, DATA_KEY_FILE), `${b64}\n`, 0o600);
}

/** Makes and saves a new data key; returns its sealer. */
export function createDataKey(dataDir: string): Sealer {
  const key = newDataKey();
  saveDataKey(dataDir, key.toString('base64'));
  return new Sealer(key);
}

/** The saved key's sealer; MESHD_DATA_KEY_MISSING when there is none. */
export function loadDataKey(dataDir: string): Sealer {
  const path = join(dataDir, DATA_KEY_FILE);
  if (!existsSync(path)) {
    throw new MeshError('MESHD_DATA_KEY_MISSING', `${path} is missing: this manager cannot open the cluster's sealed store (copy data.key from another manager of the cluster, mode 0600)`);
  }
  return new Sealer(parseDataKey(readFileSync(path, 'utf8'), path));
}

/** Forgets the data key (a manager demoted to worker). */
export function removeDataKey(dataDir: string): void {
  rmSync(join(dataDir, DATA_KEY_FILE), { force: true });
}
