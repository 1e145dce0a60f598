/**
 * Restart policy as small pure formulas (swarmkit's restart supervisor, without its
 * in-memory state: the restart history travels with the task in `task.restarts`, so
 * it survives a manager failover).
 */
import type { RestartPolicy, Task, TaskState } from '../spec/types.js';

/** Does the policy's condition allow restarting a task that ended in `state`? */
export function conditionAllows(condition: RestartPolicy['condition'], state: TaskState): boolean {
  switch (condition) {
    case 'none': return false;
    case 'on-failure': return state === 'failed' || state === 'rejected';
    case 'any': return true;
  }
}

/** Restart times still inside the window ending at `now` (window 0 = forever). */
export function restartsInWindow(restarts: readonly number[] | undefined, now: number, windowMs: number): number[] {
  if (!restarts) return [];
  return windowMs > 0 ? restarts.filter((t) => now - t < windowMs) : [...restarts];
}

export type RestartDecision =
  /** `retryAt`: with a window, attempts free up when the oldest restart leaves it. */
  | { restart: false; why: string; retryAt?: number }
  | { restart: true; at: number; history: number[] };

/**
 * Decides for a task that ended (terminal state, still desired running): restart now,
 * restart at `at` (delay after it ended), not before `retryAt` (attempts exhausted within
 * the window: the window acts as a rate limit), or never (condition; attempts exhausted
 * with no window).
 * `history` is the new task's `restarts` (bounded by maxAttempts when set, else 100).
 */
export function restartDecision(policy: RestartPolicy, task: Pick<Task, 'state' | 'timestamps' | 'restarts'>, now: number): RestartDecision {
  if (!conditionAllows(policy.condition, task.state)) return { restart: false, why: `restart condition ${policy.condition}` };
  const at = task.timestamps.updated + policy.delayMs;
  const recent = restartsInWindow(task.restarts, Math.max(now, at), policy.windowMs);
  if (policy.maxAttempts > 0 && recent.length >= policy.maxAttempts) {
    const why = `restart attempts exhausted (${recent.length}/${policy.maxAttempts})`;
    return policy.windowMs > 0 ? { restart: false, why, retryAt: recent[recent.length - policy.maxAttempts]! + policy.windowMs } : { restart: false, why };
  }
  const bound = policy.maxAttempts > 0 ? policy.maxAttempts : 100;
  const history = [...recent, Math.max(now, at)].slice(-bound);
  return { restart: true, at, history };
}
