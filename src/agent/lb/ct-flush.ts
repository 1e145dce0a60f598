/**
 * After each successful namespace apply, delete the conntrack entries of the backends it took out
 * (core/lb/ct-flush.ts says what and why; adapters/dataplane/conntrack.ts runs one `conntrack`
 * process per namespace). A failed flush does not fail the apply (the rules are right; only old
 * flows are still pinned): its targets stay pending and are retried with the namespace's next
 * sync, merged into that one process, minus the addresses that sync serves again. A namespace that
 * is forgotten (its task gone) drops them.
 */
import { ExecConntrack, MemoryConntrack, type ConntrackFlusher } from '../../adapters/dataplane/conntrack.js';
import type { Dataplane } from '../../adapters/dataplane/types.js';
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import { notServedIn, type StaleTarget } from '../../core/lb/ct-flush.js';
import type { LbDesired } from '../../core/lb/model.js';
import { toMeshError } from '../../core/errors.js';

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

export class StaleFlush {
  private readonly pending = new Map<string, StaleTarget[]>();
  readonly stats: CtFlushStats = { runs: 0, lines: 0, deleted: 0, failures: 0, lastError: null };

  constructor(readonly ct: ConntrackFlusher, private readonly log: Logger) {}

  /**
   * Deletes the entries of `stale` (plus what is pending and `applied` no longer serves) in `netns`
   * ('' = the agent's own); `applied`: the desired state just applied there. Never throws.
   */
  async flush(netns: string, stale: readonly StaleTarget[], applied: LbDesired): Promise<void> {
    const prev = this.pending.get(netns);
    const all = prev ? [...notServedIn(applied, prev), ...stale] : stale;
    this.pending.delete(netns);
    if (all.length === 0) return;
    try {
      const r = await this.ct.flush(all, netns ? { netns } : {});
      this.stats.runs++;
      this.stats.lines += r.lines;
      this.stats.deleted += r.deleted;
      if (r.deleted > 0) this.log.info({ netns, backends: all.length, deleted: r.deleted }, 'lb: conntrack entries of removed backends deleted');
    } catch (e) {
      this.stats.failures++;
      this.stats.lastError = toMeshError(e).message;
      this.pending.set(netns, all.length > MAX_PENDING_STALE ? all.slice(all.length - MAX_PENDING_STALE) : [...all]);
      this.log.warn({ err: e, netns, backends: all.length }, 'lb: conntrack flush of removed backends failed (retried with the next sync)');
    }
  }

  /** The namespace is gone: nothing left to flush there. */
  forget(netns: string): void {
    this.pending.delete(netns);
  }

  /** Namespaces with targets waiting for a retry (leak checks, tests). */
  get pendingNamespaces(): number {
    return this.pending.size;
  }
}
