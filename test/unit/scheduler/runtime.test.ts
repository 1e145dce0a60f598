/** Runtime choice on the manager side: automatic resolution, the node description, and the scheduler's runtime filter. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  describedAs, imageMissingMessage, isImageMissing, nodeDescriptionSchema, nodeRuntimes, normalizeDescription, resolveRuntime, runtimeKind,
} from '../../../src/core/spec/runtime.js';
import { parseNode, parseServiceSpec, parseTask } from '../../../src/core/spec/validate.js';
import { taskSpecOf, taskSpecEqual, type Node, type RuntimeKind } from '../../../src/core/spec/types.js';
import { schedule } from '../../../src/core/scheduler/scheduler.js';
import { explainFailures } from '../../../src/core/scheduler/filters.js';
import { countBy, node, pendingTasks, service } from '../orchestrator/fixtures.js';
import { Sim } from '../orchestrator/sim.js';

describe('automatic runtime', () => {
  const table: Array<[string, RuntimeKind | undefined, RuntimeKind]> = [
    ['whoami', undefined, 'netns'], // the built-in demo server is a host process
    ['whoami:1', undefined, 'docker'], // only the exact built-in name
    ['nginx', undefined, 'docker'],
    ['meshd/redis:7', undefined, 'docker'],
    ['busybox', 'netns', 'netns'], // an explicit choice wins
    ['whoami', 'docker', 'docker'],
  ];
  for (const [image, runtime, want] of table) {
    test(`${image}${runtime ? ` --runtime ${runtime}` : ''} → ${want}`, () => assert.equal(resolveRuntime({ image, runtime }), want));
  }
  test('the spec keeps "automatic" as an absent field; the task spec carries the choice', () => {
    const auto = parseServiceSpec({ name: 'web', image: 'nginx' });
    assert.equal(auto.runtime, undefined);
    assert.equal('runtime' in taskSpecOf(auto), false);
    const pinned = parseServiceSpec({ name: 'web', image: 'nginx', runtime: 'netns' });
    assert.equal(taskSpecOf(pinned).runtime, 'netns');
    // Changing the runtime changes what a task runs with: tasks are replaced.
    assert.equal(taskSpecEqual(taskSpecOf(auto), taskSpecOf(pinned)), false);
    assert.throws(() => parseServiceSpec({ name: 'web', image: 'nginx', runtime: 'lxc' }), /service spec runtime: /);
  });
  test('runtime names as typed', () => {
    assert.equal(runtimeKind('netns'), 'netns');
    assert.equal(runtimeKind('docker'), 'docker');
    assert.equal(runtimeKind('Docker'), undefined);
    assert.equal(runtimeKind('auto'), undefined);
  });
});

describe('node description', () => {
  test('a record without runtimes (written before nodes reported them) has netns only', () => {
    const old = parseNode({ id: 'n1', hostname: 'n1', role: 'worker' });
    assert.deepEqual(nodeRuntimes(old), ['netns']);
    const d = parseNode({ id: 'n1', hostname: 'n1', role: 'worker', runtimes: ['netns', 'docker'], engine: { version: '20.10.24', apiVersion: '1.41' }, descriptionAt: 5 });
    assert.deepEqual(nodeRuntimes(d), ['netns', 'docker']);
  });
  test('the report schema: known runtimes once each, engine only with docker', () => {
    const ok = (v: unknown) => nodeDescriptionSchema.safeParse(v).success;
    assert.ok(ok({ runtimes: ['netns'] }));
    assert.ok(ok({ runtimes: ['netns', 'docker'], engine: { version: '20.10.24+dfsg1', apiVersion: '1.41' } }));
    assert.ok(!ok({ runtimes: [] }));
    assert.ok(!ok({ runtimes: ['lxc'] }));
    assert.ok(!ok({ runtimes: ['netns', 'netns'] }));
    assert.ok(!ok({ runtimes: ['netns'], engine: { version: '1', apiVersion: '1.41' } }));
    assert.ok(!ok({ runtimes: ['netns', 'docker'], engine: { version: '1', apiVersion: 'v1' } }));
    assert.ok(!ok({ runtimes: ['netns'], extra: 1 }));
  });
  test('normalized order; unchanged reports are recognised, any change is not', () => {
    const d = normalizeDescription({ runtimes: ['docker', 'netns'], engine: { version: '20.10', apiVersion: '1.41' } });
    assert.deepEqual(d.runtimes, ['netns', 'docker']);
    const n: Node = { ...node('n1'), runtimes: ['netns', 'docker'], engine: { version: '20.10', apiVersion: '1.41' } };
    assert.ok(describedAs(n, d));
    assert.ok(!describedAs(n, { runtimes: ['netns'] }));
    assert.ok(!describedAs(n, { ...d, engine: { version: '24.0', apiVersion: '1.43' } }));
    // Never reported: the first report is recorded even when it says netns only.
    assert.ok(!describedAs(node('n2'), { runtimes: ['netns'] }));
    assert.ok(describedAs({ ...node('n2'), runtimes: ['netns'] }, { runtimes: ['netns'] }));
  });
  test('the image-missing message, exactly as the worker writes it', () => {
    assert.equal(imageMissingMessage('nginx:1.25', 'n2'), 'image nginx:1.25 not present on node n2');
    assert.ok(isImageMissing('image nginx:1.25 not present on node n2', 'nginx:1.25'));
    assert.ok(!isImageMissing('image nginx:1.24 not present on node n2', 'nginx:1.25'));
    assert.ok(!isImageMissing('exit code 1', 'nginx:1.25'));
    assert.ok(!isImageMissing(undefined, 'nginx:1.25'));
    // The task record keeps the error (its message moves on to "restarting").
    const t = parseTask({ id: 't1', serviceId: 's', specVersion: 1, spec: { image: 'x', runtime: 'docker', env: {}, networks: [], ports: [], constraints: [], preferences: [], resources: { cpuMilli: 0, memoryBytes: 0 } }, desiredState: 'shutdown', state: 'failed', message: 'restarting', error: 'image x not present on node n1', timestamps: { created: 0, updated: 0 } });
    assert.equal(t.error, 'image x not present on node n1');
  });
});

describe('scheduler: runtime filter', () => {
  const docker = (id: string, over: Partial<Node> = {}): Node => node(id, { runtimes: ['netns', 'docker'], ...over });
  const netnsOnly = (id: string): Node => node(id, { runtimes: ['netns'] });
  const perNode = (r: ReturnType<typeof schedule>) => countBy(r.assignments, (a) => a.nodeId);
  const cases: Array<{ name: string; image: string; runtime?: RuntimeKind; nodes: Node[]; placed: Record<string, number>; reason?: string }> = [
    { name: 'docker image: only docker nodes', image: 'nginx', nodes: [docker('d1'), netnsOnly('p1'), docker('d2')], placed: { d1: 2, d2: 2 } },
    { name: 'whoami: every node has netns', image: 'whoami', nodes: [docker('d1'), netnsOnly('p1')], placed: { d1: 2, p1: 2 } },
    { name: '--runtime netns with any image', image: 'busybox', runtime: 'netns', nodes: [docker('d1'), netnsOnly('p1')], placed: { d1: 2, p1: 2 } },
    { name: 'old records (no runtimes) are netns only', image: 'nginx', nodes: [node('o1'), node('o2'), node('o3')], placed: {}, reason: 'no suitable node (runtime docker on 0/3 nodes)' },
    { name: 'no docker anywhere', image: 'nginx', nodes: [netnsOnly('p1'), netnsOnly('p2'), netnsOnly('p3')], placed: {}, reason: 'no suitable node (runtime docker on 0/3 nodes)' },
    {
      name: 'the one docker node is drained: counted among the nodes that have the runtime', image: 'nginx',
      nodes: [docker('d1', { availability: 'drain' }), netnsOnly('p1'), netnsOnly('p2')], placed: {},
      reason: 'no suitable node (1 node not available for new tasks; runtime docker on 1/3 nodes)',
    },
    { name: '--runtime docker on whoami', image: 'whoami', runtime: 'docker', nodes: [netnsOnly('p1')], placed: {}, reason: 'no suitable node (runtime docker on 0/1 nodes)' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const svc = service('web', { image: c.image, runtime: c.runtime });
      const r = schedule(pendingTasks(svc, 4), c.nodes, []);
      assert.deepEqual(perNode(r), c.placed);
      if (c.reason) {
        assert.equal(r.unschedulable.length, 4);
        for (const u of r.unschedulable) assert.equal(u.reason, c.reason);
      } else assert.equal(r.unschedulable.length, 0);
    });
  }
  test('a global task pinned to a node without its runtime says so', () => {
    const svc = service('agent', { image: 'nginx', runtime: undefined, mode: { global: {} } });
    const [t] = pendingTasks(svc, 1);
    const r = schedule([{ ...t!, slot: undefined, nodeId: 'p1' }], [netnsOnly('p1')], []);
    assert.deepEqual(r.unschedulable.map((u) => u.reason), ['no suitable node (runtime docker on 0/1 nodes)']);
  });
  test('phrases without context still read', () => {
    assert.equal(explainFailures(new Map([['runtime', 2]]), 3), 'no suitable node (2 nodes without the task\'s runtime)');
    assert.equal(explainFailures(new Map([['image', 1]]), 3), 'no suitable node (image not present on 1 node)');
  });
});

describe('global services and runtimes', () => {
  test('a node without the runtime gets no task; gaining it adds one; losing it keeps the running task', () => {
    const sim = new Sim([node('d1', { runtimes: ['netns', 'docker'] }), node('p1', { runtimes: ['netns'] })], [service('agent', { image: 'nginx', runtime: undefined, mode: { global: {} } })]);
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { d1: 1 });
    assert.equal(sim.live('agent').length, 1, 'no task waits on p1');
    sim.setNode('p1', { runtimes: ['netns', 'docker'] });
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { d1: 1, p1: 1 });
    // One missed detection (a busy dockerd) must not stop a node's containers.
    sim.setNode('p1', { runtimes: ['netns'] });
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { d1: 1, p1: 1 });
  });
});
