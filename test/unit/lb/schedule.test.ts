/**
 * The LB's scheduling policy (core/lb/schedule.ts) on simulated time, as tables: which namespaces
 * a record change syncs, with which delay; activation; the drift-check period; stop. And the
 * drain-ack policy (core/lb/drained.ts).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DrainIndex, drainedIn, selects } from '../../../src/core/lb/drained.js';
import type { LbDesired, VipService } from '../../../src/core/lb/model.js';
import { DEFAULT_LB_SCHEDULE, HOST_NS, INGRESS_NS, LbSchedule, describeNs, keysOfTableChange, lbLoopConfig, nextCheckDelayMs, type LbAction, type LbEvent, type NsKey } from '../../../src/core/lb/schedule.js';
import { backoffMs } from '../../../src/core/reconcile/loop.js';

const show = (k: NsKey): string => describeNs(k);

describe('keysOfTableChange', () => {
  const cases: Array<[string, { network: string; node: string; taskId: string }, { local: string[]; attaches?: boolean }, string[]]> = [
    ['remote record on a network with local tasks: those tasks', { network: 'app', node: 'n2', taskId: 'r1' }, { local: ['t1', 't2'] }, ['task t1', 'task t2']],
    ['remote record, no local task on the network: nothing', { network: 'app', node: 'n2', taskId: 'r1' }, { local: [] }, []],
    ['local record: its task, the others on the network, host', { network: 'app', node: 'n1', taskId: 't1' }, { local: ['t1', 't2'] }, ['task t1', 'task t2', 'host']],
    ['local record of a task asking for ingress: + ingress', { network: 'app', node: 'n1', taskId: 't1' }, { local: ['t1'], attaches: true }, ['task t1', 'host', 'ingress']],
    ['remote record on ingress: the ingress sandbox', { network: 'ingress', node: 'n2', taskId: 'r1' }, { local: [] }, ['ingress']],
    ['local record on ingress: ingress and its task, not host', { network: 'ingress', node: 'n1', taskId: 't1' }, { local: [] }, ['ingress', 'task t1']],
    ['a deleted local task (no longer local): still its own namespace', { network: 'app', node: 'n1', taskId: 'gone' }, { local: ['t2'] }, ['task t2', 'host', 'task gone']],
  ];
  for (const [name, c, ctx, want] of cases) {
    test(name, () => {
      const keys = keysOfTableChange(c, { nodeName: 'n1', ingressNetwork: 'ingress', localTasksOn: ctx.local, attachesIngress: ctx.attaches ?? false });
      assert.deepEqual(keys.map(show), want);
    });
  }
  test('a task id that reads like the old string keys is just a task', () => {
    const keys = keysOfTableChange({ network: 'app', node: 'n1', taskId: '#ingress' }, { nodeName: 'n1', ingressNetwork: 'ingress', localTasksOn: [], attachesIngress: false });
    assert.ok(!keys.includes(INGRESS_NS));
    assert.deepEqual(keys.map(show), ['host', 'task #ingress']);
  });
});

/** Feeds `[at, event]` steps (ticking at each time first) and returns what was done when. */
function runSchedule(steps: Array<[number, LbEvent | 'tick']>, cfg = DEFAULT_LB_SCHEDULE): Array<[number, string]> {
  const s = new LbSchedule(cfg);
  const out: Array<[number, string]> = [];
  const fmt = (a: LbAction): string => (a.type === 'sync' ? `sync ${a.keys.map(show).join(',')} +${a.delayMs}` : a.type);
  for (const [at, ev] of steps) {
    if (ev === 'tick') s.tick(at);
    else s.handle(ev, at);
    for (const a of s.drain()) out.push([at, fmt(a)]);
    out.push([at, `next ${s.nextDeadline() ?? '-'}`]);
  }
  return out;
}

describe('nextCheckDelayMs', () => {
  const cases: Array<[number, number, number]> = [
    // [checkMs, last check took, delay]
    [10_000, 0, 10_000],
    [10_000, 500, 10_000],
    [10_000, 1_111, 10_000],
    [10_000, 1_112, 10_008],
    [10_000, 4_000, 36_000],
    [500, 100, 900],
    [10_000, -5, 10_000],
    [10_000, Number.NaN, 10_000],
  ];
  for (const [checkMs, took, want] of cases) {
    test(`period ${checkMs} ms, last check ${took} ms → ${want} ms`, () => assert.equal(nextCheckDelayMs(checkMs, took), want));
  }
});

describe('LbSchedule on simulated time', () => {
  test('before activation: overlay polled every 100 ms, changes dropped; activation syncs all at once, check armed', () => {
    const got = runSchedule([
      [0, { type: 'start' }],
      [0, { type: 'overlay', ready: false, keys: [] }],
      [50, { type: 'changed', keys: ['t1'] }],
      [100, 'tick'],
      [100, { type: 'overlay', ready: true, keys: ['t1', INGRESS_NS, HOST_NS] }],
    ]);
    assert.deepEqual(got, [
      [0, 'poll-overlay'], [0, 'next -'],
      [0, 'next 100'],
      [50, 'next 100'],
      [100, 'poll-overlay'], [100, 'next -'],
      [100, 'sync task t1,ingress,host +0'], [100, 'next 10100'],
    ]);
  });
  test('after activation: changes debounced 30 ms; the check every 10 s after the previous one ends; checks never overlap', () => {
    const got = runSchedule([
      [0, { type: 'start' }],
      [0, { type: 'overlay', ready: true, keys: [] }],
      [5, { type: 'changed', keys: ['t1', 't2'] }],
      [6, { type: 'changed', keys: [] }],
      [10_000, 'tick'],
      [10_400, 'tick'],
      [10_500, { type: 'checked', resync: ['t2', HOST_NS] }],
      [20_499, 'tick'],
      [20_500, 'tick'],
    ]);
    assert.deepEqual(got, [
      [0, 'poll-overlay'], [0, 'next -'],
      [0, 'next 10000'],
      [5, 'sync task t1,task t2 +30'], [5, 'next 10000'],
      [6, 'next 10000'],
      [10_000, 'check'], [10_000, 'next -'],
      [10_400, 'next -'],
      [10_500, 'sync task t2,host +0'], [10_500, 'next 20500'],
      [20_499, 'next 20500'],
      [20_500, 'check'], [20_500, 'next -'],
    ]);
  });
  test('a slow check spaces out the next one: checking takes at most a tenth of the time (issue 14, starved VM)', () => {
    const got = runSchedule([
      [0, { type: 'start' }],
      [0, { type: 'overlay', ready: true, keys: [] }],
      [10_000, 'tick'],
      [14_000, { type: 'checked', resync: [] }], // took 4 s: next in 36 s, not 10 s
      [24_000, 'tick'],
      [50_000, 'tick'],
      [50_100, { type: 'checked', resync: [] }], // fast again: back to 10 s
    ]);
    assert.deepEqual(got.filter(([, a]) => a.startsWith('check') || a.startsWith('next')), [
      [0, 'next -'], [0, 'next 10000'],
      [10_000, 'check'], [10_000, 'next -'],
      [14_000, 'next 50000'],
      [24_000, 'next 50000'],
      [50_000, 'check'], [50_000, 'next -'],
      [50_100, 'next 60100'],
    ]);
  });
  test('configured delays; stop drops everything; start again polls', () => {
    const got = runSchedule([
      [0, { type: 'start' }],
      [0, { type: 'overlay', ready: true, keys: [] }],
      [1, { type: 'changed', keys: [INGRESS_NS] }],
      [2, { type: 'stop' }],
      [3, { type: 'changed', keys: ['t1'] }],
      [4, { type: 'checked', resync: ['t1'] }],
      [5, 'tick'],
      [9, { type: 'start' }],
    ], { ...DEFAULT_LB_SCHEDULE, debounceMs: 0, checkMs: 500 });
    assert.deepEqual(got, [
      [0, 'poll-overlay'], [0, 'next -'],
      [0, 'next 500'],
      [1, 'sync ingress +0'], [1, 'next 500'],
      [2, 'next -'], [3, 'next -'], [4, 'next -'], [5, 'next -'],
      [9, 'poll-overlay'], [9, 'next -'],
    ]);
  });
  test('a failed sync is retried after 1 s, every time (the loop back-off is fixed, as before)', () => {
    const cfg = lbLoopConfig(DEFAULT_LB_SCHEDULE);
    assert.deepEqual([1, 2, 5, 30].map((n) => backoffMs(cfg, n)), [1000, 1000, 1000, 1000]);
  });
});

describe('drainedIn', () => {
  const svc = (state: 'active' | 'draining', id = 'a'): VipService => ({ id: 's', name: 's', vip: '10.0.0.2', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], backends: [{ id, ip: '10.0.0.5', state }] });
  const d = (...services: VipService[]): LbDesired => ({ services, ingress: [] });
  const cases: Array<[string, Array<{ applied: LbDesired | undefined; desired: LbDesired }>, boolean]> = [
    ['no namespace', [], true],
    ['applied as draining (desired too)', [{ applied: d(svc('draining')), desired: d(svc('draining')) }], true],
    ['desired draining but the kernel still selects it', [{ applied: d(svc('active')), desired: d(svc('draining')) }], false],
    ['never applied: judged by desired', [{ applied: undefined, desired: d(svc('active')) }], false],
    ['gone from applied', [{ applied: d(), desired: d() }], true],
    ['another task active only', [{ applied: d(svc('active', 'b')), desired: d(svc('active', 'b')) }], true],
    ['one namespace of two still selects it', [{ applied: d(), desired: d() }, { applied: d(svc('active')), desired: d() }], false],
  ];
  for (const [name, ns, want] of cases) test(name, () => assert.equal(drainedIn(ns, 'a'), want));
  for (const [name, ns, want] of cases) test(`${name} (DrainIndex)`, () => assert.equal(drainedIn(ns, 'a', new DrainIndex()), want));

  test('DrainIndex: same answer as selects for random states and ids (ingress too); the set is built once per desired object', () => {
    let seed = 9;
    const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const backends = () => Array.from({ length: rnd(5) }, () => ({ id: `t${rnd(12)}`, ip: '10.0.0.5', state: (rnd(2) ? 'active' : 'draining') as 'active' | 'draining' }));
    const index = new DrainIndex();
    for (let i = 0; i < 300; i++) {
      const want: LbDesired = {
        services: Array.from({ length: rnd(4) }, (_, k) => ({ ...svc('active'), id: `s${k}`, backends: backends() })),
        ingress: Array.from({ length: rnd(3) }, () => ({ proto: 'tcp' as const, publishedPort: 8080, targetPort: 80, backends: backends() })) as unknown as LbDesired['ingress'],
      };
      for (let t = 0; t < 12; t++) assert.equal(index.selects(want, `t${t}`), selects(want, `t${t}`), `state ${i}, t${t}`);
    }
    const one = d(svc('active'));
    assert.equal(index.active(one), index.active(one), 'memoized per object');
  });
});
