/**
 * Rolling update and rollback of one service (swarmkit's updater), as a state machine:
 * handle(event, now) / tick(now) / nextDeadline() / drain() of actions.
 *
 * `parallelism` workers (0 = one per slot) each take a slot whose task runs an older
 * spec, replace its task, then wait `delayMs` before taking the next slot. Replacing:
 * - stop-first:  drainTask(old) → taskDrained → shutdownTask(old) + createTask(new, desired
 *   `ready`) → taskStopped(old) → startTask(new) → taskRunning(new)
 * - start-first: createTask(new) → taskRunning(new) → drainTask(old) → taskDrained → shutdownTask(old)
 * The drain step is confirmed by the agents (LB and DNS dropped the task on all nodes,
 * seen through the tables), not a fixed sleep; only after `drainTimeoutMs` does it go on
 * unconfirmed (and says so in the state message). Old tasks that are not running skip it.
 *
 * A new task that fails before running, or within `monitorMs` of running, counts as a
 * failure; once failures / slots > maxFailureRatio, failureAction applies: `pause`
 * (stop taking slots, state `paused`), `continue`, or `rollback` (state
 * `rollback_started`, setServiceSpec(previous), then the slots now on the new spec are
 * replaced back with the new spec's rollbackConfig; state `rollback_completed`). The
 * update is `completed` only when every slot is done and every monitor period elapsed.
 * Rollback failures pause (`rollback_paused`) unless the action is `continue`.
 *
 * The orchestrator may replace a task under the update's feet (its node went down, it was
 * restarted): `taskReplaced` moves the slot to the replacement. A queued slot reads its old
 * task only when a worker takes it, and is skipped when the replacement already runs the
 * target spec; an in-flight slot whose new task was replaced follows the replacement, and
 * one whose old task was replaced by a task on the target spec adopts it (withdrawing its
 * own new task), so a slot never ends with two live tasks. A task known to be ended is
 * never started. `starting` is bounded by `startTimeoutMs`: a new task that never runs is
 * a failure (the failure action applies), never a hang. A machine created by a new leader
 * waits out the update delay after the last slot the previous leader finished.
 */
import type { Task, TaskSpec, TaskState, UpdateConfig } from '../spec/types.js';
import { isServing, isTerminal, taskSpecEqual, taskSpecOf } from '../spec/types.js';
import type { Action, UpdateState } from './actions.js';
import { newTask } from './reconcile.js';
import { heldCanarySlots } from './canary.js';
import { CanaryHold } from './canary-hold.js';
import { ACTIVE, lastRunningOn, mayBeRunning, slotKey, type Item, type RollingUpdateInit, type SpecVersion, type UpdateEvent } from './update-types.js';

export type { RollingUpdateInit, SpecVersion, UpdateEvent } from './update-types.js';

export class RollingUpdate {
  private readonly out: Action[] = [];
  private readonly current = new Map<string, Task>();
  private readonly monitors = new Map<string, number>();
  private readonly inFlight = new Map<string, Item>(); // by task id (old and new)
  private queue: Item[] = [];
  private workers: number[] = []; // time each worker may take a slot again
  private busy = new Set<number>();
  private phase: 'forward' | 'rollback' = 'forward';
  private pendingRollbackBuild = false;
  private failures = 0;
  private total = 0;
  private unconfirmedDrains = 0;
  private st: UpdateState = 'updating';
  private readonly specs = new Map<number, TaskSpec>();
  /** The canary's slots and whether they are held (canary-hold.ts). */
  private readonly canary = new CanaryHold({
    version: () => this.init.to.version, total: () => this.total, state: () => this.st, startItem: (i, now) => this.startItem(i, now),
    drainOrSkip: (i, now) => this.drainOrSkip(i, now), track: (i, t) => this.track(i, t), untrack: (id) => this.inFlight.delete(id),
    startTimeoutMs: () => this.startTimeout(), emit: (a) => this.emit(a), emitState: (m) => this.emitState(m), setState: (st, m) => this.setState(st, m),
  });

  constructor(private readonly init: RollingUpdateInit) {
    for (const t of init.tasks) {
      if (t.desiredState === 'shutdown') continue;
      const k = slotKey(t);
      const prev = this.current.get(k);
      if (!prev || t.timestamps.created > prev.timestamps.created) this.current.set(k, t);
    }
    // A resumed canary's slots hold their old task (the slot's) and a canary task (adopted below).
    const held = init.canary?.resume ? heldCanarySlots(init.tasks, init.to.version, init.canary.slots, (t) => isTerminal(t.state)) : undefined;
    for (const [slot, h] of held ?? []) if (h.old) this.current.set(`s${slot}`, h.old);
    this.buildQueue(init.to.version, init.to.spec.updateConfig);
    // Resumed by a new leader: the previous leader's last finished slot started its delay.
    const lastDone = lastRunningOn(init.tasks, init.to.version);
    if (lastDone !== undefined) this.workers.fill(lastDone + init.to.spec.updateConfig.delayMs);
    if (init.canary) this.queue = this.canary.start(this.queue, init.canary.count, init.now, held);
    else this.emitState(`updating to version ${init.to.version}: ${this.total} slot(s)`);
    this.pump(init.now);
  }

  get state(): UpdateState {
    return this.st;
  }
  get failureCount(): number {
    return this.failures;
  }
  drain(): Action[] {
    return this.out.splice(0);
  }

  handle(ev: UpdateEvent, now: number): void {
    if (ev.type === 'taskRunning') this.noteState(ev.taskId, 'running');
    else if (ev.type === 'taskFailed') this.noteState(ev.taskId, 'failed');
    else if (ev.type === 'taskStopped') this.noteState(ev.taskId, 'shutdown');
    if (ev.type === 'taskReplaced') {
      for (const [k, t] of this.current) if (t.id === ev.oldTaskId) this.current.set(k, ev.task);
      this.monitors.delete(ev.oldTaskId);
      const item = this.inFlight.get(ev.oldTaskId);
      if (item) this.followReplacement(item, ev.oldTaskId, ev.task, now);
    } else if (ev.type === 'taskFailed' && this.monitors.has(ev.taskId)) {
      const until = this.monitors.get(ev.taskId)!;
      this.monitors.delete(ev.taskId);
      if (now <= until) this.fail(now, `task ${ev.taskId} failed within the monitor period${ev.message ? `: ${ev.message}` : ''}`);
    } else {
      const item = this.inFlight.get(ev.taskId);
      if (item) this.advance(item, ev, now);
    }
    this.tick(now);
  }

  tick(now: number): void {
    for (const item of [...new Set(this.inFlight.values())]) {
      if (item.deadline !== undefined && now >= item.deadline) {
        if (item.step === 'draining') {
          item.unconfirmed = true;
          this.unconfirmedDrains++;
          this.afterDrain(item, now);
        } else if (item.step === 'stopping') {
          this.startNew(item, now);
        } else if (item.step === 'starting') {
          this.startTimedOut(item, now);
        }
      }
    }
    for (const [id, until] of this.monitors) if (now > until) this.monitors.delete(id);
    this.pump(now);
  }

  nextDeadline(): number | undefined {
    let d: number | undefined;
    const min = (t: number | undefined): void => {
      if (t !== undefined && (d === undefined || t < d)) d = t;
    };
    for (const item of this.inFlight.values()) min(item.deadline);
    if (ACTIVE.has(this.st) && !this.canary.holding && this.queue.length > 0) {
      this.workers.forEach((free, w) => {
        if (!this.busy.has(w)) min(free);
      });
    }
    // A monitor ends one ms after `until` (failures at exactly `until` still count).
    for (const until of this.monitors.values()) min(until + 1);
    return d;
  }

  /** True while a canary is held (started, not yet promoted or rolled back). */
  get canaryHeld(): boolean {
    return this.canary.holding;
  }
  /** The canary's slot numbers (stored with the service: a new manager resumes the same ones). */
  get canarySlots(): number[] {
    return this.canary.slots;
  }

  /** `--canary-complete`: the canary tasks replace their slots' old tasks and the rest rolls on. */
  promote(now: number): boolean {
    if (!this.canary.promote(now)) return false;
    this.pump(now);
    return true;
  }

  /** Manual rollback (`netctl service rollback`), also after completion. */
  rollback(now: number): void {
    if (this.phase === 'rollback') return;
    this.startRollback(now, 'manual rollback');
  }

  /** Resumes a paused update (or rollback); failures start counting from zero. */
  resume(now: number): void {
    if (this.st === 'paused') this.setState('updating', 'update resumed');
    else if (this.st === 'rollback_paused') this.setState('rollback_started', 'rollback resumed');
    else return;
    this.failures = 0;
    this.pump(now);
  }

  /** Keeps our copies of tasks' observed states current (decides drain / wait-for-stop later). */
  private noteState(taskId: string, state: TaskState): void {
    for (const [k, t] of this.current) if (t.id === taskId) this.current.set(k, { ...t, state });
    const item = this.inFlight.get(taskId);
    if (item?.old?.id === taskId) item.old = { ...item.old, state };
    if (item?.next?.id === taskId) item.next = { ...item.next, state };
  }

  private config(): UpdateConfig {
    return this.phase === 'forward' ? this.init.to.spec.updateConfig : this.init.to.spec.rollbackConfig;
  }
  private target(): SpecVersion {
    return this.phase === 'forward' ? this.init.to : this.init.from;
  }
  private taskSpec(sv: SpecVersion): TaskSpec {
    let s = this.specs.get(sv.version);
    if (!s) {
      s = taskSpecOf(sv.spec);
      this.specs.set(sv.version, s);
    }
    return s;
  }

  /** Slots whose task runs another spec than `version`'s (by content unless forced). */
  private buildQueue(version: number, cfg: UpdateConfig): void {
    const sv = version === this.init.to.version ? this.init.to : this.init.from;
    const want = this.taskSpec(sv);
    const force = this.init.force === true && this.phase === 'forward';
    const dirty = (t: Task): boolean => t.specVersion !== version && (force || !taskSpecEqual(t.spec, want));
    const keys = [...this.current.keys()].filter((k) => dirty(this.current.get(k)!)).sort((a, b) => {
      const sa = this.current.get(a)!.slot ?? 0;
      const sb = this.current.get(b)!.slot ?? 0;
      return sa - sb || (a < b ? -1 : a > b ? 1 : 0);
    });
    const phase = this.phase;
    this.queue = keys.map((key) => ({ key, old: this.current.get(key), next: undefined, step: 'queued', deadline: undefined, unconfirmed: false, worker: -1, phase, cfg, version }));
    this.total = this.queue.length;
    this.failures = 0;
    const n = cfg.parallelism === 0 ? Math.max(1, this.queue.length) : cfg.parallelism;
    this.workers = new Array<number>(n).fill(-Infinity);
    this.busy = new Set();
  }

  private emit(a: Action): void {
    this.out.push(a);
  }
  private emitState(message: string): void {
    this.emit({ type: 'updateState', serviceId: this.init.serviceId, state: this.st, message });
  }
  private setState(s: UpdateState, message: string): void {
    if (this.st === s) return;
    this.st = s;
    this.emitState(message);
  }

  private pump(now: number): void {
    if (this.pendingRollbackBuild && this.busy.size === 0) {
      this.pendingRollbackBuild = false;
      this.buildQueue(this.init.from.version, this.config());
    }
    if (ACTIVE.has(this.st) && !this.canary.holding) {
      for (let w = 0; w < this.workers.length && this.queue.length > 0; w++) {
        if (this.busy.has(w) || this.workers[w]! > now) continue;
        const item = this.queue.shift()!;
        item.worker = w;
        this.busy.add(w);
        this.startItem(item, now);
        if (!this.busy.has(w)) w--; // the slot needed nothing: the same worker takes the next
      }
    }
    if (ACTIVE.has(this.st) && !this.canary.open && !this.pendingRollbackBuild && this.queue.length === 0 && this.busy.size === 0 && this.monitors.size === 0) {
      const note = this.unconfirmedDrains ? ` (${this.unconfirmedDrains} drain(s) not confirmed in time)` : '';
      if (this.phase === 'forward') this.setState('completed', `update to version ${this.init.to.version} completed${note}`);
      else this.setState('rollback_completed', `rolled back to version ${this.init.from.version}${note}`);
    }
  }

  private track(item: Item, t: Task | undefined): void {
    if (t) this.inFlight.set(t.id, item);
  }

  private startItem(item: Item, now: number): void {
    const sv = this.target();
    // The slot's task now: the orchestrator may have replaced the one the queue was built with.
    const old = this.current.get(item.key) ?? item.old;
    item.old = old;
    if (old && !isTerminal(old.state) && old.desiredState !== 'shutdown' && !this.dirty(old, item.version)) {
      // Already on the target (a replacement made from the current spec): nothing to do.
      item.step = 'done';
      this.busy.delete(item.worker);
      return;
    }
    const where = old ? { slot: old.slot, nodeId: old.slot === undefined ? old.nodeId : undefined } : {};
    const svc = { id: this.init.serviceId, version: sv.version, spec: sv.spec };
    item.next = newTask(svc, this.taskSpec(sv), this.init.newId(), now, where as { slot?: number; nodeId?: string });
    this.track(item, old);
    this.track(item, item.next);
    if (item.cfg.order === 'start-first' || !old) {
      item.step = 'starting';
      item.deadline = now + this.startTimeout();
      this.emit({ type: 'createTask', task: item.next });
      return;
    }
    this.drainOrSkip(item, now);
  }

  private drainOrSkip(item: Item, now: number): void {
    if (item.old && item.old.state === 'running') {
      item.step = 'draining';
      item.deadline = now + (this.init.drainTimeoutMs ?? 30_000);
      this.emit({ type: 'drainTask', taskId: item.old.id });
    } else {
      this.afterDrain(item, now);
    }
  }

  /** Old task is out of LB/DNS (or needs no draining). */
  private afterDrain(item: Item, now: number): void {
    const old = item.old;
    if (old) this.emit({ type: 'shutdownTask', taskId: old.id, reason: `${item.phase === 'forward' ? 'rolling update' : 'rollback'} to version ${item.version}` });
    if (item.cfg.order === 'start-first') {
      this.done(item, now);
      return;
    }
    if (old && mayBeRunning(old)) {
      item.step = 'stopping';
      item.deadline = now + (this.init.stopTimeoutMs ?? 30_000);
      this.emit({ type: 'createTask', task: { ...item.next!, desiredState: 'ready' } });
    } else {
      item.step = 'starting';
      item.deadline = now + this.startTimeout();
      this.emit({ type: 'createTask', task: item.next! });
    }
  }

  private startNew(item: Item, now: number): void {
    item.step = 'starting';
    item.deadline = now + this.startTimeout();
    // A new task known to have ended (its node was lost) is never started again: the
    // orchestrator's replacement (taskReplaced) or the start bound moves the slot on.
    if (!isTerminal(item.next!.state)) this.emit({ type: 'startTask', taskId: item.next!.id });
  }

  private startTimeout(): number {
    return this.init.startTimeoutMs ?? 120_000;
  }

  /** True when `t` does not run `version`'s spec (by content unless forced). */
  private dirty(t: Task, version: number): boolean {
    const sv = version === this.init.to.version ? this.init.to : this.init.from;
    const force = this.init.force === true && this.phase === 'forward';
    return t.specVersion !== version && (force || !taskSpecEqual(t.spec, this.taskSpec(sv)));
  }

  /**
   * The orchestrator replaced one of an in-flight slot's tasks (its node went down, or a
   * restart). New task replaced: follow the replacement (it is made from the current spec).
   * Old task replaced: if the replacement already runs the target, adopt it as the slot's
   * new task and withdraw ours (two live tasks in one slot otherwise); else it is the
   * slot's old task now.
   */
  private followReplacement(item: Item, oldId: string, repl: Task, now: number): void {
    this.inFlight.delete(oldId);
    const onTarget = !this.dirty(repl, item.version);
    if (item.next?.id === oldId || (item.old?.id === oldId && onTarget)) {
      if (item.old?.id === oldId) {
        // Our own new task is redundant now: withdraw it (it never served, or is not yet needed).
        if (item.next && item.next.id !== repl.id) {
          this.inFlight.delete(item.next.id);
          if (!isTerminal(item.next.state)) this.emit({ type: 'shutdownTask', taskId: item.next.id, reason: 'slot replaced by the orchestrator during the update' });
        }
        item.old = undefined;
      }
      item.next = repl;
      this.track(item, repl);
      if (item.step === 'starting' || item.step === 'stopping' || item.old === undefined || isTerminal(item.old.state)) {
        // The replacement is created to run (desired running): wait for it, bounded.
        item.step = 'starting';
        item.deadline = now + this.startTimeout();
        if (isServing(repl)) this.advance(item, { type: 'taskRunning', taskId: repl.id }, now);
      }
      return;
    }
    if (item.old?.id === oldId) {
      item.old = repl;
      this.track(item, repl);
    }
  }

  private advance(item: Item, ev: UpdateEvent, now: number): void {
    const isOld = item.old !== undefined && ev.type !== 'taskReplaced' && ev.taskId === item.old.id;
    const isNew = item.next !== undefined && ev.type !== 'taskReplaced' && ev.taskId === item.next.id;
    if (isOld && ev.type === 'taskDrained' && item.step === 'draining') {
      item.deadline = undefined;
      this.afterDrain(item, now);
    } else if (isOld && (ev.type === 'taskStopped' || ev.type === 'taskFailed') && item.step === 'stopping') {
      this.startNew(item, now);
    } else if (isNew && ev.type === 'taskRunning' && item.step === 'starting' && item.canary && this.canary.holding) {
      item.step = 'canary';
      item.deadline = undefined;
      this.canary.running();
    } else if (isNew && ev.type === 'taskRunning' && item.step === 'starting') {
      if (item.phase === this.phase && item.cfg.monitorMs > 0) this.monitors.set(item.next!.id, now + item.cfg.monitorMs);
      if (item.cfg.order === 'start-first' && item.old) this.drainOrSkip(item, now);
      else this.done(item, now);
    } else if (isNew && ev.type === 'taskFailed' && (item.step === 'starting' || item.step === 'stopping')) {
      if (item.cfg.order === 'start-first' && item.old) {
        // Keep the old task serving; withdraw the failed new one.
        this.emit({ type: 'shutdownTask', taskId: item.next!.id, reason: 'new task failed during start-first update' });
        item.next = undefined;
      }
      this.done(item, now);
      if (item.phase === this.phase) this.fail(now, `task ${ev.taskId} failed to start${ev.message ? `: ${ev.message}` : ''}`);
    }
  }

  /** The new task did not run within the start bound: withdraw it and count a failure. */
  private startTimedOut(item: Item, now: number): void {
    const id = item.next?.id ?? '?';
    const secs = Math.round(this.startTimeout() / 1000);
    if (item.next) this.emit({ type: 'shutdownTask', taskId: item.next.id, reason: `not running ${secs} s after its start` });
    if (item.cfg.order === 'start-first' && item.old) item.next = undefined; // the old one keeps serving
    this.done(item, now);
    if (item.phase === this.phase) this.fail(now, `task ${id} not running ${secs} s after its start`);
  }

  private done(item: Item, now: number): void {
    item.step = 'done';
    item.deadline = undefined;
    if (item.old) this.inFlight.delete(item.old.id);
    if (item.next) {
      this.inFlight.delete(item.next.id);
      this.current.set(item.key, item.next);
    }
    if (item.canary) return; // canary slots use no worker
    this.busy.delete(item.worker);
    if (item.phase === this.phase) this.workers[item.worker] = now + item.cfg.delayMs;
  }

  private fail(now: number, why: string): void {
    this.failures++;
    const cfg = this.config();
    const ratio = this.total > 0 ? this.failures / this.total : 1;
    if (ratio <= cfg.maxFailureRatio) return;
    const msg = `${why}; failure ratio ${this.failures}/${this.total} exceeds ${cfg.maxFailureRatio}`;
    if (cfg.failureAction === 'continue') return;
    if (this.phase === 'rollback') {
      this.setState('rollback_paused', `rollback paused: ${msg}`);
    } else if (cfg.failureAction === 'pause') {
      this.setState('paused', `update paused: ${msg}`);
    } else if (this.st === 'updating' || this.st === 'completed') {
      this.startRollback(now, msg);
    }
  }

  private startRollback(now: number, why: string): void {
    this.canary.drop();
    this.phase = 'rollback';
    this.queue = [];
    this.monitors.clear();
    this.pendingRollbackBuild = true;
    this.unconfirmedDrains = 0;
    this.emit({ type: 'setServiceSpec', serviceId: this.init.serviceId, version: this.init.from.version, spec: this.init.from.spec });
    this.st = 'rollback_started';
    this.emitState(`rollback to version ${this.init.from.version} started: ${why}`);
    this.pump(now);
  }
}
