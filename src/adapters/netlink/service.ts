/**
 * OverlayService: keeps the overlay's desired input (core/overlay/state.ts) and runs it through
 * an OverlayReconciler on the shared reconcile loop (adapters/reconcile-loop.ts) — one reconcile
 * at a time, bursts of events coalesced (`debounceMs`), a failed reconcile retried with back-off
 * (`retryMinMs` doubling to `retryMaxMs`), and a full resync `resyncMs` after the last success
 * that repairs drift nobody told us about. Every reconcile takes the input as it is when it
 * starts, so events handed in while one runs are carried by the next.
 *
 * The agent's composition root creates one per node, feeds it gossip table events and task
 * assignments, and reads `lastReport` / `lastError` for `netctl debug`. Errors are never
 * dropped: each failed reconcile goes to `onError` and is retried.
 */
import type { Timer, TimerClock } from '../../core/clock.js';
import { toMeshError, type MeshError } from '../../core/errors.js';
import { type OverlayEvent, OverlayState, type OverlayTimers, DEFAULT_OVERLAY_TIMERS, type ReconcileInput } from '../../core/overlay/state.js';
import { ReconcileLoop } from '../reconcile-loop.js';
import type { OverlayReconciler, OverlayStatus, ReconcileReport } from './overlay.js';

export interface OverlayServiceOptions {
  /** `fresh: false`: the reconcile may start from the last known kernel state (adapters/netlink/overlay.ts). */
  reconciler: Pick<OverlayReconciler, 'reconcile' | 'status'>;
  clock: TimerClock;
  timers?: OverlayTimers;
  onReconciled?: (r: ReconcileReport, reason: ReconcileReason) => void;
  onError: (e: MeshError) => void;
}

/** Why a reconcile ran: events came in, the periodic (or first) resync, or a retry after a failure. */
export type ReconcileReason = 'event' | 'resync' | 'retry';

type LoopKey = 'event' | 'resync';

export class OverlayService {
  private readonly state = new OverlayState();
  private readonly timers: OverlayTimers;
  private readonly loop: ReconcileLoop<LoopKey>;
  private resyncTimer: Timer | undefined;
  private started = false;
  private stopped = false;
  /** Bumped by every handle(): "everything handed in so far" is a generation number. */
  private handedIn = 0;
  /** Generation of the input of the last reconcile that finished (ok or not). */
  private finishedGen = -1;
  private finishWaiters: Array<() => void> = [];
  /** The networks the reconcile in flight hosts (its input); undefined while none runs. */
  private inFlight: ReadonlySet<string> | undefined;
  lastReport: ReconcileReport | null = null;
  lastError: MeshError | null = null;
  /**
   * The next reconcile must read the kernel: an event other than a remote endpoint or member change came in
   * (networks, attachments, local endpoints: structure and task ports whose kernel details only a read shows),
   * or someone asked (`readBack`, a manual reconcile). Resyncs and retries always read.
   */
  private needsRead = true;

  constructor(private readonly opts: OverlayServiceOptions) {
    this.timers = opts.timers ?? DEFAULT_OVERLAY_TIMERS;
    this.loop = new ReconcileLoop<LoopKey>({
      clock: opts.clock,
      run: (keys) => this.run(keys),
      config: {
        minBackoffMs: this.timers.retryMinMs, maxBackoffMs: this.timers.retryMaxMs,
        ...(this.timers.maxDuty !== undefined ? { maxDuty: this.timers.maxDuty } : {}),
        ...(this.timers.maxPaceMs !== undefined ? { maxPaceMs: this.timers.maxPaceMs } : {}),
      },
    });
  }

  /**
   * Starts reconciling: at once (an agent restart repairs from the kernel), then on events and
   * resyncs. Events handed in before start() are only recorded: the first reconcile sees them all.
   */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.loop.mark('resync', 0);
  }

  /** Nothing new starts (a reconcile in flight finishes); final. */
  stop(): void {
    this.stopped = true;
    this.resyncTimer?.cancel();
    this.resyncTimer = undefined;
    void this.loop.stop();
    this.wakeWaiters();
  }

  /**
   * Records an event; `reconcile: false` only records it (the next reconcile carries it): the
   * agent's member-list updates that change nothing the overlay programs (issue 18 §3).
   */
  handle(ev: OverlayEvent, opts: { reconcile?: boolean } = {}): void {
    this.state.handle(ev);
    if (ev.type !== 'remote-add' && ev.type !== 'remote-remove' && ev.type !== 'members') this.needsRead = true;
    if (opts.reconcile === false) return;
    this.handedIn++;
    if (!this.started || this.stopped) return;
    // While failing, the retry already scheduled (back-off) carries the new input: do not hammer.
    if (this.loop.consecutiveFailures > 0 && this.loop.pending().length > 0) return;
    this.loop.mark('event', this.timers.debounceMs);
  }

  /** The next reconcile reads the kernel back first (someone may have changed it by hand). */
  readBack(): void {
    this.needsRead = true;
  }

  /** Current desired input (what the next reconcile will apply). */
  input(): ReconcileInput {
    return this.state.input();
  }

  /** Desired vs actual for `netctl debug fdb|sandbox`. */
  status(): Promise<OverlayStatus> {
    return this.opts.reconciler.status(this.state.input());
  }

  /** Consecutive failed reconciles (0 after a success). */
  get consecutiveFailures(): number {
    return this.loop.consecutiveFailures;
  }

  /** Reconciles started, and how many of them failed. */
  get counters(): Readonly<{ runs: number; failedRuns: number }> {
    return this.loop.counters;
  }

  /**
   * Waits until a reconcile whose input includes every event handed in before this call has
   * finished (ok or not), or until no reconcile is running or due before `now + withinMs`,
   * whichever comes first — the second only while retrying after a failure (a paced or debounced reconcile is
   * waited for). The first condition bounds the wait under steady churn: waiting
   * for quiet alone never ends while events keep arriving faster than a reconcile takes (on a
   * loaded node that starved the LB's ingress plumbing for minutes).
   */
  async settle(withinMs = 0): Promise<void> {
    const target = this.handedIn;
    for (;;) {
      if (this.finishedGen >= target || this.stopped) return;
      if (!this.loop.running) {
        const due = this.loop.nextDeadline();
        // Only a retry (back-off after a failure) may be further away than the caller waits. A reconcile held
        // back by pacing (≤ maxPaceMs) or the debounce is waited for: returning early there let the worker
        // attach a task to a sandbox the pending reconcile had not created yet (clean clone, run-lab: `ip -n
        // …-ov-… -batch`: Cannot open network namespace).
        if (due === undefined || (this.loop.consecutiveFailures > 0 && due > this.opts.clock.now() + withinMs)) return;
      }
      await new Promise<void>((r) => this.finishWaiters.push(r));
    }
  }

  /**
   * True when each of `sandboxes` ({network id, namespace}) is in the kernel now and stays there: the last
   * reconcile succeeded and left it with its bridge and VXLAN device, and a reconcile in flight (its input
   * taken before the caller's events) hosts the network too, so it cannot be removing it. A task start needs
   * only that much — not a reconcile of the remote entries that churn keeps handing in, which pacing may hold
   * back for up to maxPaceMs (issue 18 item 1: commit → last node under churn).
   */
  sandboxesReady(sandboxes: ReadonlyArray<{ network: string; ns: string }>): boolean {
    const actual = this.lastReport?.actual;
    if (this.stopped || this.lastError || !actual) return false;
    if (this.inFlight && sandboxes.some((x) => !this.inFlight!.has(x.network))) return false;
    return sandboxes.every((x) => actual.sandboxes.some((sb) => sb.ns === x.ns && sb.bridge !== null && sb.vxlan !== null));
  }

  private async run(keys: LoopKey[]): Promise<void> {
    const gen = this.handedIn; // the input below holds every event handed in so far
    const input = this.state.input();
    this.inFlight = new Set(input.networks.map((n) => n.id));
    const reason: ReconcileReason = this.loop.consecutiveFailures > 0 ? 'retry' : keys.includes('event') ? 'event' : 'resync';
    const fresh = this.needsRead || reason !== 'event' || keys.includes('resync');
    this.needsRead = false; // events handed in from here on set it again for the next run
    try {
      const r = await this.opts.reconciler.reconcile(input, { fresh });
      this.lastReport = r;
      this.lastError = null;
      this.armResync();
      this.opts.onReconciled?.(r, reason);
    } catch (e) {
      this.lastError = toMeshError(e);
      this.opts.onError(this.lastError);
      throw e; // the loop retries with back-off
    } finally {
      this.inFlight = undefined;
      this.finishedGen = Math.max(this.finishedGen, gen);
      // After the loop has booked this run's end (its next deadline is known then): next macrotask.
      setImmediate(() => this.wakeWaiters());
    }
  }

  /** The next resync is `resyncMs` after the last successful reconcile. */
  private armResync(): void {
    this.resyncTimer?.cancel();
    if (this.stopped) return;
    this.resyncTimer = this.opts.clock.setTimer(this.timers.resyncMs, () => {
      this.resyncTimer = undefined;
      this.loop.mark('resync', 0);
    });
  }

  private wakeWaiters(): void {
    const w = this.finishWaiters;
    this.finishWaiters = [];
    for (const f of w) f();
  }
}
