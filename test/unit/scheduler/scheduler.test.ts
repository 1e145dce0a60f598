import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { schedule } from '../../../src/core/scheduler/scheduler.js';
import type { Task } from '../../../src/core/spec/types.js';
import { seededRng } from '../../../src/core/clock.js';
import { countBy, node, pendingTasks, service } from '../orchestrator/fixtures.js';

/** Turns assignments into placed tasks (state running), as the manager would store them. */
function place(tasks: Task[], r: ReturnType<typeof schedule>): Task[] {
  const at = new Map(r.assignments.map((a) => [a.taskId, a.nodeId]));
  return tasks.filter((t) => at.has(t.id)).map((t) => ({ ...t, nodeId: at.get(t.id)!, state: 'running' as const }));
}
const perNode = (r: ReturnType<typeof schedule>) => countBy(r.assignments, (a) => a.nodeId);

describe('spread', () => {
  const nodes = [node('n1'), node('n2'), node('n3')];

  test('6 replicas on 3 nodes → 2/2/2', () => {
    const r = schedule(pendingTasks(service('web', { mode: { replicated: { replicas: 6 } } }), 6), nodes, []);
    assert.deepEqual(perNode(r), { n1: 2, n2: 2, n3: 2 });
    assert.equal(r.unschedulable.length, 0);
  });

  test('scale 6 → 9 adds one per node', () => {
    const web = service('web');
    const all = pendingTasks(web, 9);
    const first = schedule(all.slice(0, 6), nodes, []);
    const placed = place(all.slice(0, 6), first);
    const second = schedule(all.slice(6), nodes, placed);
    assert.deepEqual(perNode(second), { n1: 1, n2: 1, n3: 1 });
  });

  test('fewest tasks of this service first, then fewest in total', () => {
    const other = service('db');
    const busy = place(pendingTasks(other, 4), { assignments: pendingTasks(other, 4).map((t) => ({ taskId: t.id, nodeId: 'n1' })), unschedulable: [] });
    const r = schedule(pendingTasks(service('web'), 2), nodes, busy);
    assert.deepEqual(perNode(r), { n2: 1, n3: 1 });
  });

  test('nodes with 5 recent failures of the service go last', () => {
    const web = service('web');
    const failed: Task[] = pendingTasks(web, 5).map((t) => ({ ...t, nodeId: 'n1', state: 'failed', desiredState: 'shutdown', timestamps: { created: 0, updated: 1000 } }));
    const pending = pendingTasks(web, 2, (() => { let i = 0; return () => `p${++i}`; })());
    assert.deepEqual(perNode(schedule(pending, nodes, failed, { now: 2000 })), { n2: 1, n3: 1 });
    // Outside the 5-minute window the penalty is gone.
    const late = schedule(pendingTasks(web, 3, (() => { let i = 0; return () => `q${++i}`; })()), nodes, failed, { now: 1000 + 5 * 60_000 + 1 });
    assert.deepEqual(perNode(late), { n1: 1, n2: 1, n3: 1 });
  });
});

describe('filters', () => {
  test('only ready + active nodes take new tasks', () => {
    const nodes = [node('a'), node('p', { availability: 'pause' }), node('d', { availability: 'drain' }), node('x', { state: 'down' })];
    const r = schedule(pendingTasks(service('web'), 4), nodes, []);
    assert.deepEqual(perNode(r), { a: 4 });
  });

  test('constraints restrict the nodes', () => {
    const nodes = [node('m1', { role: 'manager' }), node('w1', { labels: { zone: 'a' } }), node('w2', { labels: { zone: 'b' } })];
    const r = schedule(pendingTasks(service('web', { constraints: ['node.role==worker', 'node.labels.zone!=b'] }), 3), nodes, []);
    assert.deepEqual(perNode(r), { w1: 3 });
  });

  test('no node matches → unschedulable with a swarmkit-like reason', () => {
    const nodes = [node('n1'), node('n2', { availability: 'drain' })];
    const r = schedule(pendingTasks(service('web', { constraints: ['node.labels.gpu==yes'] }), 2), nodes, []);
    assert.equal(r.assignments.length, 0);
    assert.deepEqual(r.unschedulable.map((u) => u.reason), [
      'no suitable node (1 node not available for new tasks; 1 node not satisfying constraints)',
      'no suitable node (1 node not available for new tasks; 1 node not satisfying constraints)',
    ]);
  });

  test('resources: reservations fill nodes, the rest is unschedulable', () => {
    const nodes = [node('n1', { resources: { cpuMilli: 1000, memoryBytes: 2 ** 30 } }), node('n2', { resources: { cpuMilli: 2000, memoryBytes: 2 ** 30 } })];
    const r = schedule(pendingTasks(service('web', { resources: { cpuMilli: 500, memoryBytes: 0 } }), 8), nodes, []);
    assert.deepEqual(perNode(r), { n1: 2, n2: 4 });
    assert.equal(r.unschedulable.length, 2);
    assert.equal(r.unschedulable[0]!.reason, 'no suitable node (insufficient resources on 2 nodes)');
  });

  test('resources held by existing tasks count, also while they shut down', () => {
    const nodes = [node('n1', { resources: { cpuMilli: 1000, memoryBytes: 0 } }), node('n2', { resources: { cpuMilli: 1000, memoryBytes: 0 } })];
    const big = service('big', { resources: { cpuMilli: 1000, memoryBytes: 0 } });
    const existing: Task[] = pendingTasks(big, 1).map((t) => ({ ...t, nodeId: 'n1', state: 'running', desiredState: 'shutdown' }));
    const r = schedule(pendingTasks(service('web', { resources: { cpuMilli: 600, memoryBytes: 0 } }), 2), nodes, existing);
    assert.deepEqual(perNode(r), { n2: 1 });
    assert.equal(r.unschedulable.length, 1);
  });

  test('host-mode published ports: one task per node, and conflicts with other services', () => {
    const nodes = [node('n1'), node('n2'), node('n3')];
    const other = service('other', { ports: [{ published: 8080, target: 80, mode: 'host' }] });
    const existing = pendingTasks(other, 1).map((t) => ({ ...t, nodeId: 'n3', state: 'running' as const }));
    const web = service('web', { ports: [{ published: 8080, target: 80, mode: 'host' }] });
    const r = schedule(pendingTasks(web, 4), nodes, existing);
    assert.deepEqual(perNode(r), { n1: 1, n2: 1 });
    assert.equal(r.unschedulable.length, 2);
    assert.equal(r.unschedulable[0]!.reason, 'no suitable node (host-mode port already in use on 3 nodes)');
    // Same port, other protocol: no conflict. Ingress mode: no conflict either.
    const udp = schedule(pendingTasks(service('dns', { ports: [{ published: 8080, target: 53, proto: 'udp', mode: 'host' }] }), 3), nodes, existing);
    assert.equal(udp.assignments.length, 3);
    const ingress = schedule(pendingTasks(service('lb', { ports: [{ published: 8080, target: 80 }] }), 6), nodes, existing);
    assert.equal(ingress.assignments.length, 6);
  });

  test('tasks pinned to a node (global) are only checked against it', () => {
    const g = service('g', { mode: { global: {} }, ports: [{ published: 9000, target: 9000, mode: 'host' }] });
    const [a, b, c] = pendingTasks(g, 3);
    const pinned = [{ ...a!, slot: undefined, nodeId: 'n1' }, { ...b!, slot: undefined, nodeId: 'n2' }, { ...c!, slot: undefined, nodeId: 'gone' }];
    const r = schedule(pinned, [node('n1'), node('n2', { availability: 'drain' })], []);
    assert.deepEqual(r.assignments, [{ taskId: a!.id, nodeId: 'n1' }]);
    assert.deepEqual(r.unschedulable.map((u) => u.reason), ['no suitable node (1 node not available for new tasks)', 'node gone not found']);
  });
});

describe('strategies', () => {
  test('binpack fills the most loaded node that fits first', () => {
    const nodes = [node('n1', { resources: { cpuMilli: 2000, memoryBytes: 0 } }), node('n2', { resources: { cpuMilli: 2000, memoryBytes: 0 } }), node('n3', { resources: { cpuMilli: 2000, memoryBytes: 0 } })];
    const other = service('other', { resources: { cpuMilli: 500, memoryBytes: 0 } });
    const existing = pendingTasks(other, 1).map((t) => ({ ...t, nodeId: 'n2', state: 'running' as const }));
    const r = schedule(pendingTasks(service('web', { resources: { cpuMilli: 500, memoryBytes: 0 } }), 5), nodes, existing, { strategy: 'binpack' });
    assert.deepEqual(perNode(r), { n2: 3, n1: 2 });
  });

  test('random: deterministic for a seed, only eligible nodes, all tasks placed', () => {
    const nodes = [node('n1'), node('n2'), node('n3'), node('n4', { availability: 'drain' })];
    const tasks = pendingTasks(service('web'), 300);
    const a = schedule(tasks, nodes, [], { strategy: 'random', rng: seededRng(7) });
    const b = schedule(tasks, nodes, [], { strategy: 'random', rng: seededRng(7) });
    assert.deepEqual(a, b);
    const c = perNode(a);
    assert.equal(c.n4, undefined);
    assert.equal((c.n1 ?? 0) + (c.n2 ?? 0) + (c.n3 ?? 0), 300);
    for (const k of ['n1', 'n2', 'n3']) assert.ok(c[k]! > 60, `${k} got ${c[k]}`);
  });

  test('random without an rng is a bad argument', () => {
    assert.throws(() => schedule(pendingTasks(service('web'), 1), [node('n1')], [], { strategy: 'random' }), /rng/);
  });
});

describe('placement preferences', () => {
  test('spread over a label: zones get equal shares regardless of node counts', () => {
    const nodes = [
      node('a1', { labels: { zone: 'a' } }),
      node('b1', { labels: { zone: 'b' } }), node('b2', { labels: { zone: 'b' } }), node('b3', { labels: { zone: 'b' } }),
    ];
    const r = schedule(pendingTasks(service('web', { preferences: [{ spread: 'node.labels.zone' }] }), 6), nodes, []);
    assert.deepEqual(perNode(r), { a1: 3, b1: 1, b2: 1, b3: 1 });
  });

  test('nodes missing the label form one more group of their own', () => {
    const nodes = [node('a1', { labels: { zone: 'a' } }), node('b1', { labels: { zone: 'b' } }), node('x1'), node('x2')];
    const r = schedule(pendingTasks(service('web', { preferences: [{ spread: 'node.labels.zone' }] }), 6), nodes, []);
    const c = perNode(r);
    assert.deepEqual({ a: c.a1, b: c.b1, none: (c.x1 ?? 0) + (c.x2 ?? 0) }, { a: 2, b: 2, none: 2 });
  });

  test('existing tasks count: new ones go to the emptier zone', () => {
    const nodes = [node('a1', { labels: { zone: 'a' } }), node('b1', { labels: { zone: 'b' } })];
    const web = service('web', { preferences: [{ spread: 'node.labels.zone' }] });
    const existing = pendingTasks(web, 3, (() => { let i = 0; return () => `e${++i}`; })()).map((t) => ({ ...t, nodeId: 'a1', state: 'running' as const }));
    const r = schedule(pendingTasks(web, 3), nodes, existing);
    assert.deepEqual(perNode(r), { b1: 3 });
  });

  test('hierarchical: zone first, then rack inside each zone', () => {
    const nodes = [
      node('a-r1-1', { labels: { zone: 'a', rack: 'r1' } }), node('a-r1-2', { labels: { zone: 'a', rack: 'r1' } }),
      node('a-r2-1', { labels: { zone: 'a', rack: 'r2' } }),
      node('b-r1-1', { labels: { zone: 'b', rack: 'r1' } }),
    ];
    const web = service('web', { preferences: [{ spread: 'node.labels.zone' }, { spread: 'node.labels.rack' }] });
    const c = perNode(schedule(pendingTasks(web, 8), nodes, []));
    assert.equal(c['b-r1-1'], 4);
    assert.equal((c['a-r1-1'] ?? 0) + (c['a-r1-2'] ?? 0), 2);
    assert.equal(c['a-r2-1'], 2);
  });

  test('a full zone stops taking tasks; the others carry on', () => {
    const nodes = [node('a1', { labels: { zone: 'a' }, resources: { cpuMilli: 1000, memoryBytes: 0 } }), node('b1', { labels: { zone: 'b' } })];
    const r = schedule(pendingTasks(service('web', { preferences: [{ spread: 'node.labels.zone' }], resources: { cpuMilli: 500, memoryBytes: 0 } }), 6), nodes, []);
    assert.deepEqual(perNode(r), { a1: 2, b1: 4 });
  });
});
