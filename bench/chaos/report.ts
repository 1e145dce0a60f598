/**
 * Puts every request on the fault it happened under and says whether its failure was one no
 * correct system could avoid. Pure (takes records, returns figures).
 *
 * A fault's window runs from its start to its convergence (or the next fault). A failed request
 * in it is EXPECTED when:
 * - `faulted-node`: it went to a node the fault took (its own published port while its agent is
 *   killed/stopped, its link down, it is cut off or drops what it receives), or the name loop ran
 *   on such a node (its DNS server is that node's agent, its packets leave through that node);
 * - `onset`: it started before the others could know — between the fault's start and gossip
 *   declaring the node dead (+2 s for the LB to apply), or, when nothing was declared dead (a
 *   SIGSTOP below the suspicion timeout), until 1 s after the fault ended: connections in flight
 *   to, or balanced onto, a task behind the fault.
 * - `no-backend`: refused at once while the target service had no running task on a reachable node
 *   (a stop-first update of a single replica — Docker's default order —, or the node of its only task
 *   killed: nothing can answer until the replacement runs, and an empty VIP must reject at once — a
 *   timeout there stays unexpected). Empty periods come from the driver's
 *   1 s poll of the manager, each extended by EMPTY_TAIL_MS for the new task's LB programming.
 * Anything else is UNEXPECTED, and of those `after-drain` when a task of the target service
 * was drained (desired shutdown / stopped) in the 10 s before or during the request, or when the
 * answer came from a task that had already stopped: `failedAfterDrain` — must be 0.
 */
import type { Fault, Kind } from './faults.js';
import type { Req } from './load.js';

export interface TaskEvent { name: string; service: string; drainAt: number | null; stoppedAt: number | null }
export type Klass = 'faulted-node' | 'onset' | 'no-backend' | 'after-drain' | 'unexplained';
const EXPECTED = new Set<Klass>(['faulted-node', 'onset', 'no-backend']);
export const EMPTY_TAIL_MS = 2000;
/** service → [from, to] periods in which the manager reported no running task (to = null: still empty). */
export type EmptyPeriods = Map<string, Array<[number, number | null]>>;
const DRAIN_WINDOW_MS = 10_000;

export interface Classified extends Req {
  fault: number | null;
  klass: Klass | null;
  /** An answer from a task that had stopped before the request started. */
  stale: boolean;
}

export function windowOf(faults: Fault[], i: number): [number, number] {
  const f = faults[i]!;
  const next = faults[i + 1]?.start ?? Infinity;
  return [f.start, Math.min(next, f.convergedAt ?? next)];
}

export function classify(reqs: Req[], faults: Fault[], tasks: Map<string, TaskEvent>, services: { mesh: string; name: string }, empty: EmptyPeriods = new Map()): Classified[] {
  return reqs.map((r) => {
    const i = faults.findIndex((_, j) => {
      const [a, b] = windowOf(faults, j);
      return r.s >= a && r.s < b;
    });
    const f = i >= 0 ? faults[i]! : undefined;
    const answered = r.task ? tasks.get(r.task) : undefined;
    const stale = r.kind === 'ok' && !!answered?.stoppedAt && answered.stoppedAt + 1000 < r.s;
    const failed = r.kind !== 'ok' || stale;
    if (!failed) return { ...r, fault: f?.id ?? null, klass: null, stale };
    let klass: Klass;
    const svc = r.loop === 'mesh' ? services.mesh : services.name;
    const onsetEnd = f ? (f.detectedAt ? f.detectedAt + 2000 : f.nodes.length ? f.end + 1000 : f.start) : 0;
    const drained = [...tasks.values()].some((t) => t.service === svc && [t.drainAt, t.stoppedAt].some((x) => x !== null && x >= r.s - DRAIN_WINDOW_MS && x <= r.s + r.d));
    const wasEmpty = (empty.get(svc) ?? []).some(([a, b]) => r.s >= a && r.s <= (b === null ? Infinity : b + EMPTY_TAIL_MS));
    if (f && f.nodes.includes(r.node)) klass = 'faulted-node';
    else if (r.kind === 'refused' && wasEmpty) klass = 'no-backend';
    else if (f && r.s < onsetEnd && !stale) klass = 'onset';
    else if (stale || drained) klass = 'after-drain';
    else klass = 'unexplained';
    return { ...r, fault: f?.id ?? null, klass, stale };
  });
}

export function pct(xs: number[], p: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface Bucket { sent: number; failed: number; byKind: Record<string, number>; byClass: Record<string, number>; byLoop: Record<string, { sent: number; failed: number }> }
const bucket = (): Bucket => ({ sent: 0, failed: 0, byKind: {}, byClass: {}, byLoop: { mesh: { sent: 0, failed: 0 }, name: { sent: 0, failed: 0 } } });
function add(b: Bucket, r: Classified): void {
  b.sent++;
  b.byLoop[r.loop]!.sent++;
  if (!r.klass) return;
  b.failed++;
  b.byLoop[r.loop]!.failed++;
  const k = r.stale ? 'wrong (stale task)' : r.kind;
  b.byKind[k] = (b.byKind[k] ?? 0) + 1;
  b.byClass[r.klass] = (b.byClass[r.klass] ?? 0) + 1;
}

export function summarize(cls: Classified[], faults: Fault[]) {
  const total = bucket();
  const quiet = bucket();
  const perKind: Record<string, Bucket & { faults: number; errors: number; convergeMs: { p50: number | null; p99: number | null; max: number | null; notConverged: number }; detectMs: { p50: number | null; p99: number | null }; electMs?: { p50: number | null; p99: number | null } }> = {};
  for (const f of faults) {
    const k = (perKind[f.kind] ??= { ...bucket(), faults: 0, errors: 0, convergeMs: { p50: null, p99: null, max: null, notConverged: 0 }, detectMs: { p50: null, p99: null } });
    k.faults++;
    if (f.error) k.errors++;
  }
  for (const r of cls) {
    add(total, r);
    const f = faults.find((x) => x.id === r.fault);
    add(f ? perKind[f.kind]! : quiet, r);
  }
  for (const [kind, k] of Object.entries(perKind)) {
    const fs = faults.filter((f) => f.kind === (kind as Kind));
    const conv = fs.filter((f) => f.convergedAt).map((f) => f.convergedAt! - f.end);
    k.convergeMs = { p50: pct(conv, 50), p99: pct(conv, 99), max: pct(conv, 100), notConverged: fs.length - conv.length };
    const det = fs.filter((f) => f.detectedAt).map((f) => f.detectedAt! - f.start);
    k.detectMs = { p50: pct(det, 50), p99: pct(det, 99) };
    if (kind === 'leader-kill') {
      const el = fs.filter((f) => f.electedAt).map((f) => f.electedAt! - f.start);
      k.electMs = { p50: pct(el, 50), p99: pct(el, 99) };
    }
  }
  const failedAfterDrain = cls.filter((r) => r.klass === 'after-drain').length;
  const unexpected = cls.filter((r) => r.klass && !EXPECTED.has(r.klass));
  return { total, quiet, perKind, failedAfterDrain, unexpected };
}
