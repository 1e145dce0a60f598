/**
 * Planning an endpoint change in O(change): when the next desired state has the same number of
 * services and publishes as the last applied one and only a few of those objects were replaced
 * (the agent keeps unchanged objects identical), the next compiled state and its diff are derived
 * from the replaced objects alone, instead of compiling and diffing every frontend (10k services:
 * ~10 ms of CPU and a 10k-entry map per change). Anything else returns null and the caller does the
 * full compile + diff. Results equal the full path (same frontends, same diff, same errors' codes).
 * Pure.
 */
import { MeshError } from '../errors.js';
import type { LbDiff } from './diff.js';
import { compileOne, sameFrontend, type Compiled, type CompileMemo, type Frontend, type LbDesired } from './model.js';

/** Above this many replaced objects the full path is as cheap. */
export const FAST_PATH_MAX = 64;

function changedIdx<T>(a: readonly T[], b: readonly T[]): number[] | null {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      out.push(i);
      if (out.length > FAST_PATH_MAX) return null;
    }
  }
  return out;
}

const byKey = (a: Frontend, b: Frontend): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export function fastPlan(prevD: LbDesired, prev: Compiled, next: LbDesired, memo: CompileMemo): { compiled: Compiled; diff: LbDiff } | null {
  if (!Array.isArray(next?.services) || !Array.isArray(next.ingress)) return null;
  if (prevD.services.length !== next.services.length || prevD.ingress.length !== next.ingress.length) return null;
  const cs = changedIdx(prevD.services, next.services);
  const ci = cs && changedIdx(prevD.ingress, next.ingress);
  if (!cs || !ci || cs.length + ci.length > FAST_PATH_MAX) return null;
  const oldF: Frontend[] = [];
  const newF: { f: Frontend; path: string }[] = [];
  for (const i of cs) {
    const before = memo.get(prevD.services[i]!);
    if (!before) return null;
    oldF.push(...before);
    const s = next.services[i]!;
    if (s && typeof s === 'object' && s.id !== prevD.services[i]!.id && next.services.some((x, j) => j !== i && x?.id === s.id)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `lb: services[${i}].id: duplicate service id ${s.id}`, { path: `services[${i}].id` });
    }
    for (const f of compileOne({ kind: 'service', s }, `services[${i}]`, memo)) newF.push({ f, path: `services[${i}]` });
  }
  for (const i of ci) {
    const before = memo.get(prevD.ingress[i]!);
    if (!before) return null;
    oldF.push(...before);
    for (const f of compileOne({ kind: 'ingress', g: next.ingress[i]! }, `ingress[${i}]`, memo)) newF.push({ f, path: `ingress[${i}]` });
  }
  const out = new Map(prev);
  for (const f of oldF) out.delete(f.key);
  for (const { f, path } of newF) {
    const other = out.get(f.key);
    if (other) throw new MeshError('MESHD_BAD_ARGUMENT', `lb: ${path}: conflict: ${f.key} is already used by ${other.comment}`, { path });
    out.set(f.key, f);
  }
  const oldBy = new Map(oldF.map((f) => [f.key, f]));
  const added: Frontend[] = [];
  const changed: LbDiff['changed'] = [];
  for (const { f } of newF) {
    const p = oldBy.get(f.key);
    if (!p) added.push(f);
    else if (!sameFrontend(p, f)) changed.push({ before: p, after: f });
  }
  const removed = oldF.filter((f) => !out.has(f.key));
  changed.sort((a, b) => byKey(a.after, b.after));
  return { compiled: out, diff: { added: added.sort(byKey), removed: removed.sort(byKey), changed } };
}
