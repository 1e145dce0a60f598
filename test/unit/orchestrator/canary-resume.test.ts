/**
 * A held canary survives a manager loss (issue 19 §3, ARCHITECTURE reliability case 16): a new
 * RollingUpdate built from the stored tasks with `canary.resume` holds exactly what the old one
 * held — old tasks untouched, canary tasks adopted (never re-created) — and promote / rollback
 * then act as on the original machine. Simulated time only.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RollingUpdate } from '../../../src/core/orchestrator/update.js';
import { heldCanarySlots } from '../../../src/core/orchestrator/canary.js';
import type { Action } from '../../../src/core/orchestrator/actions.js';
import type { Task, TaskState } from '../../../src/core/spec/types.js';
import { isTerminal, taskSpecOf } from '../../../src/core/spec/types.js';
import { idGen, spec } from './fixtures.js';

const v1 = spec({ image: 'app:1', updateConfig: { parallelism: 1, monitorMs: 0 } });
const v2 = spec({ image: 'app:2', updateConfig: { parallelism: 1, monitorMs: 0 } });
const task = (id: string, slot: number, version = 1, state: TaskState = 'running', created = 0): Task => ({
  id, serviceId: 'web', slot, nodeId: 'a', specVersion: version, spec: taskSpecOf(version === 1 ? v1 : v2), desiredState: 'running', state, timestamps: { created, updated: created },
});
const old3 = (): Task[] => [task('o1', 1), task('o2', 2), task('o3', 3)];
const resumed = (tasks: Task[], slots?: number[], now = 100_000) => new RollingUpdate({
  serviceId: 'web', from: { version: 1, spec: v1 }, to: { version: 2, spec: v2 }, tasks, now, newId: idGen('r'), canary: { count: 1, resume: true, slots },
});
const show = (as: Action[]) => as.map((a) => a.type === 'createTask' ? `create:${a.task.id}@${a.task.slot}:${a.task.desiredState}`
  : a.type === 'updateState' ? `state:${a.state}` : 'taskId' in a ? `${a.type}:${a.taskId}` : a.type);

describe('canary resumed by a new manager', () => {
  test('holds as before: no task created or stopped, state canary, nothing due an hour later', () => {
    const ru = resumed([...old3(), task('c1', 1, 2, 'running', 10)], [1]);
    assert.deepEqual(show(ru.drain()), ['state:canary']);
    assert.ok(ru.canaryHeld);
    assert.deepEqual(ru.canarySlots, [1]);
    ru.tick(3_700_000);
    assert.deepEqual(ru.drain(), []);
    assert.equal(ru.nextDeadline(), undefined);
  });

  test('promote after resume: the canary replaces its slot\'s old task, the rest rolls, completed', () => {
    const ru = resumed([...old3(), task('c1', 1, 2, 'running', 10)], [1]);
    ru.drain();
    assert.ok(ru.promote(100_001));
    assert.deepEqual(show(ru.drain()), ['state:updating', 'drainTask:o1', 'drainTask:o2']);
    ru.handle({ type: 'taskDrained', taskId: 'o1' }, 100_002);
    ru.handle({ type: 'taskDrained', taskId: 'o2' }, 100_003);
    assert.deepEqual(show(ru.drain()), ['shutdownTask:o1', 'shutdownTask:o2', 'create:r1@2:ready']);
    ru.handle({ type: 'taskStopped', taskId: 'o2' }, 100_004);
    ru.handle({ type: 'taskRunning', taskId: 'r1' }, 100_005);
    assert.deepEqual(show(ru.drain()), ['startTask:r1', 'drainTask:o3']);
    ru.handle({ type: 'taskDrained', taskId: 'o3' }, 100_006);
    ru.handle({ type: 'taskStopped', taskId: 'o3' }, 100_007);
    ru.handle({ type: 'taskRunning', taskId: 'r2' }, 100_008);
    assert.deepEqual(show(ru.drain()), ['shutdownTask:o3', 'create:r2@3:ready', 'startTask:r2', 'state:completed']);
  });

  test('rollback after resume: only the canary task goes, the old ones never stopped', () => {
    const ru = resumed([...old3(), task('c1', 1, 2, 'running', 10)], [1]);
    ru.drain();
    ru.rollback(100_001);
    assert.deepEqual(show(ru.drain()), ['shutdownTask:c1', 'setServiceSpec', 'state:rollback_started', 'state:rollback_completed']);
    assert.ok(!ru.canaryHeld);
  });

  test('a canary task still starting is waited for (bounded), then held', () => {
    const ru = resumed([...old3(), task('c1', 1, 2, 'assigned', 10)], [1]);
    assert.deepEqual(show(ru.drain()), ['state:updating']);
    assert.equal(ru.nextDeadline(), 100_000 + 120_000, 'the start bound applies to the adopted task');
    ru.handle({ type: 'taskRunning', taskId: 'c1' }, 100_500);
    assert.deepEqual(show(ru.drain()), ['state:canary']);
  });

  test('a canary task that ended while no manager led is started again in its slot, beside the old task', () => {
    const ru = resumed([...old3(), { ...task('c1', 1, 2, 'failed', 10), desiredState: 'shutdown' }], [1]);
    assert.deepEqual(show(ru.drain()), ['create:r1@1:running', 'state:updating']);
    ru.handle({ type: 'taskRunning', taskId: 'r1' }, 100_001);
    assert.deepEqual(show(ru.drain()), ['state:canary']);
  });

  test('records without stored slots: the slots holding a live task of the target version', () => {
    const ru = resumed([...old3(), task('c2', 2, 2, 'running', 10)]);
    assert.deepEqual(show(ru.drain()), ['state:canary']);
    assert.deepEqual(ru.canarySlots, [2]);
    const held = heldCanarySlots([...old3(), task('c2', 2, 2), task('c3', 3, 2, 'shutdown')], 2, undefined, (t) => isTerminal(t.state));
    assert.deepEqual([...held].map(([s, h]) => `${s}:${h.old?.id}+${h.canary?.id}`), ['2:o2+c2']);
  });
});
