import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { conditionAllows, restartDecision, restartsInWindow } from '../../../src/core/orchestrator/restart.js';
import type { RestartPolicy } from '../../../src/core/spec/types.js';
import { node, service } from './fixtures.js';
import { Sim } from './sim.js';

const three = () => [node('n1'), node('n2'), node('n3')];

describe('restart formulas', () => {
  test('conditionAllows', () => {
    const table: Array<[RestartPolicy['condition'], 'failed' | 'complete' | 'rejected', boolean]> = [
      ['any', 'failed', true], ['any', 'complete', true], ['on-failure', 'failed', true], ['on-failure', 'rejected', true],
      ['on-failure', 'complete', false], ['none', 'failed', false],
    ];
    for (const [c, s, want] of table) assert.equal(conditionAllows(c, s), want, `${c} ${s}`);
  });
  test('restartsInWindow: window 0 keeps all', () => {
    assert.deepEqual(restartsInWindow([1, 5, 9], 10, 0), [1, 5, 9]);
    assert.deepEqual(restartsInWindow([1, 5, 9], 10, 6), [5, 9]);
    assert.deepEqual(restartsInWindow(undefined, 10, 6), []);
  });
  test('restartDecision: delay counts from when the task ended; attempts within the window', () => {
    const p: RestartPolicy = { condition: 'any', delayMs: 100, maxAttempts: 2, windowMs: 1000 };
    assert.deepEqual(restartDecision(p, { state: 'failed', timestamps: { created: 0, updated: 50 } }, 60), { restart: true, at: 150, history: [150] });
    assert.deepEqual(restartDecision(p, { state: 'failed', timestamps: { created: 0, updated: 50 }, restarts: [0, 100] }, 200), { restart: false, why: 'restart attempts exhausted (2/2)', retryAt: 1000 });
    assert.deepEqual(restartDecision({ ...p, windowMs: 0 }, { state: 'failed', timestamps: { created: 0, updated: 50 }, restarts: [0, 100] }, 200), { restart: false, why: 'restart attempts exhausted (2/2)' });
    // Old restarts fall out of the window.
    assert.deepEqual(restartDecision(p, { state: 'failed', timestamps: { created: 0, updated: 2000 }, restarts: [0, 100] }, 2100), { restart: true, at: 2100, history: [2100] });
  });
});

describe('replicated', () => {
  test('creates slots, spreads 2/2/2, scales 6 → 9 → 4', () => {
    const sim = new Sim(three(), [service('web', { mode: { replicated: { replicas: 6 } } })]);
    sim.settle();
    assert.deepEqual(sim.perNode('web'), { n1: 2, n2: 2, n3: 2 });
    assert.deepEqual(sim.live('web').map((t) => t.slot).sort((a, b) => a! - b!), [1, 2, 3, 4, 5, 6]);
    sim.services.set('web', service('web', { mode: { replicated: { replicas: 9 } } }));
    sim.settle();
    assert.deepEqual(sim.perNode('web'), { n1: 3, n2: 3, n3: 3 });
    sim.services.set('web', service('web', { mode: { replicated: { replicas: 4 } } }));
    sim.settle();
    assert.equal(sim.running('web').length, 4);
    // Scale-down takes from the most loaded nodes: 4 left spread at most 2 per node.
    assert.ok(Object.values(sim.perNode('web')).every((c) => c <= 2));
  });

  test('scale down removes slots whose task is not running first', () => {
    const sim = new Sim(three(), [service('web', { mode: { replicated: { replicas: 3 } } })]);
    sim.settle();
    const victim = sim.live('web').find((t) => t.slot === 1)!;
    sim.autoRun = false;
    sim.setTask(victim.id, 'pending');
    sim.services.set('web', service('web', { mode: { replicated: { replicas: 2 } } }));
    sim.settle();
    assert.equal(sim.tasks.get(victim.id)!.desiredState, 'shutdown');
    assert.equal(sim.live('web').length, 2);
  });

  test('node dies (gossip) → its tasks are replaced elsewhere, history kept', () => {
    const sim = new Sim(three(), [service('web', { mode: { replicated: { replicas: 6 } } })]);
    sim.settle();
    const lost = sim.running('web').filter((t) => t.nodeId === 'n3').map((t) => t.id);
    sim.clock.advance(1000);
    sim.setNode('n3', { state: 'down' });
    sim.settle();
    assert.deepEqual(sim.perNode('web'), { n1: 3, n2: 3 });
    for (const id of lost) assert.equal(sim.tasks.get(id)!.desiredState, 'shutdown');
    assert.equal(sim.tasks.get(lost[0]!)!.message, 'node down');
    // The slots are the same six.
    assert.deepEqual(sim.live('web').map((t) => t.slot).sort((a, b) => a! - b!), [1, 2, 3, 4, 5, 6]);
  });

  test('drain empties a node; pause keeps tasks but takes no new ones', () => {
    const sim = new Sim(three(), [service('web', { mode: { replicated: { replicas: 6 } } })]);
    sim.settle();
    sim.setNode('n2', { availability: 'pause' });
    sim.setNode('n1', { availability: 'drain' });
    sim.settle();
    assert.deepEqual(sim.perNode('web'), { n2: 2, n3: 4 });
    assert.equal([...sim.tasks.values()].filter((t) => t.nodeId === 'n1' && t.state === 'running').length, 0);
  });

  test('restart policy: delay, then max attempts within the window', () => {
    const sim = new Sim(three(), [service('web', { restartPolicy: { condition: 'on-failure', delayMs: 5000, maxAttempts: 2, windowMs: 60_000 } })]);
    sim.settle();
    const fail = () => {
      const t = sim.running('web')[0] ?? sim.live('web')[0]!;
      sim.setTask(t.id, 'failed');
      return t.id;
    };
    const first = fail();
    sim.settle();
    assert.equal(sim.lastDeadline, 5000, 'restart waits for the delay');
    assert.equal(sim.running('web').length, 0);
    sim.clock.set(5000);
    sim.settle();
    assert.equal(sim.running('web').length, 1);
    assert.equal(sim.tasks.get(first)!.desiredState, 'shutdown');
    sim.clock.set(6000);
    fail();
    sim.clock.set(11_000);
    sim.settle();
    assert.equal(sim.running('web').length, 1, 'second restart');
    sim.clock.set(12_000);
    const third = fail();
    sim.clock.set(20_000);
    sim.settle();
    assert.equal(sim.running('web').length, 0, 'attempts exhausted: 2 within 60 s');
    assert.equal(sim.tasks.get(third)!.desiredState, 'running', 'the failed task keeps its slot');
    assert.equal(sim.lastDeadline, 65_000, 'woken when the first restart (t=5000) leaves the 60 s window');
    sim.clock.set(64_999);
    sim.settle();
    assert.equal(sim.running('web').length, 0);
    sim.clock.set(65_000);
    sim.settle();
    assert.equal(sim.running('web').length, 1);
  });

  test('condition on-failure does not restart a completed task; none never restarts', () => {
    const sim = new Sim(three(), [service('job', { restartPolicy: { condition: 'on-failure', delayMs: 0 } }), service('once', { restartPolicy: { condition: 'none' } })]);
    sim.settle();
    sim.setTask(sim.running('job')[0]!.id, 'complete');
    sim.setTask(sim.running('once')[0]!.id, 'failed');
    sim.settle();
    assert.equal(sim.running('job').length, 0);
    assert.equal(sim.running('once').length, 0);
    assert.equal(sim.live('job').length, 1);
  });

  test('task history is bounded per slot (5, like swarm)', () => {
    const sim = new Sim([node('n1')], [service('web', { restartPolicy: { condition: 'any', delayMs: 0 } })]);
    sim.settle();
    for (let i = 0; i < 12; i++) {
      sim.clock.advance(10);
      sim.setTask(sim.running('web')[0]!.id, 'failed');
      sim.settle();
    }
    const all = [...sim.tasks.values()].filter((t) => t.serviceId === 'web');
    assert.equal(all.length, 5);
    assert.equal(sim.running('web').length, 1);
    // The restarts history travels with the task.
    assert.ok((sim.running('web')[0]!.restarts?.length ?? 0) >= 12);
  });

  test('removing a service shuts its tasks down, then removes them', () => {
    const sim = new Sim(three(), [service('web', { mode: { replicated: { replicas: 3 } } })]);
    sim.settle();
    sim.services.delete('web');
    sim.settle();
    assert.equal([...sim.tasks.values()].length, 0);
  });
});

describe('global', () => {
  test('one task per eligible node; follows joins, drains, constraints and removals', () => {
    const sim = new Sim([node('n1'), node('n2', { role: 'manager' })], [service('agent', { mode: { global: {} }, constraints: ['node.role==worker'] })]);
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { n1: 1 });
    sim.nodes.set('n3', node('n3'));
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { n1: 1, n3: 1 }, 'a joining node gets its task');
    sim.setNode('n3', { availability: 'drain' });
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { n1: 1 });
    sim.setNode('n3', { availability: 'active' });
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { n1: 1, n3: 1 });
    sim.setNode('n1', { role: 'manager' });
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { n3: 1 }, 'no longer matching the constraint');
    sim.nodes.delete('n3');
    sim.settle();
    assert.equal(sim.live('agent').length, 0);
  });

  test('a failed global task restarts on the same node', () => {
    const sim = new Sim(three(), [service('agent', { mode: { global: {} }, restartPolicy: { delayMs: 0 } })]);
    sim.settle();
    const t = sim.running('agent').find((x) => x.nodeId === 'n2')!;
    sim.setTask(t.id, 'failed');
    sim.settle();
    assert.deepEqual(sim.perNode('agent'), { n1: 1, n2: 1, n3: 1 });
    assert.notEqual(sim.running('agent').find((x) => x.nodeId === 'n2')!.id, t.id);
  });
});
