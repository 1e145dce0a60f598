/**
 * What the orchestrator and the rolling updater ask the manager to do. The manager
 * applies a batch of actions to the store in one transaction before it reconciles
 * again (reconcile is stateless: it reads the store every time).
 */
import type { ServiceSpec, Task } from '../spec/types.js';

/** `canary`: the canary tasks run beside the old ones, held until promoted or rolled back (canary.ts). */
export type UpdateState = 'updating' | 'canary' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export type Action =
  /**
   * Insert this task (state `pending`; `nodeId` already set for global services).
   * `replaces`: the task it takes over from (restart, node loss) — forward it to a
   * running RollingUpdate as a `taskReplaced` event.
   */
  | { type: 'createTask'; task: Task; replaces?: string }
  /** Set the task's desired state to `shutdown` (the agent stops it). */
  | { type: 'shutdownTask'; taskId: string; reason: string }
  /** Delete the task record (history beyond the retention limit, or of a removed service). */
  | { type: 'removeTask'; taskId: string }
  /** Desired state `ready` → `running` (stop-first update: the old task has stopped). */
  | { type: 'startTask'; taskId: string }
  /** Withdraw the task from LB and DNS on every node; answered by a `taskDrained` event. */
  | { type: 'drainTask'; taskId: string }
  /** Rollback: make `version`/`spec` the service's current spec again. */
  | { type: 'setServiceSpec'; serviceId: string; version: number; spec: ServiceSpec }
  /** The rolling update's state changed (for `service inspect` / events). */
  | { type: 'updateState'; serviceId: string; state: UpdateState; message: string };
