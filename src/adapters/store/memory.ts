/**
 * In-memory Store: the fake for unit tests and `--dry-run`. Same semantics as the durable
 * backends (store-wide revision, per-key revision, atomic txn, ordered watch); values are
 * stored encoded so callers can never mutate stored state through a returned object.
 */
import { MeshError } from '../../core/errors.js';
import { checkFence, checkKey, checkOps, checkPrefix, checkRevision, conflict, encodeValue, type KV, type Store, type TxnOp, type TxnOptions, type Unwatch, type WatchEvent } from './store.js';
import { Watchers } from './watchers.js';

export class MemoryStore implements Store {
  readonly backend = 'memory' as const;
  private readonly data = new Map<string, { value: string; revision: number }>();
  private rev = 0;
  private closed = false;
  private readonly watchers: Watchers;

  constructor(opts: { onWatchError?: (e: unknown) => void } = {}) {
    this.watchers = new Watchers(opts.onWatchError ?? ((e) => queueMicrotask(() => { throw e; })));
  }

  private open(): void {
    if (this.closed) throw new MeshError('MESHD_STORE_UNAVAILABLE', 'store is closed');
  }

  async get<T = unknown>(key: string): Promise<KV<T> | undefined> {
    this.open();
    checkKey(key);
    const e = this.data.get(key);
    return e ? { key, value: JSON.parse(e.value) as T, revision: e.revision } : undefined;
  }

  put(key: string, value: unknown): Promise<number> {
    return this.txn([{ op: 'put', key, value }]);
  }

  async delete(key: string): Promise<boolean> {
    this.open();
    checkKey(key);
    if (!this.data.has(key)) return false;
    await this.txn([{ op: 'delete', key }]);
    return true;
  }

  async list<T = unknown>(prefix: string): Promise<KV<T>[]> {
    this.open();
    checkPrefix(prefix);
    const out: KV<T>[] = [];
    for (const [key, e] of this.data) if (key.startsWith(prefix)) out.push({ key, value: JSON.parse(e.value) as T, revision: e.revision });
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return out;
  }

  async compareAndPut(key: string, value: unknown, expected: number): Promise<number> {
    checkRevision(expected, 'expected revision');
    return this.txn([{ op: 'put', key, value, ifRevision: expected }]);
  }

  /** One writer (no election): a fence always holds; its shape is still checked. */
  txn(ops: TxnOp[], opts?: TxnOptions): Promise<number> {
    try {
      this.open();
      checkOps(ops);
      checkFence(opts?.fence);
      const encoded = ops.map((o) => (o.op === 'put' ? encodeValue(o.value) : undefined));
      for (const o of ops) {
        if (o.ifRevision === undefined) continue;
        const actual = this.data.get(o.key)?.revision ?? 0;
        if (actual !== o.ifRevision) throw conflict(o.key, o.ifRevision, actual);
      }
      const events: WatchEvent[] = [];
      const rev = this.rev + 1;
      let changed = false;
      ops.forEach((o, i) => {
        if (o.op === 'put') {
          this.data.set(o.key, { value: encoded[i]!, revision: rev });
          events.push({ type: 'put', key: o.key, value: JSON.parse(encoded[i]!), revision: rev });
          changed = true;
        } else if (this.data.delete(o.key)) {
          events.push({ type: 'delete', key: o.key, revision: rev });
          changed = true;
        }
      });
      if (changed) this.rev = rev;
      this.watchers.emit(events);
      return Promise.resolve(this.rev);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async watch(prefix: string, cb: (ev: WatchEvent) => void): Promise<Unwatch> {
    this.open();
    checkPrefix(prefix);
    return this.watchers.add(prefix, cb);
  }

  async revision(): Promise<number> {
    this.open();
    return this.rev;
  }

  close(): Promise<void> {
    this.closed = true;
    this.watchers.clear();
    return Promise.resolve();
  }
}
