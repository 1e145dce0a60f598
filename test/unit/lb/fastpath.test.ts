/** The O(change) planning path gives exactly what a full compile + diff gives (seeded random changes). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { seededRng } from '../../../src/core/clock.js';
import { diffCompiled } from '../../../src/core/lb/diff.js';
import { fastPlan, FAST_PATH_MAX } from '../../../src/core/lb/fastpath.js';
import { compile, type CompileMemo, type LbDesired, type VipService } from '../../../src/core/lb/model.js';
import { NftSyncer } from '../../../src/core/lb/nft-syncer.js';
import { IpvsSyncer } from '../../../src/core/lb/ipvs-syncer.js';
import { renderNftIncremental } from '../../../src/core/lb/nftables-render.js';
import { b, base } from './fixtures.js';

function svc(i: number, n: number, salt: number): VipService {
  return { id: `s${i}`, name: `s${i}`, vip: `10.96.${i >> 8}.${i & 255}`, ports: [{ proto: i % 3 ? 'tcp' : 'udp', port: 80, targetPort: 8080 + (salt % 2) }], backends: Array.from({ length: n }, (_, j) => b(`t${i}-${j}`, `10.1.${(i * 7 + j + salt) & 255}.${(j * 13 + salt) & 255}`, (j + salt) % 5 === 0 ? 'draining' : 'active')) };
}

describe('lb fast planning path', () => {
  test('random replacements: same compiled state, same diff, same script as the full path', () => {
    const rng = seededRng(42);
    const pick = (k: number): number => Math.floor(rng() * k);
    let d: LbDesired = { services: Array.from({ length: 200 }, (_, i) => svc(i, 1 + (i % 6), 0)), ingress: base().ingress };
    const memo: CompileMemo = new WeakMap();
    let prev = compile(d, memo);
    for (let round = 1; round <= 200; round++) {
      const services = [...d.services];
      for (let k = pick(4); k >= 0; k--) {
        const i = pick(services.length);
        services[i] = svc(i, pick(7), round);
      }
      const next: LbDesired = { services, ingress: round % 17 === 0 ? [{ ...d.ingress[0]!, backends: [] }, d.ingress[1]!] : d.ingress };
      const fast = fastPlan(d, prev, next, memo);
      assert.ok(fast, `round ${round}: fast path taken`);
      const full = compile(next);
      assert.deepEqual([...fast.compiled.keys()].sort(), [...full.keys()].sort());
      for (const [k, f] of full) assert.deepEqual(fast.compiled.get(k), f);
      assert.deepEqual(fast.diff, diffCompiled(prev, full));
      assert.equal(renderNftIncremental(prev, fast.compiled, fast.diff), renderNftIncremental(prev, full));
      d = next;
      prev = fast.compiled;
    }
  });
  test('falls back (null) on a length change or too many replacements; errors keep their code', () => {
    const d = base();
    const memo: CompileMemo = new WeakMap();
    const c = compile(d, memo);
    assert.equal(fastPlan(d, c, { ...d, services: d.services.slice(1) }, memo), null);
    const many: LbDesired = { services: Array.from({ length: FAST_PATH_MAX + 1 }, (_, i) => svc(i, 1, 0)), ingress: [] };
    const mc = compile(many, memo);
    assert.equal(fastPlan(many, mc, { services: many.services.map((s) => ({ ...s })), ingress: [] }, memo), null);
    const clash = { ...d, services: [...d.services] };
    clash.services[2] = { ...d.services[2]!, vip: '10.9.0.10', ports: [{ proto: 'tcp', port: 80, targetPort: 1 }] };
    assert.throws(() => fastPlan(d, c, clash, memo), /conflict: vip 10\.9\.0\.10 tcp 80/);
    const dup = { ...d, services: [...d.services] };
    dup.services[2] = { ...d.services[2]!, id: 'svc-web' };
    assert.throws(() => fastPlan(d, c, dup, memo), /duplicate service id svc-web/);
  });
  test('the syncer uses it: one replaced service of many → incremental plan of 1 frontend', () => {
    const s = new NftSyncer();
    const d: LbDesired = { services: Array.from({ length: 500 }, (_, i) => svc(i, 3, 0)), ingress: [] };
    s.committed(s.plan(d));
    const services = [...d.services];
    services[250] = svc(250, 4, 0);
    const p = s.plan({ services, ingress: [] });
    assert.equal(p.mode, 'incremental');
    assert.equal(p.changed, 1);
    assert.equal(p.frontends, 500);
  });
});
