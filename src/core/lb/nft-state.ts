/**
 * What the nftables renderer remembers about the table in the kernel besides the compiled state
 * (see nftables-render.ts for the layout):
 *
 * - a 16-bit frontend id per frontend key, unique within its pool (the targets map of its kind and
 *   protocol: `vip-targets-tcp`, ...). Ids live in the high half of the packet mark and key the slot
 *   and port maps; a frontend keeps its id for its whole life (an id must not move under live
 *   connections' slots), released ids are reused later (never inside the transaction that
 *   releases them, so one transaction never gives an id two meanings);
 * - how many shared slot chains (`slot-0` ..) exist;
 * - how many live frontends use each pick number (so whether a pick chain is still in use is a
 *   lookup, not a scan of every frontend: issue 18 §4);
 * - element counts and declared `size` of the sized sets/maps: `size` is a cap in nftables (an
 *   `add element` beyond it fails with ENFILE), so an incremental sync that would overflow one is
 *   replaced by a full sync, which sizes the sets anew.
 *
 * A full render builds a new state; an incremental render returns a small delta that the syncer
 * applies when the transaction committed (`applyNftDelta`): planning stays O(change) and does not
 * change state. Pure except `applyNftDelta`, which updates the state it is given.
 */
import { MeshError } from '../errors.js';

/** Ids are 1..MAX_FRONTEND_ID (16 bits of the mark; 0 is never handed out). */
export const MAX_FRONTEND_ID = 0xffff;
/** Smallest `size` declared for a sized set (its hash table is allocated up front). */
export const MIN_SET_SIZE = 256;

export interface NftState {
  /** Frontend key → id. */
  ids: Map<string, number>;
  /** Pool → lowest id never handed out. */
  next: Map<string, number>;
  /** Pool → released ids, reused last-in first-out. */
  free: Map<string, number[]>;
  /** `slot-0` .. `slot-(slotChains-1)` exist, with their `slots` elements. */
  slotChains: number;
  /** Sized set → elements it holds. */
  counts: Map<string, number>;
  /** Sized set → its declared `size`. */
  sizes: Map<string, number>;
  /** Pick number → live frontends (with targets) using it. */
  picks: Map<number, number>;
}

export interface NftDelta {
  assigned: Map<string, number>;
  released: { key: string; pool: string; id: number }[];
  /** Pool → free ids consumed from the end of its free list. */
  popped: Map<string, number>;
  next: Map<string, number>;
  slotChains: number;
  /** Sized sets whose count changed → new count. */
  counts: Map<string, number>;
  /** Pick numbers whose use count changed → new count. */
  picks: Map<number, number>;
}

export function emptyNftState(): NftState {
  return { ids: new Map(), next: new Map(), free: new Map(), slotChains: 0, counts: new Map(), sizes: new Map(), picks: new Map() };
}

/** Declared size for a set that holds `n` elements after a full sync: room to double. */
export function setSize(n: number): number {
  let s = MIN_SET_SIZE;
  while (s < 2 * n) s *= 2;
  return s;
}

function exhausted(pool: string): MeshError {
  return new MeshError('MESHD_BAD_ARGUMENT', `lb: more than ${MAX_FRONTEND_ID} frontends in ${pool} (nftables frontend ids are 16 bits)`, { pool });
}

/** Ids for a full sync: 1, 2, ... per pool, in the order given (sorted frontends → deterministic). */
export function freshIds(frontends: Iterable<{ key: string }>, poolOf: (f: { key: string }) => string): Pick<NftState, 'ids' | 'next'> {
  const ids = new Map<string, number>();
  const next = new Map<string, number>();
  for (const f of frontends) {
    const pool = poolOf(f);
    const id = next.get(pool) ?? 1;
    if (id > MAX_FRONTEND_ID) throw exhausted(pool);
    ids.set(f.key, id);
    next.set(pool, id + 1);
  }
  return { ids, next };
}

/** Allocation during one incremental plan: reads the state, records a delta. */
export class IdPlanner {
  readonly delta: NftDelta;

  constructor(private readonly s: NftState) {
    this.delta = { assigned: new Map(), released: [], popped: new Map(), next: new Map(), slotChains: s.slotChains, counts: new Map(), picks: new Map() };
  }

  /** The id of an existing frontend (or one assigned earlier in this plan). */
  id(key: string): number {
    const id = this.delta.assigned.get(key) ?? this.s.ids.get(key);
    if (id === undefined) throw new RangeError(`nft: no frontend id for ${key}`);
    return id;
  }

  assign(key: string, pool: string): number {
    const free = this.s.free.get(pool) ?? [];
    const popped = this.delta.popped.get(pool) ?? 0;
    let id: number;
    if (popped < free.length) {
      id = free[free.length - 1 - popped]!;
      this.delta.popped.set(pool, popped + 1);
    } else {
      id = this.delta.next.get(pool) ?? this.s.next.get(pool) ?? 1;
      if (id > MAX_FRONTEND_ID) throw exhausted(pool);
      this.delta.next.set(pool, id + 1);
    }
    this.delta.assigned.set(key, id);
    return id;
  }

  release(key: string, pool: string): void {
    this.delta.released.push({ key, pool, id: this.id(key) });
  }

  /** Adds `d` (may be negative) to a sized set's count. */
  count(set: string, d: number): void {
    if (d === 0) return;
    this.delta.counts.set(set, (this.delta.counts.get(set) ?? this.s.counts.get(set) ?? 0) + d);
  }

  /** Live frontends using pick number `v` in the committed state. */
  pickUsers(v: number): number {
    return this.s.picks.get(v) ?? 0;
  }

  /** Adds `d` to pick number `v`'s use count; returns the count after this plan. */
  pick(v: number, d: number): number {
    const n = (this.delta.picks.get(v) ?? this.pickUsers(v)) + d;
    this.delta.picks.set(v, n);
    return n;
  }

  /** Pick number `v`'s use count after this plan. */
  pickUsersAfter(v: number): number {
    return this.delta.picks.get(v) ?? this.pickUsers(v);
  }

  /** True when every sized set stays within its declared size. */
  fits(): boolean {
    for (const [set, n] of this.delta.counts) if (n > (this.s.sizes.get(set) ?? 0)) return false;
    return true;
  }
}

/** Applies a committed incremental plan's delta (mutates `s`). */
export function applyNftDelta(s: NftState, d: NftDelta): void {
  for (const [pool, k] of d.popped) s.free.get(pool)?.splice(-k, k);
  for (const [pool, n] of d.next) s.next.set(pool, n);
  for (const [key, id] of d.assigned) s.ids.set(key, id);
  for (const r of d.released) {
    s.ids.delete(r.key);
    const f = s.free.get(r.pool) ?? [];
    f.push(r.id);
    s.free.set(r.pool, f);
  }
  s.slotChains = d.slotChains;
  for (const [set, n] of d.counts) s.counts.set(set, n);
  for (const [v, n] of d.picks) n > 0 ? s.picks.set(v, n) : s.picks.delete(v);
}
