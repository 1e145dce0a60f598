/**
 * The drain-ack policy of the LB (asked by src/agent/drain/ack.ts through LbSubsystem.drained):
 * a task is drained on this node when no namespace's kernel sends it a NEW connection.
 *
 * Judged per namespace on the state last APPLIED with success (what the kernel holds); a
 * namespace never applied yet counts by its desired state (edge: kernel rules left from before an
 * agent restart are not read back here). Per namespace, so unrelated pending or failing work does
 * not hold an ack back. Backend ids are task ids on every network. Pure.
 */
import type { LbDesired } from './model.js';

/** True when task `taskId` is an active backend (VIP or published port) in `d`. */
export function selects(d: LbDesired, taskId: string): boolean {
  return d.services.some((x) => x.backends.some((b) => b.id === taskId && b.state === 'active'))
    || d.ingress.some((x) => x.backends.some((b) => b.id === taskId && b.state === 'active'));
}

/**
 * `selects` answered from a set of the active backend ids, built once per desired-state object: a desired
 * state is immutable once handed over (core/lb/desired-delta.ts, compile's memo), so the set stays exact.
 * The drain acks ask once per draining task per evaluation; `selects` scanned every backend of every
 * service of the namespace each time (and a DeltaDesired materialized its arrays for it): O(draining tasks ×
 * records) per evaluation under churn, O(records) once per applied version with the index. Not shared
 * between processes or modules: the LB holds one (no module-level state).
 */
export class DrainIndex {
  private readonly memo = new WeakMap<LbDesired, Set<string>>();

  /** Ids of the active backends of `d` (VIP services and published ports). */
  active(d: LbDesired): ReadonlySet<string> {
    let ids = this.memo.get(d);
    if (!ids) {
      ids = new Set();
      for (const x of d.services) for (const b of x.backends) if (b.state === 'active') ids.add(b.id);
      for (const x of d.ingress) for (const b of x.backends) if (b.state === 'active') ids.add(b.id);
      this.memo.set(d, ids);
    }
    return ids;
  }

  /** Same answer as `selects(d, taskId)`. */
  selects(d: LbDesired, taskId: string): boolean {
    return this.active(d).has(taskId);
  }
}

/** Per namespace: what it last applied with success, else what it wants. */
export interface NsDrainView {
  applied: LbDesired | undefined;
  desired: LbDesired;
}

/** True when no namespace selects `taskId` for new connections (`index`: answered from its sets, same result). */
export function drainedIn(namespaces: Iterable<NsDrainView>, taskId: string, index?: DrainIndex): boolean {
  for (const n of namespaces) {
    const d = n.applied ?? n.desired;
    if (index ? index.selects(d, taskId) : selects(d, taskId)) return false;
  }
  return true;
}
