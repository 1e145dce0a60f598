/**
 * Diff between the last applied compiled state and the next one. Renderers turn the diff into an
 * incremental transaction whose size is proportional to the change, not to the cluster
 * (kube-proxy's partial sync). Pure.
 */
import { sameFrontend, type Compiled, type Frontend } from './model.js';

export interface FrontendChange {
  before: Frontend;
  after: Frontend;
}

export interface LbDiff {
  added: Frontend[];
  removed: Frontend[];
  changed: FrontendChange[];
}

/** Frontends are compared by key (identical objects short-cut); each list is in key order. */
export function diffCompiled(prev: Compiled, next: Compiled): LbDiff {
  const added: Frontend[] = [];
  const removed: Frontend[] = [];
  const changed: FrontendChange[] = [];
  for (const [k, f] of next) {
    const p = prev.get(k);
    if (!p) added.push(f);
    else if (!sameFrontend(p, f)) changed.push({ before: p, after: f });
  }
  for (const [k, f] of prev) if (!next.has(k)) removed.push(f);
  const byKey = (a: Frontend, b: Frontend): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  changed.sort((a, b) => byKey(a.after, b.after));
  return { added: added.sort(byKey), removed: removed.sort(byKey), changed };
}

export function isEmptyDiff(d: LbDiff): boolean {
  return d.added.length === 0 && d.removed.length === 0 && d.changed.length === 0;
}

/** Number of frontends touched (for ApplyResult and metrics). */
export function diffSize(d: LbDiff): number {
  return d.added.length + d.removed.length + d.changed.length;
}

/** Set difference helper used for set/map elements: what to add and delete to go from prev to next. */
export function diffSets<T>(prev: ReadonlySet<T>, next: ReadonlySet<T>): { add: T[]; del: T[] } {
  const add: T[] = [];
  const del: T[] = [];
  for (const x of next) if (!prev.has(x)) add.push(x);
  for (const x of prev) if (!next.has(x)) del.push(x);
  return { add, del };
}
