/**
 * After each successful namespace apply, delete the conntrack entries of the backends it took out
 * (core/lb/ct-flush.ts says what and why; adapters/dataplane/conntrack.ts runs one `conntrack`
 * process per namespace), in the background: queued after the apply, run one at a time with a
 * gap (FLUSH_GAP_MS), removals arriving meanwhile merged per namespace. A failed flush does not
 * fail the apply (the rules are right; only old flows are still pinned): its targets are retried
 * with the namespace's next sync, merged into that one process, minus the addresses that sync
 * serves again. A namespace that is forgotten (its task gone) drops them.
 */
import { ExecConntrack, MemoryConntrack, type ConntrackFlusher } from '../../adapters/dataplane/conntrack.js';
import type { Dataplane } from '../../adapters/dataplane/types.js';
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import { notServedIn, type StaleTarget } from '../../core/lb/ct-flush.js';
import type { LbDesired } from '../../core/lb/model.js';
import { toMeshError } from '../../core/errors.js';
import type { TimerClock } from '../../core/clock.js';

/** Pending targets kept per namespace while flushes fail (e.g. no `conntrack` binary): oldest dropped beyond. */
export const MAX_PENDING_STALE = 4096;

export interface CtFlushStats {
  /** `conntrack` runs that succeeded, lines they sent, entries the kernel deleted. */
  runs: number;
  lines: number;
  deleted: number;
  failures: number;
  lastError: string | null;
}

/** The flusher the LB uses when none is injected: recorded only on the memory dataplane. */
export function defaultFlusher(dp: Dataplane, exec: Exec): ConntrackFlusher {
  return dp.kind === 'memory' ? new MemoryConntrack() : new ExecConntrack(exec);
}

/**
 * Least ms between two `conntrack` runs of this agent. The flush runs off the apply path, one
 * namespace per run; while a run and this gap pass, later removals of the same namespace merge
 * into its next run. Under 100 endpoint changes/s on a 10-node lab an inline flush per apply and
 * namespace (each a process that dumps the table once per line) came to several processes a
 * second per agent, in the path of every LB ack; a crashed node's flows wait at most this much
 * longer (they waited the whole conntrack timeout before).
 */
export const FLUSH_GAP_MS = 200;

export class StaleFlush {
  /** Targets queued per namespace, not yet handed to a run. */
  private readonly pending = new Map<string, StaleTarget[]>();
  /** Targets of runs that failed, per namespace: merged into the namespace's next queue(). */
  private readonly failed = new Map<string, StaleTarget[]>();
  private running: Promise<void> | null = null;
  private stopped = false;
  readonly stats: CtFlushStats = { runs: 0, lines: 0, deleted: 0, failures: 0, lastError: null };

  constructor(readonly ct: ConntrackFlusher, private readonly log: Logger, private readonly clock?: TimerClock, private readonly gapMs = FLUSH_GAP_MS) {}

  /**
   * Queues the deletion of `stale`'s entries in `netns` ('' = the agent's own) after an apply of
   * `applied` there; returns at once (the run is in the background, one at a time). Targets still
   * queued or failed that `applied` serves again are dropped: their flows are live again.
   */
  queue(netns: string, stale: readonly StaleTarget[], applied: LbDesired): void {
    const before = [...(this.failed.get(netns) ?? []), ...(this.pending.get(netns) ?? [])];
    this.failed.delete(netns);
    const all = [...(before.length ? notServedIn(applied, before) : []), ...stale];
    if (all.length === 0) {
      this.pending.delete(netns);
      return;
    }
    this.pending.set(netns, all.length > MAX_PENDING_STALE ? all.slice(all.length - MAX_PENDING_STALE) : all);
    if (!this.running && !this.stopped) this.running = this.drain().finally(() => (this.running = null));
  }

  /** Resolves when no run is going or queued (tests, stop). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** No further runs; the one going finishes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pending.clear();
    await this.idle();
  }

  private async drain(): Promise<void> {
    for (;;) {
      const next = this.pending.entries().next();
      if (next.done || this.stopped) return;
      const [netns, all] = next.value;
      this.pending.delete(netns);
      await this.run(netns, all);
      if (this.gapMs > 0 && this.clock && this.pending.size) {
        await new Promise<void>((resolve) => this.clock!.setTimer(this.gapMs, resolve));
      }
    }
  }

  private async run(netns: string, all: StaleTarget[]): Promise<void> {
    try {
      const r = await this.ct.flush(all, netns ? { netns } : {});
      this.stats.runs++;
      this.stats.lines += r.lines;
      this.stats.deleted += r.deleted;
      if (r.deleted > 0) this.log.info({ netns, backends: all.length, deleted: r.deleted }, 'lb: conntrack entries of removed backends deleted');
    } catch (e) {
      this.stats.failures++;
      this.stats.lastError = toMeshError(e).message;
      this.failed.set(netns, [...(this.failed.get(netns) ?? []), ...all].slice(-MAX_PENDING_STALE));
      this.log.warn({ err: e, netns, backends: all.length }, 'lb: conntrack flush of removed backends failed (retried with the next sync)');
    }
  }

  /** The namespace is gone: nothing left to flush there. */
  forget(netns: string): void {
    this.pending.delete(netns);
    this.failed.delete(netns);
  }

  /**
   * Namespaces whose last flush run FAILED, their targets waiting to be retried with the namespace's
   * next sync (leak checks, tests). Targets merely queued for the background run are not counted.
   */
  get failedNamespaces(): number {
    return this.failed.size;
  }
}
