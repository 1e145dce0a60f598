/**
 * The manager's state store: a small revisioned key-value interface shaped like etcd's
 * (so the etcd backend is a thin mapping and the others copy its semantics):
 *
 * - keys are namespaced: `<namespace>/<rest>` (`nodes/<id>`, `services/<id>`, `tasks/<id>`,
 *   `networks/<id>`, `cluster/ca`, ...); values are JSON documents;
 * - one store-wide revision counter increases on every write (put, delete, txn); each key
 *   remembers the revision of its last write (`revision`) — compare-and-put uses it;
 * - `txn` applies several writes atomically, after checking every condition (all or none);
 * - `watch(prefix)` delivers every committed change under the prefix, in revision order.
 *
 * Backends: memory (fake for tests), sqlite (embedded default), etcd (several managers).
 * Every backend passes test/compliance/store.ts.
 */
import { MeshError } from '../../core/errors.js';

export interface KV<T = unknown> {
  key: string;
  value: T;
  /** Store revision of the last write to this key. */
  revision: number;
}

/**
 * A write in a transaction. `ifRevision`: the key's current revision must equal it;
 * `0` means "the key must not exist" (create-only).
 */
export type TxnOp =
  | { op: 'put'; key: string; value: unknown; ifRevision?: number }
  | { op: 'delete'; key: string; ifRevision?: number };

/**
 * Leadership fence for a write (etcd's election recipe). A leader whose lease expired may
 * not have noticed yet (a long GC or SIGSTOP pause, a partition shorter than its keepalive
 * retry): its next write must not land after another manager was elected. A fenced write
 * commits only while `key` — the writer's election key, a raw backend key outside the KV
 * namespace — still exists with the create revision it had when the writer was elected
 * (the key dies with the lease, and a new candidacy gets a new key, so "same key, same
 * create revision" is "still the same term"). Otherwise the write fails with
 * MESHD_NOT_LEADER, details `{ reason: 'deposed', fence }`, and nothing is written.
 * Single-writer backends (memory, sqlite: one manager that always leads) hold every fence.
 */
export interface LeaderFence {
  key: string;
  createRevision: number;
}

export interface TxnOptions {
  /** Commit only while the writer still leads (see LeaderFence). */
  fence?: LeaderFence | undefined;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new value (put only). */
  value?: unknown;
  revision: number;
}

export type Unwatch = () => Promise<void>;

export interface Store {
  readonly backend: 'memory' | 'sqlite' | 'etcd';
  get<T = unknown>(key: string): Promise<KV<T> | undefined>;
  /** Writes unconditionally; returns the new store revision. */
  put(key: string, value: unknown): Promise<number>;
  /** Deletes; returns whether the key existed. */
  delete(key: string): Promise<boolean>;
  /** Every key starting with `prefix`, sorted by key. */
  list<T = unknown>(prefix: string): Promise<KV<T>[]>;
  /**
   * Writes only if the key's revision equals `expected` (0 = must not exist);
   * otherwise MESHD_STORE_CONFLICT with details {key, expected, actual}. Returns the new revision.
   */
  compareAndPut(key: string, value: unknown, expected: number): Promise<number>;
  /**
   * Applies all ops atomically if every condition holds, else MESHD_STORE_CONFLICT and no
   * change; with `opts.fence`, only while the writer still leads (else MESHD_NOT_LEADER).
   */
  txn(ops: TxnOp[], opts?: TxnOptions): Promise<number>;
  /**
   * Calls `cb` for every change under `prefix` after this call, in revision order. `onBroken`: this
   * watch's stream failed and delivers nothing more (etcd unreachable past the client's own retries) —
   * the caller opens a new one; without it the store's `onWatchError` hears it. The in-process stores'
   * watches never break.
   */
  watch(prefix: string, cb: (ev: WatchEvent) => void, onBroken?: (e: unknown) => void): Promise<Unwatch>;
  /** The current store revision (0 for an empty store). */
  revision(): Promise<number>;
  close(): Promise<void>;
}

/** Upper bounds: a key fits a log line; a value is a spec, not a blob. */
export const MAX_KEY_LENGTH = 512;
export const MAX_VALUE_BYTES = 1 << 20;
export const MAX_TXN_OPS = 1024;

const KEY_RE = /^[a-z][a-z0-9-]*\/[\x21-\x7e]+$/;

/** Throws MESHD_BAD_ARGUMENT unless `key` is `<namespace>/<rest>` of printable ASCII. */
export function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length > MAX_KEY_LENGTH || !KEY_RE.test(key)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid store key ${JSON.stringify(key)?.slice(0, 80)}: want <namespace>/<name>, printable ASCII, at most ${MAX_KEY_LENGTH} chars`);
  }
  return key;
}

/** A prefix may be a namespace with or without the slash (`nodes/`, `cluster/tokens`); `''` = all. */
export function checkPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length > MAX_KEY_LENGTH || !/^[\x21-\x7e]*$/.test(prefix)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid store prefix ${JSON.stringify(prefix)?.slice(0, 80)}`);
  }
  return prefix;
}

/** JSON-encodes a value with the size bound; undefined and non-JSON values are refused. */
export function encodeValue(value: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `store value is not JSON-serializable: ${(e as Error).message}`);
  }
  if (s === undefined) throw new MeshError('MESHD_BAD_ARGUMENT', 'store value must not be undefined');
  if (Buffer.byteLength(s) > MAX_VALUE_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `store value over ${MAX_VALUE_BYTES} bytes`);
  return s;
}

export function checkRevision(r: unknown, what = 'revision'): number {
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 0) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} must be a non-negative integer`);
  return r;
}

export function checkOps(ops: unknown): TxnOp[] {
  if (!Array.isArray(ops) || ops.length === 0 || ops.length > MAX_TXN_OPS) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `txn needs 1..${MAX_TXN_OPS} ops`);
  }
  const seen = new Set<string>();
  for (const o of ops as TxnOp[]) {
    if (!o || (o.op !== 'put' && o.op !== 'delete')) throw new MeshError('MESHD_BAD_ARGUMENT', 'txn op must be put or delete');
    checkKey(o.key);
    if (seen.has(o.key)) throw new MeshError('MESHD_BAD_ARGUMENT', `txn touches ${o.key} twice`);
    seen.add(o.key);
    if (o.ifRevision !== undefined) checkRevision(o.ifRevision, 'ifRevision');
  }
  return ops as TxnOp[];
}

/** Validates a fence's shape (every backend, even those that hold it trivially). */
export function checkFence(f: unknown): LeaderFence | undefined {
  if (f === undefined) return undefined;
  const o = f as Partial<LeaderFence> | null;
  if (!o || typeof o.key !== 'string' || !o.key.length || o.key.length > MAX_KEY_LENGTH || typeof o.createRevision !== 'number'
    || !Number.isSafeInteger(o.createRevision) || o.createRevision <= 0) {
    throw new MeshError('MESHD_BAD_ARGUMENT', 'a leader fence needs an election key and its create revision (a positive integer)');
  }
  return o as LeaderFence;
}

/** The refusal of a fenced write whose writer no longer leads. */
export function deposed(fence: LeaderFence, actualCreateRevision: number): MeshError {
  return new MeshError('MESHD_NOT_LEADER', actualCreateRevision === 0
    ? `write refused: this manager's leadership ended (its election key ${fence.key} is gone: the lease expired or was revoked); another manager may lead now`
    : `write refused: this manager's election key ${fence.key} is from another term (create revision ${actualCreateRevision}, elected at ${fence.createRevision})`,
  { reason: 'deposed', leader: null, fence: { ...fence }, actualCreateRevision });
}

export function conflict(key: string, expected: number, actual: number): MeshError {
  return new MeshError('MESHD_STORE_CONFLICT', `store key ${key} is at revision ${actual}, expected ${expected}`, { key, expected, actual });
}
