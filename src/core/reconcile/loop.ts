/**
 * The policy of a coalescing reconcile loop, as a pure state machine (quinn-proto's model: fed
 * events and `now`, asked for its next deadline). Every agent subsystem that converges something
 * (worker, LB, DNS sandboxes, manager link, netlink) runs its work through one shell around this
 * core (src/adapters/reconcile-loop.ts), instead of writing its own `kick`/`dirty`/`running`/`again`
 * flags — two such hand-written copies wedged for good in CI (2273f8d, 91ecb2e).
 *
 * Rules:
 * - work is a set of dirty keys; marking a key asks for a run at `now + delayMs` (the earliest
 *   asked-for time wins: marks coalesce, a later mark never postpones an earlier one);
 * - one run at a time: a run takes every dirty key at its start; keys marked during the run wait
 *   for the next run, which is due as soon as the current one finishes (no delay is added to a mark
 *   made while running beyond its own);
 * - a failed run puts its failed keys back and retries after a back-off that doubles from
 *   `minBackoffMs` up to `maxBackoffMs`; a run with no failure resets it;
 * - after `stop()` nothing new starts; a run in flight finishes;
 * - pacing (optional, `maxDuty`): after a successful run that took `d` ms, the next run starts no
 *   earlier than `d × (1/maxDuty − 1)` ms (at most `maxPaceMs`) after it ended, so runs take at most
 *   `maxDuty` of the time. Marks during that gap coalesce into the next run. A mark after a quiet
 *   spell is not delayed (the gap has passed), so a lone change keeps its latency; under sustained
 *   churn the runs, not the changes, are what costs (one kernel transaction and process per run).
 */

export interface LoopConfig {
  /** First retry delay after a failed run, ms. */
  minBackoffMs: number;
  /** Ceiling of the doubling retry delay, ms. */
  maxBackoffMs: number;
  /** Largest share of wall time runs may take (0 < maxDuty ≤ 1); absent or 1 = no pacing. */
  maxDuty?: number;
  /** Ceiling of the pacing gap after a run, ms (default 500). */
  maxPaceMs?: number;
}

/** Defaults: retry a failed change after 0.5 s, at most every 10 s while it keeps failing. */
export const DEFAULT_LOOP_CONFIG: LoopConfig = { minBackoffMs: 500, maxBackoffMs: 10_000 };

/**
 * The pacing gap after a successful run of `runMs` (see the rules): `runMs × (1/maxDuty − 1)`, at most
 * `maxPaceMs` (default 500); 0 without pacing. A negative or NaN duration (clock step) counts as 0.
 */
export function paceMs(cfg: LoopConfig, runMs: number): number {
  const duty = cfg.maxDuty;
  if (duty === undefined || !(duty > 0) || duty >= 1) return 0;
  const d = Number.isFinite(runMs) && runMs > 0 ? runMs : 0;
  return Math.min(cfg.maxPaceMs ?? 500, Math.ceil(d * (1 / duty - 1)));
}

/** The retry delay after `failures` consecutive failed runs (1 → min, doubling, capped). */
export function backoffMs(cfg: LoopConfig, failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(cfg.maxBackoffMs, cfg.minBackoffMs * 2 ** Math.min(failures - 1, 30));
}

export class LoopCore<K> {
  private readonly dirtyKeys = new Set<K>();
  /** When the next run is due (undefined: nothing asked for). */
  private due: number | undefined;
  /** No run starts before this (pacing, see the rules); 0 = no bound. */
  private notBefore = 0;
  private runStartedAt = 0;
  private inRun = false;
  private stopped = false;
  private failures = 0;
  /** Counters for metrics and tests. */
  readonly counters = { runs: 0, failedRuns: 0 };

  constructor(private readonly cfg: LoopConfig = DEFAULT_LOOP_CONFIG) {}

  /** Marks `key` dirty; a run is due no later than `now + delayMs`. */
  mark(key: K, now: number, delayMs = 0): void {
    if (this.stopped) return;
    this.dirtyKeys.add(key);
    const at = now + Math.max(0, delayMs);
    if (this.due === undefined || at < this.due) this.due = at;
  }

  /** When the shell should call `start` next (undefined: never, until a mark). A run in flight defers it. */
  nextDeadline(): number | undefined {
    if (this.stopped || this.inRun || this.dirtyKeys.size === 0 || this.due === undefined) return undefined;
    return Math.max(this.due, this.notBefore);
  }

  /** Starts a run if one is due at `now`: returns its keys (and clears them), else undefined. */
  start(now: number): K[] | undefined {
    const d = this.nextDeadline();
    if (d === undefined || d > now) return undefined;
    const keys = [...this.dirtyKeys];
    this.dirtyKeys.clear();
    this.due = undefined;
    this.inRun = true;
    this.runStartedAt = now;
    this.counters.runs++;
    return keys;
  }

  /**
   * Ends the run started last. `failed`: the keys to retry (all of the run's keys when the run threw).
   * Keys marked during the run are due at once (their own delay already counted from their mark), or when
   * the pacing gap after a successful run ends.
   */
  finish(now: number, failed: readonly K[] = []): void {
    if (!this.inRun) throw new Error('finish() without a run');
    this.inRun = false;
    if (failed.length > 0) {
      this.failures++;
      this.counters.failedRuns++;
      const retryAt = now + backoffMs(this.cfg, this.failures);
      for (const k of failed) this.dirtyKeys.add(k);
      // Keys marked during the run keep their own due time (the failed keys then ride along with them).
      this.due = this.due === undefined ? retryAt : Math.min(this.due, retryAt);
    } else {
      this.failures = 0;
      const gap = paceMs(this.cfg, now - this.runStartedAt);
      this.notBefore = gap > 0 ? now + gap : 0;
    }
  }

  stop(): void {
    this.stopped = true;
    this.dirtyKeys.clear();
    this.due = undefined;
  }

  get running(): boolean {
    return this.inRun;
  }
  get isStopped(): boolean {
    return this.stopped;
  }
  /** Consecutive failed runs (0 after a success). */
  get consecutiveFailures(): number {
    return this.failures;
  }
  /** Keys waiting for a run. */
  pending(): K[] {
    return [...this.dirtyKeys];
  }
}
