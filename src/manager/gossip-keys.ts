/**
 * The cluster's gossip keyring as the manager keeps it (issue 16 §4, swarm's "encrypted by
 * default"): `cluster init` stores the first manager's keyring at `cluster/gossip-keys`, every
 * join answer carries it (over the mTLS join channel, never argv or logs), and agents pull it
 * (`GET /v1/gossip-keys`, node access) so a node of a cluster always gossips with the cluster's key.
 *
 * At rest: the store has no encryption mechanism today (the CA key sits in it the same way), so
 * the keyring is as protected as the store's files / etcd access — not encrypted at rest.
 */
import { MeshError } from '../core/errors.js';

/** AES-256: 32 bytes, base64. */
const KEY_B64 = /^[A-Za-z0-9+/]{43}=$/;
/** More keys than a rotation ever needs means a damaged record. */
const MAX_KEYS = 8;

export interface GossipKeysRecord {
  /** Base64 keys, the primary (used to encrypt) first. */
  keys: string[];
}

/** Checks a keyring (from the store or an agent): 1–8 distinct base64 32-byte keys. */
export function checkGossipKeys(v: unknown, what: string): string[] {
  const bad = (why: string): never => {
    throw new MeshError(what === 'store' ? 'MESHD_STORE_CORRUPT' : 'MESHD_BAD_ARGUMENT', `gossip keyring (${what}) ${why}`);
  };
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_KEYS) return bad(`must be 1–${MAX_KEYS} keys`);
  for (const k of v) if (typeof k !== 'string' || !KEY_B64.test(k)) bad('holds a key that is not base64 of 32 bytes');
  if (new Set(v).size !== v.length) bad('holds a key twice');
  return v as string[];
}

/** The stored record's keys; undefined when the cluster has none (made before this feature). */
export function parseGossipKeysRecord(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  return checkGossipKeys((v as Partial<GossipKeysRecord>).keys, 'store');
}
