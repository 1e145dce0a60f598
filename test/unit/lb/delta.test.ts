/**
 * Incremental desired state and delta planning (issue 18 §4): a DeltaDesired version reads exactly
 * like the map it was built from, forever (an applied version is a snapshot); the nft syncer fed
 * versions plans from their changes alone and reaches the same compiled state and the same scripts
 * as a syncer fed plain arrays (the full / identity path). Property tests over seeded random ops.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CUT_EVERY, DeltaDesired, type DesiredChange } from '../../../src/core/lb/desired-delta.js';
import { compile, sortedFrontends, type VipService } from '../../../src/core/lb/model.js';
import { NftSyncer } from '../../../src/core/lb/nft-syncer.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function svc(i: number, n: number, drainMask: number, vipOf = i): VipService {
  return {
    id: `s${i}`, name: `svc${i}`, vip: `10.96.${vipOf >> 8}.${(vipOf & 255) + 1}`, ports: [{ proto: 'tcp', port: 80, targetPort: 8080 }],
    backends: Array.from({ length: n }, (_, b) => ({ id: `t${i}x${b}`, ip: `10.200.${i & 255}.${b + 1}`, state: (drainMask >> b) & 1 ? 'draining' as const : 'active' as const })),
  };
}

const view = (m: ReadonlyMap<string, VipService>): VipService[] => [...m.keys()].sort().map((k) => m.get(k)!);

test('DeltaDesired: every version reads as its own map, also after later versions and chain cuts', () => {
  const r = rng(7);
  const live = new Map<string, VipService>();
  let d = DeltaDesired.of(live);
  const kept: Array<{ d: DeltaDesired; want: VipService[] }> = [];
  for (let step = 0; step < 3 * CUT_EVERY; step++) {
    const changes: DesiredChange<VipService>[] = [];
    const touched = new Set<string>();
    for (let j = 0; j < 1 + Math.floor(r() * 3); j++) {
      const i = Math.floor(r() * 40);
      const k = `app\0s${i}`;
      if (touched.has(k)) continue;
      touched.add(k);
      const before = live.get(k) ?? null;
      const after = r() < 0.2 ? null : svc(i, 1 + Math.floor(r() * 4), Math.floor(r() * 16));
      if (after) live.set(k, after);
      else live.delete(k);
      if (before !== after) changes.push({ key: k, before, after });
    }
    d = d.next({ services: changes, ingress: [] });
    if (step % 37 === 0) kept.push({ d, want: view(live) });
    if (step % 53 === 0) assert.deepEqual(d.services, view(live), `version at step ${step}`);
  }
  assert.deepEqual(d.services, view(live));
  for (const k of kept) assert.deepEqual(k.d.services, k.want, 'an old version still reads as it was');
});

test('nft syncer: DeltaDesired versions are planned from their changes and equal the full path', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = rng(seed);
    const live = new Map<string, VipService>();
    for (let i = 0; i < 30; i++) live.set(`app\0s${i}`, svc(i, 1 + (i % 5), 0));
    let d = DeltaDesired.of(live);
    const a = new NftSyncer();
    const b = new NftSyncer();
    const apply = (): void => {
      const pa = a.plan(d);
      const pb = b.plan({ services: [...d.services], ingress: [] });
      assert.equal(pa.mode, pb.mode, `seed ${seed}: mode`);
      assert.equal(pa.nft, pb.nft, `seed ${seed}: the same transaction`);
      assert.equal(pa.frontends, pb.frontends);
      assert.deepEqual(sortedFrontends(pa.next), sortedFrontends(compile(d)), 'delta result = full compile');
      a.committed(pa);
      b.committed(pb);
    };
    apply();
    for (let step = 0; step < 150; step++) {
      const changes: DesiredChange<VipService>[] = [];
      const i = Math.floor(r() * 40);
      const k = `app\0s${i}`;
      const before = live.get(k) ?? null;
      const roll = r();
      // mostly endpoint changes (drain, scale), sometimes add / remove a service, sometimes zero backends
      const after = roll < 0.1 ? null : svc(i, roll < 0.15 ? 0 : 1 + Math.floor(r() * 6), Math.floor(r() * 64));
      if (after) live.set(k, after);
      else live.delete(k);
      if (before !== after) changes.push({ key: k, before, after });
      d = d.next({ services: changes, ingress: [] });
      apply();
    }
    assert.deepEqual(sortedFrontends(a.lastApplied()!), sortedFrontends(compile({ services: view(live), ingress: [] })));
  }
});

test('nft syncer: a delta that takes a used VIP is refused like compile, and the syncer keeps its state', () => {
  const live = new Map([['app\0s1', svc(1, 2, 0)], ['app\0s2', svc(2, 2, 0)]]);
  const d0 = DeltaDesired.of(live);
  const s = new NftSyncer();
  s.committed(s.plan(d0));
  const clash = svc(3, 1, 0, 1); // s3 on s1's VIP
  const d1 = d0.next({ services: [{ key: 'app\0s3', before: null, after: clash }], ingress: [] });
  assert.throws(() => s.plan(d1), (e: Error & { code?: string }) => e.code === 'MESHD_BAD_ARGUMENT' && /conflict: vip 10\.96\.0\.2 tcp 80/.test(e.message));
  const dup = { ...svc(4, 1, 0), id: 's1' };
  const d2 = d0.next({ services: [{ key: 'other\0s1', before: null, after: dup }], ingress: [] });
  assert.throws(() => s.plan(d2), /duplicate service id s1/);
  const ok = d0.next({ services: [{ key: 'app\0s1', before: live.get('app\0s1')!, after: svc(1, 3, 0) }], ingress: [] });
  const p = s.plan(ok);
  assert.equal(p.mode, 'incremental');
  assert.equal(p.changed, 1);
});
