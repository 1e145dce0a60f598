/**
 * Rolling update and rollback of one service (swarmkit's updater), as a state machine:
 * handle(event, now) / tick(now) / nextDeadline() / drain() of actions.
 *
 * `parallelism` workers (0 = one per slot) each take a slot whose task runs an older
 * spec, replace its task (stop-first or start-first, with a confirmed drain: the steps of
 * one slot are update-slot.ts), then wait `delayMs` before taking the next slot.
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
 * target spec; an in-flight slot follows or adopts the replacement (update-slot.ts). A held
 * canary is canary-hold.ts. A machine created by a new leader waits out the update delay
 * after the last slot the previous leader finished.
 */
import type { Task, TaskSpec, TaskState, UpdateConfig } from '../spec/types.js';
import { isTerminal, taskSpecEqual, taskSpecOf } from '../spec/types.js';
import type { Action, UpdateState } from './actions.js';
import { heldCanarySlots } from './canary.js';
import { CanaryHold } from './canary-hold.js';
import { SlotSteps } from './update-slot.js';
import { ACTIVE, lastRunningOn, slotKey, type Item, type RollingUpdateInit, type SpecVersion, type UpdateEvent } from './update-types.js';

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
  /** One slot's replacement steps (update-slot.ts); they share this machine's maps. Set first in the constructor (it needs `init`). */
  private readonly slots: SlotSteps;
  /** The canary's slots and whether they are held (canary-hold.ts). */
  private readonly canary = new CanaryHold({
    version: () => this.init.to.version, total: () => this.total, state: () => this.st, startItem: (i, now) => this.slots.startItem(i, now),
    drainOrSkip: (i, now) => this.slots.drainOrSkip(i, now), track: (i, t) => this.slots.track(i, t), untrack: (id) => this.inFlight.delete(id),
    startTimeoutMs: () => this.startTimeout(), emit: (a) => this.emit(a), emitState: (m) => this.emitState(m), setState: (st, m) => this.setState(st, m),
  });

  constructor(private readonly init: RollingUpdateInit) {
    this.slots = new SlotSteps({
      init, current: this.current, inFlight: this.inFlight, monitors: this.monitors, phase: () => this.phase, target: () => this.target(),
      taskSpec: (sv) => this.taskSpec(sv), dirty: (t, v) => this.dirty(t, v), startTimeout: () => this.startTimeout(),
      canaryHolding: () => this.canary.holding, canaryRunning: () => this.canary.running(), emit: (a) => this.emit(a), fail: (now, why) => this.fail(now, why),
      freeWorker: (w) => this.busy.delete(w), workerRests: (w, until) => { this.workers[w] = until; },
    });
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
  /**
   * What completion still waits for (diagnostics: a test prints it when an update does not finish): queued
   * slots, busy workers, monitored tasks, an open canary, a pending rollback build, and each in-flight item's
   * step with its old and new task (`id:state/desired`).
   */
  get progress(): { state: UpdateState; queue: number; busy: number; monitors: number; canaryOpen: boolean; pendingRollbackBuild: boolean; items: string[] } {
    const t = (x: Task | undefined): string => (x ? `${x.id}:${x.state}/${x.desiredState}` : '-');
    const items = [...new Set(this.inFlight.values())].map((i) => `${i.key} ${i.step}${i.canary ? ' canary' : ''} old=${t(i.old)} new=${t(i.next)}`);
    return { state: this.st, queue: this.queue.length, busy: this.busy.size, monitors: this.monitors.size, canaryOpen: this.canary.open, pendingRollbackBuild: this.pendingRollbackBuild, items };
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
      if (item) this.slots.followReplacement(item, ev.oldTaskId, ev.task, now);
    } else if (ev.type === 'taskFailed' && this.monitors.has(ev.taskId)) {
      const until = this.monitors.get(ev.taskId)!;
      this.monitors.delete(ev.taskId);
      if (now <= until) this.fail(now, `task ${ev.taskId} failed within the monitor period${ev.message ? `: ${ev.message}` : ''}`);
    } else {
      const item = this.inFlight.get(ev.taskId);
      if (item) this.slots.advance(item, ev, now);
    }
    this.tick(now);
  }

  tick(now: number): void {
    for (const item of [...new Set(this.inFlight.values())]) {
      if (item.deadline !== undefined && now >= item.deadline) {
        if (item.step === 'draining') {
          item.unconfirmed = true;
          this.unconfirmedDrains++;
          this.slots.afterDrain(item, now);
        } else if (item.step === 'stopping') {
          this.slots.startNew(item, now);
        } else if (item.step === 'starting') {
          this.slots.startTimedOut(item, now);
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
        this.slots.startItem(item, now);
        if (!this.busy.has(w)) w--; // the slot needed nothing: the same worker takes the next
      }
    }
    if (ACTIVE.has(this.st) && !this.canary.open && !this.pendingRollbackBuild && this.queue.length === 0 && this.busy.size === 0 && this.monitors.size === 0) {
      const note = this.unconfirmedDrains ? ` (${this.unconfirmedDrains} drain(s) not confirmed in time)` : '';
      if (this.phase === 'forward') this.setState('completed', `update to version ${this.init.to.version} completed${note}`);
      else this.setState('rollback_completed', `rolled back to version ${this.init.from.version}${note}`);
    }
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
