/**
 * The overlay's VXLAN guard shell: the ONE writer of the guard's allow-list on this node. It feeds
 * member changes to the pure pacer (core/overlay/guard-pacer.ts: at most one transaction a second,
 * trailing edge, a verify every 30 s and after failures) and runs its jobs through the shared
 * reconcile loop (one at a time, timers on the injected clock).
 *
 * Why a writer apart from the overlay reconcile: the allow-list follows gossip membership, and
 * reconciling the whole overlay on each member change cost every agent 5 processes per change
 * (issue 18 §3). Now a member change costs one `nft -f` per second at most, and the overlay
 * reconcile no longer reads or writes the guard per run: through `gate()` it only asks that the
 * guard be in place (fail closed: no overlay before the guard), which costs nothing once the
 * guard's last transaction succeeded.
 */
import type { Logger } from '../../adapters/logger.js';
import type { GuardState, VxlanGuard } from '../../adapters/firewall/vxlan-guard.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { TimerClock } from '../../core/clock.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import { DEFAULT_GUARD_PACER, GuardPacer, type GuardPacerConfig, type GuardPacerStatus } from '../../core/overlay/guard-pacer.js';

export interface OverlayGuardOptions {
  guard: VxlanGuard;
  port: number;
  clock: TimerClock;
  log: Logger;
  pacer?: Partial<GuardPacerConfig>;
}

/** What `netctl debug overlay` shows of the guard. */
export interface OverlayGuardView {
  status: GuardPacerStatus;
  /** The allow-list asked for. */
  wanted: readonly string[];
  /** What the last successful transaction wrote (null: unknown). */
  programmed: readonly string[] | null;
  lastError: string | null;
  counters: { updates: number; verifies: number; failed: number };
}

type Waiter = (err: MeshError | null) => void;

export class OverlayGuard {
  private readonly pacer: GuardPacer;
  private readonly loop: ReconcileLoop<'guard'>;
  private lastError: MeshError | null = null;
  /** ready() callers waiting for the next transaction's outcome. */
  private waiters: Waiter[] = [];
  private stopped = false;

  constructor(private readonly o: OverlayGuardOptions) {
    this.pacer = new GuardPacer({ ...DEFAULT_GUARD_PACER, ...o.pacer });
    // The pacer owns retries (run() never throws), so the loop's own back-off never applies.
    this.loop = new ReconcileLoop<'guard'>({ clock: o.clock, run: () => this.run() });
  }

  /** The allow-list should now be `allow` (this node's own address excluded by the caller). */
  want(allow: readonly string[]): void {
    if (this.stopped) return;
    this.pacer.want(allow);
    this.schedule();
  }

  /**
   * Resolves when the guard is in place: at once when the last transaction succeeded; waits for the
   * first one; rejects with the last failure (the caller, the overlay reconcile, fails and retries:
   * fail closed). A change still waiting for its 1 s window does not delay anyone.
   */
  ready(fallbackAllow: readonly string[]): Promise<void> {
    if (this.stopped) return Promise.reject(new MeshError('MESHD_NOT_READY', 'the VXLAN guard is stopped; overlay stays down (fail closed)'));
    const st = this.pacer.status;
    if (st === 'ok') return Promise.resolve();
    if (st === 'failed' && !this.pacer.running) return Promise.reject(this.lastError ?? new MeshError('MESHD_NOT_READY', 'the VXLAN guard failed'));
    if (!this.pacer.hasDesired) this.want(fallbackAllow);
    return new Promise<void>((resolve, reject) => this.waiters.push((err) => (err ? reject(err) : resolve())));
  }

  /** The VxlanGuard the overlay reconciler is given: ensure() waits for ready(); the allow-list is ours. */
  gate(): VxlanGuard {
    return {
      ensure: (_port, allow) => this.ready(allow),
      update: async () => undefined,
      read: (): Promise<GuardState> => this.o.guard.read(),
      remove: () => this.o.guard.remove(),
    };
  }

  view(): OverlayGuardView {
    return {
      status: this.pacer.status, wanted: this.pacer.wanted, programmed: this.pacer.programmed,
      lastError: this.lastError?.message ?? null, counters: { ...this.pacer.counters },
    };
  }

  /** Nothing new starts (a transaction in flight finishes); waiters are told. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake(new MeshError('MESHD_NOT_READY', 'the VXLAN guard is stopped'));
    await this.loop.stop();
  }

  /** Asks the loop for a run at the pacer's next deadline (a run that finds nothing due re-asks). */
  private schedule(): void {
    if (this.stopped) return;
    const due = this.pacer.nextDeadline();
    if (due !== undefined) this.loop.mark('guard', Math.max(0, due - this.o.clock.now()));
  }

  private async run(): Promise<void> {
    const job = this.pacer.start(this.o.clock.now());
    if (!job) return this.schedule();
    let err: MeshError | null = null;
    try {
      if (job.mode === 'verify') await this.o.guard.ensure(this.o.port, job.allow);
      else await this.o.guard.update(this.o.port, job.allow);
    } catch (e) {
      err = toMeshError(e);
    }
    this.pacer.finish(this.o.clock.now(), err === null);
    this.lastError = err;
    if (err) {
      this.o.log.error({ err, mode: job.mode, members: job.allow.length, retryInMs: Math.max(0, (this.pacer.nextDeadline() ?? 0) - this.o.clock.now()) },
        'VXLAN guard transaction failed (will retry as a full verify)');
    } else {
      this.o.log.debug({ mode: job.mode, members: job.allow.length }, 'VXLAN guard programmed');
    }
    this.wake(err);
    this.schedule();
  }

  private wake(err: MeshError | null): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(err);
  }
}
