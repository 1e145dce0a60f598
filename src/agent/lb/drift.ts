/**
 * What the LB's periodic drift check needs to judge a namespace fairly: which applies were in
 * flight while it read the kernel back, and its counters. Drift is judged against what was last
 * applied, and only for namespaces with no apply in flight at any time during the read-back: none
 * when the check began (one that writes the kernel before our read and returns before our verdict
 * looked like drift — kernel new, applied old; the IPVS VM mesh test caught `unexpected ingress
 * tcp 8080` this way), none started since, none running now.
 */
import type { LbNsStatus } from './status.js';

/** Taken when a check begins: applies in flight, and applies started so far, per namespace. */
export interface DriftSnapshot<E> {
  busy: Set<E>;
  gen: Map<E, number>;
}

export class DriftTracker<E extends object> {
  private readonly applying = new Set<E>();
  private readonly started = new WeakMap<E, number>();
  /** Full resyncs started because the kernel differed from what was applied. */
  resyncs = 0;
  /** The namespace and differences of the last counted drift (empty when none). */
  last: string[] = [];

  /** Runs one apply of namespace `e`, recording it as in flight. */
  async track<T>(e: E, apply: () => Promise<T>): Promise<T> {
    this.applying.add(e);
    this.started.set(e, (this.started.get(e) ?? 0) + 1);
    try {
      return await apply();
    } finally {
      this.applying.delete(e);
    }
  }

  begin(entries: Iterable<E>): DriftSnapshot<E> {
    return { busy: new Set(this.applying), gen: new Map([...entries].map((e) => [e, this.started.get(e) ?? 0])) };
  }

  /**
   * True when namespace `e`, read back as `s`, must be fully resynced. Counted as drift only when
   * the kernel was read and differs from what was applied; a failed apply (e.g. a task namespace
   * already gone) or an unreadable namespace resyncs uncounted.
   */
  judge(snap: DriftSnapshot<E>, e: E, s: LbNsStatus): boolean {
    if (snap.busy.has(e) || this.applying.has(e) || (this.started.get(e) ?? 0) !== snap.gen.get(e)) return false;
    if (s.drift.length === 0 && !s.error) return false;
    if (s.drift.some((d) => !d.startsWith('cannot read the kernel'))) {
      this.resyncs++;
      this.last = [`${s.netns}:`, ...s.drift];
    }
    return true;
  }
}
