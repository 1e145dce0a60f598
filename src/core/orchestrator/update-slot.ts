/**
 * One slot's replacement during a rolling update or rollback, step by step (update.ts is the
 * machine: workers, queue, failures, states; this file is what happens to one slot):
 * - stop-first:  drainTask(old) → taskDrained → shutdownTask(old) + createTask(new, desired
 *   `ready`) → taskStopped(old) → startTask(new) → taskRunning(new)
 * - start-first: createTask(new) → taskRunning(new) → drainTask(old) → taskDrained → shutdownTask(old)
 * The drain step is confirmed by the agents (LB and DNS dropped the task on all nodes,
 * seen through the tables), not a fixed sleep; only after `drainTimeoutMs` does it go on
 * unconfirmed (and says so in the state message). Old tasks that are not running skip it.
 *
 * The orchestrator may replace a task under the update's feet (its node went down, it was
 * restarted): an in-flight slot whose new task was replaced follows the replacement, and
 * one whose old task was replaced by a task on the target spec adopts it (withdrawing its
 * own new task), so a slot never ends with two live tasks. A task known to be ended is
 * never started. `starting` is bounded by `startTimeoutMs`: a new task that never runs is
 * a failure (the failure action applies), never a hang. Kept apart so that update.ts stays
 * one concern; it reaches the machine only through SlotHost.
 */
import type { Task, TaskSpec } from '../spec/types.js';
import { isServing, isTerminal } from '../spec/types.js';
import type { Action } from './actions.js';
import { newTask } from './reconcile.js';
import { mayBeRunning, type Item, type RollingUpdateInit, type SpecVersion, type UpdateEvent } from './update-types.js';

/** What a slot's steps read and ask of their RollingUpdate (its maps are shared, not copied). */
export interface SlotHost {
  readonly init: RollingUpdateInit;
  /** The task each slot holds now, by slot key. */
  readonly current: Map<string, Task>;
  /** Slots in flight, by task id (old and new). */
  readonly inFlight: Map<string, Item>;
  /** New tasks under their monitor period: task id → until. */
  readonly monitors: Map<string, number>;
  phase(): 'forward' | 'rollback';
  target(): SpecVersion;
  taskSpec(sv: SpecVersion): TaskSpec;
  /** True when `t` does not run `version`'s spec (by content unless forced). */
  dirty(t: Task, version: number): boolean;
  startTimeout(): number;
  /** A canary is held (its slots stop at `canary` when their task runs). */
  canaryHolding(): boolean;
  canaryRunning(): void;
  emit(a: Action): void;
  fail(now: number, why: string): void;
  /** The worker may take a slot again (now, or from `until`). */
  freeWorker(worker: number): void;
  workerRests(worker: number, until: number): void;
}

export class SlotSteps {
  constructor(private readonly h: SlotHost) {}

  track(item: Item, t: Task | undefined): void {
    if (t) this.h.inFlight.set(t.id, item);
  }

  startItem(item: Item, now: number): void {
    const sv = this.h.target();
    // The slot's task now: the orchestrator may have replaced the one the queue was built with.
    const old = this.h.current.get(item.key) ?? item.old;
    item.old = old;
    if (old && !isTerminal(old.state) && old.desiredState !== 'shutdown' && !this.h.dirty(old, item.version)) {
      // Already on the target (a replacement made from the current spec): nothing to do.
      item.step = 'done';
      this.h.freeWorker(item.worker);
      return;
    }
    const where = old ? { slot: old.slot, nodeId: old.slot === undefined ? old.nodeId : undefined } : {};
    const svc = { id: this.h.init.serviceId, version: sv.version, spec: sv.spec };
    item.next = newTask(svc, this.h.taskSpec(sv), this.h.init.newId(), now, where as { slot?: number; nodeId?: string });
    this.track(item, old);
    this.track(item, item.next);
    if (item.cfg.order === 'start-first' || !old) {
      item.step = 'starting';
      item.deadline = now + this.h.startTimeout();
      this.h.emit({ type: 'createTask', task: item.next });
      return;
    }
    this.drainOrSkip(item, now);
  }

  drainOrSkip(item: Item, now: number): void {
    if (item.old && item.old.state === 'running') {
      item.step = 'draining';
      item.deadline = now + (this.h.init.drainTimeoutMs ?? 30_000);
      this.h.emit({ type: 'drainTask', taskId: item.old.id });
    } else {
      this.afterDrain(item, now);
    }
  }

  /** Old task is out of LB/DNS (or needs no draining). */
  afterDrain(item: Item, now: number): void {
    const old = item.old;
    if (old) this.h.emit({ type: 'shutdownTask', taskId: old.id, reason: `${item.phase === 'forward' ? 'rolling update' : 'rollback'} to version ${item.version}` });
    if (item.cfg.order === 'start-first') {
      this.done(item, now);
      return;
    }
    if (old && mayBeRunning(old)) {
      item.step = 'stopping';
      item.deadline = now + (this.h.init.stopTimeoutMs ?? 30_000);
      this.h.emit({ type: 'createTask', task: { ...item.next!, desiredState: 'ready' } });
    } else {
      item.step = 'starting';
      item.deadline = now + this.h.startTimeout();
      this.h.emit({ type: 'createTask', task: item.next! });
    }
  }

  startNew(item: Item, now: number): void {
    item.step = 'starting';
    item.deadline = now + this.h.startTimeout();
    // A new task known to have ended (its node was lost) is never started again: the
    // orchestrator's replacement (taskReplaced) or the start bound moves the slot on.
    if (!isTerminal(item.next!.state)) this.h.emit({ type: 'startTask', taskId: item.next!.id });
  }

  /**
   * The orchestrator replaced one of an in-flight slot's tasks (its node went down, or a
   * restart). New task replaced: follow the replacement (it is made from the current spec).
   * Old task replaced: if the replacement already runs the target, adopt it as the slot's
   * new task and withdraw ours (two live tasks in one slot otherwise); else it is the
   * slot's old task now.
   */
  followReplacement(item: Item, oldId: string, repl: Task, now: number): void {
    this.h.inFlight.delete(oldId);
    const onTarget = !this.h.dirty(repl, item.version);
    if (item.next?.id === oldId || (item.old?.id === oldId && onTarget)) {
      if (item.old?.id === oldId) {
        // Our own new task is redundant now: withdraw it (it never served, or is not yet needed).
        if (item.next && item.next.id !== repl.id) {
          this.h.inFlight.delete(item.next.id);
          if (!isTerminal(item.next.state)) this.h.emit({ type: 'shutdownTask', taskId: item.next.id, reason: 'slot replaced by the orchestrator during the update' });
        }
        item.old = undefined;
      }
      item.next = repl;
      this.track(item, repl);
      if (item.step === 'starting' || item.step === 'stopping' || item.old === undefined || isTerminal(item.old.state)) {
        // The replacement is created to run (desired running): wait for it, bounded.
        item.step = 'starting';
        item.deadline = now + this.h.startTimeout();
        if (isServing(repl)) this.advance(item, { type: 'taskRunning', taskId: repl.id }, now);
      }
      return;
    }
    if (item.old?.id === oldId) {
      item.old = repl;
      this.track(item, repl);
    }
  }

  advance(item: Item, ev: UpdateEvent, now: number): void {
    const isOld = item.old !== undefined && ev.type !== 'taskReplaced' && ev.taskId === item.old.id;
    const isNew = item.next !== undefined && ev.type !== 'taskReplaced' && ev.taskId === item.next.id;
    if (isOld && ev.type === 'taskDrained' && item.step === 'draining') {
      item.deadline = undefined;
      this.afterDrain(item, now);
    } else if (isOld && (ev.type === 'taskStopped' || ev.type === 'taskFailed') && item.step === 'stopping') {
      this.startNew(item, now);
    } else if (isNew && ev.type === 'taskRunning' && item.step === 'starting' && item.canary && this.h.canaryHolding()) {
      item.step = 'canary';
      item.deadline = undefined;
      this.h.canaryRunning();
    } else if (isNew && ev.type === 'taskRunning' && item.step === 'starting') {
      if (item.phase === this.h.phase() && item.cfg.monitorMs > 0) this.h.monitors.set(item.next!.id, now + item.cfg.monitorMs);
      if (item.cfg.order === 'start-first' && item.old) this.drainOrSkip(item, now);
      else this.done(item, now);
    } else if (isNew && ev.type === 'taskFailed' && (item.step === 'starting' || item.step === 'stopping')) {
      if (item.cfg.order === 'start-first' && item.old) {
        // Keep the old task serving; withdraw the failed new one.
        this.h.emit({ type: 'shutdownTask', taskId: item.next!.id, reason: 'new task failed during start-first update' });
        item.next = undefined;
      }
      this.done(item, now);
      if (item.phase === this.h.phase()) this.h.fail(now, `task ${ev.taskId} failed to start${ev.message ? `: ${ev.message}` : ''}`);
    }
  }

  /** The new task did not run within the start bound: withdraw it and count a failure. */
  startTimedOut(item: Item, now: number): void {
    const id = item.next?.id ?? '?';
    const secs = Math.round(this.h.startTimeout() / 1000);
    if (item.next) this.h.emit({ type: 'shutdownTask', taskId: item.next.id, reason: `not running ${secs} s after its start` });
    if (item.cfg.order === 'start-first' && item.old) item.next = undefined; // the old one keeps serving
    this.done(item, now);
    if (item.phase === this.h.phase()) this.h.fail(now, `task ${id} not running ${secs} s after its start`);
  }

  done(item: Item, now: number): void {
    item.step = 'done';
    item.deadline = undefined;
    if (item.old) this.h.inFlight.delete(item.old.id);
    if (item.next) {
      this.h.inFlight.delete(item.next.id);
      this.h.current.set(item.key, item.next);
    }
    if (item.canary) return; // canary slots use no worker
    this.h.freeWorker(item.worker);
    if (item.phase === this.h.phase()) this.h.workerRests(item.worker, now + item.cfg.delayMs);
  }
}
