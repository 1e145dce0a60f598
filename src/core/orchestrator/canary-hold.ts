/**
 * The canary part of the rolling update (update.ts is the machine; canary.ts the formulas): the
 * canary's slots, held from start until `promote` (`--canary-complete`) or `drop` (rollback). A
 * manager that starts resumes a held canary from the store (`start` with `held`): its slots keep
 * their old task and adopt the canary task they already run, so nothing is stopped or started
 * again and the weights the nodes were given stay (issue 19 §3, ARCHITECTURE reliability case 16).
 * Kept apart so that update.ts stays one concern; it reaches the machine only through CanaryHost.
 */
import type { Task } from '../spec/types.js';
import { isTerminal } from '../spec/types.js';
import type { Action, UpdateState } from './actions.js';
import { pickCanarySlots, type heldCanarySlots } from './canary.js';
import type { Item } from './update-types.js';

/** What the canary asks of its RollingUpdate: the machine's own steps (closures over it). */
export interface CanaryHost {
  /** The target version and how many slots the update has. */
  version(): number;
  total(): number;
  state(): UpdateState;
  startItem(item: Item, now: number): void;
  drainOrSkip(item: Item, now: number): void;
  track(item: Item, t: Task | undefined): void;
  untrack(taskId: string): void;
  startTimeoutMs(): number;
  emit(a: Action): void;
  emitState(message: string): void;
  setState(s: UpdateState, message: string): void;
}

export type HeldSlots = ReturnType<typeof heldCanarySlots<Task>>;

const slotOf = (item: Item): number => Number(item.key.slice(1));

export class CanaryHold {
  private items: Item[] = [];
  /** Started and not yet promoted or rolled back. */
  holding = false;

  constructor(private readonly host: CanaryHost) {}

  /** Some canary slot has not finished (held, or promoted and still replacing its old task). */
  get open(): boolean {
    return this.holding || this.items.some((i) => i.step !== 'done');
  }

  /** The canary's slot numbers (stored with the service, so that a new manager resumes the same ones). */
  get slots(): number[] {
    return this.items.filter((i) => i.key.startsWith('s')).map(slotOf);
  }

  /**
   * Takes the canary's items from `queue` (the first `count`; on resume the `held` slots) and
   * returns the rest. New: a task of the target spec starts beside each old one (start-first).
   * Resumed: each slot adopts its canary task, held if it runs, else waited for (start bound).
   */
  start(queue: Item[], count: number, now: number, held?: HeldSlots): Item[] {
    const h = this.host;
    this.holding = true;
    const [picked, rest] = pickCanarySlots(queue, count, held && ((i) => held.has(slotOf(i))));
    this.items = picked;
    if (!held) h.emitState(`canary: starting ${picked.length} task(s) of version ${h.version()} beside ${h.total()}`);
    for (const item of picked) {
      item.canary = true;
      item.cfg = { ...item.cfg, order: 'start-first' };
      const c = held?.get(slotOf(item))?.canary;
      if (!c) {
        h.startItem(item, now);
        continue;
      }
      item.next = c;
      h.track(item, item.old);
      h.track(item, c);
      item.step = c.state === 'running' ? 'canary' : 'starting';
      item.deadline = item.step === 'starting' ? now + h.startTimeoutMs() : undefined;
    }
    this.running();
    if (held && h.state() !== 'canary') h.emitState(`canary resumed: ${picked.length} task(s) of version ${h.version()} starting beside ${h.total()}`);
    return rest;
  }

  /** A canary task runs: once every canary slot runs (or ended), the state says so. */
  running(): void {
    const n = this.items.filter((i) => i.step === 'canary').length;
    if (n === 0 || this.items.some((i) => i.step !== 'canary' && i.step !== 'done')) return;
    this.host.setState('canary', `canary running: ${n} task(s) of version ${this.host.version()} beside ${this.host.total()}; `
      + '`service update --canary-complete` rolls the rest, `service rollback` removes them');
  }

  /** `--canary-complete`: the canary tasks replace their slots' old tasks (the caller pumps the rest). */
  promote(now: number): boolean {
    if (!this.holding) return false;
    this.holding = false;
    this.host.setState('updating', `canary promoted: rolling the rest to version ${this.host.version()}`);
    for (const item of this.items) if (item.step === 'canary') this.host.drainOrSkip(item, now);
    return true;
  }

  /** A held canary rolled back: its tasks go, the old ones never stopped serving. */
  drop(): void {
    if (!this.holding) return;
    this.holding = false;
    for (const item of this.items) {
      if (item.step === 'done') continue;
      if (item.next && !isTerminal(item.next.state)) this.host.emit({ type: 'shutdownTask', taskId: item.next.id, reason: 'canary rolled back' });
      if (item.old) this.host.untrack(item.old.id);
      if (item.next) this.host.untrack(item.next.id);
      item.next = undefined;
      item.step = 'done';
      item.deadline = undefined;
    }
  }
}
