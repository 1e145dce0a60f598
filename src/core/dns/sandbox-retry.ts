/**
 * When the agent's DNS retries binding 127.0.0.11:53 inside a task namespace that failed (the
 * namespace was still being plumbed, or went away): per namespace, an exponential retry delay
 * (0.25 s doubling to 30 s), and the delay of the next rescan — the periodic one (2 s default) or
 * the earliest retry due, never under 50 ms. Pure: fed `now`, asked for `nextDeadline()`; the
 * shell (src/agent/dns/sandboxes.ts) scans when told.
 */

export const RETRY_MIN_MS = 250;
export const RETRY_MAX_MS = 30_000;
/** Rescans are never closer than this (a burst of failures must not spin). */
export const MIN_RESCAN_MS = 50;

/** Exponential retry delay for the n-th consecutive bind failure (n ≥ 1), ms. */
export function retryDelayMs(attempts: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.max(0, Math.min(attempts - 1, 20)));
}

/** Delay until the next scan: the periodic rescan, or sooner when a retry is due first. */
export function rescanDelayMs(now: number, rescanMs: number, nextRetryAt: number | undefined): number {
  const soonest = nextRetryAt === undefined ? rescanMs : Math.min(rescanMs, nextRetryAt - now);
  return Math.max(MIN_RESCAN_MS, soonest);
}

interface Failure {
  attempts: number;
  nextAt: number;
  error: string;
}

/** Failed namespaces and when each may be tried again. */
export class BindRetries {
  private readonly failures = new Map<string, Failure>();

  /** Records a failed bind of `ns` at `now`; returns its consecutive failures. */
  failed(ns: string, now: number, error: string): number {
    const f = this.failures.get(ns) ?? { attempts: 0, nextAt: 0, error: '' };
    f.attempts++;
    f.error = error;
    f.nextAt = now + retryDelayMs(f.attempts);
    this.failures.set(ns, f);
    return f.attempts;
  }

  /** Forgets `ns` (bound, or asked for at once by ensure()). */
  clear(ns: string): void {
    this.failures.delete(ns);
  }

  /** Keeps only namespaces still present. */
  retain(present: ReadonlySet<string>): void {
    for (const ns of this.failures.keys()) if (!present.has(ns)) this.failures.delete(ns);
  }

  /** Whether a bind of `ns` may be tried at `now` (never failed, or its delay passed). */
  due(ns: string, now: number): boolean {
    const f = this.failures.get(ns);
    return !f || f.nextAt <= now;
  }

  /** The earliest time a failed namespace may be retried (undefined: none failing). */
  nextDeadline(): number | undefined {
    let at: number | undefined;
    for (const f of this.failures.values()) if (at === undefined || f.nextAt < at) at = f.nextAt;
    return at;
  }

  view(): Array<{ netns: string; attempts: number; error: string }> {
    return [...this.failures].map(([netns, f]) => ({ netns, attempts: f.attempts, error: f.error }));
  }
}
