/**
 * Glue helpers for the manager: turn store changes into RollingUpdate events, so every
 * caller derives them the same way.
 * - a task whose observed state changed → taskRunning / taskFailed / taskStopped;
 * - a reconcile `createTask` with `replaces` → taskReplaced.
 * `taskDrained` comes from the agents' confirmations (tables on all nodes), not from here.
 */
import { isServing, type Task } from '../spec/types.js';
import type { Action } from './actions.js';
import type { UpdateEvent } from './update.js';

/** Events for one task's state change (`prev` undefined: the task is new to the caller). */
export function eventsForTaskChange(prev: Pick<Task, 'state' | 'health'> | undefined, next: Task): UpdateEvent[] {
  // A task with a health check is `running` for the update only once healthy (isServing).
  if (next.state === 'running') return isServing(next) && !(prev && isServing(prev)) ? [{ type: 'taskRunning', taskId: next.id }] : [];
  if (prev && prev.state === next.state) return [];
  switch (next.state) {
    case 'failed':
    case 'rejected':
      return [{ type: 'taskFailed', taskId: next.id, ...(next.message ? { message: next.message } : {}) }];
    case 'complete':
      // A service task that exits, even cleanly, did not stay up: it stopped (old) or failed (new).
      return [{ type: 'taskStopped', taskId: next.id }, { type: 'taskFailed', taskId: next.id, message: 'task exited' }];
    case 'shutdown':
    case 'orphaned':
      return [{ type: 'taskStopped', taskId: next.id }];
    default:
      return [];
  }
}

/** taskReplaced events for the orchestrator's restarts / node-loss replacements of one service. */
export function replacementEvents(actions: readonly Action[], serviceId: string): UpdateEvent[] {
  const out: UpdateEvent[] = [];
  for (const a of actions) {
    if (a.type === 'createTask' && a.replaces !== undefined && a.task.serviceId === serviceId) {
      out.push({ type: 'taskReplaced', oldTaskId: a.replaces, task: a.task });
    }
  }
  return out;
}
