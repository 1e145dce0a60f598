/**
 * Convergence receipts, collecting half (pure): the acks every node wrote (acks.ts, snapshot.ts) as
 * this node sees them in its tables, grouped per change, so the agent can say "web: programmed on
 * 5/5 nodes in 640 ms (slowest n4)" and feed the `meshd_convergence_seconds` histogram.
 *
 * A change is (network, task, rev); tasks are indexed by their hash (snapshot.ts) and named through
 * the records this node holds (`nameOf`). Its start is the earliest time a node first saw it — the
 * owner of the task sees its own publication first, so this is the publication time as far as the
 * nodes' clocks agree. Each node's time is when it programmed the change − start. Expected nodes are
 * the live members of the network (alive or suspect, like the drain waits).
 *
 * Acks EXPIRE HERE, not by broadcast deletes: a node's ack of a change is kept `ttlMs` after the
 * last snapshot of that node that listed it (a v1 ack: until its entry is deleted, or `ttlMs` after
 * it arrived). Completed changes are remembered in a ring of `historySize` (what `debug convergence`
 * lists once acks expired). A change completes (and is observed in the histogram) once, when the
 * last node that was a live member of its network AT THAT TIME acked it; only a node's NEW ack of a
 * change triggers the check, so snapshots that keep listing a long-lived task observe nothing.
 */
import { decodeConvergenceAck } from './acks.js';
import { decodeSnapshot, parseSnapshotKey, taskHash } from './snapshot.js';

/** Least time between two walks of the ack index for expiry (ms; a tenth of the ttl if less); see ConvergenceBook.expire. */
export const EXPIRY_STEP_MS = 1000;

/** One node's ack of one version of one task, as this collector holds it. */
export interface NodeAck {
  node: string;
  service: string;
  rev: string;
  /** When the node first saw this version (epoch ms, its wall clock). */
  seenAt: number;
  /** From seeing it to programming it there (ms). */
  ms: number;
  /** This collector's clock (ms) when the ack was last mentioned: its expiry counts from here. */
  heardAt: number;
  /** A v1 ack: kept until its entry is deleted (or expiry). */
  legacy: boolean;
}

export interface ChangeView {
  network: string;
  service: string;
  task: string;
  rev: string;
  /** Publication (epoch ms): the earliest seenAt. */
  startedAt: number;
  /** Per node: ms from the start to its LB+DNS holding the change. Sorted by node. */
  acks: Array<{ node: string; ms: number }>;
  /** Live members of the network that have not acked this rev. */
  pending: string[];
  complete: boolean;
  /** Start → last ack (ms); null while pending. */
  totalMs: number | null;
  /** Node with the last ack; null while pending. */
  slowest: string | null;
}

/** v1 key `${task}/${node}` → parts; null for anything else. */
export function parseConvergenceKey(key: string): { taskId: string; node: string } | null {
  const i = key.indexOf('/');
  if (i <= 0 || i === key.length - 1 || key.indexOf('/', i + 1) !== -1) return null;
  return { taskId: key.slice(0, i), node: key.slice(i + 1) };
}

/** Groups the acks of one (network, task) into the view of its newest rev. */
export function changeOf(network: string, task: string, acks: ReadonlyMap<string, Pick<NodeAck, 'node' | 'service' | 'rev' | 'seenAt' | 'ms'>>, expected: readonly string[]): ChangeView | null {
  if (acks.size === 0) return null;
  // Newest rev = the one whose earliest seenAt is latest.
  const byRev = new Map<string, Array<Pick<NodeAck, 'node' | 'service' | 'rev' | 'seenAt' | 'ms'>>>();
  for (const a of acks.values()) {
    const l = byRev.get(a.rev);
    if (l) l.push(a);
    else byRev.set(a.rev, [a]);
  }
  let best: { rev: string; start: number; list: Array<Pick<NodeAck, 'node' | 'service' | 'rev' | 'seenAt' | 'ms'>> } | null = null;
  for (const [rev, list] of byRev) {
    const start = Math.min(...list.map((a) => a.seenAt));
    if (!best || start > best.start || (start === best.start && rev > best.rev)) best = { rev, start, list };
  }
  const b = best!;
  const rows = b.list.map((a) => ({ node: a.node, ms: Math.max(0, Math.round(a.seenAt + a.ms - b.start)) })).sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
  const have = new Set(rows.map((r) => r.node));
  const pending = [...new Set(expected)].filter((n) => !have.has(n)).sort();
  const complete = pending.length === 0;
  let slow: { node: string; ms: number } | null = null;
  for (const r of rows) if (!slow || r.ms > slow.ms) slow = r;
  return {
    network, service: b.list[0]!.service, task, rev: b.rev, startedAt: b.start, acks: rows, pending, complete,
    totalMs: complete && slow ? slow.ms : null, slowest: complete && slow ? slow.node : null,
  };
}

/**
 * The acks index and the history of completed changes. Fed table events (`set`/`delete`) and the
 * time (`expire`); `set` returns the tasks whose acks changed, and `check(network, task, expected)`
 * after each returns the change when it just completed (once per change) so the shell observes it.
 */
export class ConvergenceBook {
  /** `${network}\0${taskHash}` → node → ack. */
  private readonly idx = new Map<string, Map<string, NodeAck>>();
  private readonly done: Array<{ id: string; view: ChangeView }> = [];
  private readonly doneKeys = new Set<string>();
  badAcks = 0;
  /** Acks from nodes running the v1 format, indexed as well. */
  legacyAcks = 0;
  expired = 0;
  /** Node acks dropped because the index was full (`maxAcks`): the oldest-indexed tasks go first. */
  capped = 0;
  /** Node acks held now (kept in step with `idx`, so the bound is checked without a walk). */
  private held = 0;
  /**
   * `idx` keys whose newest change was not complete at its last check (or not checked yet): the only ones a
   * member's death or a node leaving the network can complete, so a recheck looks at these instead of every
   * task held. Under churn the index holds thousands of tasks (changes/s × ttl) while a handful are open: a
   * recheck of all of them on every member event was a fifth of a 10-node lab agent's CPU at 100 changes/s.
   */
  private readonly open = new Set<string>();
  /**
   * No ack expires before this (clock ms): a lower bound kept on every insert, so `expire` — run on
   * every evaluation, hundreds a second under churn — walks the index only when something is due.
   */
  private nextAt = Infinity;

  /**
   * @param historySize completed changes remembered for `netctl debug convergence`.
   * @param ttlMs an ack not mentioned for this long is dropped (a removed task's acks live this long).
   * @param maxAcks hard bound on node acks held. Removed tasks' acks live `ttlMs`, so under churn the
   *   index grows with changes/s × ttl × nodes (100/s × 120 s × 10 nodes = 120k); past the bound the
   *   tasks indexed longest ago go first (a live task's ack comes back with its node's next snapshot).
   */
  constructor(private readonly historySize = 200, private readonly ttlMs = 120_000, private readonly maxAcks = 50_000) {}

  private put(m: Map<string, NodeAck>, a: NodeAck): void {
    if (!m.has(a.node)) this.held++;
    m.set(a.node, a);
    if (this.held > this.maxAcks) this.shed();
  }

  /** Drops whole tasks, oldest-indexed first, until the index is back under its bound. */
  private shed(): void {
    for (const [k, m] of this.idx) {
      if (this.held <= this.maxAcks) return;
      this.held -= m.size;
      this.capped += m.size;
      this.idx.delete(k);
      this.open.delete(k);
    }
  }

  private entry(network: string, hash: string): Map<string, NodeAck> {
    const k = `${network}\0${hash}`;
    let m = this.idx.get(k);
    if (!m) this.idx.set(k, (m = new Map()));
    return m;
  }

  private heard(now: number): void {
    if (now + this.ttlMs < this.nextAt) this.nextAt = now + this.ttlMs;
  }

  /**
   * An ack entry created or updated (v2 snapshot or v1 ack); null (and counted in `badAcks`) when it
   * is not a valid ack of the key's node. Returns the task hashes whose ack from that node is new.
   */
  set(network: string, key: string, owner: string, value: Uint8Array, now: number): { tasks: string[] } | null {
    const sk = parseSnapshotKey(key);
    if (sk) {
      const s = decodeSnapshot(value);
      // Only the node named in the key may speak for itself.
      if (!s || sk.node !== owner || s.node !== owner) return (this.badAcks++, null);
      const tasks: string[] = [];
      for (const it of s.items) {
        const m = this.entry(network, it.task);
        const cur = m.get(owner);
        if (cur && cur.rev === it.rev && !cur.legacy) {
          cur.heardAt = now;
          continue;
        }
        this.heard(now);
        const doneAt = s.at - it.agoMs;
        this.put(m, { node: owner, service: s.service, rev: it.rev, seenAt: doneAt - it.tookMs, ms: it.tookMs, heardAt: now, legacy: false });
        tasks.push(it.task);
        this.open.add(`${network}\0${it.task}`);
      }
      return { tasks };
    }
    const p = parseConvergenceKey(key);
    const a = decodeConvergenceAck(value);
    if (!p || !a || p.node !== owner || a.node !== owner) return (this.badAcks++, null);
    this.legacyAcks++;
    this.heard(now);
    const hash = taskHash(p.taskId);
    this.put(this.entry(network, hash), { node: owner, service: a.service, rev: a.rev, seenAt: a.seenAt, ms: a.ms, heardAt: now, legacy: true });
    this.open.add(`${network}\0${hash}`);
    return { tasks: [hash] };
  }

  /** An ack entry deleted: a v1 ack goes at once; a v2 snapshot's acks expire on their own. */
  delete(network: string, key: string): void {
    const p = parseSnapshotKey(key) ? null : parseConvergenceKey(key);
    if (!p) return;
    const k = `${network}\0${taskHash(p.taskId)}`;
    const m = this.idx.get(k);
    if (m?.get(p.node)?.legacy) (m.delete(p.node), this.held--);
    if (m && m.size === 0) (this.idx.delete(k), this.open.delete(k));
  }

  /**
   * Drops acks not mentioned for `ttlMs` (clock ms). A walk of the index runs at most once per EXPIRY_STEP_MS: under
   * churn some ack is due nearly every millisecond, and a walk of the whole index (tens of thousands of acks) on
   * every evaluation was ~2 % of a 10-node lab agent's CPU. An ack may so live up to EXPIRY_STEP_MS (or a tenth of
   * the ttl, if less) past its ttl.
   */
  expire(now: number): void {
    if (now < this.nextAt) return;
    this.nextAt = Infinity;
    for (const [k, m] of this.idx) {
      for (const [n, a] of m) {
        if (now - a.heardAt >= this.ttlMs) (m.delete(n), this.expired++, this.held--);
        else if (a.heardAt + this.ttlMs < this.nextAt) this.nextAt = a.heardAt + this.ttlMs;
      }
      if (m.size === 0) (this.idx.delete(k), this.open.delete(k));
    }
    if (this.nextAt !== Infinity) this.nextAt = Math.max(this.nextAt, now + Math.min(EXPIRY_STEP_MS, this.ttlMs / 10));
  }

  /** When the next ack may expire (clock ms; a lower bound), if any is held. */
  nextExpiry(): number | undefined {
    return this.idx.size > 0 && this.nextAt !== Infinity ? this.nextAt : undefined;
  }

  dropNetwork(network: string): void {
    for (const [k, m] of [...this.idx]) if (k.startsWith(`${network}\0`)) (this.idx.delete(k), this.open.delete(k), (this.held -= m.size));
  }

  /**
   * The change of (network, task hash) now; returned as `completed` the first time it is complete. `view` is null
   * when no ack is held, and also when some expected node has not acked any version of the task yet: such a change
   * cannot be complete, and its view is not built. Why: every node checks the tasks of every snapshot it receives
   * (each lists up to a bucket's tasks), and under churn most of them still wait for someone — building their views
   * (group by version, sort, pending list) was the agents' largest single JS cost in a 10-node lab at 100 changes/s
   * (~5 % of each agent's samples, profiled 2026-12-07).
   */
  check(network: string, hash: string, expected: readonly string[], nameOf: (network: string, hash: string) => string = (_n, h) => h): { view: ChangeView | null; completed: boolean } {
    const k = `${network}\0${hash}`;
    const m = this.idx.get(k);
    if (m) {
      for (const n of expected) {
        if (!m.has(n)) {
          this.open.add(k);
          return { view: null, completed: false };
        }
      }
    }
    const view = m ? changeOf(network, nameOf(network, hash), m, expected) : null;
    if (view && !view.complete) this.open.add(k);
    else this.open.delete(k);
    if (!view || !view.complete) return { view, completed: false };
    const id = `${network}\0${hash}\0${view.rev}\0${view.startedAt}`;
    if (this.doneKeys.has(id)) return { view, completed: false };
    this.doneKeys.add(id);
    this.done.push({ id, view });
    if (this.done.length > this.historySize) this.doneKeys.delete(this.done.shift()!.id);
    return { view, completed: true };
  }

  /**
   * The task's record was deleted: its change is no longer waited for (nodes that dropped the record before
   * programming it never ack it, so under churn most removed tasks' changes would stay open for the acks' ttl,
   * and every member death would recheck thousands of them). Its acks stay (they expire); a new ack reopens it.
   */
  close(network: string, hash: string): void {
    this.open.delete(`${network}\0${hash}`);
  }

  /**
   * Task hashes on a network whose newest change was incomplete at its last check: what a member's death or
   * a node leaving the network may complete (to re-check then). A complete change stays complete until a
   * new version arrives, and a new version's acks come through `set`, whose caller checks them.
   */
  openTasksOn(network: string): string[] {
    const out: string[] = [];
    const prefix = `${network}\0`;
    for (const k of this.open) if (k.startsWith(prefix)) out.push(k.slice(prefix.length));
    return out;
  }

  /** Index size (node acks held): tasks × nodes, expired `ttlMs` after their last mention, at most `maxAcks`. */
  size(): number {
    return this.held;
  }

  /**
   * The last changes, newest first: each change's CURRENT view while its acks are held (`expectedOf`
   * gives each network's live members now), else its view when it completed (the history, once the
   * acks expired). Current wins: a node that joined the network after the change completed acks it
   * too, and is then listed — or pending. `service`: only that service's changes.
   */
  list(expectedOf: (network: string) => readonly string[], limit = 50, nameOf: (network: string, hash: string) => string = (_n, h) => h, service?: string): ChangeView[] {
    const byId = new Map<string, ChangeView>();
    for (const d of this.done) if (service === undefined || d.view.service === service) byId.set(d.id, d.view);
    for (const [k, m] of this.idx) {
      // One task's acks all name its service: a view asked for one service (`netctl service scale`
      // and the convergence bench poll it every 25 ms) skips the others' views, which under churn
      // were most of the index and most of the cost.
      if (service !== undefined && m.values().next().value?.service !== service) continue;
      const i = k.indexOf('\0');
      const network = k.slice(0, i);
      const hash = k.slice(i + 1);
      const v = changeOf(network, nameOf(network, hash), m, expectedOf(network));
      if (v) byId.set(`${v.network}\0${hash}\0${v.rev}\0${v.startedAt}`, v);
    }
    return [...byId.values()].sort((a, b) => b.startedAt - a.startedAt).slice(0, limit);
  }
}

/**
 * What netctl prints for one service after "converged": over the service's changes since a time,
 * the nodes that hold all of them out of all expected nodes, the slowest change's total and node.
 */
export interface ServiceConvergence {
  changes: number;
  programmed: number;
  nodes: number;
  totalMs: number | null;
  slowest: string | null;
  pending: string[];
}

export function serviceConvergence(changes: readonly ChangeView[]): ServiceConvergence {
  const all = new Set<string>();
  const pending = new Set<string>();
  let total: number | null = null;
  let slowest: string | null = null;
  for (const c of changes) {
    for (const a of c.acks) all.add(a.node);
    for (const p of c.pending) (all.add(p), pending.add(p));
    for (const a of c.acks) if (total === null || a.ms > total) (total = a.ms, slowest = a.node);
  }
  const complete = changes.length > 0 && pending.size === 0;
  return {
    changes: changes.length, programmed: all.size - pending.size, nodes: all.size,
    totalMs: complete ? total : null, slowest: complete ? slowest : null, pending: [...pending].sort(),
  };
}

/** `programmed on 3/3 nodes in 640 ms (slowest n2)` or, while pending, who is missing. */
export function formatServiceConvergence(s: ServiceConvergence): string {
  if (s.changes === 0) return 'programmed: no endpoint changes seen';
  if (s.totalMs !== null) return `programmed on ${s.programmed}/${s.nodes} nodes in ${s.totalMs} ms (slowest ${s.slowest})`;
  return `programmed on ${s.programmed}/${s.nodes} nodes (pending ${s.pending.join(', ')})`;
}
