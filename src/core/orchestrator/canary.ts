/**
 * Canary updates (issue 19 §3, swarmkit#1045): `service update --canary 10%` starts tasks of the new
 * spec BESIDE the old ones and weights every node's load balancer so that the given share of NEW
 * connections reaches them; `--canary-complete` rolls the rest (update.ts promote), `service
 * rollback` removes the canary tasks. Pure formulas, table-tested; the machine is update.ts.
 *
 * Weights are per task (assignment `lb.weight` → endpoint record → LB backend, core/lb/balance.ts),
 * so the split holds on both dataplanes and for VIPs and published ports alike.
 */
import { MAX_WEIGHT } from '../lb/balance.js';

/** Accepted canary shares, in whole percent. */
export const MIN_CANARY_PERCENT = 1;
export const MAX_CANARY_PERCENT = 99;

/**
 * How many canary tasks run beside `replicas` old ones: the share of the replicas, rounded, at least
 * one (a canary needs a task) and at most `replicas`. 10 % of 3 → 1; 50 % of 4 → 2.
 */
export function canaryCount(replicas: number, percent: number): number {
  return Math.min(Math.max(1, replicas), Math.max(1, Math.round((replicas * percent) / 100)));
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Per-task weights so that `canary` tasks together get `percent` % of new connections and `old`
 * tasks the rest: canary weight ∝ percent·old, old weight ∝ (100 − percent)·canary (then each
 * side's total is in the ratio percent : 100 − percent), reduced by their common divisor and
 * scaled into 1..MAX_WEIGHT. 10 % with 3 old and 1 canary → old 3, canary 1 (1 / (1 + 9) = 10 %).
 */
export function canaryWeights(old: number, canary: number, percent: number): { old: number; canary: number } {
  let c = percent * Math.max(1, old);
  let o = (100 - percent) * Math.max(1, canary);
  const g = gcd(c, o);
  c /= g;
  o /= g;
  const top = Math.max(c, o);
  if (top > MAX_WEIGHT) {
    c = Math.max(1, Math.round((c * MAX_WEIGHT) / top));
    o = Math.max(1, Math.round((o * MAX_WEIGHT) / top));
  }
  return { old: o, canary: c };
}

/**
 * `--canary 10%` / `--canary 10`: whole percent in MIN..MAX; null when malformed (the caller
 * raises its own MeshError with the flag's name).
 */
export function parseCanaryPercent(s: string): number | null {
  const m = /^\s*(\d{1,2})\s*%?\s*$/.exec(s);
  if (!m) return null;
  const p = Number(m[1]);
  return p >= MIN_CANARY_PERCENT && p <= MAX_CANARY_PERCENT ? p : null;
}

/**
 * A held canary as stored in its service record, so that a manager that starts (restart, new
 * leader) resumes it exactly instead of letting the orchestrator drop the old task that shares
 * each canary slot: the share and the slots that run a canary task beside their old one. Only
 * what cannot be derived: the per-task weights are always `recordWeights` of it (one formula,
 * so a stored copy can never disagree with what dispatch computes).
 */
export interface CanaryRecord {
  percent: number;
  count: number;
  /** The canary's slot numbers (absent in records written before resume existed: derived then). */
  slots?: readonly number[] | undefined;
}

/** The per-task weights of a held canary of a service with `replicas` old tasks (dispatch and inspect). */
export function recordWeights(replicas: number, c: Pick<CanaryRecord, 'percent' | 'count'>): { old: number; canary: number } {
  return canaryWeights(replicas, c.count, c.percent);
}

/**
 * A stored canary as this code keeps it. Records written by 6r's code also hold `weights`, a copy
 * of `recordWeights` made when the canary started (replicas cannot change while it is held, so
 * the copy always equals the formula): it is dropped here, on purpose, so the formula is the
 * only source. Every other field is kept as stored.
 */
export function storedCanary(c: CanaryRecord & { weights?: unknown }): CanaryRecord {
  const { weights: _derived, ...rest } = c;
  return rest;
}

interface SlotTask {
  id: string;
  slot?: number | undefined;
  specVersion: number;
  desiredState: string;
  state: string;
  timestamps: { created: number };
}

/**
 * On resume: the canary task (spec `version`) and the old task (any other version) of each held
 * slot, from the stored tasks. Slots: the record's, or (older records) every slot holding a live
 * task of `version`. Live = desired not shutdown and not ended; the newest wins on duplicates.
 */
export function heldCanarySlots<T extends SlotTask>(tasks: readonly T[], version: number, slots: readonly number[] | undefined, ended: (t: T) => boolean): Map<number, { old: T | undefined; canary: T | undefined }> {
  const out = new Map<number, { old: T | undefined; canary: T | undefined }>();
  const live = tasks.filter((t) => t.slot !== undefined && t.desiredState !== 'shutdown' && !ended(t));
  const want = slots ?? [...new Set(live.filter((t) => t.specVersion === version).map((t) => t.slot!))].sort((a, b) => a - b);
  const newest = (a: T | undefined, b: T): T => (a && a.timestamps.created >= b.timestamps.created ? a : b);
  for (const s of want) out.set(s, { old: undefined, canary: undefined });
  for (const t of live) {
    const e = out.get(t.slot!);
    if (!e) continue;
    if (t.specVersion === version) e.canary = newest(e.canary, t);
    else e.old = newest(e.old, t);
  }
  return out;
}

/** Splits the update queue into the canary's items (`held` ones on resume, else the first `count`) and the rest. */
export function pickCanarySlots<I>(queue: readonly I[], count: number, held?: (item: I) => boolean): [I[], I[]] {
  if (!held) return [queue.slice(0, Math.min(count, queue.length)), queue.slice(Math.min(count, queue.length))];
  return [queue.filter(held), queue.filter((i) => !held(i))];
}
