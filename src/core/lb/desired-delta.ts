/**
 * A namespace's desired LB state that knows how it differs from the previous one, so neither its
 * producer nor the syncer pays O(services) for an endpoint change (issue 18 §4: at 10,000 services
 * the agent rebuilt, gated, conflict-checked and compared the whole service list on every change).
 *
 * `DeltaDesired` is an `LbDesired` whose arrays are materialized only when someone reads them (a full
 * resync, status, drain acks): version k = version k−1 + `changes`. The syncer plans from `changes`
 * alone when `base` is what it last committed (`deltaFrom`). Each version's content is fixed forever
 * (a reader of an old, applied version sees exactly what was applied), and the chain back to a
 * materialized version is cut every `CUT_EVERY`-th version, or as soon as a version materializes, so
 * at most that many change lists are kept alive: materializing costs O(services) once per that many
 * changes, which keeps one change amortised O(1).
 *
 * Keys (`key`) are unique per namespace (the agent uses `network\0serviceId` and `ingress\0...`).
 * Contract as for `compile`'s memo: objects are immutable once handed over. Pure.
 */
import type { IngressPublish, LbDesired, VipService } from './model.js';

/** One replaced, added (`before` null) or removed (`after` null) object of a namespace. */
export interface DesiredChange<T> {
  readonly key: string;
  readonly before: T | null;
  readonly after: T | null;
}

/** What the producer changed between two versions. */
export interface DesiredChanges {
  services: DesiredChange<VipService>[];
  ingress: DesiredChange<IngressPublish>[];
}

/** Versions between two materialized ones (a bound on the change lists kept alive). */
export const CUT_EVERY = 256;

interface Full {
  services: Map<string, VipService>;
  ingress: Map<string, IngressPublish>;
}

export class DeltaDesired implements LbDesired {
  private full: Full | null;
  private arrays: { services: VipService[]; ingress: IngressPublish[] } | null = null;
  private prev: DeltaDesired | null;
  /** Versions since the last materialized one along the chain (0 = this one is materialized). */
  private depth: number;

  private constructor(prev: DeltaDesired | null, readonly changes: Readonly<DesiredChanges>, full: Full | null) {
    this.prev = prev;
    this.full = full;
    this.depth = prev ? prev.depth + 1 : 0;
  }

  /** A version from keyed objects (a full rebuild): no base, the syncer plans it in full. */
  static of(services: ReadonlyMap<string, VipService>, ingress: ReadonlyMap<string, IngressPublish> = new Map()): DeltaDesired {
    return new DeltaDesired(null, { services: [], ingress: [] }, { services: new Map(services), ingress: new Map(ingress) });
  }

  /**
   * The next version: this one plus `changes` (each key at most once; `before` must be what this
   * version holds under the key). Returns `this` when there is no change.
   */
  next(changes: DesiredChanges): DeltaDesired {
    if (changes.services.length === 0 && changes.ingress.length === 0) return this;
    const d = new DeltaDesired(this, changes, null);
    // Cut the chain at this version (not the new one, whose base the syncer still recognizes).
    if (d.depth >= CUT_EVERY) {
      this.materialize();
      d.depth = 1;
    }
    return d;
  }

  /** The version this one was derived from (null for a full rebuild, or once the chain was cut here). */
  get base(): DeltaDesired | null {
    return this.prev;
  }

  get services(): VipService[] {
    return this.lists().services;
  }

  get ingress(): IngressPublish[] {
    return this.lists().ingress;
  }

  /** The object this version holds under `key` (O(chain) walk, bounded by CUT_EVERY). */
  service(key: string): VipService | undefined {
    for (let v: DeltaDesired | null = this; v; v = v.prev) {
      if (v.full) return v.full.services.get(key);
      for (const c of v.changes.services) if (c.key === key) return c.after ?? undefined;
    }
    return undefined;
  }

  private lists(): { services: VipService[]; ingress: IngressPublish[] } {
    if (!this.arrays) {
      const f = this.materialize();
      const byKey = <T>(m: Map<string, T>): T[] => [...m.keys()].sort().map((k) => m.get(k)!);
      this.arrays = { services: byKey(f.services), ingress: byKey(f.ingress) };
    }
    return this.arrays;
  }

  /** Builds this version's maps from the nearest materialized ancestor, then forgets the chain. */
  private materialize(): Full {
    if (this.full) return this.full;
    const chain: DeltaDesired[] = [];
    let v: DeltaDesired = this;
    while (!v.full) {
      chain.push(v);
      v = v.prev!;
    }
    const f: Full = { services: new Map(v.full.services), ingress: new Map(v.full.ingress) };
    for (let i = chain.length - 1; i >= 0; i--) {
      for (const c of chain[i]!.changes.services) c.after ? f.services.set(c.key, c.after) : f.services.delete(c.key);
      for (const c of chain[i]!.changes.ingress) c.after ? f.ingress.set(c.key, c.after) : f.ingress.delete(c.key);
    }
    this.full = f;
    this.prev = null;
    this.depth = 0;
    return f;
  }
}

/** The changes from `last` to `d` when `d` was derived from exactly `last`; null otherwise (plan in full). */
export function deltaFrom(last: LbDesired | null, d: LbDesired): Readonly<DesiredChanges> | null {
  return last !== null && d instanceof DeltaDesired && d.base !== null && d.base === last ? d.changes : null;
}
