/**
 * Planning from a `DeltaDesired`'s changes (desired-delta.ts) in O(change): the replaced objects'
 * frontends (memoized) come out, the new ones go in, and the result is a patch over the compiled
 * state last committed instead of a new map of every frontend (copying a 10,000-frontend map was
 * most of what fastpath.ts still cost per change). Validation and errors are those of `compile`
 * (same codes; paths name the changed object by its key, e.g. `services[app\0web]`). Pure.
 */
import { MeshError } from '../errors.js';
import type { DesiredChanges } from './desired-delta.js';
import type { LbDiff } from './diff.js';
import { compileOne, sameFrontend, type Compiled, type CompileMemo, type Frontend } from './model.js';

/**
 * `base` with `patch` applied (null = removed), without copying `base`. Lookups are O(1); iterating
 * is O(size). Valid while `base` holds what it held at planning time, or that plus this very patch
 * (the syncer applies a committed patch to its own map in place: both read the same).
 */
export class PatchedCompiled implements ReadonlyMap<string, Frontend> {
  constructor(readonly base: ReadonlyMap<string, Frontend>, readonly patch: ReadonlyMap<string, Frontend | null>, readonly size: number) {}

  get(k: string): Frontend | undefined {
    return this.patch.has(k) ? (this.patch.get(k) ?? undefined) : this.base.get(k);
  }

  has(k: string): boolean {
    return this.get(k) !== undefined;
  }

  *entries(): MapIterator<[string, Frontend]> {
    for (const [k, f] of this.base) if (!this.patch.has(k)) yield [k, f];
    for (const [k, f] of this.patch) if (f) yield [k, f];
  }

  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }

  *values(): MapIterator<Frontend> {
    for (const [, f] of this.entries()) yield f;
  }

  [Symbol.iterator](): MapIterator<[string, Frontend]> {
    return this.entries();
  }

  forEach(cb: (value: Frontend, key: string, map: ReadonlyMap<string, Frontend>) => void): void {
    for (const [k, f] of this.entries()) cb(f, k, this);
  }
}

export interface DeltaPlan {
  compiled: PatchedCompiled;
  diff: LbDiff;
  /** Service id → change of its count (duplicate ids are refused, as `compile` does). */
  idDelta: Map<string, number>;
}

const byKey = (a: Frontend, b: Frontend): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

function bad(path: string, msg: string): never {
  throw new MeshError('MESHD_BAD_ARGUMENT', `lb: ${path}: ${msg}`, { path });
}

/**
 * `prev`: the compiled state last committed; `ch`: the changes of the next desired state from the
 * one `prev` was compiled from; `ids`: service id → count in that state.
 */
export function deltaPlan(prev: Compiled, ch: Readonly<DesiredChanges>, memo: CompileMemo, ids: ReadonlyMap<string, number>): DeltaPlan {
  const patch = new Map<string, Frontend | null>();
  const oldF = new Map<string, Frontend>();
  const idDelta = new Map<string, number>();
  const bump = (id: string, d: number): void => void idDelta.set(id, (idDelta.get(id) ?? 0) + d);
  for (const c of ch.services) {
    if (c.before) {
      for (const f of compileOne({ kind: 'service', s: c.before }, `services[${c.key}]`, memo)) oldF.set(f.key, f);
      bump(c.before.id, -1);
    }
    if (c.after) bump(c.after.id, 1);
  }
  for (const c of ch.ingress) if (c.before) for (const f of compileOne({ kind: 'ingress', g: c.before }, `ingress[${c.key}]`, memo)) oldF.set(f.key, f);
  for (const k of oldF.keys()) patch.set(k, null);
  const put = (fs: readonly Frontend[], path: string): void => {
    for (const f of fs) {
      const inPatch = patch.get(f.key);
      const other = inPatch === undefined ? prev.get(f.key) : inPatch;
      if (other) bad(path, `conflict: ${f.key} is already used by ${other.comment}`);
      patch.set(f.key, f);
    }
  };
  for (const c of ch.services) {
    if (!c.after) continue;
    const path = `services[${c.key}]`;
    const fs = compileOne({ kind: 'service', s: c.after }, path, memo);
    if ((ids.get(c.after.id) ?? 0) + (idDelta.get(c.after.id) ?? 0) > 1) bad(`${path}.id`, `duplicate service id ${c.after.id}`);
    put(fs, path);
  }
  for (const c of ch.ingress) if (c.after) put(compileOne({ kind: 'ingress', g: c.after }, `ingress[${c.key}]`, memo), `ingress[${c.key}]`);
  const added: Frontend[] = [];
  const removed: Frontend[] = [];
  const changed: LbDiff['changed'] = [];
  let size = prev.size;
  for (const [k, f] of patch) {
    const p = prev.get(k);
    if (f === null) {
      if (p) (removed.push(p), size--);
    } else if (!p) (added.push(f), size++);
    else if (!sameFrontend(p, f)) changed.push({ before: p, after: f });
  }
  changed.sort((a, b) => byKey(a.after, b.after));
  return { compiled: new PatchedCompiled(prev, patch, size), diff: { added: added.sort(byKey), removed: removed.sort(byKey), changed }, idDelta };
}

/** Service id → count in a desired state's services (for the first delta plan after a full one). */
export function serviceIdCounts(services: ReadonlyArray<{ id: string }>): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of services) m.set(s.id, (m.get(s.id) ?? 0) + 1);
  return m;
}
