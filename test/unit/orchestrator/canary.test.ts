/**
 * Canary updates (core/orchestrator/canary.ts formulas, update.ts machine) in simulated time: the
 * canary tasks start beside the old ones and are held; promote rolls the rest; rollback removes them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RollingUpdate } from '../../../src/core/orchestrator/update.js';
import { canaryCount, canaryWeights, parseCanaryPercent } from '../../../src/core/orchestrator/canary.js';
import type { Action } from '../../../src/core/orchestrator/actions.js';
import type { Task } from '../../../src/core/spec/types.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import { idGen, spec } from './fixtures.js';

const v1 = spec({ image: 'app:1', updateConfig: { parallelism: 1, monitorMs: 0 } });
const v2 = spec({ image: 'app:2', updateConfig: { parallelism: 1, monitorMs: 0 } });
const task = (id: string, slot: number): Task => ({
  id, serviceId: 'web', slot, nodeId: 'a', specVersion: 1, spec: taskSpecOf(v1), desiredState: 'running', state: 'running', timestamps: { created: 0, updated: 0 },
});
const old3 = () => [task('o1', 1), task('o2', 2), task('o3', 3)];
const canary = (count: number) => new RollingUpdate({ serviceId: 'web', from: { version: 1, spec: v1 }, to: { version: 2, spec: v2 }, tasks: old3(), now: 0, newId: idGen('n'), canary: { count } });
const show = (as: Action[]) => as.map((a) => a.type === 'createTask' ? `create:${a.task.id}@${a.task.slot}:${a.task.desiredState}`
  : a.type === 'updateState' ? `state:${a.state}` : 'taskId' in a ? `${a.type}:${a.taskId}` : a.type);

describe('canary formulas', () => {
  test('canaryCount: the share of the replicas, at least one, at most all', () => {
    const table: Array<[number, number, number]> = [[3, 10, 1], [10, 10, 1], [20, 10, 2], [4, 50, 2], [1, 99, 1], [5, 99, 5], [0, 10, 1]];
    for (const [n, p, want] of table) assert.equal(canaryCount(n, p), want, `${p}% of ${n}`);
  });
  test('canaryWeights: the canary side gets percent % of the total weight', () => {
    const table: Array<[number, number, number]> = [[3, 1, 10], [10, 1, 10], [20, 2, 10], [4, 2, 50], [7, 1, 33], [100, 10, 1], [200, 20, 99]];
    for (const [old, k, p] of table) {
      const w = canaryWeights(old, k, p);
      assert.ok(w.old >= 1 && w.old <= 10000 && w.canary >= 1 && w.canary <= 10000, JSON.stringify(w));
      const share = (k * w.canary) / (k * w.canary + old * w.old);
      assert.ok(Math.abs(share - p / 100) < 0.005, `${old} old, ${k} canary, ${p}%: ${JSON.stringify(w)} → ${share}`);
    }
    assert.deepEqual(canaryWeights(3, 1, 10), { old: 3, canary: 1 }, 'reduced: 1 / (1 + 3·3) = 10 %');
  });
  test('parseCanaryPercent', () => {
    assert.equal(parseCanaryPercent('10%'), 10);
    assert.equal(parseCanaryPercent('5'), 5);
    for (const bad of ['0%', '100%', '10.5%', 'ten', '', '-3']) assert.equal(parseCanaryPercent(bad), null, bad);
  });
});

describe('canary update machine', () => {
  test('starts the canary start-first beside slot 1, holds it, takes no other slot', () => {
    const ru = canary(1);
    assert.deepEqual(show(ru.drain()), ['state:updating', 'create:n1@1:running']);
    assert.ok(ru.canaryHeld);
    ru.handle({ type: 'taskRunning', taskId: 'n1' }, 1_000);
    assert.deepEqual(show(ru.drain()), ['state:canary']);
    assert.equal(ru.state, 'canary');
    ru.tick(3_600_000);
    assert.deepEqual(ru.drain(), [], 'held: an hour later nothing moved (no drain of o1, no other slot)');
    assert.equal(ru.nextDeadline(), undefined);
  });

  test('promote: the canary replaces its slot\'s old task, then the rest rolls per the update config', () => {
    const ru = canary(1);
    ru.handle({ type: 'taskRunning', taskId: 'n1' }, 1);
    ru.drain();
    assert.ok(ru.promote(2));
    assert.ok(!ru.promote(3), 'only once');
    assert.deepEqual(show(ru.drain()), ['state:updating', 'drainTask:o1', 'drainTask:o2']);
    ru.handle({ type: 'taskDrained', taskId: 'o1' }, 4);
    assert.deepEqual(show(ru.drain()), ['shutdownTask:o1']);
    ru.handle({ type: 'taskDrained', taskId: 'o2' }, 5);
    assert.deepEqual(show(ru.drain()), ['shutdownTask:o2', 'create:n2@2:ready']);
    ru.handle({ type: 'taskStopped', taskId: 'o2' }, 6);
    ru.handle({ type: 'taskRunning', taskId: 'n2' }, 7);
    assert.deepEqual(show(ru.drain()), ['startTask:n2', 'drainTask:o3']);
    ru.handle({ type: 'taskDrained', taskId: 'o3' }, 8);
    ru.handle({ type: 'taskStopped', taskId: 'o3' }, 9);
    ru.handle({ type: 'taskRunning', taskId: 'n3' }, 10);
    assert.deepEqual(show(ru.drain()), ['shutdownTask:o3', 'create:n3@3:ready', 'startTask:n3', 'state:completed']);
  });

  test('rollback: the canary tasks are shut down, the old ones never stopped, the old spec is back', () => {
    const ru = canary(2);
    assert.deepEqual(show(ru.drain()), ['state:updating', 'create:n1@1:running', 'create:n2@2:running']);
    ru.handle({ type: 'taskRunning', taskId: 'n1' }, 1);
    assert.deepEqual(show(ru.drain()), [], 'not canary until both run');
    ru.handle({ type: 'taskRunning', taskId: 'n2' }, 2);
    assert.deepEqual(show(ru.drain()), ['state:canary']);
    ru.rollback(3);
    assert.deepEqual(show(ru.drain()), ['shutdownTask:n1', 'shutdownTask:n2', 'setServiceSpec', 'state:rollback_started', 'state:rollback_completed']);
    assert.ok(!ru.canaryHeld);
  });

  test('a canary task that fails to start is withdrawn and counts as a failure (default action pauses)', () => {
    const ru = canary(1);
    ru.drain();
    ru.handle({ type: 'taskFailed', taskId: 'n1', message: 'boom' }, 1);
    const acts = show(ru.drain());
    assert.ok(acts.includes('shutdownTask:n1'), acts.join(' '));
    assert.notEqual(ru.state, 'completed');
  });
});
