/**
 * When the VXLAN guard's allow-list is written (the pure policy; the agent shell in
 * src/agent/overlay/guard.ts runs it through the reconcile loop).
 *
 * Why: the allow-list follows gossip membership, and every member change used to cost each agent
 * a full guard ensure (read, write, read back: 3 `nft` processes) plus an overlay read (2 `ip`).
 * In a join storm of N agents that is N × (N−1) × 5 spawns on a 2-core machine (issue 18 §3), and
 * the agents starve each other. Rules:
 * - at most one transaction starts per `minIntervalMs` (1 s), trailing edge: a change made while
 *   the window is closed is written when it opens, with the allow-list as it is THEN, so the final
 *   member set is always programmed and a burst of changes costs one write per second;
 * - a change after a quiet period is written at once (the window is open);
 * - hence a member that leaves loses access within `minIntervalMs` plus one transaction (fail
 *   closed: a removed member must not keep access long), and one that joins waits at most as long;
 * - a plain membership write is an `update` (ONE `nft -f`: the set's elements, no read-back); a
 *   `verify` (read back, install or repair, read again) runs first, after any failure (the kernel
 *   state is then unknown), and every `verifyEveryMs` — so drift (someone deleted the table) is
 *   repaired within that bound without a read per member change;
 * - a failed transaction is retried after a back-off (`retryMinMs` doubling to `retryMaxMs`, never
 *   sooner than the 1 s window), as a verify.
 * Time is injected (`now`, ms); nothing here does I/O.
 */
import { backoffMs } from '../reconcile/loop.js';

export interface GuardPacerConfig {
  /** Least time between the starts of two guard transactions, ms. */
  minIntervalMs: number;
  /** A full read-back and verify at least this long after the last successful one, ms. */
  verifyEveryMs: number;
  /** First retry delay after a failed transaction, ms (doubles per consecutive failure). */
  retryMinMs: number;
  /** Ceiling of the retry delay, ms. */
  retryMaxMs: number;
}

/** Defaults: one write per second at most; verify every 30 s (the overlay's resync period). */
export const DEFAULT_GUARD_PACER: GuardPacerConfig = { minIntervalMs: 1000, verifyEveryMs: 30_000, retryMinMs: 1000, retryMaxMs: 30_000 };

/** A transaction to run: `update` writes only the set's elements (one process); `verify` reads back and repairs. */
export interface GuardJob {
  mode: 'update' | 'verify';
  /** The allow-list to program, sorted and without duplicates. */
  allow: string[];
}

/** Where the guard stands: never written, last transaction succeeded, or last transaction failed. */
export type GuardPacerStatus = 'never' | 'ok' | 'failed';

/** Sorted, deduplicated copy (the identity a no-op change is detected with). */
export function normalizeAllow(allow: readonly string[]): string[] {
  return [...new Set(allow)].sort();
}

export class GuardPacer {
  private desired: string[] | undefined;
  private desiredKey: string | undefined;
  /** What the kernel holds as of the last successful transaction (undefined: unknown). */
  private programmedKey: string | undefined;
  private lastStart: number | undefined;
  private lastFinish: number | undefined;
  private lastVerify: number | undefined;
  private inFlight: GuardJob | undefined;
  private failures = 0;
  /** Counters for metrics and tests. */
  readonly counters = { updates: 0, verifies: 0, failed: 0 };

  constructor(private readonly cfg: GuardPacerConfig = DEFAULT_GUARD_PACER) {}

  /** The allow-list should now be `allow` (a no-op when unchanged). */
  want(allow: readonly string[]): void {
    const a = normalizeAllow(allow);
    this.desired = a;
    this.desiredKey = a.join(',');
  }

  /** True once want() was called (before that nothing is ever written). */
  get hasDesired(): boolean {
    return this.desired !== undefined;
  }

  /** The allow-list last asked for (empty before any). */
  get wanted(): readonly string[] {
    return this.desired ?? [];
  }

  /** The allow-list the last successful transaction wrote (null when unknown: never, or after a failure). */
  get programmed(): readonly string[] | null {
    return this.programmedKey === undefined ? null : this.programmedKey === '' ? [] : this.programmedKey.split(',');
  }

  get status(): GuardPacerStatus {
    if (this.failures > 0) return 'failed';
    return this.lastVerify === undefined ? 'never' : 'ok';
  }

  get running(): boolean {
    return this.inFlight !== undefined;
  }

  /** Consecutive failed transactions (0 after a success). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** When the next transaction should start (ms, clock time); undefined: nothing to do (or one is running). */
  nextDeadline(): number | undefined {
    if (this.inFlight || this.desired === undefined) return undefined;
    // 0 = due at once (clock time is never negative): nothing was ever started.
    const window = this.lastStart === undefined ? 0 : this.lastStart + this.cfg.minIntervalMs;
    if (this.failures > 0) return Math.max(window, (this.lastFinish ?? 0) + backoffMs(this.retryConfig(), this.failures));
    if (this.lastVerify === undefined || this.programmedKey !== this.desiredKey) return window;
    return Math.max(window, this.lastVerify + this.cfg.verifyEveryMs);
  }

  /** Starts the transaction due at `now` (the allow-list as it is now), or returns undefined when none is due. */
  start(now: number): GuardJob | undefined {
    const due = this.nextDeadline();
    if (due === undefined || due > now || !this.desired) return undefined;
    const verify = this.failures > 0 || this.lastVerify === undefined || now >= this.lastVerify + this.cfg.verifyEveryMs;
    this.inFlight = { mode: verify ? 'verify' : 'update', allow: [...this.desired] };
    this.lastStart = now;
    return { mode: this.inFlight.mode, allow: [...this.inFlight.allow] };
  }

  /** Ends the transaction started last; `ok` false: the kernel state is unknown until a verify succeeds. */
  finish(now: number, ok: boolean): void {
    const job = this.inFlight;
    if (!job) throw new Error('finish() without a transaction');
    this.inFlight = undefined;
    this.lastFinish = now;
    if (ok) {
      this.failures = 0;
      this.programmedKey = job.allow.join(',');
      if (job.mode === 'verify') {
        this.counters.verifies++;
        this.lastVerify = this.lastStart;
      } else {
        this.counters.updates++;
      }
    } else {
      this.failures++;
      this.counters.failed++;
      this.programmedKey = undefined;
    }
  }

  private retryConfig(): { minBackoffMs: number; maxBackoffMs: number } {
    return { minBackoffMs: this.cfg.retryMinMs, maxBackoffMs: this.cfg.retryMaxMs };
  }
}
