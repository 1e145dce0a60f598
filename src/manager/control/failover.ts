/**
 * What a manager does when it becomes the leader (etcd HA) or restarts: the rolling-update
 * machines of the previous leader died with it (they are in memory), but their progress is
 * in the store — the service's `update` state, its `previous` spec and the tasks per slot.
 *
 * - `resumeUpdates`: every service whose update (or rollback) was still working gets a new
 *   RollingUpdate from its previous spec to its current one. The machine queues only the
 *   slots whose task still runs another spec, so finished slots stay as they are and the
 *   update carries on from where the old leader stopped. A rollback that was under way
 *   resumes as an update towards the (already restored) old spec, with that spec's
 *   update config. Paused updates stay paused (no machine; `service update` resumes). A held
 *   canary resumes held (issue 19 §3): its slots keep their old task beside the canary task.
 * - `startStrandedTasks`: a stop-first replacement is created with desired state `ready`
 *   and started once its predecessor reports stopped — by the machine that created it.
 *   A new leader has no such machine, so a `ready` task whose slot holds no task that may
 *   still run is started here (every step; starting twice is harmless).
 */
import { RollingUpdate } from '../../core/orchestrator/index.js';
import { isTerminal } from '../../core/spec/types.js';
import type { ServiceRecord, TaskRecord } from './model.js';
import type { ControlState } from './state.js';

/** `canary`: a held canary is resumed as held (its share and slots are in the record, its tasks in the store). */
const WORKING = new Set(['updating', 'rollback_started', 'canary']);

/** Could an agent still be running it (mirrors the updater's rule)? */
function mayRun(t: TaskRecord): boolean {
  return !isTerminal(t.state) && t.nodeId !== undefined && t.state !== 'new' && t.state !== 'pending';
}

/** The slot a task fills: replicated services by slot number, global ones by node. */
function slotOf(t: TaskRecord): string {
  return `${t.serviceId}/${t.slot !== undefined ? `s${t.slot}` : `n${t.nodeId ?? ''}`}`;
}

/** Creates machines for updates the store says were working; returns the resumed service ids. */
export function resumeUpdates(st: ControlState, updaters: Map<string, RollingUpdate>, now: number, newId: () => string): string[] {
  const resumed: string[] = [];
  for (const s of st.services.values()) {
    if (!s.update || !WORKING.has(s.update.state) || updaters.has(s.id)) continue;
    const tasks = [...st.tasks.values()].filter((t) => t.serviceId === s.id);
    const u = new RollingUpdate({
      serviceId: s.id, from: s.previous ?? { version: s.version, spec: s.spec }, to: { version: s.version, spec: s.spec },
      tasks, now, newId, ...(canaryToResume(s) ? { canary: { count: s.canary!.count, resume: true, slots: s.canary!.slots } } : {}),
    });
    updaters.set(s.id, u);
    resumed.push(s.id);
  }
  return resumed;
}

/**
 * A canary not yet promoted: the record keeps `canary` from `service update --canary` until
 * `--canary-complete` or a rollback clears it, and the state is `canary` (held) or `updating`
 * (its tasks were still starting). Its machine resumes holding: old tasks keep running.
 */
function canaryToResume(s: ServiceRecord): boolean {
  return s.canary !== undefined && (s.update?.state === 'canary' || s.update?.state === 'updating');
}

/** Starts `ready` tasks whose slot has nothing left that may run; returns their ids. */
export function startStrandedTasks(st: ControlState): string[] {
  const busy = new Set<string>();
  for (const t of st.tasks.values()) if (t.desiredState !== 'ready' && mayRun(t)) busy.add(slotOf(t));
  const started: string[] = [];
  for (const t of st.tasks.values()) {
    if (t.desiredState !== 'ready' || isTerminal(t.state) || busy.has(slotOf(t))) continue;
    st.putTask({ ...t, desiredState: 'running' });
    started.push(t.id);
  }
  return started;
}
