/**
 * Store on etcd v3 (the `etcd3` client), for several managers sharing one state.
 * Keys live under `<root>kv/<key>` (root default `/meshd/`, one per cluster), so a test or
 * a second cluster can share an etcd without seeing each other. Revisions are etcd's own
 * (store-wide revision, per-key mod_revision), so the Store semantics map one to one:
 * compare-and-put is a txn comparing mod_revision (or create_revision == 0 for "absent").
 *
 * Leader election: etcd's election recipe (etcd3's Election/Campaign: a key per candidate
 * bound to a lease; the lowest create revision leads). Exactly one manager schedules; if
 * the leader's lease dies (crash, partition longer than the TTL, revoke) the next
 * candidate is elected.
 */
import { Etcd3, type Campaign, type IKeyValue, type IOptions, type IRequestOp, type ICompare, type Watcher } from 'etcd3';
import { MeshError } from '../../core/errors.js';
import {
  checkFence, checkKey, checkOps, checkPrefix, checkRevision, conflict, deposed, encodeValue,
  type KV, type LeaderFence, type Store, type TxnOp, type TxnOptions, type Unwatch, type WatchEvent,
} from './store.js';

export interface EtcdStoreOptions {
  /** etcd client URLs, e.g. ['http://127.0.0.1:2379']. */
  hosts: string[];
  /** Key prefix of this cluster's state; must start and end with '/'. */
  root?: string;
  /** Connection timeout (ms). */
  dialTimeoutMs?: number;
  /** Extra etcd3 options (TLS credentials, auth). */
  client?: Partial<IOptions>;
  onWatchError?: (e: unknown) => void;
}

/** A running candidacy. */
export interface LeaderCampaign {
  readonly candidate: string;
  isLeader(): boolean;
  /** Resolves once this candidate is elected. */
  elected(): Promise<void>;
  /**
   * The fence of this term (its election key and that key's create revision), set when it
   * is elected; undefined before and after (lost, resigned). Writes that must only land
   * while this candidate leads pass it to `txn(ops, { fence })`.
   */
  fence(): LeaderFence | undefined;
  /** The id of the lease that keeps this candidacy alive. */
  leaseId(): Promise<string>;
  /** Steps down (deletes the candidacy key and revokes its lease). */
  resign(): Promise<void>;
}

export const ELECTION_NAME = 'manager-leader';
/** Leader lease TTL in seconds: a dead leader is replaced within about this long. */
export const DEFAULT_LEADER_TTL_S = 5;

/** The smallest key greater than every key starting with `p` (etcd's prefix range end). */
export function prefixEnd(p: Buffer): Buffer {
  const end = Buffer.from(p);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

function unavailable(e: unknown, what: string): MeshError {
  if (e instanceof MeshError) return e;
  return new MeshError('MESHD_STORE_UNAVAILABLE', `etcd ${what} failed: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
}

export class EtcdStore implements Store {
  readonly backend = 'etcd' as const;
  private readonly client: Etcd3;
  private readonly root: string;
  private readonly kvPrefix: string;
  private readonly watchers = new Set<Watcher>();
  private closed = false;
  private readonly onWatchError: (e: unknown) => void;

  constructor(opts: EtcdStoreOptions) {
    const root = opts.root ?? '/meshd/';
    if (!/^\/[\x21-\x7e]*\/$/.test(root)) throw new MeshError('MESHD_BAD_CONFIG', `etcd root ${JSON.stringify(root)} must start and end with /`);
    if (!opts.hosts.length) throw new MeshError('MESHD_BAD_CONFIG', 'etcd store needs at least one host');
    this.root = root;
    this.kvPrefix = `${root}kv/`;
    this.client = new Etcd3({ hosts: opts.hosts, dialTimeout: opts.dialTimeoutMs ?? 3000, ...opts.client });
    this.onWatchError = opts.onWatchError ?? ((e) => queueMicrotask(() => { throw e; }));
  }

  private k(key: string): Buffer {
    return Buffer.from(this.kvPrefix + key);
  }

  private strip(k: Buffer): string {
    return k.toString('utf8').slice(this.kvPrefix.length);
  }

  private open(): void {
    if (this.closed) throw new MeshError('MESHD_STORE_UNAVAILABLE', 'store is closed');
  }

  private kv<T>(r: IKeyValue): KV<T> {
    return { key: this.strip(r.key), value: JSON.parse(r.value.toString('utf8')) as T, revision: Number(r.mod_revision) };
  }

  async get<T = unknown>(key: string): Promise<KV<T> | undefined> {
    this.open();
    checkKey(key);
    const r = await this.client.kv.range({ key: this.k(key) }).catch((e: unknown) => Promise.reject(unavailable(e, 'get')));
    const first = r.kvs[0];
    return first ? this.kv<T>(first) : undefined;
  }

  put(key: string, value: unknown): Promise<number> {
    return this.txn([{ op: 'put', key, value }]);
  }

  async delete(key: string): Promise<boolean> {
    this.open();
    checkKey(key);
    const r = await this.client.kv.deleteRange({ key: this.k(key) }).catch((e: unknown) => Promise.reject(unavailable(e, 'delete')));
    return Number(r.deleted) > 0;
  }

  async list<T = unknown>(prefix: string): Promise<KV<T>[]> {
    this.open();
    checkPrefix(prefix);
    const key = this.k(prefix);
    const r = await this.client.kv.range({ key, range_end: prefixEnd(key), sort_order: 'Ascend', sort_target: 'Key' })
      .catch((e: unknown) => Promise.reject(unavailable(e, 'list')));
    return r.kvs.map((x) => this.kv<T>(x));
  }

  async compareAndPut(key: string, value: unknown, expected: number): Promise<number> {
    checkRevision(expected, 'expected revision');
    return this.txn([{ op: 'put', key, value, ifRevision: expected }]);
  }

  async txn(ops: TxnOp[], opts?: TxnOptions): Promise<number> {
    this.open();
    checkOps(ops);
    const fence = checkFence(opts?.fence);
    const compare: ICompare[] = [];
    const failure: IRequestOp[] = [];
    const conditional: TxnOp[] = [];
    if (fence) {
      // First compare and first failure read: the election key still has this term's create revision.
      const fk = Buffer.from(fence.key);
      compare.push({ key: fk, target: 'Create', result: 'Equal', create_revision: fence.createRevision });
      failure.push({ request_range: { key: fk } });
    }
    const success: IRequestOp[] = ops.map((o) => {
      if (o.ifRevision !== undefined) {
        compare.push(o.ifRevision === 0
          ? { key: this.k(o.key), target: 'Create', result: 'Equal', create_revision: 0 }
          : { key: this.k(o.key), target: 'Mod', result: 'Equal', mod_revision: o.ifRevision });
        failure.push({ request_range: { key: this.k(o.key) } });
        conditional.push(o);
      }
      return o.op === 'put'
        ? { request_put: { key: this.k(o.key), value: Buffer.from(encodeValue(o.value)) } }
        : { request_delete_range: { key: this.k(o.key) } };
    });
    const r = await this.client.kv.txn({ compare, success, failure }).catch((e: unknown) => Promise.reject(unavailable(e, 'txn')));
    if (!r.succeeded) {
      const off = fence ? 1 : 0;
      if (fence) {
        const actual = Number(r.responses[0]?.response_range?.kvs[0]?.create_revision ?? 0);
        if (actual !== fence.createRevision) throw deposed(fence, actual);
      }
      for (let i = 0; i < conditional.length; i++) {
        const o = conditional[i]!;
        const actual = Number(r.responses[i + off]?.response_range?.kvs[0]?.mod_revision ?? 0);
        if (actual !== o.ifRevision) throw conflict(o.key, o.ifRevision!, actual);
      }
      if (!conditional.length) throw new MeshError('MESHD_STORE_CONFLICT', 'etcd txn failed its compares, but none differs on re-read', { key: null });
      throw conflict(conditional[0]!.key, conditional[0]!.ifRevision!, -1);
    }
    return Number(r.header.revision);
  }

  async watch(prefix: string, cb: (ev: WatchEvent) => void, onBroken?: (e: unknown) => void): Promise<Unwatch> {
    this.open();
    checkPrefix(prefix);
    const w = await this.client.watch().prefix(this.kvPrefix + prefix).create().catch((e: unknown) => Promise.reject(unavailable(e, 'watch')));
    this.watchers.add(w);
    w.on('data', (res) => {
      for (const ev of res.events) {
        try {
          if (ev.type === 'Put') cb({ type: 'put', key: this.strip(ev.kv.key), value: JSON.parse(ev.kv.value.toString('utf8')), revision: Number(ev.kv.mod_revision) });
          else cb({ type: 'delete', key: this.strip(ev.kv.key), revision: Number(ev.kv.mod_revision) });
        } catch (e) {
          this.onWatchError(e);
        }
      }
    });
    w.on('error', (e) => (onBroken ?? this.onWatchError)(unavailable(e, 'watch')));
    return async () => {
      this.watchers.delete(w);
      await w.cancel();
    };
  }

  async revision(): Promise<number> {
    this.open();
    const key = Buffer.from(this.kvPrefix);
    const r = await this.client.kv.range({ key, range_end: prefixEnd(key), count_only: true }).catch((e: unknown) => Promise.reject(unavailable(e, 'revision')));
    return Number(r.header.revision);
  }

  /**
   * Runs for leadership as `candidate` (the manager's node id). The returned campaign
   * reports `isLeader()`; `onLost` is called if the lease is lost (the manager must stop
   * scheduling at once and campaign again).
   */
  campaign(candidate: string, opts: { ttlSeconds?: number; onLost?: (e: Error) => void } = {}): LeaderCampaign {
    this.open();
    const election = this.client.namespace(this.root).election(ELECTION_NAME, opts.ttlSeconds ?? DEFAULT_LEADER_TTL_S);
    const c: Campaign = election.campaign(candidate);
    let leader = false;
    let over = false;
    let fence: LeaderFence | undefined;
    let resolveElected!: () => void;
    const electedP = new Promise<void>((r) => (resolveElected = r));
    const lost = (e: Error): void => {
      if (over) return;
      over = true;
      leader = false;
      fence = undefined;
      opts.onLost?.(e);
    };
    c.on('elected', () => {
      // The term's fence: our election key's create revision, read back (a key already gone
      // means the lease died between the election and now: the term is over before it began).
      void (async () => {
        const key = await c.getCampaignKey();
        const r = await this.client.kv.range({ key: Buffer.from(key) });
        const kv = r.kvs[0];
        if (!kv) throw new MeshError('MESHD_NOT_LEADER', `elected, but the election key ${key} is already gone (lease lost)`, { reason: 'deposed', leader: null });
        return { key, createRevision: Number(kv.create_revision) };
      })().then((f) => {
        if (over) return;
        fence = f;
        leader = true;
        resolveElected();
      }, (e: unknown) => {
        lost(unavailable(e, 'read election key'));
        void c.resign().catch(() => undefined);
      });
    });
    c.on('error', (e) => lost(e));
    return {
      candidate,
      isLeader: () => leader,
      elected: () => electedP,
      fence: () => (leader ? fence : undefined),
      leaseId: async () => {
        const key = await c.getCampaignKey();
        return key.slice(key.lastIndexOf('/') + 1);
      },
      resign: async () => {
        over = true;
        leader = false;
        fence = undefined;
        await c.resign();
      },
    };
  }

  /**
   * Calls `cb` with the current leader's candidate id whenever it changes (undefined:
   * no leader). Returns a function that stops observing. (We watch the election prefix
   * and re-read the leader on every change, serialized; etcd3's ElectionObserver loses
   * track of the leader when it starts with no candidate.)
   */
  async onLeaderChange(cb: (leader: string | undefined) => void): Promise<() => Promise<void>> {
    this.open();
    const w = await this.client.watch().prefix(`${this.root}election/${ELECTION_NAME}/`).create()
      .catch((e: unknown) => Promise.reject(unavailable(e, 'observe election')));
    this.watchers.add(w);
    let current: string | undefined | null = null;
    let chain = Promise.resolve();
    let stopped = false;
    const refresh = (): void => {
      chain = chain.then(async () => {
        if (stopped) return;
        try {
          const l = await this.leader();
          if (!stopped && l !== current) {
            current = l;
            cb(l);
          }
        } catch (e) {
          this.onWatchError(e);
        }
      });
    };
    w.on('data', () => refresh());
    w.on('error', (e) => this.onWatchError(unavailable(e, 'observe election')));
    refresh();
    await chain;
    return async () => {
      stopped = true;
      this.watchers.delete(w);
      await w.cancel();
    };
  }

  /** The current leader's candidate id, if any. */
  leader(): Promise<string | undefined> {
    return this.client.namespace(this.root).election(ELECTION_NAME).leader().catch((e: unknown) => Promise.reject(unavailable(e, 'leader')));
  }

  /** Revokes a lease by id (operator action: force a dead manager's candidacy out). */
  async revokeLease(id: string): Promise<void> {
    await this.client.leaseClient.leaseRevoke({ ID: id }).catch((e: unknown) => Promise.reject(unavailable(e, 'lease revoke')));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.watchers].map((w) => w.cancel()));
    this.watchers.clear();
    this.client.close();
  }
}
