/**
 * OverlayService: drives the pure OverlayState with real time and runs its reconcile
 * actions through an OverlayReconciler. The agent's composition root creates one per
 * node, feeds it gossip table events and task assignments, and reads `lastReport` /
 * `lastError` for `netctl debug`. Errors are never dropped: each failed reconcile goes
 * to `onError` and is retried with backoff by the state machine.
 */
import type { Clock } from '../../core/clock.js';
import { toMeshError, type MeshError } from '../../core/errors.js';
import { type OverlayEvent, OverlayState, type OverlayTimers, DEFAULT_OVERLAY_TIMERS, type ReconcileInput } from '../../core/overlay/state.js';
import type { OverlayReconciler, OverlayStatus, ReconcileReport } from './overlay.js';

export interface OverlayServiceOptions {
  reconciler: OverlayReconciler;
  clock: Clock;
  timers?: OverlayTimers;
  onReconciled?: (r: ReconcileReport, reason: string) => void;
  onError: (e: MeshError) => void;
}

export class OverlayService {
  private readonly state: OverlayState;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Bumped by every handle(): "everything handed in so far" is a generation number. */
  private handedIn = 0;
  /** Generation of the input of the last reconcile that finished (ok or not). */
  private finishedGen = -1;
  lastReport: ReconcileReport | null = null;
  lastError: MeshError | null = null;

  constructor(private readonly opts: OverlayServiceOptions) {
    this.state = new OverlayState(opts.clock.now(), opts.timers ?? DEFAULT_OVERLAY_TIMERS);
  }

  /** Starts the loop (an immediate reconcile from the kernel, then events/resyncs). */
  start(): void {
    this.stopped = false;
    this.pump();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  handle(ev: OverlayEvent): void {
    this.handedIn++;
    this.state.handle(ev, this.opts.clock.now());
    this.pump();
  }

  /** Current desired input (what the next reconcile will apply). */
  input(): ReconcileInput {
    return this.state.input();
  }

  /** Desired vs actual for `netctl debug fdb|sandbox`. */
  status(): Promise<OverlayStatus> {
    return this.opts.reconciler.status(this.state.input());
  }

  /**
   * Waits until a reconcile whose input includes every event handed in before this call has
   * finished (ok or not), or until no reconcile is running or due before `now + withinMs`,
   * whichever comes first. The first condition bounds the wait under steady churn: waiting
   * for quiet alone never ends while events keep arriving faster than a reconcile takes (on a
   * loaded node that starved the LB's ingress plumbing for minutes).
   */
  async settle(withinMs = 0): Promise<void> {
    const target = this.handedIn;
    for (;;) {
      if (this.finishedGen >= target) return;
      if (this.running) {
        await this.running;
        continue;
      }
      const d = this.state.nextDeadline();
      if (d === null || d > this.opts.clock.now() + withinMs) return;
      await new Promise((r) => setTimeout(r, Math.max(1, d - this.opts.clock.now())));
    }
  }

  private pump(): void {
    if (this.stopped) return;
    const now = this.opts.clock.now();
    this.state.tick(now);
    const gen = this.handedIn; // tick() above took the input with every event handled so far
    for (const a of this.state.drain()) this.running = this.run(a.input, a.reason, gen);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const d = this.state.nextDeadline();
    if (d !== null) {
      this.timer = setTimeout(() => this.pump(), Math.max(0, d - now));
      this.timer.unref();
    }
  }

  private async run(input: ReconcileInput, reason: string, gen: number): Promise<void> {
    let ok = false;
    try {
      const r = await this.opts.reconciler.reconcile(input);
      this.lastReport = r;
      this.lastError = null;
      ok = true;
      this.opts.onReconciled?.(r, reason);
    } catch (e) {
      this.lastError = toMeshError(e);
      this.opts.onError(this.lastError);
    } finally {
      this.state.reconciled(ok, this.opts.clock.now());
      this.finishedGen = Math.max(this.finishedGen, gen);
      this.running = null;
      this.pump();
    }
  }
}
