/** Pure helpers of the control plane: worker state mapping, forward-only states, names, networks, dispatch. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { addressNetworks, attachNetworks, stateAdvances, taskName, taskStateFromWorker, type NetworkRecord, type ServiceRecord, type TaskRecord } from '../../../src/manager/control/model.js';
import { assignmentsFor, dispatchable } from '../../../src/manager/control/dispatch.js';
import { nodeStateFrom } from '../../../src/manager/control/engine.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';

describe('worker state → task state', () => {
  const cases: Array<[Parameters<typeof taskStateFromWorker>[0], 'running' | 'shutdown', string | undefined]> = [
    ['new', 'running', undefined], ['new', 'shutdown', 'shutdown'], ['starting', 'running', undefined],
    ['running', 'running', 'running'], ['draining', 'shutdown', 'running'], ['stopped', 'shutdown', 'shutdown'],
    ['stopped', 'running', 'complete'], ['failed', 'running', 'failed'],
  ];
  for (const [w, d, want] of cases) test(`${w} (desired ${d}) → ${String(want)}`, () => assert.equal(taskStateFromWorker(w, d), want));
});

test('task states only move forward', () => {
  assert.ok(stateAdvances('assigned', 'running'));
  assert.ok(stateAdvances('running', 'failed'));
  assert.ok(!stateAdvances('failed', 'running'));
  assert.ok(!stateAdvances('running', 'running'));
  assert.ok(!stateAdvances('shutdown', 'complete'));
});

test('task names: svc.slot.id, global svc.node.id', () => {
  assert.equal(taskName('web', { slot: 3, id: 'abc' }), 'web.3.abc');
  assert.equal(taskName('agent', { nodeId: 'n1', id: 'abc' }), 'agent.n1.abc');
});

test('networks: default ingress; published ingress ports add an ingress address', () => {
  assert.deepEqual(attachNetworks({ networks: [] }), ['ingress']);
  assert.deepEqual(attachNetworks({ networks: ['app'] }), ['app']);
  const pub = [{ published: 8080, target: 80, proto: 'tcp' as const, mode: 'ingress' as const, policy: 'cluster' as const }];
  assert.deepEqual(addressNetworks({ networks: ['app'], ports: pub }), ['app', 'ingress']);
  assert.deepEqual(addressNetworks({ networks: [], ports: pub }), ['ingress']);
  assert.deepEqual(addressNetworks({ networks: ['app'], ports: [{ ...pub[0]!, mode: 'host' }] }), ['app']);
});

test('liveness: alive/suspect ready, dead/left down, absent down after the grace', () => {
  const ctx = { now: 100_000, since: 0, absentGraceMs: 15_000 };
  assert.equal(nodeStateFrom('alive', 0, ctx), 'ready');
  assert.equal(nodeStateFrom('suspect', 0, ctx), 'ready');
  assert.equal(nodeStateFrom('dead', 0, ctx), 'down');
  assert.equal(nodeStateFrom('left', 0, ctx), 'down');
  assert.equal(nodeStateFrom(undefined, 95_000, ctx), 'ready');
  assert.equal(nodeStateFrom(undefined, 0, ctx), 'down');
});

test('liveness: a dead member is disconnected (keeps its tasks, gets no new ones) until the down grace ends; a graceful leave is down at once', () => {
  const ctx = { now: 100_000, since: 0, absentGraceMs: 15_000, downGraceMs: 5000 };
  const cases: Array<[Parameters<typeof nodeStateFrom>[0], number | undefined, string]> = [
    ['dead', 0, 'disconnected'], // just declared dead: an agent restart, its tasks still serve
    ['dead', 4999, 'disconnected'],
    ['dead', 5000, 'down'],
    ['dead', undefined, 'down'], // age unknown: no grace
    ['left', 0, 'down'],
    ['alive', 60_000, 'ready'],
    ['suspect', 60_000, 'ready'],
  ];
  for (const [state, age, want] of cases) assert.equal(nodeStateFrom(state, 0, ctx, age), want, `${state} for ${age} ms`);
  assert.equal(nodeStateFrom('dead', 0, { ...ctx, downGraceMs: 0 }, 0), 'down');
});

describe('dispatch', () => {
  const spec = parseServiceSpec({ name: 'web', image: 'whoami', networks: ['app'], ports: [{ published: 8080, target: 80 }] });
  const net: NetworkRecord = { id: 'n1d', name: 'app', driver: 'overlay', subnet: '10.10.0.0/24', gateway: '10.10.0.1', vni: 4097, attachable: false, ingress: false, createdAt: 0 };
  const svc: ServiceRecord = { id: 's1', version: 1, spec, vips: { n1d: '10.10.0.2' }, createdAt: 0, updatedAt: 0 };
  const base: TaskRecord = {
    id: 'aaaaaaaaaaaa01', serviceId: 's1', slot: 1, nodeId: 'node1', specVersion: 1, spec: taskSpecOf(spec), desiredState: 'running',
    state: 'assigned', timestamps: { created: 0, updated: 0 }, addresses: { n1d: '10.10.0.3' },
  };
  test('only scheduled, non-terminal tasks of the node; desired ready waits', () => {
    assert.ok(dispatchable(base, 'node1'));
    assert.ok(!dispatchable(base, 'node2'));
    assert.ok(!dispatchable({ ...base, state: 'pending' }, 'node1'));
    assert.ok(!dispatchable({ ...base, state: 'shutdown' }, 'node1'));
    assert.ok(!dispatchable({ ...base, desiredState: 'ready' }, 'node1'));
    assert.ok(dispatchable({ ...base, desiredState: 'shutdown', state: 'running' }, 'node1'));
  });
  test('assignment carries attachment, VIP, MAC, ports and the task name', () => {
    const [a] = assignmentsFor('node1', [base], new Map([['s1', svc]]), new Map([['app', net]]));
    assert.ok(a);
    assert.equal(a.task.name, 'web.1.aaaaaaaaaaaa01');
    assert.deepEqual(a.attachments[0], {
      network: { id: 'n1d', name: 'app', vni: 4097, subnet: '10.10.0.0/24', gateway: '10.10.0.1' },
      ip: '10.10.0.3', prefix: 24, mac: '02:42:0a:0a:00:03', vip: '10.10.0.2', aliases: [],
    });
    assert.deepEqual(a.ports, [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress', policy: 'cluster' }]);
    assert.equal(a.desiredState, 'running');
  });
  test('a task whose network or address is missing is not handed out', () => {
    assert.equal(assignmentsFor('node1', [{ ...base, addresses: {} }], new Map([['s1', svc]]), new Map([['app', net]])).length, 0);
    assert.equal(assignmentsFor('node1', [base], new Map([['s1', svc]]), new Map()).length, 0);
  });
});
