/**
 * Convergence receipts, collecting half (pure): the acks every node wrote (acks.ts) as this node
 * sees them in its tables, grouped per change, so the agent can say "web: programmed on 5/5 nodes in
 * 640 ms (slowest n4)" and feed the `meshd_convergence_seconds` histogram.
 *
 * A change is (network, task, rev). Its start is the earliest `seenAt` among its acks — the owner
 * of the task sees its own publication first, so this is the publication time as far as the nodes'
 * clocks agree. Each node's time is its `seenAt + ms − start`. Expected nodes are the live members
 * of the network (alive or suspect, like the drain waits); a node still acking an older rev of the
 * task is pending for the newer one.
 *
 * Bounded: the index mirrors the gossip table (which expires its acks), and completed changes are
 * remembered in a ring of `historySize` (what `debug convergence` lists once acks expired).
 * A change completes (and is observed in the histogram) when every node that was a live member of
 * its network AT THAT TIME acked; a node joining the network later acks it too (shown by `list`).
 */
import { decodeConvergenceAck, type ConvergenceAck } from './acks.js';

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

/** `${task}/${node}` → parts; null for anything else. */
export function parseConvergenceKey(key: string): { taskId: string; node: string } | null {
  const i = key.indexOf('/');
  if (i <= 0 || i === key.length - 1 || key.indexOf('/', i + 1) !== -1) return null;
  return { taskId: key.slice(0, i), node: key.slice(i + 1) };
}

/** Groups the acks of one (network, task) into the view of its newest rev. */
export function changeOf(network: string, task: string, acks: ReadonlyMap<string, ConvergenceAck>, expected: readonly string[]): ChangeView | null {
  if (acks.size === 0) return null;
  // Newest rev = the one whose earliest seenAt is latest.
  const byRev = new Map<string, ConvergenceAck[]>();
  for (const a of acks.values()) {
    const l = byRev.get(a.rev);
    if (l) l.push(a);
    else byRev.set(a.rev, [a]);
  }
  let best: { rev: string; start: number; list: ConvergenceAck[] } | null = null;
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
 * The acks index and the history of completed changes. Fed table events (`set`/`delete`); asked
 * `check(network, task, expected)` after each, it returns the change when it just completed (once
 * per change) so the shell observes its latency.
 */
export class ConvergenceBook {
  /** `${network}\0${task}` → node → ack. */
  private readonly idx = new Map<string, Map<string, ConvergenceAck>>();
  private readonly done: ChangeView[] = [];
  private readonly doneKeys = new Set<string>();
  badAcks = 0;

  constructor(private readonly historySize = 200) {}

  /** An ack entry created or updated; false (and counted) when it is not a valid ack of the key's node. */
  set(network: string, key: string, owner: string, value: Uint8Array): { task: string } | null {
    const p = parseConvergenceKey(key);
    const a = decodeConvergenceAck(value);
    // Only the node named in the key may speak for itself.
    if (!p || !a || p.node !== owner || a.node !== owner) {
      this.badAcks++;
      return null;
    }
    const k = `${network}\0${p.taskId}`;
    let m = this.idx.get(k);
    if (!m) this.idx.set(k, (m = new Map()));
    m.set(p.node, a);
    return { task: p.taskId };
  }

  delete(network: string, key: string): void {
    const p = parseConvergenceKey(key);
    if (!p) return;
    const k = `${network}\0${p.taskId}`;
    const m = this.idx.get(k);
    if (!m) return;
    m.delete(p.node);
    if (m.size === 0) this.idx.delete(k);
  }

  dropNetwork(network: string): void {
    for (const k of [...this.idx.keys()]) if (k.startsWith(`${network}\0`)) this.idx.delete(k);
  }

  /** The change of (network, task) now; returned as `completed` the first time it is complete. */
  check(network: string, task: string, expected: readonly string[]): { view: ChangeView | null; completed: boolean } {
    const m = this.idx.get(`${network}\0${task}`);
    const view = m ? changeOf(network, task, m, expected) : null;
    if (!view || !view.complete) return { view, completed: false };
    const id = `${network}\0${task}\0${view.rev}\0${view.startedAt}`;
    if (this.doneKeys.has(id)) return { view, completed: false };
    this.doneKeys.add(id);
    this.done.push(view);
    if (this.done.length > this.historySize) {
      const old = this.done.shift()!;
      this.doneKeys.delete(`${old.network}\0${old.task}\0${old.rev}\0${old.startedAt}`);
    }
    return { view, completed: true };
  }

  /** Tasks with acks on a network (to re-check after membership changes). */
  tasksOn(network: string): string[] {
    const out: string[] = [];
    for (const k of this.idx.keys()) if (k.startsWith(`${network}\0`)) out.push(k.slice(network.length + 1));
    return out;
  }

  /** Index size (entries = acks held): bounded by the table it mirrors. */
  size(): number {
    let n = 0;
    for (const m of this.idx.values()) n += m.size;
    return n;
  }

  /**
   * The last changes, newest first: each change's CURRENT view while its acks are in the table
   * (`expectedOf` gives each network's live members now), else its view when it completed (the
   * history, once the acks expired). Current wins: a node that joined the network after the change
   * completed (its first task there started later) acks it too, and is then listed — or pending.
   */
  list(expectedOf: (network: string) => readonly string[], limit = 50): ChangeView[] {
    const byId = new Map<string, ChangeView>();
    for (const d of this.done) byId.set(`${d.network}\0${d.task}\0${d.rev}\0${d.startedAt}`, d);
    for (const [k, m] of this.idx) {
      const i = k.indexOf('\0');
      const network = k.slice(0, i);
      const v = changeOf(network, k.slice(i + 1), m, expectedOf(network));
      if (v) byId.set(`${v.network}\0${v.task}\0${v.rev}\0${v.startedAt}`, v);
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
