/**
 * Embedded Store on SQLite (better-sqlite3): the default for a single manager.
 *
 * Durability: WAL journal, synchronous=FULL (a write returns after its commit is on disk),
 * every write one SQLite transaction. Single process: watchers are in-process, so one file
 * belongs to one manager (the file is 0600 in the manager's data directory).
 *
 * Refusing to lose state: an existing file is checked before use, and any doubt makes
 * `open` throw MESHD_STORE_CORRUPT naming the file — it is never recreated or repaired
 * silently:
 *  - the SQLite header magic and a minimum size (a truncated or garbled file);
 *  - `PRAGMA integrity_check` (page-level damage);
 *  - the schema version row (a foreign SQLite file, or an unknown newer schema);
 *  - a content checksum: XOR of sha256(key, value, revision) over every row, kept in the
 *    meta table inside each transaction and recomputed on open (damage inside a value
 *    that page checks cannot see), and the stored revision ≥ every row's revision.
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { MeshError } from '../../core/errors.js';
import { checkFence, checkKey, checkOps, checkPrefix, checkRevision, conflict, encodeValue, type KV, type Store, type TxnOp, type TxnOptions, type Unwatch, type WatchEvent } from './store.js';
import { Watchers } from './watchers.js';

/** The part of better-sqlite3's API we use (the package ships no types). */
export interface Statement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
  iterate(...params: unknown[]): Iterable<unknown>;
}
export interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(fn: (...a: A) => R): (...a: A) => R;
  close(): void;
}
/**
 * The connection with each SQL text compiled once: better-sqlite3's prepare() compiles on every call, and
 * the store's handful of statements ran per get/list/txn — in a profile of a busy manager (n1 of a 10-node
 * lab under churn, 25 s) `Statement` was 1.07 s of self time, ~4 % of its main thread. A statement is
 * reusable; none of the cached ones is iterated (iterate() keeps a statement busy until it ends), and they go
 * with the connection on close().
 */
export function withStatementCache(db: Database): Database {
  const cache = new Map<string, Statement>();
  return {
    prepare: (sql) => {
      let st = cache.get(sql);
      if (!st) {
        st = db.prepare(sql);
        cache.set(sql, st);
      }
      return st;
    },
    exec: (sql) => db.exec(sql),
    pragma: (sql, opts) => db.pragma(sql, opts),
    transaction: (fn) => db.transaction(fn),
    close: () => {
      cache.clear();
      db.close();
    },
  };
}
type DatabaseCtor = new (path: string, opts?: { fileMustExist?: boolean; timeout?: number }) => Database;

export const SCHEMA_VERSION = 1;
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
/** A SQLite database is at least one 512-byte page plus its 100-byte header. */
const MIN_FILE_BYTES = 512;
const ZERO_SUM = '0'.repeat(64);

function rowHash(key: string, value: string, revision: number): Buffer {
  return createHash('sha256').update(key).update('\0').update(value).update('\0').update(String(revision)).digest();
}

function xorHex(sumHex: string, h: Buffer): string {
  const a = Buffer.from(sumHex, 'hex');
  for (let i = 0; i < 32; i++) a[i] = a[i]! ^ h[i]!;
  return a.toString('hex');
}

function corrupt(path: string, why: string, cause?: unknown): MeshError {
  return new MeshError('MESHD_STORE_CORRUPT',
    `state store ${path} is corrupt or truncated (${why}); refusing to start so nothing is lost silently — restore it from a backup, or move it away to start a new cluster state`,
    { path, reason: why }, cause === undefined ? undefined : { cause });
}

export interface SqliteStoreOptions {
  path: string;
  /** Where exceptions thrown by watch callbacks go (default: rethrown asynchronously). */
  onWatchError?: (e: unknown) => void;
}

export class SqliteStore implements Store {
  readonly backend = 'sqlite' as const;
  private readonly watchers: Watchers;
  private closed = false;

  private constructor(
    private readonly db: Database,
    readonly path: string,
    onWatchError: (e: unknown) => void,
  ) {
    this.watchers = new Watchers(onWatchError);
  }

  /** Opens (or creates, if the file does not exist) a store; see the file comment for checks. */
  static open(opts: SqliteStoreOptions): SqliteStore {
    const { path } = opts;
    const existed = existsSync(path);
    if (existed) checkHeader(path);
    else mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const Ctor = createRequire(import.meta.url)('better-sqlite3') as DatabaseCtor;
    let db: Database;
    try {
      db = new Ctor(path, { fileMustExist: existed, timeout: 5000 });
    } catch (e) {
      if (existed) throw corrupt(path, `cannot open: ${(e as Error).message}`, e);
      throw new MeshError('MESHD_STORE_UNAVAILABLE', `cannot create state store ${path}: ${(e as Error).message}`, { path }, { cause: e });
    }
    try {
      if (!existed) chmodSync(path, 0o600);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      if (existed) verify(db, path);
      else initSchema(db);
    } catch (e) {
      db.close();
      if (e instanceof MeshError) throw e;
      throw corrupt(path, (e as Error).message, e);
    }
    return new SqliteStore(withStatementCache(db), path, opts.onWatchError ?? ((e) => queueMicrotask(() => { throw e; })));
  }

  private open(): void {
    if (this.closed) throw new MeshError('MESHD_STORE_UNAVAILABLE', `store ${this.path} is closed`);
  }

  get<T = unknown>(key: string): Promise<KV<T> | undefined> {
    return attempt(() => {
      this.open();
      checkKey(key);
      const r = this.db.prepare('SELECT value, revision FROM kv WHERE key = ?').get(key) as { value: string; revision: number } | undefined;
      return r ? { key, value: JSON.parse(r.value) as T, revision: r.revision } : undefined;
    });
  }

  put(key: string, value: unknown): Promise<number> {
    return this.txn([{ op: 'put', key, value }]);
  }

  delete(key: string): Promise<boolean> {
    return attempt(() => {
      this.open();
      checkKey(key);
      const existed = this.db.prepare('SELECT 1 FROM kv WHERE key = ?').get(key) !== undefined;
      if (existed) this.applySync([{ op: 'delete', key }]);
      return existed;
    });
  }

  list<T = unknown>(prefix: string): Promise<KV<T>[]> {
    return attempt(() => {
      this.open();
      checkPrefix(prefix);
      // Range scan [prefix, prefix + U+FFFF) uses the primary key index; startsWith is exact.
      const rows = this.db.prepare('SELECT key, value, revision FROM kv WHERE key >= ? AND key < ? ORDER BY key').all(prefix, `${prefix}\uffff`) as { key: string; value: string; revision: number }[];
      return rows.filter((r) => r.key.startsWith(prefix)).map((r) => ({ key: r.key, value: JSON.parse(r.value) as T, revision: r.revision }));
    });
  }

  compareAndPut(key: string, value: unknown, expected: number): Promise<number> {
    return attempt(() => checkRevision(expected, 'expected revision')).then(() => this.txn([{ op: 'put', key, value, ifRevision: expected }]));
  }

  /** The embedded store has one manager, which always leads: a fence always holds (shape still checked). */
  txn(ops: TxnOp[], opts?: TxnOptions): Promise<number> {
    return attempt(() => {
      checkFence(opts?.fence);
      return this.applySync(ops);
    });
  }

  /** Checks and applies a transaction synchronously (better-sqlite3 is synchronous). */
  private applySync(ops: TxnOp[]): number {
    this.open();
    checkOps(ops);
    const encoded = ops.map((o) => (o.op === 'put' ? encodeValue(o.value) : undefined));
    const events: WatchEvent[] = [];
    const run = this.db.transaction(() => {
      const getRow = this.db.prepare('SELECT value, revision FROM kv WHERE key = ?');
      for (const o of ops) {
        if (o.ifRevision === undefined) continue;
        const actual = (getRow.get(o.key) as { revision: number } | undefined)?.revision ?? 0;
        if (actual !== o.ifRevision) throw conflict(o.key, o.ifRevision, actual);
      }
      const meta = readMeta(this.db);
      const rev = meta.revision + 1;
      let sum = meta.checksum;
      let changed = false;
      ops.forEach((o, i) => {
        const prev = getRow.get(o.key) as { value: string; revision: number } | undefined;
        if (prev) sum = xorHex(sum, rowHash(o.key, prev.value, prev.revision));
        if (o.op === 'put') {
          this.db.prepare('INSERT INTO kv(key, value, revision) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, revision = excluded.revision').run(o.key, encoded[i]!, rev);
          sum = xorHex(sum, rowHash(o.key, encoded[i]!, rev));
          events.push({ type: 'put', key: o.key, value: JSON.parse(encoded[i]!), revision: rev });
          changed = true;
        } else if (prev) {
          this.db.prepare('DELETE FROM kv WHERE key = ?').run(o.key);
          events.push({ type: 'delete', key: o.key, revision: rev });
          changed = true;
        }
      });
      if (!changed) return meta.revision;
      const setMeta = this.db.prepare('UPDATE meta SET v = ? WHERE k = ?');
      setMeta.run(String(rev), 'revision');
      setMeta.run(sum, 'checksum');
      return rev;
    });
    const rev = run();
    this.watchers.emit(events);
    return rev;
  }

  watch(prefix: string, cb: (ev: WatchEvent) => void): Promise<Unwatch> {
    return attempt(() => {
      this.open();
      checkPrefix(prefix);
      return this.watchers.add(prefix, cb);
    });
  }

  revision(): Promise<number> {
    return attempt(() => {
      this.open();
      return readMeta(this.db).revision;
    });
  }

  /** Checkpoints the WAL into the main file (so the file alone holds everything) and closes. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.watchers.clear();
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      this.db.close();
    }
    return Promise.resolve();
  }
}

/** Runs synchronous store code, turning throws into rejections (Store methods never throw synchronously). */
function attempt<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

function checkHeader(path: string): void {
  const size = statSync(path).size;
  if (size < MIN_FILE_BYTES) throw corrupt(path, `file is ${size} bytes, smaller than any SQLite database`);
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(SQLITE_MAGIC.length);
    readSync(fd, head, 0, head.length, 0);
    if (!head.equals(SQLITE_MAGIC)) throw corrupt(path, 'missing SQLite header');
  } finally {
    closeSync(fd);
  }
}

function initSchema(db: Database): void {
  db.transaction(() => {
    db.exec(`CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) STRICT;
             CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, revision INTEGER NOT NULL) STRICT;`);
    const ins = db.prepare('INSERT INTO meta(k, v) VALUES (?, ?)');
    ins.run('schema_version', String(SCHEMA_VERSION));
    ins.run('revision', '0');
    ins.run('checksum', ZERO_SUM);
  })();
}

function readMeta(db: Database): { schema: number; revision: number; checksum: string } {
  const rows = db.prepare('SELECT k, v FROM meta').all() as { k: string; v: string }[];
  const m = new Map(rows.map((r) => [r.k, r.v]));
  const schema = Number(m.get('schema_version'));
  const revision = Number(m.get('revision'));
  const checksum = m.get('checksum') ?? '';
  if (!Number.isSafeInteger(schema) || !Number.isSafeInteger(revision) || revision < 0 || !/^[0-9a-f]{64}$/.test(checksum)) {
    throw new Error('meta rows missing or malformed');
  }
  return { schema, revision, checksum };
}

function verify(db: Database, path: string): void {
  const ic = db.pragma('integrity_check', { simple: true });
  if (ic !== 'ok') throw corrupt(path, `integrity_check: ${String(ic).slice(0, 200)}`);
  const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
  if (!tables.has('meta') || !tables.has('kv')) throw corrupt(path, 'not a meshd store (schema tables missing)');
  let meta: ReturnType<typeof readMeta>;
  try {
    meta = readMeta(db);
  } catch (e) {
    throw corrupt(path, (e as Error).message, e);
  }
  if (meta.schema !== SCHEMA_VERSION) throw corrupt(path, `schema version ${meta.schema}, this build reads ${SCHEMA_VERSION}`);
  let sum = ZERO_SUM;
  let maxRev = 0;
  for (const r of db.prepare('SELECT key, value, revision FROM kv').iterate() as Iterable<{ key: string; value: string; revision: number }>) {
    sum = xorHex(sum, rowHash(r.key, r.value, r.revision));
    if (r.revision > maxRev) maxRev = r.revision;
  }
  if (sum !== meta.checksum) throw corrupt(path, 'content checksum mismatch');
  if (maxRev > meta.revision) throw corrupt(path, `a row has revision ${maxRev} above the store revision ${meta.revision}`);
}
