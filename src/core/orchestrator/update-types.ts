/**
 * The rolling update's vocabulary (update.ts is the machine): what it starts from, the events it is
 * fed, one slot's progress (`Item`) and the small pure reads it makes of a service's tasks.
 */
import type { ServiceSpec, Task, UpdateConfig } from '../spec/types.js';
import { isTerminal } from '../spec/types.js';
import type { UpdateState } from './actions.js';

export interface SpecVersion {
  version: number;
  spec: ServiceSpec;
}

export interface RollingUpdateInit {
  serviceId: string;
  from: SpecVersion;
  to: SpecVersion;
  /** The service's tasks now (live ones — desired not shutdown — are the slots). */
  tasks: readonly Task[];
  now: number;
  newId: () => string;
  /** Go on without the agents' drain confirmation after this long. Default 30 s. */
  drainTimeoutMs?: number;
  /** Start the new task (stop-first) even if the old never reported stopped. Default 30 s. */
  stopTimeoutMs?: number;
  /**
   * A new task that has not reported running this long after it was told to start is a
   * failure (shut down, counted; the failure action applies). Default 120 s: a local image
   * starts in seconds; two minutes is a task that will not start, not a slow one.
   */
  startTimeoutMs?: number;
  /** Replace tasks even when their task spec already equals the target (`--force`). */
  force?: boolean;
  /**
   * A canary (`--canary`): start `count` tasks of the target spec start-first beside the first
   * slots' old tasks and hold there (state `canary`) until `promote` or `rollback` (canary-hold.ts).
   * `resume`: a manager that starts finds the canary held in the store: `slots` (stored; derived
   * from the tasks when absent) keep their old task and adopt their running canary task.
   */
  canary?: { count: number; resume?: boolean; slots?: readonly number[] | undefined };
}

export type UpdateEvent =
  | { type: 'taskRunning'; taskId: string }
  | { type: 'taskFailed'; taskId: string; message?: string }
  | { type: 'taskStopped'; taskId: string }
  | { type: 'taskDrained'; taskId: string }
  /** The orchestrator replaced `oldTaskId` (restart): follow the slot's new task. */
  | { type: 'taskReplaced'; oldTaskId: string; task: Task };

/** `canary`: a canary task runs beside its slot's old task, held until the canary is promoted. */
export type Step = 'queued' | 'draining' | 'stopping' | 'starting' | 'canary' | 'done';

export interface Item {
  key: string;
  old: Task | undefined;
  next: Task | undefined;
  step: Step;
  deadline: number | undefined;
  /** The drain was not confirmed in time. */
  unconfirmed: boolean;
  worker: number;
  /** The phase, config and target version the item started under (a rollback may begin mid-item). */
  phase: 'forward' | 'rollback';
  cfg: UpdateConfig;
  version: number;
  /** One of a canary's slots (started start-first, outside the workers, held at `canary`). */
  canary?: boolean;
}

export const ACTIVE: ReadonlySet<UpdateState> = new Set(['updating', 'rollback_started']);

/** Could an agent be running it? Not if terminal, or never handed to an agent (new/pending, no node). */
export function mayBeRunning(t: Task): boolean {
  return !isTerminal(t.state) && t.nodeId !== undefined && t.state !== 'new' && t.state !== 'pending';
}

/** When the last live task on `version` reported running (its state's last change), if any. */
export function lastRunningOn(tasks: readonly Task[], version: number): number | undefined {
  let last: number | undefined;
  for (const t of tasks) {
    if (t.desiredState === 'shutdown' || t.state !== 'running' || t.specVersion !== version) continue;
    if (last === undefined || t.timestamps.updated > last) last = t.timestamps.updated;
  }
  return last;
}

/** A slot's key: its number (replicated) or its node (global). */
export function slotKey(t: Task): string {
  return t.slot !== undefined ? `s${t.slot}` : `n${t.nodeId ?? ''}`;
}
