/**
 * Convergence receipts, acking half (pure). The drain acks (core/drain/acks.ts) confirm removals;
 * these confirm additions and changes: every node says, per endpoint record it holds, "my LB and my
 * DNS carry this version of it".
 *
 * A change is one (network, task) record reaching a new VERSION while `running`: its first
 * publication as running (addition), or a later update of what the LB or DNS programs (VIP, IP,
 * ports, aliases, endpoint mode, names) — the version is {@link recordRev}, a hash of those fields.
 * A node writes `${task}/${node}` into table {@link CONVERGENCE_ACK_TABLE} of the network once its
 * LB transaction holding the record was APPLIED and its DNS registry answers the record (the shell
 * asks both through `programmed`). The value carries when the node first saw that version (its wall
 * clock) and how long programming took, so any node can compute "publication → last node".
 *
 * Bounded: acks are per endpoint per node and the table is replicated to every member, so each ack
 * EXPIRES `ttlMs` after it was written (deleted; the tombstone is reaped like any other), and no
 * node holds more than `maxAcks` live acks (the oldest expire first). An expired version is not
 * acked again; a new version is. A record that leaves `running` or disappears retracts the ack.
 * Candidates are one per record this node holds, so they are bounded by the endpoint table.
 */
import { isFiniteNumber, jsonRecordCodec } from '../json-record.js';

export const CONVERGENCE_ACK_TABLE = 'conv-acks';
/** How long an ack stays in the table (ms): long enough for netctl and `debug convergence`. */
export const DEFAULT_CONVERGENCE_ACK_TTL_MS = 120_000;
/** Live acks one node keeps at most (oldest expire first beyond it). */
export const DEFAULT_CONVERGENCE_MAX_ACKS = 2_000;

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

/** Ack payload. Wall-clock times (epoch ms): comparable across nodes as far as their clocks agree. */
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

/** Null when the bytes are not an ack (from the network: validated, never throws). */
export function decodeConvergenceAck(bytes: Uint8Array): ConvergenceAck | null {
  return ackCodec.decode(bytes);
}

export type ConvergenceAction =
  | { type: 'write'; network: string; key: string; ack: ConvergenceAck }
  | { type: 'delete'; network: string; key: string; why: 'expired' | 'retracted' | 'capped' };

interface Candidate {
  network: string;
  taskId: string;
  service: string;
  rev: string;
  /** Clock ms / wall ms when this version was first seen here. */
  since: number;
  sinceWall: number;
  /** Version acked and still in the table (null: none live). */
  ackedRev: string | null;
  ackedAt: number;
  /** This version was acked once and expired (or was capped): not acked again. */
  doneRev: string | null;
}

export interface ConvergenceAcksOptions {
  ttlMs?: number;
  maxAcks?: number;
}

/**
 * One node's acks as a state machine: fed the records it holds (`record`, `gone`, `leftNetwork`),
 * asked to `evaluate(now, wall, programmed)`, it returns the table writes and deletes to run.
 * `nextDeadline()` is the next expiry; evaluation is also needed after any LB apply or DNS update.
 */
export class ConvergenceAcks {
  private readonly cands = new Map<string, Candidate>();
  /** Retractions to emit on the next evaluate. */
  private readonly retract: Array<{ network: string; key: string }> = [];
  readonly counters = { acks: 0, expired: 0, retracted: 0, capped: 0 };
  private readonly ttlMs: number;
  private readonly maxAcks: number;

  constructor(readonly node: string, o: ConvergenceAcksOptions = {}) {
    this.ttlMs = o.ttlMs ?? DEFAULT_CONVERGENCE_ACK_TTL_MS;
    this.maxAcks = o.maxAcks ?? DEFAULT_CONVERGENCE_MAX_ACKS;
  }

  private ackKey(taskId: string): string {
    return `${taskId}/${this.node}`;
  }

  /** A record this node holds, as decoded from the `endpoints` table. */
  record(network: string, taskId: string, service: string, state: string, rev: string, now: number, wall: number): void {
    const k = `${network}\0${taskId}`;
    const c = this.cands.get(k);
    if (state !== 'running') return this.gone(network, taskId);
    if (!c) {
      this.cands.set(k, { network, taskId, service, rev, since: now, sinceWall: wall, ackedRev: null, ackedAt: 0, doneRev: null });
    } else if (c.rev !== rev) {
      c.rev = rev;
      c.service = service;
      c.since = now;
      c.sinceWall = wall;
    }
  }

  /** The record was deleted or left `running`: its ack (if live) is retracted. */
  gone(network: string, taskId: string): void {
    const k = `${network}\0${taskId}`;
    const c = this.cands.get(k);
    if (!c) return;
    this.cands.delete(k);
    if (c.ackedRev !== null) this.retract.push({ network, key: this.ackKey(taskId) });
  }

  /** This node left the network: its entries there went with it; nothing to retract. */
  leftNetwork(network: string): void {
    for (const [k, c] of this.cands) if (c.network === network) this.cands.delete(k);
  }

  /** Versions seen and neither acked nor expired (waiting for the LB or DNS). */
  outstanding(now: number): Array<{ network: string; task: string; forMs: number }> {
    const out: Array<{ network: string; task: string; forMs: number }> = [];
    for (const c of this.cands.values()) if (c.ackedRev !== c.rev && c.doneRev !== c.rev) out.push({ network: c.network, task: c.taskId, forMs: now - c.since });
    return out;
  }

  /** Live acks this node holds in the tables. */
  liveAcks(): number {
    let n = 0;
    for (const c of this.cands.values()) if (c.ackedRev !== null) n++;
    return n;
  }

  evaluate(now: number, wall: number, programmed: (network: string, taskId: string, rev: string) => boolean): ConvergenceAction[] {
    const out: ConvergenceAction[] = this.retract.splice(0).map((r) => ({ type: 'delete' as const, ...r, why: 'retracted' as const }));
    this.counters.retracted += out.length;
    const live: Candidate[] = [];
    for (const c of this.cands.values()) {
      if (c.ackedRev !== null && now - c.ackedAt >= this.ttlMs) {
        out.push({ type: 'delete', network: c.network, key: this.ackKey(c.taskId), why: 'expired' });
        this.counters.expired++;
        if (c.ackedRev === c.rev) c.doneRev = c.rev;
        c.ackedRev = null;
      }
      if (c.ackedRev !== c.rev && c.doneRev !== c.rev && programmed(c.network, c.taskId, c.rev)) {
        const ms = Math.max(0, Math.round(now - c.since));
        out.push({ type: 'write', network: c.network, key: this.ackKey(c.taskId), ack: { v: 1, node: this.node, service: c.service, rev: c.rev, seenAt: Math.round(c.sinceWall), ms } });
        this.counters.acks++;
        c.ackedRev = c.rev;
        c.ackedAt = now;
      }
      if (c.ackedRev !== null) live.push(c);
    }
    if (live.length > this.maxAcks) {
      live.sort((a, b) => a.ackedAt - b.ackedAt);
      for (const c of live.slice(0, live.length - this.maxAcks)) {
        out.push({ type: 'delete', network: c.network, key: this.ackKey(c.taskId), why: 'capped' });
        this.counters.capped++;
        c.doneRev = c.ackedRev;
        c.ackedRev = null;
      }
    }
    return out;
  }

  /** When the next ack expires (clock ms), if any is live. */
  nextDeadline(): number | undefined {
    let at: number | undefined;
    for (const c of this.cands.values()) if (c.ackedRev !== null && (at === undefined || c.ackedAt + this.ttlMs < at)) at = c.ackedAt + this.ttlMs;
    return at;
  }
}
