/**
 * Overlay gate (core/lb/overlay-gate.ts): a node's LB selects a new REMOTE backend only once its
 * overlay holds the endpoint's FDB/neighbour entries at the location the table names. Table
 * tests of the decision, the programmed view, identity/memo, the agent's context (lb-gate.ts) and
 * the overlay's programmed view (overlay-programmed.ts, with a fake reconciler).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, IngressPublish, VipService } from '../../../../src/core/lb/model.js';
import {
  describeHeld, endpointKey, gateIngress, gateServices, holdReason, locationKey, newGateMemo, programmedOf, sameProgrammed,
  type GateContext, type HoldReason,
} from '../../../../src/core/lb/overlay-gate.js';
import { activeKeys, gateContext, gatedVipServices } from '../../../../src/agent/lb/gate.js';
import { dropVipConflicts } from '../../../../src/agent/lb/plan.js';
import { LbState } from '../../../../src/agent/lb/state.js';
import { ProgrammedView } from '../../../../src/agent/overlay/programmed.js';
import type { OverlayInput, OverlayReconciler, ReconcileReport } from '../../../../src/adapters/netlink/overlay.js';
import type { NodeState } from '../../../../src/core/overlay/model.js';
import type { EndpointRecord } from '../../../../src/core/endpoints.js';
import type { Logger } from '../../../../src/adapters/logger.js';

const N1 = '10.99.1.1';
const N2 = '10.99.1.2';
const MAC = (last: number) => `02:42:0a:1e:00:${last.toString(16).padStart(2, '0')}`;

/** A context over a literal view: `where` maps ip → location (table records). */
function ctx(programmed: Record<string, string> | null, where: Record<string, { mac: string; nodeIp: string }>, inForce: string[] = [], version = '1', live: string[] = [N1, N2]): GateContext {
  return {
    programmed: programmed ? new Map(Object.entries(programmed)) : null,
    locate: (_net, b) => where[b.ip],
    inForce: (b) => inForce.includes(`${b.id}/${b.ip}`),
    nodeLive: (ip) => live.includes(ip),
    version,
  };
}

describe('holdReason', () => {
  const at2 = { mac: MAC(11), nodeIp: N2 };
  const here = { '10.30.0.11': at2 };
  const prog = { [endpointKey('app', '10.30.0.11')]: locationKey(at2) };
  const remote: Backend = { id: 't1', ip: '10.30.0.11', state: 'active' };
  const cases: Array<[string, Backend, GateContext, HoldReason | null]> = [
    ['remote, programmed at the right place → selected', remote, ctx(prog, here), null],
    ['remote, MAC case differs → still the same place', remote, ctx({ [endpointKey('app', '10.30.0.11')]: `02:42:0A:1E:00:0B@${N2}`.toLowerCase() }, { '10.30.0.11': { mac: '02:42:0A:1E:00:0B', nodeIp: N2 } }), null],
    ['remote, not programmed yet → held', remote, ctx({}, here), 'overlay-pending'],
    ['remote, programmed on another network only → held', remote, ctx({ [endpointKey('other', '10.30.0.11')]: locationKey(at2) }, here), 'overlay-pending'],
    ['remote, address held at the OLD node (reused IP) → held', remote, ctx({ [endpointKey('app', '10.30.0.11')]: locationKey({ mac: MAC(11), nodeIp: N1 }) }, here), 'overlay-stale'],
    ['remote, address held with an old MAC → held', remote, ctx({ [endpointKey('app', '10.30.0.11')]: locationKey({ mac: MAC(99), nodeIp: N2 }) }, here), 'overlay-stale'],
    ['remote, no record → held', remote, ctx({}, {}), 'no-record'],
    ['remote, its node dead (not a member the overlay programs) → held, explicitly', remote, ctx({}, here, [], '1', [N1]), 'node-dead'],
    ['remote, node dead but programmed (inside the overlay\'s dead grace) → selected', remote, ctx(prog, here, [], '1', [N1]), null],
    ['remote, node dead, in force → never withdrawn (its tasks may still serve)', remote, ctx({}, here, ['t1/10.30.0.11'], '1', [N1]), null],
    ['local backend: never gated', { ...remote, local: true }, ctx({}, here), null],
    ['draining backend: never gated (drains are not delayed)', { ...remote, state: 'draining' }, ctx({}, here), null],
    ['in force (applied before): never withdrawn', remote, ctx({}, here, ['t1/10.30.0.11']), null],
    ['in force under another address: no', remote, ctx({}, here, ['t1/10.30.0.12']), 'overlay-pending'],
    ['overlay view unknown (no successful reconcile since start): nothing gated', remote, ctx(null, here), null],
  ];
  for (const [name, b, c, want] of cases) test(name, () => assert.equal(holdReason('app', b, c), want));
});

describe('programmedOf / sameProgrammed', () => {
  test('neighbour + FDB entry → key; neighbour without FDB entry is not programmed', () => {
    const m = programmedOf([
      { network: 'app', fdb: [{ mac: MAC(11), dst: N2 }], neigh: [{ ip: '10.30.0.11', mac: MAC(11) }, { ip: '10.30.0.12', mac: MAC(12) }] },
      { network: 'ingress', fdb: [{ mac: 'AA:BB:CC:00:00:01', dst: N1 }], neigh: [{ ip: '10.255.0.5', mac: 'aa:bb:cc:00:00:01' }] },
    ]);
    assert.deepEqual([...m], [
      [endpointKey('app', '10.30.0.11'), `${MAC(11)}@${N2}`],
      [endpointKey('ingress', '10.255.0.5'), `aa:bb:cc:00:00:01@${N1}`],
    ]);
  });
  const cases: Array<[string, Map<string, string> | null, Map<string, string> | null, boolean]> = [
    ['null = null', null, null, true],
    ['null ≠ empty', null, new Map(), false],
    ['same entries', new Map([['a', 'x']]), new Map([['a', 'x']]), true],
    ['value differs', new Map([['a', 'x']]), new Map([['a', 'y']]), false],
    ['size differs', new Map([['a', 'x']]), new Map([['a', 'x'], ['b', 'y']]), false],
  ];
  for (const [name, a, b, want] of cases) test(`sameProgrammed: ${name}`, () => assert.equal(sameProgrammed(a, b), want));
});

const svc = (id: string, backends: Backend[]): VipService => ({ id, name: id, vip: '10.30.0.2', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], backends });

describe('gateServices / gateIngress', () => {
  const at2 = (ip: string, last: number) => [ip, { mac: MAC(last), nodeIp: N2 }] as const;
  const where = Object.fromEntries([at2('10.30.0.11', 11), at2('10.30.0.12', 12)]);
  const progOne = { [endpointKey('app', '10.30.0.11')]: `${MAC(11)}@${N2}` };

  test('nothing held → the very same object (dataplane memo by identity)', () => {
    const s = svc('web', [{ id: 'a', ip: '10.30.0.11', state: 'active' }, { id: 'l', ip: '10.30.0.20', state: 'active', local: true }]);
    const g = gateServices([{ network: 'app', service: s }], ctx(progOne, where), newGateMemo());
    assert.equal(g.services[0], s);
    assert.deepEqual(g.held, []);
  });

  test('held backend left out, reported; the copy is reused while the version is unchanged, recomputed after progress', () => {
    const s = svc('web', [{ id: 'a', ip: '10.30.0.11', state: 'active' }, { id: 'b', ip: '10.30.0.12', state: 'active' }, { id: 'old', ip: '10.30.0.13', state: 'draining' }]);
    const memo = newGateMemo();
    const g1 = gateServices([{ network: 'app', service: s }], ctx(progOne, where), memo);
    assert.deepEqual(g1.services[0]!.backends.map((b) => b.id), ['a', 'old']);
    assert.deepEqual(g1.held, [{ network: 'app', service: 'web', id: 'b', ip: '10.30.0.12', reason: 'overlay-pending' }]);
    assert.equal(s.backends.length, 3, 'source object untouched');
    const g2 = gateServices([{ network: 'app', service: s }], ctx(progOne, where), memo);
    assert.equal(g2.services[0], g1.services[0], 'same gated copy while nothing changed');
    const prog2 = { ...progOne, [endpointKey('app', '10.30.0.12')]: `${MAC(12)}@${N2}` };
    const g3 = gateServices([{ network: 'app', service: s }], ctx(prog2, where, [], '2'), memo);
    assert.equal(g3.services[0], s, 'everything programmed: the source object again');
    assert.deepEqual(g3.held, []);
  });

  test('every backend held → empty backends (the VIP rejects rather than blackholes)', () => {
    const s = svc('web', [{ id: 'b', ip: '10.30.0.12', state: 'active' }]);
    const g = gateServices([{ network: 'app', service: s }], ctx({}, where), newGateMemo());
    assert.deepEqual(g.services[0]!.backends, []);
    assert.equal(g.held.length, 1);
  });

  test('ingress publishes sharing their backends: each held backend reported once per service', () => {
    const backends: Backend[] = [{ id: 'a', ip: '10.255.0.11', state: 'active' }, { id: 'b', ip: '10.255.0.12', state: 'active', local: true }];
    const pub = (port: number, proto: 'tcp' | 'udp'): IngressPublish => ({ service: 'svcweb', publishedPort: port, proto, targetPort: 80, policy: 'cluster', backends });
    const g = gateIngress([pub(8080, 'tcp'), pub(8080, 'udp')], 'ingress', ctx({}, { '10.255.0.11': { mac: MAC(1), nodeIp: N2 } }), newGateMemo());
    assert.deepEqual(g.ingress.map((p) => p.backends.map((b) => b.id)), [['b'], ['b']]);
    assert.deepEqual(g.held.map((h) => `${h.service} ${h.id} ${h.reason}`), ['svcweb a overlay-pending']);
    assert.match(describeHeld(g.held[0]!), /backend 10\.255\.0\.11 \(task a, service svcweb\) held back: the overlay has not programmed it yet/);
  });
});

function rec(taskId: string, over: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    v: 1, taskId, taskName: `web.${taskId}`, serviceId: 'svcweb', serviceName: 'web', network: 'app', networkName: 'app',
    ip: '10.30.0.11', mac: MAC(11), node: 'n2', nodeIp: N2, vip: '10.30.0.2', endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'tcp', target: 80 }], state: 'running', ...over,
  };
}

describe('agent wiring (lb-gate.ts)', () => {
  test('activeKeys: active backends of services and ingress, by id/ip', () => {
    const k = activeKeys({ services: [svc('s', [{ id: 'a', ip: '1.1.1.1', state: 'active' }, { id: 'd', ip: '1.1.1.2', state: 'draining' }])], ingress: [{ service: 'g', publishedPort: 1, proto: 'tcp', targetPort: 1, policy: 'cluster', backends: [{ id: 'i', ip: '2.2.2.2', state: 'active' }] }] });
    assert.deepEqual([...k].sort(), ['a/1.1.1.1', 'i/2.2.2.2']);
    assert.deepEqual([...activeKeys(undefined)], []);
  });

  test('gateContext locates by the table record; a backend applied before stays; conflicts decided before gating', () => {
    const st = new LbState('n1');
    st.set('app', 'a', rec('a', { ip: '10.30.0.11', mac: MAC(11) }));
    st.set('app', 'b', rec('b', { ip: '10.30.0.12', mac: MAC(12) }));
    st.set('app', 'l', rec('l', { ip: '10.30.0.20', mac: MAC(20), node: 'n1', nodeIp: N1 }));
    // A second service on the same VIP whose only task is remote and not programmed: the first service keeps the VIP.
    st.set('app', 'z', rec('z', { serviceId: 'svczzz', serviceName: 'zzz', ip: '10.30.0.30', mac: MAC(30) }));
    const overlay = { programmed: () => new Map([[endpointKey('app', '10.30.0.11'), `${MAC(11)}@${N2}`]]), programmedVersion: 3, memberIps: () => [N1, N2] };
    const applied = { services: [svc('svcweb', [{ id: 'b', ip: '10.30.0.12', state: 'active' }])], ingress: [] };
    const c = gateContext(overlay, st, applied);
    assert.equal(c.version, `3|${N1},${N2}`);
    assert.deepEqual(c.locate('app', { id: 'a', ip: '10.30.0.11', state: 'active' }), { mac: MAC(11), nodeIp: N2 });
    assert.equal(c.locate('app', { id: 'a', ip: '10.30.0.99', state: 'active' }), undefined, 'address must match the record');
    const g = gatedVipServices([{ network: 'app', services: st.vipServices('app') }], dropVipConflicts, c, newGateMemo());
    assert.deepEqual(g.conflicts, ['svczzz']);
    assert.deepEqual(g.services.map((s) => [s.id, s.backends.map((b) => b.id)]), [['svcweb', ['a', 'b', 'l']]]);
    const fresh = gatedVipServices([{ network: 'app', services: st.vipServices('app') }], dropVipConflicts, gateContext(overlay, st, undefined), newGateMemo());
    assert.deepEqual(fresh.services[0]!.backends.map((b) => b.id), ['a', 'l'], 'b not in force in a fresh namespace: held');
    assert.deepEqual(fresh.held.map((h) => h.id), ['b']);
  });
});

describe('overlay programmed view (overlay-programmed.ts)', () => {
  const log = { error: () => undefined } as unknown as Logger;
  const config = { prefix: 'x-', hostNs: null, underlayIp: N1, underlayMtu: 1500, vxlanPort: 4789 };
  const net = { id: 'app', name: 'app', vni: 4242, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
  const input = (remote: OverlayInput['remote'], members = [N2]): OverlayInput => ({ networks: [net], remote, members });

  test('success → view from the input (member, in subnet); failure keeps the view; listeners on change and on the first outcome', async () => {
    let fail = false;
    const inner = { reconcile: async (): Promise<ReconcileReport> => {
      if (fail) throw new Error('boom');
      return { ops: 1, processes: 1, plan: '' };
    }, status: async () => { throw new Error('unused'); } } as unknown as OverlayReconciler;
    const v = new ProgrammedView(config, log);
    let heard = 0;
    v.onProgress(() => heard++);
    const r = v.tracking(inner);
    assert.equal(v.get(), null);
    assert.equal(v.reconciledOnce, false);
    fail = true;
    await assert.rejects(r.reconcile(input([])), /boom/);
    assert.equal(v.reconciledOnce, true);
    assert.equal(v.get(), null, 'still unknown after a failure');
    assert.equal(heard, 1, 'first outcome heard');
    fail = false;
    await r.reconcile(input([
      { network: 'app', ip: '10.30.0.11', mac: MAC(11), nodeIp: N2 },
      { network: 'app', ip: '10.30.0.12', mac: MAC(12), nodeIp: '10.99.1.3' }, // not a member: not programmed
      { network: 'app', ip: '10.31.0.5', mac: MAC(5), nodeIp: N2 }, // outside the subnet
    ]));
    assert.deepEqual([...v.get()!], [[endpointKey('app', '10.30.0.11'), `${MAC(11)}@${N2}`]]);
    assert.equal(heard, 2);
    assert.equal(v.version, 1);
    await r.reconcile(input([{ network: 'app', ip: '10.30.0.11', mac: MAC(11), nodeIp: N2 }]));
    assert.equal(heard, 2, 'no change → not heard');
    fail = true;
    await assert.rejects(r.reconcile(input([{ network: 'app', ip: '10.30.0.13', mac: MAC(13), nodeIp: N2 }])));
    assert.equal(v.get()!.has(endpointKey('app', '10.30.0.13')), false, 'a failed reconcile adds nothing');
    assert.equal(v.version, 1);
  });

  test('a read-back kernel state is the view: on success, and on a failure that read the kernel back after a partial apply', async () => {
    const ns = 'x-ov-app';
    const kernel = (entries: Array<[number, string]>, extraNs = false): NodeState => ({
      strayHostLinks: [],
      sandboxes: [
        { ns, network: '', bridge: null, vxlan: null, fdb: entries.map(([m, dst]) => ({ mac: MAC(m), dst })), neigh: entries.map(([m]) => ({ ip: `10.30.0.${m}`, mac: MAC(m) })) },
        ...(extraNs ? [{ ns: 'x-ov-other', network: '', bridge: null, vxlan: null, fdb: [{ mac: MAC(40), dst: N2 }], neigh: [{ ip: '10.40.0.40', mac: MAC(40) }] }] : []),
      ],
    });
    let next: { fail: boolean; actual: NodeState } = { fail: false, actual: kernel([]) };
    const inner = { reconcile: async (): Promise<ReconcileReport> => {
      if (next.fail) throw Object.defineProperty(new Error('did not converge'), 'actual', { value: next.actual });
      return { ops: 1, processes: 1, plan: '', actual: next.actual };
    } } as unknown as OverlayReconciler;
    const v = new ProgrammedView(config, log);
    const r = v.tracking(inner);
    const remote = [11, 12].map((m) => ({ network: 'app', ip: `10.30.0.${m}`, mac: MAC(m), nodeIp: N2 }));
    // Success, but the kernel holds .11 only (and a namespace of another network, ignored).
    next = { fail: false, actual: kernel([[11, N2]], true) };
    await r.reconcile(input(remote));
    assert.deepEqual([...v.get()!.keys()], [endpointKey('app', '10.30.0.11')]);
    // A failed reconcile whose partial apply programmed .12: the view follows the kernel.
    next = { fail: true, actual: kernel([[11, N2], [12, N2]]) };
    await assert.rejects(r.reconcile(input(remote)), /did not converge/);
    assert.deepEqual([...v.get()!.keys()].sort(), [endpointKey('app', '10.30.0.11'), endpointKey('app', '10.30.0.12')]);
    // The kernel still points .12 at another node: the view says so (the gate calls it stale).
    next = { fail: true, actual: kernel([[11, N2], [12, '10.99.1.9']]) };
    await assert.rejects(r.reconcile(input(remote)));
    assert.equal(v.get()!.get(endpointKey('app', '10.30.0.12')), `${MAC(12)}@10.99.1.9`);
  });
});
