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

/** Per namespace: what it last applied with success, else what it wants. */
export interface NsDrainView {
  applied: LbDesired | undefined;
  desired: LbDesired;
}

/** True when no namespace selects `taskId` for new connections. */
export function drainedIn(namespaces: Iterable<NsDrainView>, taskId: string): boolean {
  for (const n of namespaces) if (selects(n.applied ?? n.desired, taskId)) return false;
  return true;
}
