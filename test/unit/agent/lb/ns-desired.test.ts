/**
 * A task namespace's desired state kept incrementally (ns-desired.ts, issue 18 §4): one endpoint
 * change touches one entry (no rebuild), and after any sequence of random record operations —
 * endpoint flips, scale to 0, new services, VIP clashes between services, a service on two of the
 * task's networks — the incremental result equals a full rebuild from the same tables.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskNsDesired } from '../../../../src/agent/lb/ns-desired.js';
import { VipConflictMemo } from '../../../../src/agent/lb/plan.js';
import { LbState } from '../../../../src/agent/lb/state.js';
import type { EndpointRecord } from '../../../../src/core/endpoints.js';
import { newGateMemo, type GateContext } from '../../../../src/core/lb/overlay-gate.js';

const NETS = ['app', 'db'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function rec(net: string, s: number, t: number, state: EndpointRecord['state'], vip = s): EndpointRecord {
  return {
    v: 1, taskId: `t${s}x${t}`, taskName: `svc${s}.${t}`, serviceId: `s${s}`, serviceName: `svc${s}`, network: net, networkName: net,
    ip: `10.${net === 'app' ? 1 : 2}.${s}.${t + 1}`, mac: '02:42:00:00:00:01', node: t === 0 && s === 0 ? 'me' : 'n2', nodeIp: '10.99.0.2',
    vip: `10.${net === 'app' ? 101 : 102}.0.${vip + 1}`, endpointMode: 'vip', aliases: [], ports: [{ proto: 'tcp', target: 80 }], state,
  };
}

const ungated: GateContext = { programmed: null, locate: () => undefined, inForce: () => false, nodeLive: () => true, version: 'v0' };

/** What a desired state holds, independent of order. */
const content = (services: ReadonlyArray<{ id: string; vip?: string; backends: unknown[] }>): string[] => services.map((s) => JSON.stringify(s)).sort();

function fresh(state: LbState): { services: string[]; conflicts: string[] } {
  const p = new TaskNsDesired().plan(NETS, state, ungated, newGateMemo(), new VipConflictMemo());
  return { services: content(p.desired.services), conflicts: [...p.conflicts].sort() };
}

test('one endpoint change replaces one entry, without a rebuild', () => {
  const state = new LbState('me');
  for (let s = 0; s < 50; s++) for (let t = 0; t < 3; t++) state.set('app', `t${s}x${t}`, rec('app', s, t, 'running'));
  const d = new TaskNsDesired();
  const gm = newGateMemo();
  const cm = new VipConflictMemo();
  const first = d.plan(NETS, state, ungated, gm, cm);
  assert.equal(first.desired.services.length, 50);
  const c = state.set('app', 't7x1', rec('app', 7, 1, 'draining'))!;
  d.touch(c.network, c.serviceId);
  const p = d.plan(NETS, state, ungated, gm, cm);
  assert.equal(d.rebuilds, 1, 'only the first plan rebuilt');
  assert.equal(p.desired.changes.services.length, 1);
  assert.equal(p.desired.changes.services[0]!.key, 'app\0s7');
  assert.equal(p.desired.base, first.desired, 'derived from the previous version (the syncer plans the delta)');
  assert.deepEqual(content(p.desired.services), fresh(state).services);
});

test('property: after random operations the incremental state equals a full rebuild', () => {
  for (const seed of [11, 12, 13, 14, 15, 16]) {
    const r = rng(seed);
    const state = new LbState('me');
    state.set('app', 't0x0', rec('app', 0, 0, 'running')); // the local task, on both networks
    state.set('db', 't0x0', rec('db', 0, 0, 'running'));
    const d = new TaskNsDesired();
    const gm = newGateMemo();
    const cm = new VipConflictMemo();
    d.plan(NETS, state, ungated, gm, cm);
    for (let step = 0; step < 400; step++) {
      const net = r() < 0.8 ? 'app' : 'db';
      const s = 1 + Math.floor(r() * 12);
      const t = Math.floor(r() * 3);
      const roll = r();
      let c;
      if (roll < 0.2) c = state.set(net, `t${s}x${t}`, null);
      else {
        const st = roll < 0.5 ? 'draining' : roll < 0.55 ? 'starting' : 'running';
        // now and then a service takes another one's VIP (a conflict), later it is fixed
        const vip = r() < 0.05 ? s + 1 : s;
        c = state.set(net, `t${s}x${t}`, rec(net, s, t, st, vip));
      }
      if (c) {
        d.touch(c.network, c.serviceId);
        if (c.prevServiceId !== undefined) d.touch(c.network, c.prevServiceId);
      }
      const p = d.plan(NETS, state, ungated, gm, cm);
      const want = fresh(state);
      assert.deepEqual(content(p.desired.services), want.services, `seed ${seed} step ${step}: services`);
      assert.deepEqual([...p.conflicts].sort(), want.conflicts, `seed ${seed} step ${step}: conflicts`);
    }
    assert.ok(d.rebuilds < 400, `seed ${seed}: most plans are incremental (${d.rebuilds} rebuilds)`);
  }
});
