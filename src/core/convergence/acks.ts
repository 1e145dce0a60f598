/**
 * Convergence receipts, acking half (pure). The drain acks (core/drain/acks.ts) confirm removals;
 * these confirm additions and changes: every node says, per service, "my LB and my DNS carry these
 * versions of its endpoint records" (the v2 snapshot of snapshot.ts: one table entry per node ×
 * service, replaced by each newer snapshot, never deleted per change).
 *
 * A change is one (network, task) record reaching a new VERSION while `running`: its first
 * publication as running (addition), or a later update of what the LB or DNS programs (VIP, IP,
 * ports, aliases, endpoint mode, names) — the version is {@link recordRev}, a hash of those fields.
 * A version is PROGRAMMED here once the LB transaction holding it was applied and the DNS registry
 * answers it (the shell asks both through `programmed`); from then on it is in this node's snapshot
 * of the record's service until the record changes again, leaves `running` or is deleted.
 *
 * Writes are coalesced: a snapshot key is rewritten when what it lists changed (a (task, rev) in or
 * out), at most once per `minWriteMs` (the first change after a quiet spell goes out at once: the
 * alone case pays nothing; under churn one write carries everything programmed meanwhile). A bucket
 * that became empty is deleted once — the only delete, per service and node, not per change.
 * Bounded: candidates are one per record this node holds; written keys one per service bucket.
 */
import {
  CONVERGENCE_ACK_TABLE, bucketCount, bucketOf, encodeSnapshot, snapshotKey, taskHash, type ProgrammedSnapshot,
} from './snapshot.js';
import { isFiniteNumber, jsonRecordCodec } from '../json-record.js';

export { CONVERGENCE_ACK_TABLE };
/** How long a collector keeps a node's ack after its last mention (ms): long enough for netctl and `debug convergence`. */
export const DEFAULT_CONVERGENCE_ACK_TTL_MS = 120_000;
/** A snapshot key is rewritten at most this often (ms), and at most every {@link ackWriteIntervalMs} on larger networks. */
export const DEFAULT_CONVERGENCE_MIN_WRITE_MS = 100;
/**
 * Per member of the network, ms between two writes of one snapshot key under churn. Every member rewrites its
 * snapshot of a busy service, so the network carries members × 1000 / interval snapshot writes a second: a fixed
 * 100 ms gave 100/s on a 10-node lab at 100 endpoint changes/s, and acks were two thirds of the table bytes
 * queued for gossip (endpoint records one third), evicting news from full broadcast queues. Scaled by members,
 * the network carries at most 1000 / ACK_WRITE_MS_PER_MEMBER = 20 snapshot writes a second per service bucket
 * at any size. What it delays is only the receipt, not the programming: an ack carries when its node programmed
 * each version (measured times are unchanged), and the first write after a quiet spell goes out at once.
 */
export const ACK_WRITE_MS_PER_MEMBER = 50;

/** Least ms between two writes of one snapshot key on a network of `members` nodes (table-tested). */
export function ackWriteIntervalMs(minWriteMs: number, members: number): number {
  return Math.max(minWriteMs, Math.max(0, Math.floor(members)) * ACK_WRITE_MS_PER_MEMBER);
}

/** The record fields whose change the LB or DNS must program. */
export interface RevFields {
  taskName: string;
  serviceName: string;
  networkName: string;
  ip: string;
  vip: string | null;
  endpointMode: string;
  aliases: readonly string[];
  ports: ReadonlyArray<{ proto: string; target: number; published?: number | undefined; mode?: string | undefined; policy?: string | undefined }>;
}

/** Version of a record as the LB and DNS see it: FNV-1a (32 bit, hex) of its programmed fields. */
export function recordRev(r: RevFields): string {
  const s = JSON.stringify([r.taskName, r.serviceName, r.networkName, r.ip, r.vip, r.endpointMode, [...r.aliases],
    r.ports.map((p) => [p.proto, p.target, p.published ?? null, p.mode ?? null, p.policy ?? null])]);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/**
 * The v1 ack (sessions ≤ 6): one entry per change, `${task}/${node}`. Only DECODED now, so acks from
 * nodes still running the old format are counted (mixed clusters); encode is kept for the tests.
 * Wall-clock times (epoch ms): comparable across nodes as far as their clocks agree.
 */
export interface ConvergenceAck {
  v: 1;
  node: string;
  service: string;
  rev: string;
  /** When this node first saw this version (epoch ms); the earliest over all nodes ≈ publication. */
  seenAt: number;
  /** From seeing it to LB applied + DNS answering, on this node (ms, monotonic clock). */
  ms: number;
}

const ackCodec = jsonRecordCodec<ConvergenceAck>((o) =>
  (o.v === 1 && typeof o.node === 'string' && typeof o.service === 'string' && typeof o.rev === 'string'
    && isFiniteNumber(o.seenAt) && isFiniteNumber(o.ms) && o.ms >= 0
    ? { v: 1, node: o.node, service: o.service, rev: o.rev, seenAt: o.seenAt, ms: o.ms }
    : null));

export function encodeConvergenceAck(a: ConvergenceAck): Uint8Array {
  return ackCodec.encode(a);
}

/** Null when the bytes are not a v1 ack (from the network: validated, never throws). */
export function decodeConvergenceAck(bytes: Uint8Array): ConvergenceAck | null {
  return ackCodec.decode(bytes);
}

export type ConvergenceAction =
  | { type: 'write'; network: string; key: string; snapshot: ProgrammedSnapshot }
  | { type: 'delete'; network: string; key: string; why: 'empty' };

interface Candidate {
  network: string;
  taskId: string;
  hash: string;
  serviceId: string;
  service: string;
  rev: string;
  /** Clock ms / wall ms when this version was first seen here. */
  since: number;
  sinceWall: number;
  /** Wall ms when this version was programmed here; null while it is not. */
  programmedWall: number | null;
}

interface Written {
  network: string;
  /** What the entry lists, times aside (`hash rev` sorted): a rewrite is due when it differs. */
  content: string;
  at: number;
}

export interface ConvergenceAcksOptions {
  minWriteMs?: number;
}

/**
 * One node's acks as a state machine: fed the records it holds (`record`, `gone`, `leftNetwork`),
 * asked to `evaluate(now, wall, programmed)`, it returns the table writes (and rare deletes) to run.
 * `nextDeadline()` says when a write held back by `minWriteMs` is due.
 */
export class ConvergenceAcks {
  private readonly cands = new Map<string, Candidate>();
  /** `${network}\0${key}` → the snapshot entries this node wrote and holds (the same key exists once per network). */
  private readonly written = new Map<string, Written & { key: string; group: string }>();
  /**
   * Indexes so one change costs O(its service), not O(every record held) (issue 18: `evaluate` runs after
   * every table event and LB apply, and rebuilt every service's snapshot content from all candidates):
   * candidates not programmed yet; group `${network}\0${serviceId}` → its candidates; group → its written
   * keys; groups whose snapshot may differ from what was written (changed, or held back by `minWriteMs`).
   */
  private readonly pending = new Set<Candidate>();
  private readonly groups = new Map<string, Set<Candidate>>();
  private readonly writtenOf = new Map<string, Set<string>>();
  private readonly dirty = new Set<string>();
  private due: number | undefined;
  readonly counters = { programmed: 0, writes: 0, deletes: 0, held: 0 };
  private readonly minWriteMs: number;

  constructor(readonly node: string, o: ConvergenceAcksOptions = {}) {
    this.minWriteMs = o.minWriteMs ?? DEFAULT_CONVERGENCE_MIN_WRITE_MS;
  }

  private join(c: Candidate): void {
    const g = `${c.network}\0${c.serviceId}`;
    let set = this.groups.get(g);
    if (!set) this.groups.set(g, (set = new Set()));
    set.add(c);
    this.dirty.add(g);
  }

  private part(c: Candidate): void {
    const g = `${c.network}\0${c.serviceId}`;
    const set = this.groups.get(g);
    set?.delete(c);
    if (set && set.size === 0) this.groups.delete(g);
    this.dirty.add(g);
  }

  /** A record this node holds, as decoded from the `endpoints` table. */
  record(network: string, taskId: string, serviceId: string, service: string, state: string, rev: string, now: number, wall: number): void {
    const k = `${network}\0${taskId}`;
    const c = this.cands.get(k);
    if (state !== 'running') return this.gone(network, taskId);
    if (!c) {
      const n: Candidate = { network, taskId, hash: taskHash(taskId), serviceId, service, rev, since: now, sinceWall: wall, programmedWall: null };
      this.cands.set(k, n);
      this.pending.add(n);
      this.join(n);
    } else if (c.rev !== rev || c.serviceId !== serviceId) {
      this.part(c);
      Object.assign(c, { rev, serviceId, service, since: now, sinceWall: wall, programmedWall: null });
      this.pending.add(c);
      this.join(c);
    }
  }

  /** The record was deleted or left `running`: it leaves the next snapshot (nothing is deleted for it). */
  gone(network: string, taskId: string): void {
    const k = `${network}\0${taskId}`;
    const c = this.cands.get(k);
    if (!c) return;
    this.cands.delete(k);
    this.pending.delete(c);
    this.part(c);
  }

  /** This node left the network: its entries there went with it. */
  leftNetwork(network: string): void {
    for (const [k, c] of this.cands) {
      if (c.network !== network) continue;
      this.cands.delete(k);
      this.pending.delete(c);
      this.part(c);
    }
    for (const [k, w] of this.written) {
      if (w.network !== network) continue;
      this.written.delete(k);
      this.writtenOf.get(w.group)?.delete(k);
      if (this.writtenOf.get(w.group)?.size === 0) this.writtenOf.delete(w.group);
    }
  }

  /** Versions seen and not programmed yet (waiting for the LB or DNS). */
  outstanding(now: number): Array<{ network: string; task: string; forMs: number }> {
    const out: Array<{ network: string; task: string; forMs: number }> = [];
    for (const c of this.cands.values()) if (c.programmedWall === null) out.push({ network: c.network, task: c.taskId, forMs: Math.round(now - c.since) });
    return out;
  }

  /** How many versions are outstanding (O(1): the shell asks after every evaluation). */
  outstandingCount(): number {
    return this.pending.size;
  }

  /** Versions programmed here (what the snapshots list). */
  liveAcks(): number {
    return this.cands.size - this.pending.size;
  }

  /**
   * The writes and deletes due: the pending versions are asked about (`programmed`), then only the services
   * whose snapshot may have changed are rebuilt (O(changed services × their records), not O(records held)).
   * `members(network)`: nodes on the network, for {@link ackWriteIntervalMs} (absent: `minWriteMs` alone).
   */
  evaluate(now: number, wall: number, programmed: (network: string, taskId: string, rev: string) => boolean, members?: (network: string) => number): ConvergenceAction[] {
    for (const c of this.pending) {
      if (!programmed(c.network, c.taskId, c.rev)) continue;
      c.programmedWall = wall;
      this.counters.programmed++;
      this.pending.delete(c);
      this.dirty.add(`${c.network}\0${c.serviceId}`);
    }
    const out: ConvergenceAction[] = [];
    this.due = undefined;
    for (const g of [...this.dirty]) {
      this.dirty.delete(g);
      const list: Candidate[] = [];
      for (const c of this.groups.get(g) ?? []) if (c.programmedWall !== null) list.push(c);
      const want = new Map<string, { network: string; key: string; items: Candidate[]; service: string }>();
      const nb = bucketCount(list.length);
      for (const c of list) {
        const key = snapshotKey(c.serviceId, bucketOf(c.hash, nb), this.node);
        const wk = `${c.network}\0${key}`;
        const w = want.get(wk);
        if (w) w.items.push(c);
        else want.set(wk, { network: c.network, key, items: [c], service: c.service });
      }
      for (const [wk, w] of want) {
        const key = w.key;
        w.items.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
        const content = w.items.map((c) => c.hash + c.rev).join(',');
        const prev = this.written.get(wk);
        if (prev && prev.content === content) continue;
        const interval = members ? ackWriteIntervalMs(this.minWriteMs, members(w.network)) : this.minWriteMs;
        if (prev && now - prev.at < interval) {
          this.counters.held++;
          const at = prev.at + interval;
          if (this.due === undefined || at < this.due) this.due = at;
          this.dirty.add(g); // still differs: looked at again on every evaluation until written
          continue;
        }
        const snapshot: ProgrammedSnapshot = {
          v: 2, node: this.node, service: w.service, at: wall,
          items: w.items.map((c) => ({ task: c.hash, rev: c.rev, tookMs: c.programmedWall! - c.sinceWall, agoMs: wall - c.programmedWall! })),
        };
        out.push({ type: 'write', network: w.network, key, snapshot });
        this.written.set(wk, { network: w.network, key, content, at: now, group: g });
        let keys = this.writtenOf.get(g);
        if (!keys) this.writtenOf.set(g, (keys = new Set()));
        keys.add(wk);
        this.counters.writes++;
      }
      for (const wk of [...(this.writtenOf.get(g) ?? [])]) {
        if (want.has(wk)) continue;
        const w = this.written.get(wk)!;
        out.push({ type: 'delete', network: w.network, key: w.key, why: 'empty' });
        this.written.delete(wk);
        this.writtenOf.get(g)!.delete(wk);
        this.counters.deletes++;
      }
      if (this.writtenOf.get(g)?.size === 0) this.writtenOf.delete(g);
    }
    return out;
  }

  /** A write or delete the shell could not run (a table limit, say): forgotten, so the next evaluation retries it. */
  failed(network: string, key: string): void {
    const wk = `${network}\0${key}`;
    const w = this.written.get(wk);
    if (!w) return;
    this.written.delete(wk);
    this.writtenOf.get(w.group)?.delete(wk);
    if (this.writtenOf.get(w.group)?.size === 0) this.writtenOf.delete(w.group);
    this.dirty.add(w.group);
  }

  /** When a write held back by `minWriteMs` is due (clock ms), if any. */
  nextDeadline(): number | undefined {
    return this.due;
  }
}
