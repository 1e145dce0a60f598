/**
 * The one reconcile loop every converging subsystem runs its work through (worker, LB, DNS
 * sandboxes, manager link, netlink): a thin shell around the pure policy in
 * src/core/reconcile/loop.ts (coalesced marks, one run at a time, back-off on failure, stop
 * during a run). Time and timers come from an injected TimerClock, so tests step a ManualClock.
 *
 * Why a shell and not another hand-written loop: the copies this replaces kept `running`,
 * `dirty`/`again` and a timer in separate fields, and two of them wedged for good when an edge
 * case left `running` set (a run that finished before its promise was stored). Here the only
 * state is the core's, and a run's promise is stored before any of its code can finish it.
 */
import type { Timer, TimerClock } from '../core/clock.js';
import { DEFAULT_LOOP_CONFIG, LoopCore, type LoopConfig } from '../core/reconcile/loop.js';

export interface ReconcileLoopOptions<K> {
  clock: TimerClock;
  /**
   * Does the work for `keys`. Returns the keys to retry (partial failure), or nothing when all
   * succeeded; a throw retries every key. It never runs twice at once.
   */
  run(keys: K[]): Promise<readonly K[] | void>;
  /** Told about a run that threw (log it: the keys are retried with back-off, never dropped). */
  onError?(err: unknown, keys: readonly K[]): void;
  config?: LoopConfig;
}

export class ReconcileLoop<K> {
  private readonly core: LoopCore<K>;
  private timer: Timer | undefined;
  private timerAt: number | undefined;
  private current: Promise<void> | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly o: ReconcileLoopOptions<K>) {
    this.core = new LoopCore<K>(o.config ?? DEFAULT_LOOP_CONFIG);
  }

  /** Marks `key` dirty; a run starts within `delayMs` (marks coalesce; a run in flight is followed by another). */
  mark(key: K, delayMs = 0): void {
    this.core.mark(key, this.o.clock.now(), delayMs);
    this.arm();
  }

  /** Stops: nothing new starts, pending keys are dropped; resolves when a run in flight has finished. */
  async stop(): Promise<void> {
    this.core.stop();
    this.cancelTimer();
    await this.current;
    this.wakeIdle();
  }

  /** Resolves when no run is in flight and nothing is waiting (a key waiting on back-off is not idle). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get running(): boolean {
    return this.core.running;
  }
  get stopped(): boolean {
    return this.core.isStopped;
  }
  get counters(): Readonly<{ runs: number; failedRuns: number }> {
    return this.core.counters;
  }
  get consecutiveFailures(): number {
    return this.core.consecutiveFailures;
  }
  pending(): K[] {
    return this.core.pending();
  }
  /** When the next run is due (clock ms); undefined while a run is in flight or nothing waits. */
  nextDeadline(): number | undefined {
    return this.core.nextDeadline();
  }

  private isIdle(): boolean {
    return !this.core.running && (this.core.isStopped || this.core.pending().length === 0);
  }

  private wakeIdle(): void {
    if (!this.isIdle()) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.timerAt = undefined;
  }

  /** Keeps exactly one timer armed for the core's next deadline. */
  private arm(): void {
    const due = this.core.nextDeadline();
    if (due === undefined) {
      this.cancelTimer();
      this.wakeIdle();
      return;
    }
    if (this.timer && this.timerAt !== undefined && this.timerAt <= due) return;
    this.cancelTimer();
    this.timerAt = due;
    this.timer = this.o.clock.setTimer(Math.max(0, due - this.o.clock.now()), () => {
      this.timer = undefined;
      this.timerAt = undefined;
      this.fire();
    });
  }

  private fire(): void {
    const keys = this.core.start(this.o.clock.now());
    if (!keys) return this.arm();
    this.current = this.runKeys(keys);
  }

  private async runKeys(keys: K[]): Promise<void> {
    let failed: readonly K[] = [];
    try {
      failed = (await this.o.run(keys)) ?? [];
    } catch (e) {
      failed = keys;
      try {
        this.o.onError?.(e, keys);
      } catch {
        // a logging hook must not stop the loop
      }
    }
    this.core.finish(this.o.clock.now(), this.core.isStopped ? [] : failed);
    this.current = undefined;
    this.arm();
  }
}
