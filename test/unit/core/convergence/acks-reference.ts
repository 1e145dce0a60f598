/**
 * The acker of core/convergence/acks.ts as it was before its evaluation became incremental (519a0a0, verbatim
 * but for the name): the reference the differential test compares the indexed one against. Test-only.
 */
import {
  bucketCount, bucketOf, snapshotKey, taskHash, type ConvergenceAction, type ProgrammedSnapshot,
} from '../../../../src/core/convergence/index.js';

const DEFAULT_CONVERGENCE_MIN_WRITE_MS = 100;
interface ConvergenceAcksOptions {
  minWriteMs?: number;
}

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

export class ReferenceAcks {
  private readonly cands = new Map<string, Candidate>();
  /** `${network}\0${key}` → the snapshot entries this node wrote and holds (the same key exists once per network). */
  private readonly written = new Map<string, Written & { key: string }>();
  private due: number | undefined;
  readonly counters = { programmed: 0, writes: 0, deletes: 0, held: 0 };
  private readonly minWriteMs: number;

  constructor(readonly node: string, o: ConvergenceAcksOptions = {}) {
    this.minWriteMs = o.minWriteMs ?? DEFAULT_CONVERGENCE_MIN_WRITE_MS;
  }

  /** A record this node holds, as decoded from the `endpoints` table. */
  record(network: string, taskId: string, serviceId: string, service: string, state: string, rev: string, now: number, wall: number): void {
    const k = `${network}\0${taskId}`;
    const c = this.cands.get(k);
    if (state !== 'running') return this.gone(network, taskId);
    if (!c) {
      this.cands.set(k, { network, taskId, hash: taskHash(taskId), serviceId, service, rev, since: now, sinceWall: wall, programmedWall: null });
    } else if (c.rev !== rev || c.serviceId !== serviceId) {
      Object.assign(c, { rev, serviceId, service, since: now, sinceWall: wall, programmedWall: null });
    }
  }

  /** The record was deleted or left `running`: it leaves the next snapshot (nothing is deleted for it). */
  gone(network: string, taskId: string): void {
    this.cands.delete(`${network}\0${taskId}`);
  }

  /** This node left the network: its entries there went with it. */
  leftNetwork(network: string): void {
    for (const [k, c] of this.cands) if (c.network === network) this.cands.delete(k);
    for (const [k, w] of this.written) if (w.network === network) this.written.delete(k);
  }

  /** Versions seen and not programmed yet (waiting for the LB or DNS). */
  outstanding(now: number): Array<{ network: string; task: string; forMs: number }> {
    const out: Array<{ network: string; task: string; forMs: number }> = [];
    for (const c of this.cands.values()) if (c.programmedWall === null) out.push({ network: c.network, task: c.taskId, forMs: Math.round(now - c.since) });
    return out;
  }

  /** Versions programmed here (what the snapshots list). */
  liveAcks(): number {
    let n = 0;
    for (const c of this.cands.values()) if (c.programmedWall !== null) n++;
    return n;
  }

  evaluate(now: number, wall: number, programmed: (network: string, taskId: string, rev: string) => boolean): ConvergenceAction[] {
    // Service → its programmed candidates (per network: the table is per network).
    const groups = new Map<string, Candidate[]>();
    for (const c of this.cands.values()) {
      if (c.programmedWall === null && programmed(c.network, c.taskId, c.rev)) {
        c.programmedWall = wall;
        this.counters.programmed++;
      }
      if (c.programmedWall === null) continue;
      const g = `${c.network}\0${c.serviceId}`;
      const l = groups.get(g);
      if (l) l.push(c);
      else groups.set(g, [c]);
    }
    const want = new Map<string, { network: string; key: string; items: Candidate[]; service: string }>();
    for (const list of groups.values()) {
      const nb = bucketCount(list.length);
      for (const c of list) {
        const key = snapshotKey(c.serviceId, bucketOf(c.hash, nb), this.node);
        const wk = `${c.network}\0${key}`;
        const w = want.get(wk);
        if (w) w.items.push(c);
        else want.set(wk, { network: c.network, key, items: [c], service: c.service });
      }
    }
    const out: ConvergenceAction[] = [];
    this.due = undefined;
    for (const [wk, w] of want) {
      const key = w.key;
      w.items.sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
      const content = w.items.map((c) => c.hash + c.rev).join(',');
      const prev = this.written.get(wk);
      if (prev && prev.content === content) continue;
      if (prev && now - prev.at < this.minWriteMs) {
        this.counters.held++;
        const at = prev.at + this.minWriteMs;
        if (this.due === undefined || at < this.due) this.due = at;
        continue;
      }
      const snapshot: ProgrammedSnapshot = {
        v: 2, node: this.node, service: w.service, at: wall,
        items: w.items.map((c) => ({ task: c.hash, rev: c.rev, tookMs: c.programmedWall! - c.sinceWall, agoMs: wall - c.programmedWall! })),
      };
      out.push({ type: 'write', network: w.network, key, snapshot });
      this.written.set(wk, { network: w.network, key, content, at: now });
      this.counters.writes++;
    }
    for (const [wk, w] of this.written) {
      if (want.has(wk)) continue;
      out.push({ type: 'delete', network: w.network, key: w.key, why: 'empty' });
      this.written.delete(wk);
      this.counters.deletes++;
    }
    return out;
  }

  /** A write or delete the shell could not run (a table limit, say): forgotten, so the next evaluation retries it. */
  failed(network: string, key: string): void {
    this.written.delete(`${network}\0${key}`);
  }

  /** When a write held back by `minWriteMs` is due (clock ms), if any. */
  nextDeadline(): number | undefined {
    return this.due;
  }
}
