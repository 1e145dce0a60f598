/**
 * Which store a manager node runs on, saved next to its identity (<clusterDir>/store.json)
 * so a restarted agent reopens the same one. `sqlite` is the embedded single-manager store
 * (<clusterDir>/state.db); `etcd` is shared by every manager of the cluster.
 *
 * Trust: the cluster's root CA key lives in the store sealed with the cluster data key (see
 * sealed-ca.ts): reading the etcd prefix alone no longer mints certificates, but a writer can
 * still delete or replace records.
 * The etcd endpoints are therefore handed out only to managers (in the answer to a join
 * with a manager token, over TLS pinned to the CA digest of that token), and etcd itself
 * must be reachable only by the managers (client TLS, auth and a firewall in production;
 * the lab runs plaintext etcd inside a lab namespace).
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { MeshError } from '../core/errors.js';
import type { Store } from '../adapters/store/store.js';

export const STORE_CONFIG_FILE = 'store.json';
/** The embedded store's file in the cluster directory. */
export const STORE_FILE = 'state.db';

const etcdUrl = z.string().max(300).refine((s) => {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && u.pathname === '/' && !u.username;
  } catch {
    return false;
  }
}, 'must be an http(s)://host:port URL');

export const storeConfigSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('sqlite') }).strict(),
  z.object({
    kind: z.literal('etcd'),
    endpoints: z.array(etcdUrl).min(1).max(16),
    /** Key prefix of this cluster in etcd; must start and end with '/'. */
    root: z.string().regex(/^\/[\x21-\x7e]{0,200}\/$/, 'must start and end with /').optional(),
  }).strict(),
]);
export type StoreConfig = z.infer<typeof storeConfigSchema>;

/** `--etcd-endpoints` parsing (validation is the schema's), from a light module netctl imports directly. */
export { parseEndpoints } from '../api/etcd-endpoints.js';

/** Validates a store config; failures are MESHD_BAD_CONFIG naming the field. */
export function checkStoreConfig(raw: unknown): StoreConfig {
  const r = storeConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const first = r.error.issues[0]!;
  throw new MeshError('MESHD_BAD_CONFIG', `store ${first.path.join('.') || '(root)'}: ${first.message}`, { field: first.path.join('.') });
}

/** Whether this node hosts a manager: it holds a store config or the embedded store file. */
export function hostsManagerStore(dir: string): boolean {
  return existsSync(join(dir, STORE_CONFIG_FILE)) || existsSync(join(dir, STORE_FILE));
}

export function saveStoreConfig(dir: string, cfg: StoreConfig): void {
  const path = join(dir, STORE_CONFIG_FILE);
  writeFileSync(path, `${JSON.stringify(checkStoreConfig(cfg), null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** The saved config; a directory with only state.db (older layout) is sqlite. */
export function loadStoreConfig(dir: string): StoreConfig {
  const path = join(dir, STORE_CONFIG_FILE);
  if (!existsSync(path)) return { kind: 'sqlite' };
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new MeshError('MESHD_STORE_CORRUPT', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  return checkStoreConfig(raw);
}

/**
 * Opens the store a config names (sqlite in `dir`). The store adapters are imported here, when
 * a manager opens its store, not when an agent reads store.json: etcd's gRPC stack and the
 * native sqlite binding cost every agent's start otherwise (issue 16 §3).
 */
export async function openStore(dir: string, cfg: StoreConfig): Promise<Store> {
  if (cfg.kind === 'sqlite') return (await import('../adapters/store/sqlite.js')).SqliteStore.open({ path: join(dir, STORE_FILE) });
  const { EtcdStore } = await import('../adapters/store/etcd.js');
  return new EtcdStore({ hosts: cfg.endpoints, ...(cfg.root ? { root: cfg.root } : {}) });
}

/** What a joining manager is told: the etcd endpoints (never for the embedded store). */
export function shareableStore(cfg: StoreConfig): StoreConfig | undefined {
  return cfg.kind === 'etcd' ? cfg : undefined;
}
